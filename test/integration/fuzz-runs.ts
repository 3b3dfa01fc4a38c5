import { env } from "cloudflare:workers";

/**
 * How many inputs each fuzz property sends through the real Worker. The default keeps the
 * workerd tier under a minute; for a longer hunt: `FUZZ_RUNS=20000 npm test`.
 */
const DEFAULT_RUNS = 1_000;

function readRuns(): number {
  const raw = (env as unknown as { FUZZ_RUNS?: string }).FUZZ_RUNS ?? "";
  if (raw === "") return DEFAULT_RUNS;
  const runs = Number(raw);
  if (!Number.isSafeInteger(runs) || runs < 1)
    throw new Error(`FUZZ_RUNS must be a positive integer, got ${JSON.stringify(raw)}`);
  return runs;
}

export const FUZZ_RUNS = readRuns();
export const FUZZ_TIMEOUT_MS = Math.max(60_000, FUZZ_RUNS * 60);
