// The checks `npm run deploy` makes before `wrangler deploy`: a pure function over one
// environment's config as wrangler resolves it (unstable_readConfig), and the secrets file if
// one is given. Each finding is an "error" (this config cannot work), a "todo" (a template value
// still to be replaced: a real deploy refuses it, a dry run lists it) or a "warning".

const HINTS = ["wnam", "enam", "sam", "weur", "eeur", "apac", "oc", "afr", "me"];
const OBJECTS = [
  ["TENANT_GUARD", "TenantGuard"],
  ["ORIGIN_GUARD", "OriginGuard"],
  ["KEY_REGISTRY", "KeyRegistry"],
];
const TOKEN = /^[A-Za-z0-9._~+/=-]{16,}$/;
/** As src/origin-settings.ts checks it: the same bytes in every verifier. */
const SIGNING_SECRET = /^[\x21-\x7e]{32,1024}$/;

/** Reserved for documentation (RFC 2606, RFC 6761): a template's value, never a real host. */
export function isPlaceholderHost(host) {
  const name = host.toLowerCase().replace(/\.$/, "");
  return /(^|\.)example\.(com|net|org)$/.test(name) || /\.(example|test|invalid)$/.test(name);
}

/** Hosts a Worker cannot reach or that are this machine: loopback, private, link-local. */
export function isLocalHost(host) {
  const name = host.toLowerCase().replace(/^\[|\]$/g, "");
  if (name === "localhost" || name.endsWith(".localhost") || name.endsWith(".local")) return true;
  if (name === "::1" || name === "::" || /^f[cd]/.test(name) || name.startsWith("fe80:")) return true;
  const ip = name.match(/^(\d+)\.(\d+)\.\d+\.\d+$/);
  if (!ip) return false;
  const [a, b] = [Number(ip[1]), Number(ip[2])];
  return (
    a === 127 ||
    a === 10 ||
    a === 0 ||
    (a === 172 && b >= 16 && b <= 31) ||
    (a === 192 && b === 168) ||
    (a === 169 && b === 254) ||
    (a === 100 && b >= 64 && b <= 127)
  );
}

function routeHost(route) {
  const pattern = typeof route === "string" ? route : route.pattern;
  return pattern
    .replace(/^[a-z]+:\/\//i, "")
    .split("/")[0]
    .replace(/^\*\.?/, "");
}

function checkOrigin(config, add) {
  const hasService = (config.services ?? []).some((service) => service.binding === "ORIGIN");
  const raw = config.vars?.ORIGIN_URL;
  if (!raw) {
    if (!hasService)
      add("error", "ORIGIN_URL", "is not set (and no ORIGIN service binding): set it in this environment's vars");
    return;
  }
  if (hasService) return add("warning", "ORIGIN_URL", "is ignored: the ORIGIN service binding wins over it");
  let url;
  try {
    url = new URL(String(raw));
  } catch {
    return add("error", "ORIGIN_URL", `must be an absolute http(s) URL (got ${JSON.stringify(raw)})`);
  }
  if (!/^https?:$/.test(url.protocol))
    return add("error", "ORIGIN_URL", `must use http or https (got ${url.protocol})`);
  if (isLocalHost(url.hostname))
    return add("error", "ORIGIN_URL", `is ${url.hostname}: loopback and private addresses are local only (.dev.vars)`);
  if (isPlaceholderHost(url.hostname))
    add("todo", "ORIGIN_URL", `is still the template's ${url.hostname}: your API's origin`);
  if (url.protocol === "http:")
    add("warning", "ORIGIN_URL", "is plain http: the forwarded requests cross the internet unencrypted");
  const self = (config.routes ?? []).find((route) => route.custom_domain && routeHost(route) === url.hostname);
  if (self)
    add(
      "error",
      "ORIGIN_URL",
      `is the guard's own custom domain ${url.hostname}: a custom domain has no origin behind it, the guard would call itself`,
    );
}

function checkRoutes(config, add) {
  const routes = [...(config.routes ?? []), ...(config.route ? [config.route] : [])];
  if (routes.length === 0) add("error", "routes", "none: with workers_dev off the guard would be reachable nowhere");
  for (const route of routes)
    if (isPlaceholderHost(routeHost(route)))
      add("todo", "routes", `${routeHost(route)} is the template's: the hostname clients call`);
  if (config.workers_dev !== false) add("error", "workers_dev", "must be false: *.workers.dev would bypass the guard");
  if (config.preview_urls !== false) add("error", "preview_urls", "must be false: preview URLs would bypass the guard");
}

function checkBindings(config, add) {
  const objects = config.durable_objects?.bindings ?? [];
  for (const [name, className] of OBJECTS)
    if (!objects.some((binding) => binding.name === name && binding.class_name === className))
      add("error", name, `Durable Object binding (class ${className}) missing: environments do not inherit bindings`);
  const kv = (config.kv_namespaces ?? []).find((binding) => binding.binding === "TENANTS");
  if (!kv) add("error", "TENANTS", "KV binding missing: environments do not inherit bindings");
  else if (kv.id !== undefined && !/^[0-9a-f]{32}$/.test(kv.id))
    add("error", "TENANTS", `id ${JSON.stringify(kv.id)} is not a namespace id`);
  else if (kv.id !== undefined && /^0+$/.test(kv.id))
    add("error", "TENANTS", "id is a placeholder: remove it, the first deploy creates the namespace");
  if (!(config.analytics_engine_datasets ?? []).some((binding) => binding.binding === "ANALYTICS"))
    add("error", "ANALYTICS", "Analytics Engine binding missing: environments do not inherit bindings");
}

function checkVars(config, add) {
  const hint = config.vars?.DO_LOCATION_HINT;
  if (!hint)
    add(
      "todo",
      "DO_LOCATION_HINT",
      `unset: the region nearest your origin (${HINTS.join(" ")}); objects never move once created`,
    );
  else if (!HINTS.includes(hint))
    add("error", "DO_LOCATION_HINT", `must be one of ${HINTS.join(" ")} (got ${JSON.stringify(hint)})`);
}

function checkSecrets(config, secretsFile, add) {
  const required = config.secrets?.required ?? [];
  if (!required.includes("ADMIN_TOKEN"))
    add("error", "secrets.required", "must list ADMIN_TOKEN, so that wrangler refuses a deploy whose Worker lacks it");
  if (!secretsFile) return;
  for (const name of required) if (!secretsFile[name]) add("error", name, "is required but not in the secrets file");
  const token = secretsFile.ADMIN_TOKEN;
  if (token && !TOKEN.test(token)) add("error", "ADMIN_TOKEN", "must be at least 16 characters of A-Za-z0-9._~+/=-");
  const signing = secretsFile.ORIGIN_SIGNING_SECRET;
  if (signing && !SIGNING_SECRET.test(signing))
    add("error", "ORIGIN_SIGNING_SECRET", "must be 32 to 1024 printable ASCII characters without spaces");
}

/** Findings for one environment's resolved config; `secretsFile` is the parsed --secrets-file. */
export function deployFindings(config, secretsFile = null) {
  const findings = [];
  const add = (level, field, message) => findings.push({ level, field, message });
  checkOrigin(config, add);
  checkRoutes(config, add);
  checkBindings(config, add);
  checkVars(config, add);
  checkSecrets(config, secretsFile, add);
  return findings;
}

/** Whether to go on: errors always stop; template values stop a real deploy, not a dry run. */
export function blocking(findings, dryRun) {
  return findings.filter((finding) => finding.level === "error" || (!dryRun && finding.level === "todo"));
}
