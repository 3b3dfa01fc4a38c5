/**
 * How many random inputs each property tries. The default keeps the unit tier at a few seconds;
 * for a longer hunt before a release, or after touching the admission core, run for example
 *   PROPERTY_RUNS=5000 npx vitest run --project unit
 * fast-check prints the seed and the shrunk counterexample of any failure, so a failure found
 * in a long run can be replayed with `{ seed, path }` in the property's options.
 */
const DEFAULT_RUNS = 200;

function readRuns(): number {
  // workers-types declares `process` loosely; the unit tier runs in Node, where it is real.
  const raw: unknown = process.env.PROPERTY_RUNS;
  if (raw === undefined || raw === "") return DEFAULT_RUNS;
  const runs = Number(raw);
  if (!Number.isSafeInteger(runs) || runs < 1) {
    throw new Error(`PROPERTY_RUNS must be a positive integer, got ${JSON.stringify(raw)}`);
  }
  return runs;
}

export const PROPERTY_RUNS = readRuns();

/** A test timeout that grows with the number of runs, so a long hunt is not cut short at 5 s. */
export const PROPERTY_TIMEOUT_MS = Math.max(5_000, PROPERTY_RUNS * 25);
