import type { z } from "zod";
import { ProblemError } from "../problem";
import { badRequest, guardError } from "../guard-errors";

/** Admin bodies are small config documents; anything larger is refused before parsing. */
export const MAX_ADMIN_BODY_BYTES = 64 * 1024;

function tooLarge(maxBytes: number): ProblemError {
  return guardError("body_too_large", `the body exceeds ${maxBytes} bytes`);
}

/** Reads at most `maxBytes`, whatever Content-Length claims. */
async function readBounded(request: Request, maxBytes: number): Promise<string> {
  const declared = Number(request.headers.get("content-length") ?? "0");
  if (declared > maxBytes) throw tooLarge(maxBytes);
  if (!request.body) return "";
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw tooLarge(maxBytes);
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
}

export async function readJson(
  request: Request,
  options: { optional?: boolean; maxBytes?: number } = {},
): Promise<unknown> {
  const type = request.headers.get("content-type") ?? "";
  let text: string;
  try {
    text = await readBounded(request, options.maxBytes ?? MAX_ADMIN_BODY_BYTES);
  } catch (error) {
    if (error instanceof ProblemError) throw error;
    throw badRequest("the body is not valid UTF-8");
  }
  if (text.trim() === "") {
    if (options.optional) return undefined;
    throw badRequest("a JSON body is required");
  }
  if (!/^application\/(?:[\w.+-]+\+)?json\b/i.test(type)) {
    throw guardError("unsupported_media_type", `the body must be application/json (got '${type.slice(0, 100)}')`);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw badRequest("the body is not valid JSON");
  }
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let current = input;
  for (const key of path) {
    if (current === null || typeof current !== "object") return undefined;
    current = (current as Record<PropertyKey, unknown>)[key];
  }
  return current;
}

function echo(value: unknown): string {
  if (value === undefined) return "nothing";
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

export interface FieldError {
  readonly field: string;
  readonly message: string;
}

/** Each problem names its field and echoes the bad value, e.g. `rate: must be > 0 (got -1)`. */
export function fieldErrors(error: z.ZodError, input: unknown): FieldError[] {
  return error.issues.map((issue) => {
    if (issue.code === "unrecognized_keys") {
      const prefix = issue.path.length > 0 ? `${issue.path.join(".")}.` : "";
      // A key that is not a plain name (empty, spaces, quotes) is shown quoted, so it is visible.
      const name = (key: string) => (/^[A-Za-z_$][\w$]*$/.test(key) ? key : JSON.stringify(key));
      return {
        field: issue.keys.map((key) => `${prefix}${name(key)}`).join(", "),
        message: "unknown field",
      };
    }
    const field = issue.path.length > 0 ? issue.path.join(".") : "(body)";
    return { field, message: `${issue.message} (got ${echo(valueAt(input, issue.path))})` };
  });
}

export function parseOrThrow<T>(schema: z.ZodType<T>, input: unknown, what: string): T {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const errors = fieldErrors(result.error, input);
  throw badRequest(`invalid ${what}: ${errors.map((e) => `${e.field}: ${e.message}`).join("; ")}`, {
    errors,
  });
}
