// Small JSON request helper for control-plane calls (guard admin API, origin control), not for load.
const CONTROL_TIMEOUT_MS = 10_000;

/** @returns {Promise<{status:number, body:any, text:string}>} never throws on HTTP status */
export async function jsonRequest(url, { method = "GET", headers = {}, body, timeoutMs = CONTROL_TIMEOUT_MS } = {}) {
  const res = await fetch(url, {
    method,
    headers: body === undefined ? headers : { "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: res.status, body: parsed, text };
}

/** Like jsonRequest, but a status outside 2xx is an error naming the call. */
export async function jsonOk(url, opts = {}) {
  const r = await jsonRequest(url, opts);
  if (r.status < 200 || r.status >= 300) {
    throw new Error(`${opts.method ?? "GET"} ${url} -> ${r.status}: ${r.text.slice(0, 300)}`);
  }
  return r.body;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
