import { Hono, type Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { readBody } from './body.ts';
import { completeJson, completeStream, parseCompletionBody, type CompletionLimits, type EventFrames } from './completions.ts';
import { guards, routeOf } from './guard.ts';
import { createMetrics } from './metrics.ts';
import type { ServedModel } from './model.ts';
import { ApiError, errorResponse, toApiError } from './openai-error.ts';
import { eventStreamResponse } from './sse.ts';
import type { InferenceModel } from './v2/model.ts';
import { mountInferenceProtocol } from './v2/routes.ts';
import { isProtocolPath, protocolErrorOfException, protocolErrorResponse } from './v2/errors.ts';

export interface AppOptions {
  /** The models to serve; while the promise is pending /readyz says 503 and so do completions. */
  models: readonly ServedModel[] | Promise<readonly ServedModel[]>;
  /**
   * When set, every route but /healthz and /readyz needs `Authorization: Bearer <apiKey>`: the
   * API, /metrics and the playground's package list and files. The playground page and its code
   * (`/`, `/ferry/playground.js`, `/ferry/ort/*`) stay open so that a browser can load the page
   * and type the key into it.
   */
  apiKey?: string;
  /** With a key set, leave the whole playground open, package files (weights) included. */
  publicPlayground?: boolean;
  /** Origins a browser page may call the API from, or `*`; no CORS headers when empty (default). */
  corsOrigins?: readonly string[];
  /** When set, a request whose Host header names another hostname is refused (403). */
  allowedHosts?: readonly string[];
  /** True once the server is shutting down: /readyz and new completions say 503, running ones finish. */
  draining?: () => boolean;
  /** Largest request body in bytes (default 1 MiB). */
  maxBodyBytes?: number;
  /** Largest max_tokens a request may ask for (default 4096). */
  maxTokens?: number;
  /** Longest prompt in tokens (default 8192; a Transformer's context bounds it further). */
  maxPromptTokens?: number;
  /** Milliseconds a completion may take, queue included (default 5 minutes). */
  timeoutMs?: number;
  /**
   * Sends a streamed completion by the platform's own means, returning the Response for Hono
   * (the Node entry writes to the socket directly), or undefined to leave it to a web
   * ReadableStream, which is also the default.
   */
  sendEvents?: (c: Context, frames: EventFrames) => Response | undefined;
  /** Plain models, served with the language models over the Open Inference Protocol (/v2). */
  inferenceModels?: readonly InferenceModel[] | Promise<readonly InferenceModel[]>;
  /** Largest /v2 inference body in bytes (default 64 MiB). */
  maxInferBodyBytes?: number;
}

const PROBES = new Set(['/healthz', '/readyz']);
// The playground's page and code hold no model data; its package list and files do.
const PLAYGROUND_CODE = /^\/(ferry\/playground\.js|ferry\/ort\/[^/]+)?$/;

/**
 * The OpenAI-compatible HTTP API over a set of loaded models. It runs anywhere Hono does: it
 * never touches the file system or a runtime itself, which the Node and edge entries provide.
 */
export function createApp(options: AppOptions) {
  let models: Map<string, ServedModel> | undefined;
  let loadError: string | undefined;
  Promise.resolve(options.models).then(
    (loaded) => {
      models = new Map(loaded.map((m) => [m.id, m]));
      for (const model of loaded) model.scheduler.onStep((size) => metrics.batchSize.observe({ model: model.id }, size));
    },
    (error: unknown) => {
      loadError = error instanceof Error ? error.message : String(error);
    },
  );
  const perModel = (read: (m: ServedModel) => number) => () => Object.fromEntries([...(models ?? new Map<string, ServedModel>()).values()].map((m) => [m.id, read(m)]));
  const metrics = createMetrics({ queueDepth: perModel((m) => m.scheduler.queued), activeSequences: perModel((m) => m.scheduler.active) });
  const limits: CompletionLimits = {
    maxTokens: options.maxTokens ?? 4096,
    maxPromptTokens: options.maxPromptTokens ?? 8192,
    timeoutMs: options.timeoutMs ?? 300_000,
  };
  const maxBodyBytes = options.maxBodyBytes ?? 1 << 20;

  const app = new Hono();

  // A stream is counted when it ends, with how it ended (200, 499 when the client left, a late error's status).
  const countedAtEnd = new WeakSet<Request>();
  app.use(async (c, next) => {
    await next();
    if (!countedAtEnd.has(c.req.raw)) metrics.requests.inc({ route: routeOf(c) ?? 'unmatched', status: String(c.res.status) });
  });

  const isPublic = (path: string) => PROBES.has(path) || PLAYGROUND_CODE.test(path) || (options.publicPlayground === true && (path === '/' || path.startsWith('/ferry/')));
  for (const guard of guards(app, { apiKey: options.apiKey, isPublic, corsOrigins: options.corsOrigins, allowedHosts: options.allowedHosts })) app.use(guard);

  app.get('/healthz', (c) => c.json({ status: 'ok' }));

  app.get('/readyz', (c) => {
    if (options.draining?.()) return c.json({ status: 'draining' }, 503);
    if (models) return c.json({ status: 'ready', models: [...models.keys()] });
    return c.json({ status: loadError ? 'failed' : 'loading', ...(loadError ? { error: loadError } : {}) }, 503);
  });

  app.get('/v1/models', (c) => c.json({
    object: 'list',
    data: [...ready().values()].map((m) => ({
      id: m.id, object: 'model', created: m.created, owned_by: 'ferry',
      arch: m.arch, context_length: m.contextLength, provider: m.provider,
    })),
  }));

  app.get('/v1/models/:id', (c) => {
    const model = ready().get(c.req.param('id'));
    if (!model) throw new ApiError(404, 'model_not_found', `no model named "${c.req.param('id')}"`, { param: 'model' });
    return c.json({ id: model.id, object: 'model', created: model.created, owned_by: 'ferry', arch: model.arch, context_length: model.contextLength, provider: model.provider });
  });

  app.get('/metrics', async (c) => c.text(await metrics.registry.metrics(), 200, { 'content-type': metrics.registry.contentType }));

  app.post('/v1/completions', async (c) => {
    if (options.draining?.()) {
      throw new ApiError(503, 'draining', 'this server is shutting down; send the request to another replica', { headers: { 'Retry-After': '1', Connection: 'close' } });
    }
    const body = parseCompletionBody(await readJsonText(c, maxBodyBytes));
    const model = ready().get(body.model);
    if (!model) {
      throw new ApiError(404, 'model_not_found', `no model named "${body.model}"; GET /v1/models lists them`, { param: 'model' });
    }
    if (body.stream) {
      const frames = completeStream(body, model, limits, metrics, c.req.raw.signal, (status) => metrics.requests.inc({ route: '/v1/completions', status: String(status) }));
      countedAtEnd.add(c.req.raw);
      return options.sendEvents?.(c, frames) ?? eventStreamResponse(frames);
    }
    return c.json(await completeJson(body, model, limits, metrics, c.req.raw.signal));
  });

  mountInferenceProtocol(app, {
    languageModels: options.models, models: options.inferenceModels, registry: metrics.registry, maxBodyBytes: options.maxInferBodyBytes,
    complete: (model, body, signal) => completeJson(parseCompletionBody(JSON.stringify(body)), model, limits, metrics, signal),
  });

  app.notFound((c) => errorResponse(new ApiError(404, 'not_found', `no route ${c.req.method} ${c.req.path}`)));

  app.onError((error, c) => {
    // Auth, Host and path checks run before the /v2 routes: their refusals take the protocol's shape there.
    if (isProtocolPath(c.req.path)) return error instanceof HTTPException ? protocolErrorOfException(error) : protocolErrorResponse(error);
    if (error instanceof HTTPException) return error.getResponse();
    const apiError = toApiError(error);
    if (apiError.status >= 500 && apiError.code === 'internal_error') console.error(error);
    return errorResponse(apiError);
  });

  function ready(): Map<string, ServedModel> {
    if (models) return models;
    throw new ApiError(503, loadError ? 'model_load_failed' : 'loading', loadError ? `the models failed to load: ${loadError}` : 'the models are still loading', {
      headers: { 'Retry-After': '1' },
    });
  }

  return app;
}

/** The body as text, refusing bodies over `maxBytes` (413), anything but JSON (415) and invalid UTF-8. */
async function readJsonText(c: Context, maxBytes: number): Promise<string> {
  const bytes = await readBody(c, maxBytes);
  const type = (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') {
    throw new ApiError(415, 'unsupported_media_type', `the body must be application/json, not ${type || 'untyped'}`);
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new ApiError(400, 'invalid_utf8', 'the body is not valid UTF-8');
  }
}
