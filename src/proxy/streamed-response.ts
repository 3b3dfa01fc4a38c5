/**
 * Keeps a streamed response streamed on its way to the client. Miniflare (`wrangler dev`)
 * imitates the edge's compression: a response with a compressible type (`text/plain`, JSON, or
 * none at all) and no `Content-Encoding` is gzipped for a client that accepts gzip, and its
 * encoder does not flush per chunk, so an event feed written 200 ms apart arrived in one piece at
 * the end (platform.md §11). A response that already names its encoding is passed as it is, so
 * the guard names `identity` ("no encoding") on what the origin left unencoded: on a streamed
 * route, and on every `text/event-stream`, which only makes sense streamed. What the origin
 * compressed itself is left alone (it chose its own flushing).
 */
export function keepStreamed(headers: Headers, streamedRoute: boolean): void {
  if (headers.has("content-encoding")) return;
  const type = headers.get("content-type")?.split(";")[0]?.trim().toLowerCase();
  if (streamedRoute || type === "text/event-stream") headers.set("content-encoding", "identity");
}
