// Types of scripts/deploy-checks.mjs, for the tests that import it.
export interface Finding {
  readonly level: "error" | "todo" | "warning";
  readonly field: string;
  readonly message: string;
}
export function isPlaceholderHost(host: string): boolean;
export function isLocalHost(host: string): boolean;
export function deployFindings(config: Record<string, unknown>, secretsFile?: Record<string, string> | null): Finding[];
export function blocking(findings: readonly Finding[], dryRun: boolean): Finding[];
