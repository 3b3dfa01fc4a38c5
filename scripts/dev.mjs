// `npm run dev`: the guard under `wrangler dev` in front of the demo origin, with a demo tenant
// already configured, so a newcomer's curl is admitted or shed without editing any file.
// Ports: guard 8787, demo origin 8788 (override with GUARD_PORT / ORIGIN_PORT).
// Ctrl-C stops both. State lives in .wrangler/state, as with a plain `wrangler dev`.
import { spawn } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";

const guardPort = Number(process.env.GUARD_PORT ?? 8787);
const originPort = Number(process.env.ORIGIN_PORT ?? 8788);
const adminToken = process.env.ADMIN_TOKEN ?? "dev-admin-token-change-me";
const guard = `http://127.0.0.1:${guardPort}`;
const demo = {
  tenant: "demo",
  key: "demo-key-0123456789",
  limits: {
    rate: 5,
    burst: 10,
    maxInFlight: 4,
    maxQueue: 8,
    maxWaitMs: 1000,
    maxClientPriority: "high",
    // The demo origin's /stream/* answers stream (bench/origin.mjs): their deadline is for the headers.
    routes: [{ method: "GET", path: "/stream/*", stream: true, timeoutMs: 2000, maxStreamMs: 60000 }],
  },
};

const children = [];
function start(command, args, env = {}) {
  const child = spawn(command, args, { stdio: "inherit", env: { ...process.env, ...env } });
  children.push(child);
  child.on("exit", (code) => {
    console.error(`${command} exited (${code}); stopping`);
    stopAll(code ?? 1);
  });
  return child;
}

function stopAll(code) {
  for (const child of children) if (child.exitCode === null) child.kill("SIGTERM");
  process.exit(code);
}
process.on("SIGINT", () => stopAll(0));
process.on("SIGTERM", () => stopAll(0));

start(process.execPath, [
  "bench/origin.mjs",
  "--port",
  String(originPort),
  "--concurrency",
  "4",
  "--service-ms",
  "100",
]);
start(
  "node_modules/.bin/wrangler",
  [
    "dev",
    "--port",
    String(guardPort),
    "--ip",
    "127.0.0.1",
    "--var",
    `ORIGIN_URL:http://127.0.0.1:${originPort}`,
    "--var",
    `ADMIN_TOKEN:${adminToken}`,
    // Optional and undeclared, so wrangler would not load it from .dev.vars: passed on when set,
    // to see signed requests arrive at the demo origin (README "Signed origin").
    ...(process.env.ORIGIN_SIGNING_SECRET
      ? ["--var", `ORIGIN_SIGNING_SECRET:${process.env.ORIGIN_SIGNING_SECRET}`]
      : []),
  ],
  // ADMIN_TOKEN in the environment too: wrangler reads declared secrets from it when there is no
  // .dev.vars, and warns that a required secret is missing otherwise.
  { CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false", ADMIN_TOKEN: adminToken },
);

async function adminCall(method, path, body) {
  const response = await fetch(`${guard}/__guard${path}`, {
    method,
    headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return response.status;
}

for (let attempt = 0; attempt < 120; attempt += 1) {
  try {
    if ((await adminCall("GET", "/tenants")) === 200) break;
  } catch {
    // not listening yet
  }
  await sleep(500);
}
await adminCall("PUT", `/tenants/${demo.tenant}`, demo.limits);
// The origin stage, adaptive between 2 and 8 in flight: the demo origin serves 4 at once.
const demoOrigin = { maxInFlight: 8, minInFlight: 2 };
await adminCall("PUT", "/origin", demoOrigin);
const keyStatus = await adminCall("POST", `/tenants/${demo.tenant}/keys`, { key: demo.key });
console.log(`
  ingress guard  ${guard}  ->  demo origin http://127.0.0.1:${originPort}
  tenant '${demo.tenant}' (${JSON.stringify(demo.limits)}), key ${demo.key}${keyStatus === 409 ? " (already registered)" : ""}

  curl -i -H 'x-api-key: ${demo.key}' ${guard}/hello
  for i in $(seq 30); do curl -s -o /dev/null -w '%{http_code} ' -H 'x-api-key: ${demo.key}' ${guard}/hello & done; wait; echo
  curl -N --compressed -H 'x-api-key: ${demo.key}' ${guard}/stream/text     (10 lines 200 ms apart, streamed)
  curl -s -H 'authorization: Bearer ${adminToken}' ${guard}/__guard/tenants/${demo.tenant}
  curl -s -H 'authorization: Bearer ${adminToken}' ${guard}/__guard/origin     (origin stage: ${JSON.stringify(demoOrigin)})

  live dashboard: ${guard}/__guard/dashboard  (token: ${adminToken})
`);
