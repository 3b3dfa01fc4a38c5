import type { FullBehaviour } from "../admission/limits";
import type { Priority } from "../admission/priority";
import type { RouteRule, TenantConfig } from "./tenant-config";

/** What a tenant's route rules say about one request. */
export interface RouteClass {
  /** The index of the matching rule, or "default"; reported in analytics. */
  readonly route: string;
  readonly priority: Priority;
  readonly timeoutMs: number | undefined;
  readonly fullBehaviour: FullBehaviour;
}

interface CompiledRule {
  readonly method: string;
  readonly pattern: RegExp;
  readonly rule: RouteRule;
  readonly index: number;
}

export type RouteMatcher = (method: string, pathname: string) => RouteClass;

function compilePattern(path: string): RegExp {
  const source = path
    .split(/(\*|:[A-Za-z_][A-Za-z0-9_]*)/)
    .map((part) => {
      if (part === "*") return ".*";
      if (part.startsWith(":")) return "[^/]+";
      return part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    })
    .join("");
  return new RegExp(`^${source}$`);
}

/** Compiled once per config (the edge caches the matcher with the config), not per request. */
export function compileRoutes(config: TenantConfig): RouteMatcher {
  const rules: CompiledRule[] = config.routes.map((rule, index) => ({
    method: rule.method,
    pattern: compilePattern(rule.path),
    rule,
    index,
  }));
  return (method, pathname) => {
    const hit = rules.find(
      (candidate) => (candidate.method === "*" || candidate.method === method) && candidate.pattern.test(pathname),
    );
    return {
      route: hit ? `#${hit.index} ${hit.rule.method} ${hit.rule.path}` : "default",
      priority: hit?.rule.priority ?? "normal",
      timeoutMs: hit?.rule.timeoutMs ?? config.timeoutMs,
      fullBehaviour: hit?.rule.fullBehaviour ?? "evict-lowest",
    };
  };
}
