// Client for the guard's admin API (/__guard/...), as the contract in the issue describes it.
import { randomBytes } from "node:crypto";
import { jsonOk } from "./http.mjs";

export function adminClient(guardUrl, token) {
  const auth = { authorization: `Bearer ${token}` };
  const tenantUrl = (t) => `${guardUrl}/__guard/tenants/${encodeURIComponent(t)}`;
  const originUrl = `${guardUrl}/__guard/origin`;
  return {
    putTenant: (tenant, limits) => jsonOk(tenantUrl(tenant), { method: "PUT", headers: auth, body: limits }),
    addKey: (tenant, key) => jsonOk(`${tenantUrl(tenant)}/keys`, { method: "POST", headers: auth, body: { key } }),
    /** {limits, state:{tokens,inFlight,queued,...}, counters:{admitted, shed, shedByReason, ...}} */
    stats: (tenant) => jsonOk(tenantUrl(tenant), { headers: auth }),
    /** The global origin stage (issue #4): PUT its config, GET {config, stats}, DELETE turns it off. */
    putOrigin: (config) => jsonOk(originUrl, { method: "PUT", headers: auth, body: config }),
    origin: (timeoutMs) => jsonOk(originUrl, { headers: auth, timeoutMs }),
    deleteOrigin: () => jsonOk(originUrl, { method: "DELETE", headers: auth }),
  };
}

/** Configures a tenant and registers a fresh API key for it; returns the key. */
export async function provisionTenant(admin, tenant, limits) {
  await admin.putTenant(tenant, limits);
  const key = `bench_${randomBytes(16).toString("hex")}`;
  await admin.addKey(tenant, key);
  return key;
}
