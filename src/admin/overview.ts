import type { Env } from "../env";
import { tenantObjectName } from "../proxy/identity";
import type { TenantStats } from "../tenant-guard";
import { TenantDirectory } from "../tenant/tenant-directory";

/**
 * Every tenant's live stats in one answer, for the dashboard and the metrics scrape. Bounded:
 * at most MAX_OVERVIEW_TENANTS tenants (the first by name; `truncated` says when there were
 * more), asked OVERVIEW_CONCURRENCY at a time so a scrape cannot flood the objects.
 */
export const MAX_OVERVIEW_TENANTS = 200;
const OVERVIEW_CONCURRENCY = 8;

export interface TenantOverview extends TenantStats {
  readonly tenant: string;
}

export interface Overview {
  readonly at: number;
  readonly tenants: TenantOverview[];
  readonly truncated: boolean;
}

export async function overview(env: Env): Promise<Overview> {
  const listed = await new TenantDirectory(env.TENANTS).listTenants(undefined, MAX_OVERVIEW_TENANTS);
  const names = listed.tenants;
  const tenants: TenantOverview[] = [];
  for (let start = 0; start < names.length; start += OVERVIEW_CONCURRENCY) {
    const batch = names.slice(start, start + OVERVIEW_CONCURRENCY);
    const stats = await Promise.all(
      batch.map(async (tenant) => ({
        tenant,
        ...(await env.TENANT_GUARD.getByName(tenantObjectName(tenant)).stats()),
      })),
    );
    tenants.push(...stats.filter((s) => s.limits !== null));
  }
  return { at: Date.now(), tenants, truncated: listed.cursor !== null };
}
