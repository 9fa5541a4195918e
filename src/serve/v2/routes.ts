/**
 * The Open Inference Protocol (KServe v2, Triton's HTTP API) on a Hono app: health, server and
 * model metadata, readiness and inference for every served model, errors as `{"error": "..."}`.
 * docs/HTTP.md describes it.
 */
import { Hono, type Context } from 'hono';
import type { Registry } from 'prom-client';
import packageJson from '../../../package.json' with { type: 'json' };
import { readBody } from '../body.ts';
import type { ServedModel } from '../model.ts';
import { ApiError } from '../openai-error.ts';
import { protocolError, protocolErrorResponse } from './errors.ts';
import { createInferenceMetrics } from './metrics.ts';
import type { InferenceModel } from './model.ts';
import { parseInferRequest } from './request.ts';
import { inferResponse } from './response.ts';
import { textModel, type Complete } from './text-model.ts';

export interface InferenceProtocolOptions {
  /** The language models, served with `text_input` / `text_output` tensors. */
  languageModels: readonly ServedModel[] | Promise<readonly ServedModel[]>;
  /** Runs a completion for a language model, as /v1/completions does. */
  complete: (model: ServedModel, body: Record<string, unknown>, signal: AbortSignal) => ReturnType<Complete>;
  /** Every other model (plain packages). */
  models?: readonly InferenceModel[] | Promise<readonly InferenceModel[]>;
  registry: Registry;
  /** Largest inference request body in bytes (default 64 MiB: a 224x224x3 float image is 3-4 MB of JSON). */
  maxBodyBytes?: number;
}

export const EXTENSIONS = ['binary_tensor_data'];

export function mountInferenceProtocol(app: Hono, options: InferenceProtocolOptions): void {
  const metrics = createInferenceMetrics(options.registry, () => Object.fromEntries([...(models?.values() ?? [])].map((m) => [m.name, m.batcher?.queued ?? 0])));
  let models: Map<string, InferenceModel> | undefined;
  let loadError: string | undefined;
  const serve = (languageModels: readonly ServedModel[], plain: readonly InferenceModel[]) => {
    const all = [...languageModels.map((m) => textModel(m, (body, signal) => options.complete(m, body, signal))), ...plain];
    models = new Map(all.map((m) => [m.name, m]));
    for (const model of plain) {
      model.batcher?.onRun((run) => {
        metrics.batchRows.observe({ model: model.name }, run.rows);
        metrics.batchRequests.observe({ model: model.name }, run.requests);
        metrics.runSeconds.observe({ model: model.name }, run.runSeconds);
        for (const seconds of run.queueSeconds) metrics.queueSeconds.observe({ model: model.name }, seconds);
      });
    }
  };
  const plainModels = options.models ?? [];
  // Models given as they are serve from the first request; promised ones once they resolve.
  if (Array.isArray(options.languageModels) && Array.isArray(plainModels)) {
    serve(options.languageModels, plainModels);
  } else {
    Promise.all([options.languageModels, plainModels]).then(([languageModels, plain]) => serve(languageModels, plain), (error: unknown) => {
      loadError = error instanceof Error ? error.message : String(error);
    });
  }
  const maxBodyBytes = options.maxBodyBytes ?? 64 << 20;

  const v2 = new Hono();
  v2.onError((error) => protocolErrorResponse(error));

  const serverMetadata = (c: Context) => c.json({ name: 'ferry', version: packageJson.version, extensions: EXTENSIONS });
  v2.get('/v2', serverMetadata);
  v2.get('/v2/', serverMetadata);
  v2.get('/v2/health/live', (c) => c.body(null, 200));
  v2.get('/v2/health/ready', (c) => {
    loaded();
    return c.body(null, 200);
  });

  for (const base of ['/v2/models/:name', '/v2/models/:name/versions/:version']) {
    v2.get(base, (c) => {
      const model = find(c);
      return c.json({ name: model.name, versions: model.versions, platform: model.platform, inputs: model.inputs, outputs: model.outputs });
    });
    v2.get(`${base}/ready`, (c) => {
      find(c);
      return c.body(null, 200);
    });
    v2.post(`${base}/infer`, async (c) => {
      const model = find(c);
      try {
        const request = parseInferRequest(await readBody(c, maxBodyBytes), c.req.header('inference-header-content-length'), model);
        const outputs = await model.infer(request.inputs, { outputs: request.outputs.map((o) => o.name), parameters: request.parameters, signal: c.req.raw.signal });
        metrics.requests.inc({ model: model.name, status: '200' });
        return inferResponse({ modelName: model.name, modelVersion: c.req.param('version') ?? model.versions[0]!, id: request.id }, request.outputs, outputs);
      } catch (error) {
        metrics.requests.inc({ model: model.name, status: String(error instanceof ApiError ? error.status : 500) });
        throw error;
      }
    });
  }
  v2.all('/v2/*', (c) => {
    throw protocolError(404, `no route ${c.req.method} ${c.req.path} in the inference protocol`);
  });
  app.route('/', v2);

  function loaded(): Map<string, InferenceModel> {
    if (models) return models;
    throw protocolError(503, loadError ? `the models failed to load: ${loadError}` : 'the models are still loading', { 'Retry-After': '1' });
  }

  function find(c: Context): InferenceModel {
    const name = c.req.param('name')!;
    const model = loaded().get(name);
    if (!model) throw protocolError(404, `no model named "${name}"; GET /v2/models/{name} for one of: ${[...loaded().keys()].join(', ')}`);
    const version = c.req.param('version');
    if (version !== undefined && !model.versions.includes(version)) {
      throw protocolError(404, `${name} has no version "${version}"; it has ${model.versions.join(', ')}`);
    }
    return model;
  }
}
