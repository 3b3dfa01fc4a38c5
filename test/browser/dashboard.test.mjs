// Browser test of the live dashboard: Debian's Chromium (no browser download), driven by
// playwright-core, against the guard under `wrangler dev` in front of the lab's origin, with load
// from this process. Run with `npm run test:browser`; CHROMIUM_PATH overrides /usr/bin/chromium.
// It writes docs/dashboard.png and docs/dashboard-phone.png: the dashboard under load, with the
// origin stage on.
import assert from "node:assert/strict";
import { existsSync, mkdirSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { stopAll } from "../../bench/children.mjs";
import { startGuard } from "../../bench/guard.mjs";
import { createOrigin } from "../../bench/origin.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const TOKEN = "browser-test-admin-token-0123456789";
const TENANT = "dashboard-demo";
const KEY = "dashboard-demo-key-0123456789";
const ORIGIN_MAX_IN_FLIGHT = 8;
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
// Flags this machine needs: no sandbox as root, and no background calls to a closed network.
const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

let origin;
let guard;
let browser;

async function admin(method, urlPath, body) {
  const response = await fetch(`${guard.url}/__guard${urlPath}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  assert.ok(
    response.status < 300 || response.status === 409,
    `${method} ${urlPath}: ${response.status} ${await response.text()}`,
  );
}

/** Open-loop load for `ms`: one request every `everyMs`, bounded in count; returns the statuses. */
async function load(ms, everyMs) {
  const pending = [];
  const end = Date.now() + ms;
  for (let i = 0; Date.now() < end && i < 2_000; i += 1) {
    pending.push(
      fetch(`${guard.url}/api/thing`, { headers: { "x-api-key": KEY } }).then(
        (r) => r.arrayBuffer().then(() => r.status),
        () => 0,
      ),
    );
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
  return Promise.all(pending);
}

before(async () => {
  assert.ok(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM}: apt-get install chromium, or set CHROMIUM_PATH`);
  origin = createOrigin({ concurrency: 2, serviceMs: 150, jitter: 0.1 });
  const originPort = await origin.listen(0);
  guard = await startGuard({
    root,
    originUrl: `http://127.0.0.1:${originPort}`,
    adminToken: TOKEN,
    logPath: path.join(os.tmpdir(), "guard-browser-test.log"),
  });
  await admin("PUT", `/tenants/${TENANT}`, { rate: 20, burst: 10, maxInFlight: 2, maxQueue: 6, maxWaitMs: 800 });
  await admin("POST", `/tenants/${TENANT}/keys`, { key: KEY });
  await admin("PUT", "/origin", { maxInFlight: ORIGIN_MAX_IN_FLIGHT });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
});

after(async () => {
  await browser?.close();
  await guard?.stop();
  await origin?.close();
  await stopAll();
});

test("refuses a wrong token and shows no data", async () => {
  const page = await browser.newPage();
  await page.goto(`${guard.url}/__guard/dashboard`);
  await page.fill("#token", "not-the-admin-token-0000");
  await page.click("button[type=submit]");
  await page.waitForFunction(() => document.getElementById("error")?.textContent?.includes("refused"), null, {
    timeout: 10_000,
  });
  assert.equal(await page.locator("section.card").count(), 0);
  await page.close();
});

test("shows the origin stage's card above the tenants, with its limit in force", async () => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await page.goto(`${guard.url}/__guard/dashboard`);
  await page.fill("#token", TOKEN);
  await page.click("button[type=submit]");
  const card = page.locator('section.card[data-stage="origin"]');
  await card.waitFor({ timeout: 15_000 });
  await page.locator(`section.card[data-tenant="${TENANT}"]`).waitFor({ timeout: 15_000 });
  const limit = Number(await card.locator('[data-metric="origin-limit"]').textContent());
  assert.ok(
    Number.isInteger(limit) && limit >= 1 && limit <= ORIGIN_MAX_IN_FLIGHT,
    `the limit in force is a number within the ceiling (${limit})`,
  );
  assert.match(String(await card.locator('[data-metric="origin-in-flight"]').textContent()), /^\d+ \/ \d+/);
  const originFirst = await page.evaluate(
    ([tenant]) => {
      const origin = document.querySelector('section[data-stage="origin"]');
      const tenantCard = document.querySelector(`section[data-tenant="${tenant}"]`);
      return Boolean(
        origin && tenantCard && origin.compareDocumentPosition(tenantCard) & Node.DOCUMENT_POSITION_FOLLOWING,
      );
    },
    [TENANT],
  );
  assert.ok(originFirst, "the origin card comes before the tenant cards");
  await page.close();
});

test("renders the tenant and its numbers change as load changes", async () => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await page.goto(`${guard.url}/__guard/dashboard`);
  await page.fill("#token", TOKEN);
  await page.click("button[type=submit]");
  const card = page.locator(`section.card[data-tenant="${TENANT}"]`);
  await card.waitFor({ timeout: 15_000 });
  const admittedBefore = Number(await card.locator('[data-metric="admitted"]').textContent());

  const statuses = await load(6_000, 15);
  assert.ok(statuses.includes(200), "some requests were admitted");
  assert.ok(statuses.includes(503) || statuses.includes(429), "the load was enough to shed");

  await page.waitForFunction(
    ([tenant, before]) => {
      const admitted = document.querySelector(`section[data-tenant="${tenant}"] [data-metric="admitted"]`);
      const shed = document.querySelector(`section[data-tenant="${tenant}"] [data-metric="shed"]`);
      return Number(admitted?.textContent) > before && !String(shed?.textContent).startsWith("0 ");
    },
    [TENANT, admittedBefore],
    { timeout: 15_000 },
  );
  mkdirSync(path.join(root, "docs"), { recursive: true });
  // Let a few more polls land so the chart shows the load, then take the pictures mid-load.
  const during = load(9_000, 12);
  await new Promise((resolve) => setTimeout(resolve, 8_000));
  assert.equal(await page.locator("#login").isVisible(), false, "the token form hides once connected");
  const originAdmitted = Number(
    await page.locator('section[data-stage="origin"] [data-metric="origin-admitted"]').textContent(),
  );
  assert.ok(originAdmitted > 0, "the origin card counts the admissions the load made");
  await page.screenshot({ path: path.join(root, "docs/dashboard.png"), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: path.join(root, "docs/dashboard-phone.png") });
  const phoneWidth = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(phoneWidth <= 390, `no sideways scrolling on a phone (page is ${phoneWidth}px wide)`);
  await during;
  await page.close();
});
