// `npm run deploy -- --env staging|production [--dry-run] [--secrets-file FILE] [--config FILE]`:
// checks the environment's settings (scripts/deploy-checks.mjs) as wrangler resolves them, then
// runs `wrangler deploy --env <env>` (`--dry-run`: builds without uploading, and lists the
// template values a real deploy would still refuse). Secrets cannot be read offline: wrangler
// itself refuses a deploy whose Worker lacks a secret of `secrets.required`, and a Worker's first
// deploy needs them in --secrets-file (checked here when given).
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { unstable_readConfig } from "wrangler";
import { blocking, deployFindings } from "./deploy-checks.mjs";

const { values } = parseArgs({
  options: {
    env: { type: "string" },
    config: { type: "string", default: "wrangler.toml" },
    "dry-run": { type: "boolean", default: false },
    "secrets-file": { type: "string" },
  },
});
if (!values.env) {
  console.error("usage: npm run deploy -- --env staging|production [--dry-run] [--secrets-file FILE]");
  process.exit(2);
}

/** A --secrets-file as wrangler reads it: JSON, or dotenv lines NAME=value. */
function readSecrets(path) {
  const text = readFileSync(path, "utf8");
  if (text.trimStart().startsWith("{")) return JSON.parse(text);
  const secrets = {};
  for (const line of text.split(/\r?\n/)) {
    const match = line.match(/^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/);
    if (match) secrets[match[1]] = match[2].replace(/^(["'])(.*)\1$/, "$2");
  }
  return secrets;
}

const dryRun = values["dry-run"];
const config = unstable_readConfig({ config: values.config, env: values.env });
const secrets = values["secrets-file"] ? readSecrets(values["secrets-file"]) : null;
const findings = deployFindings(config, secrets);
for (const { level, field, message } of findings) console.log(`${level.padEnd(7)} ${field} ${message}`);
const stop = blocking(findings, dryRun);
if (stop.length > 0) {
  console.error(
    `\nnot deploying ${config.name}: ${stop.length} setting(s) above to fix in ${values.config} [env.${values.env}]`,
  );
  process.exit(1);
}
const todo = findings.filter((finding) => finding.level === "todo").length;
if (dryRun && todo > 0) console.log(`\ndry run: ${todo} template value(s) above to replace before a real deploy`);
if (!dryRun && !secrets)
  console.log("secrets: wrangler refuses the deploy if one of secrets.required is not set on the Worker");

const args = ["deploy", "--config", values.config, "--env", values.env];
if (dryRun) args.push("--dry-run", "--outdir", `dist/${config.name}`);
if (values["secrets-file"]) args.push("--secrets-file", values["secrets-file"]);
// This Node, not whichever `node` is first on PATH: wrangler needs Node 22.
const wrangler = spawnSync(process.execPath, ["node_modules/wrangler/bin/wrangler.js", ...args], { stdio: "inherit" });
process.exit(wrangler.status ?? 1);
