// Types of scripts/analytics.mjs, for the tests that import it.
export class UsageError extends Error {}
export function sinceInterval(since: string): string;
export function buildQuery(name: string, options?: { since?: string; tenant?: string; dataset?: string }): string;
export function formatTable(rows: Array<Record<string, unknown>>): string;
export function main(
  argv: string[],
  env?: Record<string, string | undefined>,
  out?: (line: string) => void,
): Promise<number>;
