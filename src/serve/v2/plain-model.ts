/**
 * A plain model (named tensors in, named tensors out) behind the Open Inference Protocol: its
 * signature from the package's tensor specs, and its runs through a dynamic batcher.
 */
import { ApiError } from '../openai-error.ts';
import type { Session, TensorDType } from '../../package/session.ts';
import { createBatcher, type Batcher, type BatcherOptions } from './batcher.ts';
import { v2DatatypeOf } from './datatypes.ts';
import { protocolError } from './errors.ts';
import type { InferenceModel, TensorSignature } from './model.ts';

/** A tensor as a plain package's ferry.json states it (src/package: the plain model kind). */
export interface PlainTensorSpec {
  readonly name: string;
  readonly dtype: TensorDType;
  readonly shape: readonly (string | number)[];
  readonly batchDim: number | null;
}

export interface PlainModelSpec {
  readonly name: string;
  readonly inputs: readonly PlainTensorSpec[];
  readonly outputs: readonly PlainTensorSpec[];
}

export type PlainModelOptions = Omit<BatcherOptions, 'batchable'>;

export function signatureOf(spec: PlainTensorSpec): TensorSignature {
  return { name: spec.name, datatype: v2DatatypeOf(spec.dtype), shape: spec.shape.map((d) => (typeof d === 'number' ? d : -1)) };
}

/**
 * Requests share runs only when every input and output has its batch dim first, as Triton
 * requires; a model with the batch dim elsewhere, or none, runs each request alone.
 */
export function isBatchable(spec: PlainModelSpec): boolean {
  return [...spec.inputs, ...spec.outputs].every((t) => t.batchDim === 0 && typeof t.shape[0] === 'string');
}

export function createPlainModel(spec: PlainModelSpec, session: Session, options: PlainModelOptions): InferenceModel & { batcher: Batcher } {
  const batchable = isBatchable(spec);
  const batcher = createBatcher(session, { ...options, batchable });
  return {
    name: spec.name,
    versions: ['1'],
    platform: 'onnxruntime_onnx',
    inputs: spec.inputs.map(signatureOf),
    outputs: spec.outputs.map(signatureOf),
    maxBatchSize: batchable ? options.maxBatch : 0,
    batcher,
    async infer(inputs, { outputs, signal }) {
      try {
        return await batcher.run(inputs, outputs, signal);
      } catch (error) {
        if (error instanceof ApiError) throw error;
        // The inputs met the signature, so what fails now is their values or their dims together.
        const reason = (error instanceof Error ? error.message : String(error)).split('\n')[0];
        throw protocolError(400, `${spec.name} could not run on these inputs: ${reason}`);
      }
    },
  };
}
