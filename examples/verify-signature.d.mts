// Types of examples/verify-signature.mjs, for the tests that import it.
export const DEFAULT_WINDOW_MS: number;
export class SeenRequests {
  constructor(maxEntries?: number, windowMs?: number);
  readonly maxEntries: number;
  readonly windowMs: number;
  remember(id: string, timestamp: number, now: number): boolean;
}
export interface GuardRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: { get(name: string): string | null } | Record<string, string | string[] | undefined>;
}
export interface VerifyOptions {
  readonly secrets: readonly string[];
  readonly now?: number;
  readonly windowMs?: number;
  readonly seen?: SeenRequests;
}
export type Verified =
  | { ok: true; tenant: string; priority: string; requestId: string; deadline: number }
  | { ok: false; reason: "unsigned" | "bad_timestamp" | "bad_signature" | "stale" | "replayed" };
export function canonicalString(fields: Record<string, string>): string;
export function verifyGuardRequest(request: GuardRequest, options: VerifyOptions): Verified;
