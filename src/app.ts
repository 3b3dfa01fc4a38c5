import { type Clock, systemClock } from "./clock";
import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { adminRoutes } from "./admin/admin-routes";
import { type DecisionSink, analyticsEngineSink } from "./analytics";
import { ConfigError } from "./config";
import type { Env } from "./env";
import { ProblemError, problemResponse } from "./problem";
import { guardErrorResponse, notFound } from "./guard-errors";
import type { OriginFetch } from "./proxy/forward";
import { guardRequest } from "./proxy/guard-request";
import { normalisePath } from "./request-path";

type AppEnv = { Bindings: Env };

/** The one error handler: every failure leaves as problem+json; internals never leak. */
export function errorResponse(error: unknown): Response {
  if (error instanceof ProblemError) return error.response();
  if (error instanceof ConfigError) {
    console.error(error.message);
    return guardErrorResponse("misconfigured", error.publicDetail);
  }
  if (error instanceof HTTPException) {
    return problemResponse({
      type: "about:blank",
      title: error.message || "Error",
      status: error.status,
      detail: error.message,
    });
  }
  console.error("unexpected error", error);
  return guardErrorResponse("unexpected", "the guard failed unexpectedly; the error was logged");
}

/** The normalised path of each proxied request (src/request-path.ts), decided once in `fetch`. */
const pathOf = new WeakMap<Request, string>();

function badPath(detail: string): Response {
  return guardErrorResponse("bad_path", `${detail}; send the path in its plain form`, {
    reason: "bad_path",
    errors: [{ field: "path", message: detail }],
  });
}

export interface AppPorts {
  readonly originFetch?: OriginFetch;
  readonly sink?: (env: Env) => DecisionSink;
  readonly random?: () => number;
  readonly clock?: Clock;
}

/**
 * The Worker: admin API under /__guard (never forwarded, whatever its spelling), everything
 * else through the guard to the origin.
 */
export function createApp(ports: AppPorts = {}) {
  const admin = adminRoutes();
  admin.onError((error) => errorResponse(error));
  admin.notFound((c) => notFound(`no admin route for ${c.req.method} ${new URL(c.req.url).pathname}`).response());

  const proxy = new Hono<AppEnv>();
  proxy.onError((error) => errorResponse(error));
  proxy.all("*", (c) =>
    guardRequest(
      c.req.raw,
      pathOf.get(c.req.raw) ?? new URL(c.req.url).pathname,
      c.env,
      c.executionCtx as ExecutionContext,
      {
        originFetch: ports.originFetch ?? ((input, init) => fetch(input, init)),
        sink: (ports.sink ?? ((env: Env) => analyticsEngineSink(env.ANALYTICS)))(c.env),
        random: ports.random ?? Math.random,
        clock: ports.clock ?? systemClock,
      },
    ),
  );

  return {
    fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
      const verdict = normalisePath(new URL(request.url).pathname);
      if (verdict.kind === "refused") return Promise.resolve(badPath(verdict.detail));
      if (verdict.kind === "admin") return Promise.resolve(admin.fetch(request, env, ctx));
      pathOf.set(request, verdict.path);
      return Promise.resolve(proxy.fetch(request, env, ctx));
    },
  };
}
