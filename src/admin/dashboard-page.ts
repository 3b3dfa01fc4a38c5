/**
 * The live dashboard: a page and its script, served by the Worker itself (no CDN). The page
 * carries no data; it asks for the admin token, then polls GET /__guard/overview with it, so
 * serving the page itself needs no auth. A strict Content-Security-Policy keeps it to its own
 * script and API.
 */
export const DASHBOARD_CSP =
  "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ingress guard</title>
<style>
  :root { --bg:#0f1419; --card:#1a2129; --text:#e6e6e6; --muted:#8a96a3; --ok:#3fb950; --warn:#d29922; --bad:#f85149; --line:#2d3742; }
  * { box-sizing: border-box; }
  [hidden] { display: none !important; }
  body { margin:0; font:14px/1.4 system-ui, sans-serif; background:var(--bg); color:var(--text); }
  header { display:flex; flex-wrap:wrap; gap:8px; align-items:center; justify-content:space-between; padding:12px 16px; border-bottom:1px solid var(--line); }
  h1 { font-size:16px; margin:0; }
  #status { color:var(--muted); font-size:12px; }
  form { display:flex; gap:8px; flex-wrap:wrap; padding:16px; }
  input { flex:1 1 220px; padding:8px; background:var(--card); color:var(--text); border:1px solid var(--line); border-radius:6px; }
  button { padding:8px 14px; border:0; border-radius:6px; background:#238636; color:#fff; cursor:pointer; }
  #error { color:var(--bad); padding:0 16px; }
  .grid { display:grid; grid-template-columns:repeat(auto-fill, minmax(300px, 1fr)); gap:12px; padding:16px; }
  #origin { padding-bottom:0; }
  .card { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:12px; }
  .card h2 { font-size:15px; margin:0 0 8px; word-break:break-all; }
  .row { display:flex; justify-content:space-between; gap:8px; }
  .muted { color:var(--muted); }
  .bar { height:8px; background:var(--line); border-radius:4px; overflow:hidden; margin:2px 0 8px; }
  .bar > div { height:100%; background:var(--ok); }
  .bar.warn > div { background:var(--warn); } .bar.bad > div { background:var(--bad); }
  canvas { width:100%; height:70px; display:block; margin-top:8px; }
  ul { margin:4px 0; padding-left:18px; }
  .legend span { margin-right:10px; font-size:12px; }
</style>
</head>
<body>
<header><h1>ingress guard</h1><span id="status">not connected</span></header>
<form id="login"><input id="token" type="password" autocomplete="current-password" placeholder="admin token (ADMIN_TOKEN)" aria-label="admin token"><button type="submit">Connect</button></form>
<div id="error" role="alert"></div>
<div id="origin" class="grid" aria-live="polite"></div>
<main id="tenants" class="grid" aria-live="polite"></main>
<script src="/__guard/dashboard.js"></script>
</body>
</html>
`;

export const DASHBOARD_JS = `"use strict";
(() => {
  const POLL_MS = 2000;
  const HISTORY = 150; // 5 minutes at one point per poll
  const $ = (id) => document.getElementById(id);
  const history = new Map(); // tenant -> [{ at, queued, shedRate }]
  const previous = new Map(); // tenant -> { at, shed }
  // The origin stage's own, apart from the tenants' maps: a tenant may be named "origin".
  let originHistory = []; // [{ at, limit, inFlight }]
  let originPrevious = null; // { at, shed }
  let token = sessionStorage.getItem("guard-token") || "";
  let timer = null;

  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    if (cls) node.className = cls;
    return node;
  }

  // \`fullIsGood\`: for tokens a full bar is health, for slots and queue it is pressure.
  function bar(value, max, fullIsGood) {
    const share = max > 0 ? Math.min(1, value / max) : value > 0 ? 1 : 0;
    const pressure = fullIsGood ? 1 - share : share;
    const outer = el("div", undefined, "bar" + (pressure >= 0.9 ? " bad" : pressure >= 0.6 ? " warn" : ""));
    const inner = el("div");
    inner.style.width = (share * 100).toFixed(1) + "%";
    outer.appendChild(inner);
    return outer;
  }

  function line(label, value) {
    const row = el("div", undefined, "row");
    row.appendChild(el("span", label, "muted"));
    row.appendChild(el("span", String(value)));
    return row;
  }

  function nonZero(record) {
    const list = el("ul");
    for (const [key, count] of Object.entries(record)) if (count > 0) list.appendChild(el("li", key + ": " + count));
    if (!list.childElementCount) list.appendChild(el("li", "none", "muted"));
    return list;
  }

  // \`series\`: [{ values, max, color }], each line scaled to its own max.
  function chart(series) {
    const canvas = el("canvas");
    canvas.width = 600; canvas.height = 140;
    const ctx = canvas.getContext("2d");
    if (!ctx || !series.length || series[0].values.length < 2) return canvas;
    const draw = ({ values, max, color }) => {
      ctx.strokeStyle = color; ctx.lineWidth = 3; ctx.beginPath();
      // The chart fills its width from the first polls on, and scrolls once it holds HISTORY points.
      const span = Math.max(values.length - 1, 1);
      values.forEach((v, i) => {
        const x = (i / span) * canvas.width;
        const y = canvas.height - 4 - (max > 0 ? v / max : 0) * (canvas.height - 8);
        if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
      });
      ctx.stroke();
    };
    series.forEach(draw);
    return canvas;
  }

  function legend(entries) {
    const node = el("div", undefined, "legend muted");
    for (const [label, color] of entries) node.appendChild(el("span", "— " + label)).style.color = color;
    return node;
  }

  function metricLine(label, value, metric) {
    const row = line(label, value);
    row.lastChild.dataset.metric = metric;
    return row;
  }

  function record(t, at) {
    const before = previous.get(t.tenant);
    const shedRate = before && at > before.at ? ((t.counters.shed - before.shed) * 1000) / (at - before.at) : 0;
    previous.set(t.tenant, { at, shed: t.counters.shed });
    const points = history.get(t.tenant) || [];
    points.push({ at, queued: t.state.queued, shedRate: Math.max(0, shedRate) });
    while (points.length > HISTORY) points.shift();
    history.set(t.tenant, points);
    return { points, shedRate: Math.max(0, shedRate) };
  }

  function card(t, at) {
    const { points, shedRate } = record(t, at);
    const limits = t.limits;
    const node = el("section", undefined, "card");
    node.dataset.tenant = t.tenant;
    node.appendChild(el("h2", t.tenant));
    node.appendChild(line("rate / burst", limits.rate + "/s / " + limits.burst));
    node.appendChild(line("tokens", t.state.tokens.toFixed(1)));
    node.appendChild(bar(t.state.tokens, limits.burst, true));
    node.appendChild(line("in flight", t.state.inFlight + " / " + limits.maxInFlight));
    node.appendChild(bar(t.state.inFlight, limits.maxInFlight));
    const queueRow = line("queued", t.state.queued + " / " + limits.maxQueue);
    queueRow.lastChild.dataset.metric = "queued";
    node.appendChild(queueRow);
    node.appendChild(bar(t.state.queued, limits.maxQueue));
    const admittedRow = line("admitted", t.counters.admitted);
    admittedRow.lastChild.dataset.metric = "admitted";
    node.appendChild(admittedRow);
    const shedRow = line("shed (now)", t.counters.shed + " (" + shedRate.toFixed(1) + "/s)");
    shedRow.lastChild.dataset.metric = "shed";
    node.appendChild(shedRow);
    node.appendChild(el("div", "shed by reason", "muted"));
    node.appendChild(nonZero(t.counters.shedByReason));
    node.appendChild(el("div", "shed by priority", "muted"));
    node.appendChild(nonZero(t.counters.shedByPriority));
    const shed = points.map((p) => p.shedRate);
    node.appendChild(
      chart([
        { values: points.map((p) => p.queued), max: Math.max(1, limits.maxQueue), color: "#58a6ff" },
        { values: shed, max: Math.max(1, ...shed), color: "#f85149" },
      ]),
    );
    node.appendChild(legend([["queue depth", "#58a6ff"], ["shed/s", "#f85149"]]));
    return node;
  }

  function recordOrigin(stats, at) {
    const before = originPrevious;
    const shedRate = before && at > before.at ? ((stats.counters.shed - before.shed) * 1000) / (at - before.at) : 0;
    originPrevious = { at, shed: stats.counters.shed };
    originHistory.push({ at, limit: stats.limit.effective, inFlight: stats.inFlight });
    while (originHistory.length > HISTORY) originHistory.shift();
    return Math.max(0, shedRate);
  }

  // The whole origin stage (totals over its shards), shown as the tenant cards are.
  function originCard(origin, at) {
    const stats = origin.stats;
    const limit = stats.limit;
    const shedRate = recordOrigin(stats, at);
    const node = el("section", undefined, "card");
    node.dataset.stage = "origin";
    node.appendChild(el("h2", "Origin"));
    node.appendChild(metricLine("limit in force", limit.effective, "origin-limit"));
    node.appendChild(line("ceiling / floor", limit.ceiling + " / " + limit.floor));
    node.appendChild(line("adaptive", limit.adaptive === null ? "off" : limit.adaptive.toFixed(1)));
    node.appendChild(line("origin's grant", limit.capacity === null ? "none" : limit.capacity));
    const lingering = stats.lingering > 0 ? " (" + stats.lingering + " lingering)" : "";
    node.appendChild(metricLine("in flight", stats.inFlight + " / " + limit.effective + lingering, "origin-in-flight"));
    node.appendChild(bar(stats.inFlight, limit.effective));
    const maxQueue = origin.config ? origin.config.maxQueue : 0;
    node.appendChild(metricLine("queued", stats.queued + " / " + maxQueue, "origin-queued"));
    node.appendChild(bar(stats.queued, maxQueue));
    const backoff = stats.backoffMs > 0 ? (stats.backoffMs / 1000).toFixed(1) + " s left" : "none";
    node.appendChild(metricLine("origin hold (503)", backoff, "origin-backoff"));
    node.appendChild(metricLine("admitted", stats.counters.admitted, "origin-admitted"));
    node.appendChild(
      metricLine("shed (now)", stats.counters.shed + " (" + shedRate.toFixed(1) + "/s)", "origin-shed"),
    );
    node.appendChild(el("div", "shed by cause", "muted"));
    node.appendChild(nonZero(stats.counters.shedByCause));
    // One scale for both lines, so in-flight reads against the limit it must stay under.
    const max = Math.max(1, ...originHistory.map((p) => Math.max(p.limit, p.inFlight)));
    node.appendChild(
      chart([
        { values: originHistory.map((p) => p.limit), max, color: "#d29922" },
        { values: originHistory.map((p) => p.inFlight), max, color: "#58a6ff" },
      ]),
    );
    node.appendChild(legend([["limit in force", "#d29922"], ["in flight", "#58a6ff"]]));
    return node;
  }

  function renderOrigin(origin, at) {
    const on = Boolean(origin && origin.stats);
    if (!on) {
      originHistory = [];
      originPrevious = null;
    }
    $("origin").replaceChildren(...(on ? [originCard(origin, at)] : []));
  }

  async function poll() {
    try {
      const response = await fetch("/__guard/overview", { headers: { authorization: "Bearer " + token } });
      if (response.status === 401) return refuse("The admin token was refused.");
      if (!response.ok) throw new Error("overview answered " + response.status);
      const data = await response.json();
      renderOrigin(data.origin, data.at);
      const main = $("tenants");
      main.replaceChildren(...data.tenants.map((t) => card(t, data.at)));
      if (!data.tenants.length) main.appendChild(el("p", "No tenants yet.", "muted"));
      $("status").textContent = "live, " + data.tenants.length + " tenant(s)" + (data.truncated ? " (first 200)" : "") + ", " + new Date(data.at).toLocaleTimeString();
      $("error").textContent = "";
      $("login").hidden = true;
    } catch (error) {
      $("status").textContent = "retrying: " + error.message;
    }
    timer = setTimeout(poll, POLL_MS);
  }

  function refuse(message) {
    clearTimeout(timer);
    sessionStorage.removeItem("guard-token");
    $("error").textContent = message;
    $("status").textContent = "not connected";
    $("login").hidden = false;
  }

  $("login").addEventListener("submit", (event) => {
    event.preventDefault();
    token = $("token").value.trim();
    sessionStorage.setItem("guard-token", token);
    clearTimeout(timer);
    poll();
  });
  if (token) poll();
})();
`;
