import { spawn } from "node:child_process";
import { type Server, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { buildQuery } from "../../scripts/analytics.mjs";

interface Received {
  readonly path: string;
  readonly authorization: string | undefined;
  readonly sql: string;
}

/** A local fake of the Analytics Engine SQL API: records what it is sent, answers JSON rows. */
async function fakeSqlApi(answer: (sql: string) => { status: number; body: string }) {
  const received: Received[] = [];
  const server: Server = createServer((request, response) => {
    let sql = "";
    request.on("data", (chunk: Buffer) => (sql += chunk.toString()));
    request.on("end", () => {
      received.push({ path: request.url ?? "", authorization: request.headers.authorization, sql });
      const { status, body } = answer(sql);
      response.writeHead(status, { "content-type": "application/json" }).end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    received,
    base: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function runCli(args: string[], env: Record<string, string>) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, ["scripts/analytics.mjs", ...args], {
      env: { PATH: process.env.PATH ?? "", ...env },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill(), 20_000);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

let close: (() => Promise<void>) | undefined;
afterEach(async () => close?.());

const ROWS = JSON.stringify({ meta: [], data: [{ tenant: "acme", reason: "queue_full", shed: 42 }], rows: 1 });

describe("npm run analytics", () => {
  it("sends weighted SQL for the tenant and window to the account's SQL endpoint, and prints a table", async () => {
    const api = await fakeSqlApi(() => ({ status: 200, body: ROWS }));
    close = api.close;
    const result = await runCli(["--since", "6h", "--tenant", "acme", "--query", "sheds"], {
      CLOUDFLARE_ACCOUNT_ID: "acct123",
      CLOUDFLARE_API_TOKEN: "tok",
      CLOUDFLARE_API_BASE: api.base,
    });
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(api.received).toHaveLength(1);
    const [sent] = api.received;
    expect(sent!.path).toBe("/client/v4/accounts/acct123/analytics_engine/sql");
    expect(sent!.authorization).toBe("Bearer tok");
    expect(sent!.sql).toContain("FROM ingress_guard");
    expect(sent!.sql).toContain("SUM(_sample_interval)");
    expect(sent!.sql).toContain("timestamp > NOW() - INTERVAL '6' HOUR");
    expect(sent!.sql).toContain("index1 = 'acme'");
    expect(sent!.sql).toContain("blob1 = 'shed'");
    expect(result.stdout).toMatch(/tenant\s+reason\s+shed/);
    expect(result.stdout).toMatch(/acme\s+queue_full\s+42/);
  });

  it("runs all four reports by default", async () => {
    const api = await fakeSqlApi(() => ({ status: 200, body: ROWS }));
    close = api.close;
    const result = await runCli([], {
      CLOUDFLARE_ACCOUNT_ID: "a",
      CLOUDFLARE_API_TOKEN: "t",
      CLOUDFLARE_API_BASE: api.base,
    });
    expect(result.code).toBe(0);
    const sqls = api.received.map((r) => r.sql);
    expect(sqls).toHaveLength(4);
    expect(sqls[1]).toContain("blob3 AS priority");
    expect(sqls[2]).toContain("quantileExactWeighted(0.99)(double1, _sample_interval)");
    expect(sqls[3]).toContain("blob4 AS route");
  });

  it("says which credentials are missing, before sending anything", async () => {
    const result = await runCli(["--query", "sheds"], {});
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("CLOUDFLARE_ACCOUNT_ID and CLOUDFLARE_API_TOKEN");
  });

  it("reports the API's error status and message", async () => {
    const api = await fakeSqlApi(() => ({ status: 403, body: '{"errors":[{"message":"Authentication error"}]}' }));
    close = api.close;
    const result = await runCli(["--query", "wait"], {
      CLOUDFLARE_ACCOUNT_ID: "a",
      CLOUDFLARE_API_TOKEN: "bad",
      CLOUDFLARE_API_BASE: api.base,
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("the SQL API answered 403");
    expect(result.stderr).toContain("Authentication error");
  });

  it.each([
    [["--tenant", "x' OR 1=1 --"], "--tenant"],
    [["--since", "1h; DROP"], "--since"],
    [["--query", "everything"], "--query"],
  ])("refuses %j without building any SQL from it", async (args, flag) => {
    const result = await runCli(args, {
      CLOUDFLARE_ACCOUNT_ID: "a",
      CLOUDFLARE_API_TOKEN: "t",
      CLOUDFLARE_API_BASE: "http://127.0.0.1:9",
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(flag);
  });

  it("builds the SQL from validated values only", () => {
    expect(() => buildQuery("sheds", { tenant: "acme'" })).toThrow(/--tenant/);
    expect(buildQuery("routes", { since: "7d" })).toContain("INTERVAL '7' DAY");
  });
});
