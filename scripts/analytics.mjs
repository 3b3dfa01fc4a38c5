// `npm run analytics -- [--since 1h] [--tenant T] [--query sheds|priority|wait|routes|all] [--json]`
//
// Reads the guard's shed analytics from the Workers Analytics Engine SQL API and prints tables.
// Credentials come from the environment: CLOUDFLARE_ACCOUNT_ID and CLOUDFLARE_API_TOKEN (a token
// with "Account Analytics: Read"). GUARD_ANALYTICS_DATASET overrides the dataset (default
// ingress_guard); CLOUDFLARE_API_BASE overrides the API's address (tests point it at a fake).
// Every count is weighted by _sample_interval: Analytics Engine samples, and the weights undo it.
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const TENANT = /^[a-z0-9](?:[a-z0-9._-]{0,62})$/;
const DATASET = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const UNITS = { m: "MINUTE", h: "HOUR", d: "DAY" };
const QUERIES = ["sheds", "priority", "wait", "routes"];

export class UsageError extends Error {}

/** `--since 90m` -> INTERVAL '90' MINUTE; anything else is refused rather than passed into SQL. */
export function sinceInterval(since) {
  const match = /^(\d{1,4})([mhd])$/.exec(since);
  if (!match) throw new UsageError(`--since must look like 30m, 6h or 7d (got ${JSON.stringify(since)})`);
  return `INTERVAL '${Number(match[1])}' ${UNITS[match[2]]}`;
}

function filters({ since, tenant }) {
  const where = [`timestamp > NOW() - ${sinceInterval(since)}`];
  if (tenant !== undefined) {
    if (!TENANT.test(tenant)) throw new UsageError(`--tenant must be a tenant name (got ${JSON.stringify(tenant)})`);
    where.push(`index1 = '${tenant}'`);
  }
  return where;
}

/** The SQL for one report. Values are validated above, never interpolated raw. */
export function buildQuery(name, { since = "1h", tenant, dataset = "ingress_guard" } = {}) {
  if (!DATASET.test(dataset)) throw new UsageError(`dataset must be an identifier (got ${JSON.stringify(dataset)})`);
  const where = filters({ since, tenant });
  const shed = [...where, "blob1 = 'shed'"].join(" AND ");
  const all = where.join(" AND ");
  switch (name) {
    case "sheds":
      return `SELECT toStartOfInterval(timestamp, INTERVAL '5' MINUTE) AS t, index1 AS tenant, blob2 AS reason, SUM(_sample_interval) AS shed FROM ${dataset} WHERE ${shed} GROUP BY t, tenant, reason ORDER BY t, shed DESC LIMIT 500 FORMAT JSON`;
    case "priority":
      return `SELECT blob3 AS priority, SUM(_sample_interval) AS requests, SUM(IF(blob1 = 'shed', _sample_interval, 0)) AS shed, SUM(IF(blob1 = 'shed', _sample_interval, 0)) / SUM(_sample_interval) AS shed_share FROM ${dataset} WHERE ${all} GROUP BY priority ORDER BY priority FORMAT JSON`;
    case "wait":
      return `SELECT index1 AS tenant, quantileExactWeighted(0.99)(double1, _sample_interval) AS p99_wait_ms, SUM(_sample_interval) AS admitted FROM ${dataset} WHERE ${[...where, "blob1 = 'admitted'"].join(" AND ")} GROUP BY tenant ORDER BY p99_wait_ms DESC LIMIT 100 FORMAT JSON`;
    case "routes":
      return `SELECT index1 AS tenant, blob4 AS route, SUM(_sample_interval) AS shed FROM ${dataset} WHERE ${shed} GROUP BY tenant, route ORDER BY shed DESC LIMIT 20 FORMAT JSON`;
    default:
      throw new UsageError(`--query must be one of ${[...QUERIES, "all"].join(", ")} (got ${JSON.stringify(name)})`);
  }
}

export function formatTable(rows) {
  if (!rows.length) return "(no rows)";
  const columns = Object.keys(rows[0]);
  const cell = (value) =>
    typeof value === "number" && !Number.isInteger(value) ? value.toFixed(3) : String(value ?? "");
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (values) =>
    values
      .map((v, i) => v.padEnd(widths[i]))
      .join("  ")
      .trimEnd();
  return [
    line(columns),
    line(widths.map((w) => "-".repeat(w))),
    ...rows.map((r) => line(columns.map((c) => cell(r[c])))),
  ].join("\n");
}

async function runQuery(sql, { accountId, token, base }) {
  const url = `${base.replace(/\/$/, "")}/client/v4/accounts/${encodeURIComponent(accountId)}/analytics_engine/sql`;
  let response;
  try {
    response = await fetch(url, {
      method: "POST",
      headers: { authorization: `Bearer ${token}` },
      body: sql,
      signal: AbortSignal.timeout(30_000),
    });
  } catch (error) {
    throw new Error(
      `could not reach the Analytics Engine SQL API at ${base}: ${error.cause?.message ?? error.message}`,
    );
  }
  const text = await response.text();
  if (!response.ok) throw new Error(`the SQL API answered ${response.status}: ${text.slice(0, 500)}`);
  try {
    return JSON.parse(text).data ?? [];
  } catch {
    throw new Error(`the SQL API answered something that is not JSON: ${text.slice(0, 200)}`);
  }
}

export async function main(argv, env = process.env, out = console.log) {
  const { values } = parseArgs({
    args: argv,
    options: {
      since: { type: "string", default: "1h" },
      tenant: { type: "string" },
      query: { type: "string", default: "all" },
      json: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    out("usage: npm run analytics -- [--since 1h] [--tenant T] [--query sheds|priority|wait|routes|all] [--json]");
    return 0;
  }
  const names = values.query === "all" ? QUERIES : [values.query];
  const dataset = env.GUARD_ANALYTICS_DATASET ?? "ingress_guard";
  const sqls = names.map((name) => [name, buildQuery(name, { since: values.since, tenant: values.tenant, dataset })]);
  const accountId = env.CLOUDFLARE_ACCOUNT_ID;
  const token = env.CLOUDFLARE_API_TOKEN;
  if (!accountId || !token) {
    throw new UsageError(
      "set CLOUDFLARE_ACCOUNT_ID and CLOUDFLARE_API_TOKEN (an API token with Account Analytics: Read)",
    );
  }
  const base = env.CLOUDFLARE_API_BASE ?? "https://api.cloudflare.com";
  for (const [name, sql] of sqls) {
    const rows = await runQuery(sql, { accountId, token, base });
    out(
      values.json
        ? JSON.stringify({ query: name, rows })
        : `\n${name} (last ${values.since}${values.tenant ? `, tenant ${values.tenant}` : ""})\n${formatTable(rows)}`,
    );
  }
  return 0;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error) => {
      console.error(`analytics: ${error.message}`);
      process.exit(error instanceof UsageError || error.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" ? 2 : 1);
    },
  );
}
