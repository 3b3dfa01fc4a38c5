/**
 * Where admitted requests go and whether they are signed: the `ORIGIN` service binding or
 * `ORIGIN_URL`, and `ORIGIN_SIGNING_SECRET`. Parsed once with the rest of the config; each
 * problem names its setting, and the secret's value is never echoed.
 */
import { z } from "zod";

export interface OriginEnv {
  /** A service binding (a Worker, or a private service): when bound, it wins over ORIGIN_URL. */
  readonly ORIGIN?: unknown;
  readonly ORIGIN_URL?: string;
  /** Unset or empty: forwarded requests are not signed. */
  readonly ORIGIN_SIGNING_SECRET?: string;
}

export interface OriginSettings {
  /** The base the request's path and query are appended to; with a service binding, SERVICE_BASE. */
  readonly originUrl: URL;
  /** The bound origin, or null: then `originUrl` is fetched over the network. */
  readonly originService: Fetcher | null;
  /** HMAC-SHA256 secret of the forwarded requests' signature (src/proxy/origin-signature.ts), or null. */
  readonly signingSecret: string | null;
}

/**
 * A service binding ignores the URL's host, but the bound Worker sees it in `request.url`:
 * a fixed, reserved-looking name it can recognise, never a host anyone could resolve.
 */
export const SERVICE_BASE = "https://origin.internal";

export const SIGNING_SECRET_MIN_LENGTH = 32;

interface OriginProblem {
  readonly setting: keyof OriginEnv;
  readonly message: string;
  readonly echo: boolean;
}

const originUrlSchema = z
  .string({ error: "is required (or an ORIGIN service binding): the origin admitted requests are forwarded to" })
  .url("must be an absolute http(s) URL")
  .refine((value) => /^https?:/i.test(value), "must use http or https");

/**
 * Printable ASCII only: every verifier takes the secret's bytes as they are, and a character
 * that encodes differently in one language, or a stray newline from a file, would make them disagree.
 */
const signingSecretSchema = z
  .string()
  .min(SIGNING_SECRET_MIN_LENGTH, `must be at least ${SIGNING_SECRET_MIN_LENGTH} characters (openssl rand -hex 32)`)
  .max(1024, "must be at most 1024 characters")
  .regex(/^[\x21-\x7e]+$/, "must be printable ASCII without spaces");

function isFetcher(value: unknown): value is Fetcher {
  return typeof value === "object" && value !== null && typeof (value as Fetcher).fetch === "function";
}

export type OriginParse =
  | { readonly ok: true; readonly config: OriginSettings }
  | { readonly ok: false; readonly problems: OriginProblem[] };

export function parseOriginSettings(env: OriginEnv): OriginParse {
  const problems: OriginProblem[] = [];
  const bound = env.ORIGIN !== undefined;
  if (bound && !isFetcher(env.ORIGIN))
    problems.push({
      setting: "ORIGIN",
      message: "must be a service binding (a Worker or a private service)",
      echo: true,
    });
  const url = bound ? null : originUrlSchema.safeParse(env.ORIGIN_URL || undefined);
  if (url && !url.success)
    problems.push({ setting: "ORIGIN_URL", message: url.error.issues[0]?.message ?? "is invalid", echo: true });
  const rawSecret = env.ORIGIN_SIGNING_SECRET || undefined;
  const secret = rawSecret === undefined ? null : signingSecretSchema.safeParse(rawSecret);
  if (secret && !secret.success)
    problems.push({
      setting: "ORIGIN_SIGNING_SECRET",
      message: secret.error.issues.map((issue) => issue.message).join("; "),
      echo: false,
    });
  if (problems.length > 0) return { ok: false, problems };
  return {
    ok: true,
    config: {
      originUrl: new URL(url?.success ? url.data : SERVICE_BASE),
      originService: isFetcher(env.ORIGIN) ? env.ORIGIN : null,
      signingSecret: secret?.success ? secret.data : null,
    },
  };
}
