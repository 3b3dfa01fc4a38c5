/**
 * One normalised path per request, decided before anything reads the path: the admin-or-proxy
 * choice, route rules and the URL forwarded to the origin all use it, so no spelling of a path
 * can meet one rule and reach the origin as another.
 * - percent-encoded unreserved characters (A-Z a-z 0-9 - . _ ~) are decoded, other escapes kept
 *   (hex in upper case);
 * - repeated slashes collapse, `.` and `..` segments are resolved (never above the root);
 * - an encoded `/` or `\`, a raw `\`, a NUL, or a malformed escape is refused: an origin or
 *   framework may read them as separators, the guard cannot tell which;
 * - a first segment that spells the admin prefix otherwise than exactly (`__guard;x`,
 *   `__guard.`, `__guard%20`) is refused, so the admin API is either matched or refused.
 */
/** The admin API's prefix: never forwarded, in any spelling. */
export const ADMIN_PREFIX = "/__guard";

export type PathVerdict =
  | { readonly kind: "admin"; readonly path: string }
  | { readonly kind: "proxy"; readonly path: string }
  | { readonly kind: "refused"; readonly detail: string };

const UNRESERVED = /[A-Za-z0-9\-._~]/;
const ADMIN_SEGMENT = ADMIN_PREFIX.slice(1);
/** The prefix followed by anything a name could not go on with (`__guardian` is another name). */
const DISGUISED_ADMIN = new RegExp(`^${ADMIN_SEGMENT}(?:$|[^a-z0-9_-])`);

function decodeUnreserved(path: string): string | null {
  let out = "";
  for (let i = 0; i < path.length; i += 1) {
    const char = path[i] as string;
    if (char !== "%") {
      out += char;
      continue;
    }
    const hex = path.slice(i + 1, i + 3);
    if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return null;
    const decoded = String.fromCharCode(Number.parseInt(hex, 16));
    out += UNRESERVED.test(decoded) ? decoded : `%${hex.toUpperCase()}`;
    i += 2;
  }
  return out;
}

function resolveSegments(path: string): string {
  const segments: string[] = [];
  const parts = path.split("/").filter((part) => part !== "");
  for (const part of parts) {
    if (part === ".") continue;
    if (part === "..") segments.pop();
    else segments.push(part);
  }
  const trailing = path.endsWith("/") || path.endsWith("/.") || path.endsWith("/..");
  const joined = `/${segments.join("/")}`;
  return trailing && segments.length > 0 ? `${joined}/` : joined;
}

export function normalisePath(rawPath: string): PathVerdict {
  if (/%2f|%5c|%00|\\/i.test(rawPath)) {
    return { kind: "refused", detail: "the path holds an encoded '/' or '\\', a '\\' or a NUL" };
  }
  const decoded = decodeUnreserved(rawPath);
  if (decoded === null) return { kind: "refused", detail: "the path holds a malformed percent-escape" };
  const path = resolveSegments(decoded);
  const first = (path.split("/")[1] ?? "").toLowerCase();
  if (first === ADMIN_SEGMENT) return { kind: "admin", path };
  if (DISGUISED_ADMIN.test(first) || DISGUISED_ADMIN.test(decodeLoosely(first))) {
    return { kind: "refused", detail: `the path spells the admin prefix ${ADMIN_PREFIX} otherwise than exactly` };
  }
  return { kind: "proxy", path };
}

/** Any escape decoded (up to three layers), for spotting a disguised admin prefix only. */
function decodeLoosely(segment: string): string {
  let current = segment;
  for (let layer = 0; layer < 3; layer += 1) {
    try {
      const next = decodeURIComponent(current);
      if (next === current) break;
      current = next;
    } catch {
      break;
    }
  }
  return current.toLowerCase();
}
