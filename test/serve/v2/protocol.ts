// Checks responses against the Open Inference Protocol's own OpenAPI document
// (protocol/rest_predict_v2.yaml, from the KServe repository; see protocol/README.md).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import Ajv from 'ajv';
import yaml from 'js-yaml';

const document = yaml.load(readFileSync(new URL('./protocol/rest_predict_v2.yaml', import.meta.url), 'utf8')) as {
  components: { schemas: Record<string, { required?: string[]; properties?: Record<string, unknown> }> };
};

// Triton's binary-tensor extension leaves `data` out of a tensor sent as binary and states its
// size in parameters.binary_data_size; the header is otherwise the document's request or response.
const binarySchemas = structuredClone(document.components.schemas);
for (const tensor of ['request_input', 'response_output']) binarySchemas[tensor]!.required = binarySchemas[tensor]!.required!.filter((field) => field !== 'data');

const ajv = new Ajv({ allErrors: true });
ajv.addSchema({ $id: 'v2', components: { schemas: document.components.schemas } });
ajv.addSchema({ $id: 'v2-binary', components: { schemas: binarySchemas } });

export type SchemaName = 'metadata_server_response' | 'metadata_server_error_response' | 'metadata_model_response' | 'metadata_model_error_response'
  | 'inference_request' | 'inference_response' | 'inference_error_response';

export function assertMatches(schema: SchemaName, value: unknown, options: { binary?: boolean } = {}): void {
  const validate = ajv.getSchema(`${options.binary ? 'v2-binary' : 'v2'}#/components/schemas/${schema}`)!;
  assert.ok(validate(value), `${schema}: ${ajv.errorsText(validate.errors)} in ${JSON.stringify(value).slice(0, 300)}`);
}

/** The JSON part of a response (the header of a binary one) and the bytes after it. */
export async function readResponse(response: Response): Promise<{ json: unknown; binary: Uint8Array }> {
  const bytes = new Uint8Array(await response.arrayBuffer());
  const header = response.headers.get('inference-header-content-length');
  const length = header === null ? bytes.byteLength : Number(header);
  return { json: JSON.parse(new TextDecoder().decode(bytes.subarray(0, length))), binary: bytes.subarray(length) };
}

/** A response that must be the protocol's error: the status, and a body the document's error schema accepts. */
export async function assertProtocolError(response: Response, status: number, schema: SchemaName = 'inference_error_response'): Promise<string> {
  const { json } = await readResponse(response);
  assert.equal(response.status, status, JSON.stringify(json));
  assertMatches(schema, json);
  return (json as { error: string }).error;
}
