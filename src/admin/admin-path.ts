/**
 * Whether a request path belongs to the admin API, decided once on a normalised form so that no
 * spelling of the prefix reaches the origin: percent-escapes decoded (up to three layers, for
 * double encoding), case folded, backslashes read as slashes, repeated slashes collapsed.
 * Hono itself decodes escapes before routing, so `/%5F%5Fguard/x` is served by the admin routes;
 * other spellings that the admin routes do not match get the admin API's 404.
 */
export const ADMIN_PREFIX = "/__guard";

function decodeLayers(path: string): string {
  let current = path;
  for (let layer = 0; layer < 3; layer += 1) {
    let decoded: string;
    try {
      decoded = decodeURIComponent(current);
    } catch {
      return current;
    }
    if (decoded === current) return current;
    current = decoded;
  }
  return current;
}

export function isAdminPath(pathname: string): boolean {
  const normalised = decodeLayers(pathname)
    .toLowerCase()
    .replace(/\\/g, "/")
    .replace(/\/{2,}/g, "/");
  return normalised === ADMIN_PREFIX || normalised.startsWith(`${ADMIN_PREFIX}/`);
}
