import type { FullBehaviour } from "../admission/limits";
import type { Priority } from "../admission/priority";
import { DEFAULT_MAX_STREAM_MS, type RouteRule, type TenantConfig } from "./tenant-config";

/** What a tenant's route rules say about one request. */
export interface RouteClass {
  /** The index of the matching rule, or "default"; reported in analytics. */
  readonly route: string;
  readonly priority: Priority;
  readonly timeoutMs: number | undefined;
  readonly fullBehaviour: FullBehaviour;
  /**
   * A streamed route's limit on its body after the response headers (ms); null for every other
   * route, whose deadline bounds the whole response.
   */
  readonly maxStreamMs: number | null;
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
      maxStreamMs: hit ? maxStreamMsOf(hit.rule) : null,
    };
  };
}

/** How long a rule lets a streamed body run after its headers; null when the rule does not stream. */
export function maxStreamMsOf(rule: RouteRule): number | null {
  return rule.stream ? (rule.maxStreamMs ?? DEFAULT_MAX_STREAM_MS) : null;
}
