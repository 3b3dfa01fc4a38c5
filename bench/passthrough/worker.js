// Baseline for the steady scenario: a Worker that only forwards to the origin, run under the same
// `wrangler dev` as the guard. Its cost over direct is what the local proxy layers (wrangler's
// proxy worker, Miniflare's entry worker) add to any Worker; the guard's own cost is the rest.
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    return fetch(env.ORIGIN_URL + url.pathname + url.search, { method: request.method, headers: request.headers });
  },
};
