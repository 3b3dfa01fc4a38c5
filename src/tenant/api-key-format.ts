import { z } from "zod";

/**
 * What an API key can look like: the admin API registers nothing else, so a request whose key
 * is longer or wider than this cannot belong to anyone and is treated as unknown before any
 * lookup (no cache entry, no KV read). One definition for both sides.
 */
export const API_KEY_MIN_LENGTH = 16;
export const API_KEY_MAX_LENGTH = 256;
/** The alphabet of every secret the guard reads from a header: API keys and the admin token. */
export const TOKEN_CHARS = /^[A-Za-z0-9._~+/=-]+$/;
export const TOKEN_CHARS_MESSAGE = "may only contain A-Z a-z 0-9 . _ ~ + / = -";
const API_KEY_CHARS = TOKEN_CHARS;

export const apiKeySchema = z
  .string()
  .min(API_KEY_MIN_LENGTH, `must be at least ${API_KEY_MIN_LENGTH} characters`)
  .max(API_KEY_MAX_LENGTH, `must be at most ${API_KEY_MAX_LENGTH} characters`)
  .regex(API_KEY_CHARS, TOKEN_CHARS_MESSAGE);

export function mayBeApiKey(value: string): boolean {
  return value.length >= API_KEY_MIN_LENGTH && value.length <= API_KEY_MAX_LENGTH && API_KEY_CHARS.test(value);
}
