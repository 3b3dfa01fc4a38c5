/**
 * The one policy for "an object (or KV, or the JWKS) cannot be asked", whichever stage asked:
 * FAIL_MODE=closed sheds `guard_unavailable`; open lets the request through on this isolate's
 * conservative limiter (src/edge/fail-open-gate.ts), or on a bound that already holds it (a
 * slot of that limiter taken at an earlier stage, an anonymous address's own bucket). A full
 * limiter sheds as if failing closed.
 */
import type { GuardConfig } from "../config";
import { enterFailOpen } from "../edge/fail-open-gate";

/** How long a client should stay away when the guard itself cannot decide. */
export const UNAVAILABLE_RETRY_MS = 2_000;

/** The shed for a request the guard could not decide; the caller adds its quota and wait. */
export const UNAVAILABLE_SHED = {
  reason: "guard_unavailable",
  retryAfterMs: UNAVAILABLE_RETRY_MS,
  stage: "guard",
} as const;

export type Unreachable =
  /** Forward; `leave` gives the limiter's slot back when the request ends (null: no slot was taken). */
  { readonly kind: "forward"; readonly leave: (() => void) | null } | { readonly kind: "shed" };

/** `covered`: another bound already holds this request, so it takes no slot of the limiter. */
export function whenUnreachable(
  config: Pick<GuardConfig, "failMode" | "failOpenMaxInFlight">,
  covered: boolean,
): Unreachable {
  if (config.failMode !== "open") return { kind: "shed" };
  if (covered) return { kind: "forward", leave: null };
  const leave = enterFailOpen(config.failOpenMaxInFlight);
  return leave ? { kind: "forward", leave } : { kind: "shed" };
}
