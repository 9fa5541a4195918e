import type { Context, Hono, MiddlewareHandler } from 'hono';
import { bearerAuth } from 'hono/bearer-auth';
import { cors } from 'hono/cors';
import { matchedRoutes } from 'hono/route';
import { ApiError } from './openai-error.ts';

export interface GuardOptions {
  /** Every matched route but the probes (and the public playground) needs this bearer key. */
  apiKey?: string;
  /** Paths that stay open with a key set: the probes always, the playground when it is public on purpose. */
  isPublic: (path: string) => boolean;
  /** Origins a browser may call the API from (`*` for any); none by default. */
  corsOrigins?: readonly string[];
  /** When set, the hostnames the Host header may name (a loopback server without a key: DNS rebinding). */
  allowedHosts?: readonly string[];
}

/** The route a request matched (its pattern, as metrics label it), or undefined when none did. */
export function routeOf(c: Context): string | undefined {
  const routes = matchedRoutes(c).filter((route) => route.method !== 'ALL');
  return routes.at(-1)?.path;
}

/**
 * Middleware in the order a request meets them: a path that does not percent-decode is a 400;
 * a Host that is not this server's is a 403; CORS (preflight answered before auth); OPTIONS
 * without CORS answers the allowed methods; the bearer key on every matched route but the public
 * ones. A route that matches nothing passes through to the 404, with a key or without.
 */
export function guards(app: Hono, options: GuardOptions): MiddlewareHandler[] {
  const handlers: MiddlewareHandler[] = [checkPath];
  if (options.allowedHosts) handlers.push(checkHost(options.allowedHosts));
  if (options.corsOrigins?.length) {
    const origins = options.corsOrigins;
    handlers.push(cors({
      origin: origins.includes('*') ? '*' : [...origins],
      allowHeaders: ['Authorization', 'Content-Type'],
      allowMethods: ['GET', 'HEAD', 'POST', 'OPTIONS'],
      maxAge: 600,
    }));
  } else {
    handlers.push(answerOptions(app));
  }
  if (options.apiKey !== undefined) handlers.push(requireKey(options.apiKey, options.isPublic));
  return handlers;
}

const checkPath: MiddlewareHandler = async (c, next) => {
  const raw = new URL(c.req.url).pathname;
  try {
    decodeURIComponent(raw);
  } catch {
    throw new ApiError(400, 'invalid_path', `the path ${JSON.stringify(raw)} has a malformed percent-escape`);
  }
  return next();
};

function checkHost(allowed: readonly string[]): MiddlewareHandler {
  const hosts = new Set(allowed.map((h) => h.toLowerCase()));
  return async (c, next) => {
    const header = c.req.header('host');
    const name = header === undefined ? '' : hostnameOf(header);
    if (!hosts.has(name)) {
      throw new ApiError(403, 'host_not_allowed', `the Host header ${JSON.stringify(header ?? '')} does not name this server; a server on loopback without --api-key answers only ${[...hosts].join(', ')} (a page elsewhere could otherwise reach it by DNS rebinding); accept more with --allow-host`);
    }
    return next();
  };
}

/** `Host: [::1]:8080` -> `::1`, `Localhost:80` -> `localhost`. */
function hostnameOf(header: string): string {
  const host = header.trim().toLowerCase();
  if (host.startsWith('[')) return host.slice(1, host.indexOf(']') < 0 ? undefined : host.indexOf(']'));
  const colon = host.indexOf(':');
  return colon < 0 ? host : host.slice(0, colon);
}

/** OPTIONS without CORS: 204 with `Allow` for a path some route serves, else on to the 404. */
function answerOptions(app: Hono): MiddlewareHandler {
  return async (c, next) => {
    if (c.req.method !== 'OPTIONS') return next();
    // The router keeps each handler with its route; middleware is registered as method ALL.
    const serves = (method: string) => (app.router.match(method, c.req.path)[0] as unknown as [[unknown, { method: string }], unknown][]).some(([[, route]]) => route.method === method);
    const allowed = ['GET', 'POST'].filter(serves);
    if (!allowed.length) return next();
    if (allowed.includes('GET')) allowed.splice(1, 0, 'HEAD');
    return c.body(null, 204, { Allow: [...allowed, 'OPTIONS'].join(', ') });
  };
}

function requireKey(apiKey: string, isPublic: (path: string) => boolean): MiddlewareHandler {
  const refuse = (message: string) => () => new ApiError(401, 'invalid_api_key', message).body;
  const auth = bearerAuth({
    token: apiKey,
    noAuthenticationHeader: { message: refuse('a valid API key is required: send `Authorization: Bearer <key>`') },
    invalidAuthenticationHeader: { message: refuse('the Authorization header must be `Bearer <key>`') },
    invalidToken: { message: refuse('the API key is not valid') },
  });
  return async (c, next) => {
    if (isPublic(c.req.path) || routeOf(c) === undefined) return next();
    return auth(c, next);
  };
}
