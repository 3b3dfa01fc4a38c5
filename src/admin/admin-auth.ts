import type { MiddlewareHandler } from "hono";
import { timingSafeEqual } from "hono/utils/buffer";
import { guardConfig } from "../config";
import type { Env } from "../env";
import type { ProblemError } from "../problem";
import { guardError } from "../guard-errors";

function unauthorized(detail: string): ProblemError {
  return guardError("unauthorized", detail, {}, { "www-authenticate": 'Bearer realm="ingress-guard admin"' });
}

/**
 * Bearer auth for the admin API, compared in constant time (both sides hashed, then compared).
 * Without a configured ADMIN_TOKEN every admin request is refused: the API fails closed.
 */
export const adminAuth: MiddlewareHandler<{ Bindings: Env }> = async function adminAuth(c, next) {
  const { adminToken: expected, adminTokenProblem } = guardConfig(c.env);
  if (adminTokenProblem) {
    throw guardError("admin_disabled", `the admin API is disabled: ${adminTokenProblem} (the proxy still serves)`);
  }
  if (!expected) throw unauthorized("the admin API is disabled: no ADMIN_TOKEN is configured");
  const header = c.req.header("authorization") ?? "";
  const match = /^Bearer ([A-Za-z0-9._~+/=-]+)$/i.exec(header.trim());
  if (!match?.[1]) throw unauthorized("an admin token is required: Authorization: Bearer <ADMIN_TOKEN>");
  if (!(await timingSafeEqual(match[1], expected))) throw unauthorized("the admin token is not valid");
  await next();
};
