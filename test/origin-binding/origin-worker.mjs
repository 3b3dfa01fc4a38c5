// The API Worker behind the guard's ORIGIN service binding in the origin-binding tests: it answers
// with what it received (method, URL, headers), so a test reads through the guard's response what
// the guard sent. /slow/* answers after 2 s, or never once the guard aborts the call.
export default {
  async fetch(request) {
    const url = new URL(request.url);
    if (url.pathname.startsWith("/slow/")) await scheduler.wait(2_000);
    // In the body: the guard drops the origin's x-guard-* response headers on their way out.
    return Response.json({
      method: request.method,
      url: request.url,
      headers: Object.fromEntries(request.headers),
    });
  },
};
