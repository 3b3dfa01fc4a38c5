// `npm run recipes:check`: every recipe under recipes/ through the deploy checks and
// `wrangler deploy --dry-run` (scripts/deploy.mjs), so a recipe the README shows always builds.
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";

let failed = 0;
for (const recipe of readdirSync("recipes").sort()) {
  console.log(`\n== recipes/${recipe}`);
  const args = [
    "scripts/deploy.mjs",
    "--config",
    `recipes/${recipe}/wrangler.toml`,
    "--env",
    "production",
    "--dry-run",
  ];
  const run = spawnSync(process.execPath, args, { stdio: "inherit" });
  if (run.status !== 0) {
    console.error(`recipes/${recipe}: failed`);
    failed += 1;
  }
}
process.exit(failed === 0 ? 0 : 1);
