/**
 * An inference request body, JSON or with Triton's binary-tensor extension, checked against a
 * model's signature and decoded into runtime tensors.
 */
import { z } from 'zod';
import type { NamedTensors, Tensor } from '../../package/session.ts';
import { fromLittleEndian } from './arrays.ts';
import { ELEMENT_BYTES, V2_DATATYPES, isV2Datatype, type V2Datatype } from './datatypes.ts';
import { protocolError } from './errors.ts';
import { decodeJsonTensor } from './json-tensors.ts';
import type { InferenceModel, TensorSignature } from './model.ts';
import { elementCount } from './shape.ts';

const parameters = z.record(z.string(), z.unknown());

const inputSchema = z.object({
  name: z.string().min(1),
  shape: z.array(z.number().int().nonnegative()).max(32),
  datatype: z.string(),
  parameters: parameters.and(z.object({ binary_data_size: z.number().int().nonnegative().optional() })).optional(),
  data: z.unknown().optional(),
});

const requestSchema = z.object({
  id: z.string().optional(),
  parameters: parameters.and(z.object({ binary_data_output: z.boolean().optional() })).optional(),
  inputs: z.array(inputSchema).min(1),
  outputs: z.array(z.object({
    name: z.string().min(1),
    parameters: parameters.and(z.object({ binary_data: z.boolean().optional() })).optional(),
  })).min(1).optional(),
});

export interface RequestedOutput {
  name: string;
  /** Sent as raw bytes after the JSON header instead of in `data`. */
  binary: boolean;
}

export interface InferRequest {
  id?: string;
  parameters: Record<string, unknown>;
  inputs: NamedTensors;
  outputs: RequestedOutput[];
}

/**
 * The request in `body`. `headerLength` is the Inference-Header-Content-Length header: the JSON
 * is that many leading bytes and the binary inputs follow, in the order of `inputs`.
 */
export function parseInferRequest(body: Uint8Array, headerLength: string | undefined, model: InferenceModel): InferRequest {
  const jsonLength = headerLength === undefined ? body.byteLength : parseHeaderLength(headerLength, body.byteLength);
  const request = parseJson(body.subarray(0, jsonLength));
  const binary = body.subarray(jsonLength);
  const inputs: NamedTensors = {};
  let offset = 0;
  for (const input of request.inputs) {
    const signature = model.inputs.find((s) => s.name === input.name);
    if (!signature) throw protocolError(400, `unknown input "${input.name}"; ${model.name} takes ${names(model.inputs)}`);
    if (Object.hasOwn(inputs, input.name)) throw protocolError(400, `input "${input.name}" is given twice`);
    const datatype = checkSignature(input, signature, model);
    const size = input.parameters?.binary_data_size;
    if (size !== undefined) {
      if (input.data !== undefined) throw protocolError(400, `input "${input.name}" has both data and binary_data_size`);
      if (offset + size > binary.byteLength) {
        throw protocolError(400, `input "${input.name}": binary_data_size ${size} runs past the end of the body (${binary.byteLength - offset} bytes left after the JSON header)`);
      }
      inputs[input.name] = decodeBinaryTensor(input.name, datatype, input.shape, binary.subarray(offset, offset + size));
      offset += size;
    } else {
      if (input.data === undefined) throw protocolError(400, `input "${input.name}" has neither data nor parameters.binary_data_size`);
      inputs[input.name] = decodeJsonTensor(input.name, datatype, input.shape, input.data);
    }
  }
  if (offset !== binary.byteLength) {
    throw protocolError(400, `the body has ${binary.byteLength - offset} bytes after the JSON header that no input's binary_data_size claims`);
  }
  const missing = model.inputs.filter((s) => !Object.hasOwn(inputs, s.name));
  if (missing.length) throw protocolError(400, `missing input ${names(missing)}; ${model.name} takes ${names(model.inputs)}`);
  return { id: request.id, parameters: request.parameters ?? {}, inputs, outputs: requestedOutputs(request, model) };
}

function parseHeaderLength(value: string, bodyLength: number): number {
  const length = /^\d+$/.test(value.trim()) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(length)) throw protocolError(400, `Inference-Header-Content-Length must be a whole number of bytes, not "${value}"`);
  if (length > bodyLength) throw protocolError(400, `Inference-Header-Content-Length is ${length} but the body has only ${bodyLength} bytes`);
  return length;
}

function parseJson(bytes: Uint8Array): z.infer<typeof requestSchema> {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (error) {
    throw protocolError(400, `the request is not valid JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
  const parsed = requestSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = issue.path.length ? issue.path.join('.') : 'the request';
    throw protocolError(400, `${field}: ${issue.message}`);
  }
  return parsed.data;
}

/** An input's datatype and shape against the model's signature for it; a 400 naming what does not fit. */
export function checkSignature(input: { name: string; datatype: string; shape: readonly number[] }, signature: TensorSignature, model: InferenceModel): V2Datatype {
  if (!isV2Datatype(input.datatype)) {
    throw protocolError(400, `input "${input.name}": unknown datatype "${input.datatype}"; the protocol's are ${Object.keys(V2_DATATYPES).join(', ')}`);
  }
  if (input.datatype !== signature.datatype) {
    throw protocolError(400, `input "${input.name}" must be ${signature.datatype}, not ${input.datatype}`);
  }
  const wanted = signature.shape;
  const fits = input.shape.length === wanted.length && input.shape.every((d, i) => wanted[i] === -1 || wanted[i] === d);
  if (!fits) throw protocolError(400, `input "${input.name}" has shape [${input.shape.join(', ')}]; ${model.name} takes [${wanted.join(', ')}] (-1: any size)`);
  if (model.maxBatchSize > 0 && input.shape[0] === 0) throw protocolError(400, `input "${input.name}": the batch dim is 0; send at least one row`);
  if (model.maxBatchSize > 0 && input.shape[0]! > model.maxBatchSize) {
    throw protocolError(400, `input "${input.name}": batch of ${input.shape[0]} exceeds ${model.name}'s max batch size ${model.maxBatchSize}`);
  }
  return input.datatype;
}

/** Raw little-endian elements; a BYTES element is a 4-byte little-endian length and its bytes. */
function decodeBinaryTensor(name: string, datatype: V2Datatype, shape: readonly number[], bytes: Uint8Array): Tensor {
  const dtype = V2_DATATYPES[datatype];
  const count = elementCount(shape);
  if (dtype !== 'string') {
    const expected = count * ELEMENT_BYTES[dtype];
    if (bytes.byteLength !== expected) {
      throw protocolError(400, `input "${name}": shape [${shape.join(', ')}] of ${datatype} takes ${expected} bytes but binary_data_size is ${bytes.byteLength}`);
    }
    const data = fromLittleEndian(dtype, bytes);
    if (dtype === 'bool' && data.some((b) => b > 1)) throw protocolError(400, `input "${name}": a BOOL byte must be 0 or 1`);
    return { dtype, dims: [...shape], data } as Tensor;
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const strings: string[] = [];
  let offset = 0;
  for (let i = 0; i < count; i++) {
    if (offset + 4 > bytes.byteLength) throw protocolError(400, `input "${name}": the binary data ends before BYTES element ${i} of ${count}`);
    const length = view.getUint32(offset, true);
    offset += 4;
    if (offset + length > bytes.byteLength) throw protocolError(400, `input "${name}": BYTES element ${i} says ${length} bytes but the binary data ends first`);
    try {
      strings.push(decoder.decode(bytes.subarray(offset, offset + length)));
    } catch {
      throw protocolError(400, `input "${name}": BYTES element ${i} is not UTF-8 text, which ONNX string tensors hold`);
    }
    offset += length;
  }
  if (offset !== bytes.byteLength) throw protocolError(400, `input "${name}": ${bytes.byteLength - offset} bytes are left after its ${count} BYTES elements`);
  return { dtype: 'string', dims: [...shape], data: strings };
}

function requestedOutputs(request: z.infer<typeof requestSchema>, model: InferenceModel): RequestedOutput[] {
  const allBinary = request.parameters?.binary_data_output === true;
  if (!request.outputs) return model.outputs.map((o) => ({ name: o.name, binary: allBinary }));
  const seen = new Set<string>();
  return request.outputs.map((output) => {
    if (!model.outputs.some((o) => o.name === output.name)) throw protocolError(400, `unknown output "${output.name}"; ${model.name} has ${names(model.outputs)}`);
    if (seen.has(output.name)) throw protocolError(400, `output "${output.name}" is asked for twice`);
    seen.add(output.name);
    return { name: output.name, binary: output.parameters?.binary_data ?? allBinary };
  });
}

function names(tensors: readonly { name: string }[]): string {
  return tensors.map((t) => `"${t.name}"`).join(', ');
}
