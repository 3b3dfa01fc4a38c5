/**
 * The identity settings (`IDENTITY`, `CREDENTIAL_TO_ORIGIN`, `JWT_*`, `JWKS`, `JWKS_URL`), parsed
 * and checked once with the rest of the config. Each problem names its setting and echoes its
 * value, except the `JWKS` secret, whose value is never echoed (it may hold HMAC keys).
 */
import { z } from "zod";
import type { IdentitySetting, JwtKeys } from "./credential";
import { JWT_ALGORITHMS, type JwtAlgorithm, parseJwks } from "./jwks";

export interface IdentityEnv {
  readonly IDENTITY?: string;
  readonly CREDENTIAL_TO_ORIGIN?: string;
  readonly JWT_ISSUER?: string;
  readonly JWT_AUDIENCE?: string;
  readonly JWT_TENANT_CLAIM?: string;
  readonly JWT_ALGORITHMS?: string;
  readonly JWT_CLOCK_SKEW_S?: string;
  readonly JWKS?: string;
  readonly JWKS_URL?: string;
}

export interface IdentityConfig {
  readonly identity: IdentitySetting;
  /** `forward` (default): the origin gets the credential header as sent; `strip`: it never does. */
  readonly credentialToOrigin: "forward" | "strip";
}

export interface SettingProblem {
  readonly setting: keyof IdentityEnv;
  readonly message: string;
  /** false: the value is secret and not shown. */
  readonly echo: boolean;
}

/** A header name (RFC 9110 token), lowercase; never one the guard sets or drops itself. */
const HEADER_NAME = /^[a-z0-9!#$%&'*+.^_`|~-]{1,64}$/;
const RESERVED_HEADER =
  /^(x-guard-|x-forwarded-|cf-)|^(host|connection|te|upgrade|cookie|x-priority|x-request-timeout-ms)$/;

const identityKind = z
  .string()
  .default("header:x-api-key")
  .transform((value) => value.trim())
  .pipe(
    z.union(
      [
        z.literal("bearer"),
        z.literal("jwt"),
        z
          .string()
          .regex(/^header:/)
          .transform((value) => value.slice("header:".length).toLowerCase())
          .refine((name) => HEADER_NAME.test(name), "header:<name> needs a valid header name")
          .refine(
            (name) => !RESERVED_HEADER.test(name),
            "header:<name> cannot be a header the guard sets or reads itself",
          ),
      ],
      { error: "must be header:<name>, bearer or jwt" },
    ),
  );

const algorithmsSchema = z
  .string()
  .default("RS256,ES256")
  .transform((value) => value.split(",").map((alg) => alg.trim()))
  .pipe(z.array(z.enum(JWT_ALGORITHMS, "must list HS256, RS256 or ES256, comma-separated")).min(1));

const jwtSchema = z.object({
  JWT_ISSUER: z.string({ error: "is required with IDENTITY=jwt: the iss every token must carry" }).min(1),
  JWT_AUDIENCE: z.string({ error: "is required with IDENTITY=jwt: the aud every token must carry" }).min(1),
  JWT_TENANT_CLAIM: z.string().min(1).max(256).default("sub"),
  JWT_ALGORITHMS: algorithmsSchema,
  JWT_CLOCK_SKEW_S: z.coerce
    .number({ error: "must be a whole number of seconds" })
    .int("must be a whole number of seconds")
    .min(0, "must be at least 0")
    .max(300, "must be at most 300")
    .default(30),
  JWKS_URL: z
    .url("must be an absolute https URL")
    .refine((value) => /^https:/i.test(value), "must use https: keys fetched in clear text could be anyone's")
    .optional(),
});

const blank = (value: string | undefined) => (value?.trim() ? value : undefined);

function jwksSecret(raw: string): JwtKeys | string {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    return 'is not JSON (a JSON Web Key Set: {"keys": [...]})';
  }
  const parsed = parseJwks(json, true);
  if (parsed.kind === "invalid") return parsed.problem;
  if (parsed.refused.length > 0) return `has keys the guard cannot use: ${parsed.refused.join("; ")}`;
  return { kind: "set", keys: parsed.keys };
}

type Parsed =
  | { readonly ok: true; readonly config: IdentityConfig }
  | { readonly ok: false; readonly problems: SettingProblem[] };

function issuesOf(error: z.ZodError): SettingProblem[] {
  return error.issues.map((issue) => ({
    setting: String(issue.path[0]) as keyof IdentityEnv,
    message: issue.message,
    echo: true,
  }));
}

export function parseIdentityConfig(env: IdentityEnv): Parsed {
  const kind = identityKind.safeParse(blank(env.IDENTITY));
  const forward = z.enum(["forward", "strip"]).default("forward").safeParse(blank(env.CREDENTIAL_TO_ORIGIN));
  const problems: SettingProblem[] = [];
  if (!kind.success)
    problems.push({ setting: "IDENTITY", message: kind.error.issues[0]?.message ?? "is invalid", echo: true });
  if (!forward.success)
    problems.push({ setting: "CREDENTIAL_TO_ORIGIN", message: "must be forward or strip", echo: true });
  if (!kind.success || !forward.success) return { ok: false, problems };
  const credentialToOrigin = forward.data;
  if (kind.data === "bearer") return { ok: true, config: { identity: { kind: "bearer" }, credentialToOrigin } };
  if (kind.data !== "jwt")
    return { ok: true, config: { identity: { kind: "header", header: kind.data }, credentialToOrigin } };
  return jwtConfig(env, credentialToOrigin);
}

function jwtConfig(env: IdentityEnv, credentialToOrigin: IdentityConfig["credentialToOrigin"]): Parsed {
  const parsed = jwtSchema.safeParse({
    JWT_ISSUER: blank(env.JWT_ISSUER),
    JWT_AUDIENCE: blank(env.JWT_AUDIENCE),
    JWT_TENANT_CLAIM: blank(env.JWT_TENANT_CLAIM),
    JWT_ALGORITHMS: blank(env.JWT_ALGORITHMS),
    JWT_CLOCK_SKEW_S: blank(env.JWT_CLOCK_SKEW_S),
    JWKS_URL: blank(env.JWKS_URL),
  });
  const problems = parsed.success ? [] : issuesOf(parsed.error);
  const secret = blank(env.JWKS);
  const url = parsed.success ? parsed.data.JWKS_URL : undefined;
  let keys: JwtKeys | string;
  if (secret && blank(env.JWKS_URL)) keys = "and JWKS_URL are both set: give the keys one way";
  else if (secret) keys = jwksSecret(secret);
  else if (url) keys = { kind: "url", url: new URL(url) };
  else keys = "or JWKS_URL is required with IDENTITY=jwt";
  if (typeof keys === "string") problems.push({ setting: "JWKS", message: keys, echo: false });
  if (!parsed.success || typeof keys === "string") return { ok: false, problems };
  const data = parsed.data;
  const algorithms: readonly JwtAlgorithm[] = [...new Set(data.JWT_ALGORITHMS)];
  const jwt = {
    issuer: data.JWT_ISSUER,
    audience: data.JWT_AUDIENCE,
    tenantClaim: data.JWT_TENANT_CLAIM,
    algorithms,
    clockSkewS: data.JWT_CLOCK_SKEW_S,
  };
  return { ok: true, config: { identity: { kind: "jwt", jwt, keys }, credentialToOrigin } };
}
