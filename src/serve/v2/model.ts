/** What the Open Inference Protocol routes need of a served model, whatever runs it. */
import type { NamedTensors } from '../../package/session.ts';
import type { Batcher } from './batcher.ts';
import type { V2Datatype } from './datatypes.ts';

/** A tensor as model metadata states it: `-1` for a dynamic dim (the batch dim included). */
export interface TensorSignature {
  readonly name: string;
  readonly datatype: V2Datatype;
  readonly shape: readonly number[];
}

export interface InferOptions {
  /** Outputs to compute, by name (each one the model has). */
  outputs: readonly string[];
  /** The request's `parameters` object. */
  parameters: Readonly<Record<string, unknown>>;
  /** Aborted when the client goes away. */
  signal: AbortSignal;
}

export interface InferenceModel {
  readonly name: string;
  readonly versions: readonly string[];
  /** Triton's platform name: `onnxruntime_onnx` for a plain model. */
  readonly platform: string;
  readonly inputs: readonly TensorSignature[];
  readonly outputs: readonly TensorSignature[];
  /** Most rows one run takes along the batch dim (dim 0); 0 when the model has no batch dim. */
  readonly maxBatchSize: number;
  /** Requests waiting for a run, and a subscription to every run (models batched by ferry). */
  readonly batcher?: Pick<Batcher, 'queued' | 'onRun'>;
  /** Runs the model on inputs already checked against `inputs`. */
  infer(inputs: NamedTensors, options: InferOptions): Promise<NamedTensors>;
}
