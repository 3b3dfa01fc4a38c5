import type { Env } from "../env";
import { tenantObjectName } from "../proxy/identity";
import type { TenantStats } from "../tenant-guard";
import { TenantDirectory } from "../tenant/tenant-directory";
import { originStats } from "./origin-stats";
import { placement } from "../object-placement";

/**
 * Every tenant's live stats, and the origin stage's, in one answer, for the dashboard and the
 * metrics scrape. Bounded: at most MAX_OVERVIEW_TENANTS tenants (the first by name; `truncated`
 * says when there were more), asked OVERVIEW_CONCURRENCY at a time so a scrape cannot flood the
 * objects; the origin stage's shards (at most ORIGIN_BOUNDS.shards) are asked all at once,
 * alongside the tenants.
 */
export const MAX_OVERVIEW_TENANTS = 200;
const OVERVIEW_CONCURRENCY = 8;

export interface TenantOverview extends TenantStats {
  readonly tenant: string;
}

/** As GET /__guard/origin answers: config and totals over shards, or both null when the stage is off. */
export type OriginOverview = Awaited<ReturnType<typeof originStats>>;
export type OriginStageStats = NonNullable<OriginOverview["stats"]>;

export interface Overview {
  readonly at: number;
  readonly tenants: TenantOverview[];
  readonly truncated: boolean;
  readonly origin: OriginOverview;
}

export async function overview(env: Env): Promise<Overview> {
  const [{ tenants, truncated }, origin] = await Promise.all([tenantOverviews(env), originStats(env)]);
  return { at: Date.now(), tenants, truncated, origin };
}

async function tenantOverviews(env: Env): Promise<{ tenants: TenantOverview[]; truncated: boolean }> {
  const listed = await new TenantDirectory(env.TENANTS).listTenants(undefined, MAX_OVERVIEW_TENANTS);
  const names = listed.tenants;
  const tenants: TenantOverview[] = [];
  for (let start = 0; start < names.length; start += OVERVIEW_CONCURRENCY) {
    const batch = names.slice(start, start + OVERVIEW_CONCURRENCY);
    const stats = await Promise.all(
      batch.map(async (tenant) => ({
        tenant,
        ...(await env.TENANT_GUARD.getByName(tenantObjectName(tenant), placement(env)).stats()),
      })),
    );
    tenants.push(...stats.filter((s) => s.limits !== null));
  }
  return { tenants, truncated: listed.cursor !== null };
}
