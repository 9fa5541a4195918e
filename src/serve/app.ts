import { Hono, type Context } from 'hono';
import { timingSafeEqual } from 'hono/utils/buffer';
import { readBody } from './body.ts';
import { completeJson, completeStream, parseCompletionBody, type CompletionLimits, type EventFrames } from './completions.ts';
import { createMetrics } from './metrics.ts';
import type { ServedModel } from './model.ts';
import { ApiError, errorResponse, toApiError } from './openai-error.ts';
import { eventStreamResponse } from './sse.ts';
import type { InferenceModel } from './v2/model.ts';
import { mountInferenceProtocol } from './v2/routes.ts';

export interface AppOptions {
  /** The models to serve; while the promise is pending /readyz says 503 and so do completions. */
  models: readonly ServedModel[] | Promise<readonly ServedModel[]>;
  /** When set, every route but /healthz and /readyz needs `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
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

  app.use(async (c, next) => {
    await next();
    metrics.requests.inc({ route: c.req.routePath === '/*' ? 'unmatched' : c.req.routePath, status: String(c.res.status) });
  });

  if (options.apiKey !== undefined) {
    const expected = options.apiKey;
    app.use(async (c, next) => {
      if (c.req.path === '/healthz' || c.req.path === '/readyz') return next();
      // The playground page and its static files are public; the page sends the key with its API calls.
      if (c.req.method === 'GET' && (c.req.path === '/' || c.req.path.startsWith('/ferry/'))) return next();
      const header = c.req.header('authorization') ?? '';
      const given = header.startsWith('Bearer ') ? header.slice(7) : '';
      if (!(await timingSafeEqual(given, expected))) {
        throw new ApiError(401, 'invalid_api_key', 'a valid API key is required: send `Authorization: Bearer <key>`');
      }
      return next();
    });
  }

  app.get('/healthz', (c) => c.json({ status: 'ok' }));

  app.get('/readyz', (c) => {
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
    const body = parseCompletionBody(await readJsonText(c, maxBodyBytes));
    const model = ready().get(body.model);
    if (!model) {
      throw new ApiError(404, 'model_not_found', `no model named "${body.model}"; GET /v1/models lists them`, { param: 'model' });
    }
    if (body.stream) {
      const frames = completeStream(body, model, limits, metrics, c.req.raw.signal);
      return options.sendEvents?.(c, frames) ?? eventStreamResponse(frames);
    }
    return c.json(await completeJson(body, model, limits, metrics, c.req.raw.signal));
  });

  mountInferenceProtocol(app, {
    languageModels: options.models, models: options.inferenceModels, registry: metrics.registry, maxBodyBytes: options.maxInferBodyBytes,
    complete: (model, body, signal) => completeJson(parseCompletionBody(JSON.stringify(body)), model, limits, metrics, signal),
  });

  app.notFound((c) => errorResponse(new ApiError(404, 'not_found', `no route ${c.req.method} ${c.req.path}`)));

  app.onError((error) => {
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
