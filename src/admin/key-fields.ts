import { z } from "zod";
import { apiKeySchema } from "../tenant/api-key-format";

/** Longest key name: a label for listings, not a document. */
export const MAX_KEY_NAME_LENGTH = 128;
/** The latest expiry accepted: the largest time a Date can hold. */
const MAX_EPOCH_MS = 8.64e15;

const keyNameSchema = z
  .string()
  .min(1, "must not be empty")
  .max(MAX_KEY_NAME_LENGTH, `must be at most ${MAX_KEY_NAME_LENGTH} characters`)
  .regex(/^[^\p{Cc}]+$/u, "must not contain control characters");

/**
 * Expiry as epoch milliseconds, in the future as of `now` (read once per admin call): a key
 * that is expired when it is registered could never be used.
 */
const expiresAtSchema = (now: number) =>
  z
    .number()
    .int("must be an integer (epoch milliseconds)")
    .max(MAX_EPOCH_MS, "must be a time a Date can hold")
    .refine((at) => at > now, "must be in the future (epoch milliseconds)");

/** The metadata both registration routes accept. */
const metadataFields = (now: number) => ({
  name: keyNameSchema.optional(),
  expiresAt: expiresAtSchema(now).optional(),
});

/** POST /keys: a generated key unless `key` is given. */
export const registerKeySchema = (now: number) =>
  z.strictObject({ key: apiKeySchema.optional(), ...metadataFields(now) }).optional();

/** One item of POST /keys:import: an existing key, always given. */
export const importItemSchema = (now: number) => z.strictObject({ key: apiKeySchema, ...metadataFields(now) });
export type ImportItem = z.infer<ReturnType<typeof importItemSchema>>;
