// Baseline for the steady scenario: a Worker that only forwards to the origin, run under the same
// `wrangler dev` as the guard. Its cost over direct is what the local proxy layers (wrangler's
// proxy worker, Miniflare's entry worker) add to any Worker; the guard's own cost is the rest.
//
// FLOOR_PATH is the floor of any answer: a fixed 429 built without reading anything, so its CPU
// is what the runtime charges for a request that reaches a Worker at all (the matrix measures it
// beside the guard's shed path).
const FLOOR_PATH = "/__bench/floor";
const FLOOR_BODY = '{"type":"about:blank","title":"Too Many Requests","status":429,"reason":"floor"}';

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === FLOOR_PATH) {
      return new Response(FLOOR_BODY, {
        status: 429,
        headers: { "content-type": "application/problem+json", "retry-after": "1" },
      });
    }
    return fetch(env.ORIGIN_URL + url.pathname + url.search, { method: request.method, headers: request.headers });
  },
};
