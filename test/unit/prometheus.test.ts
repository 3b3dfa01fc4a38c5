import { describe, expect, it } from "vitest";
import type { OriginStageStats, Overview } from "../../src/admin/overview";
import { renderPrometheus } from "../../src/admin/prometheus";
import { emptyCounters } from "../../src/admission/counters";
import type { OriginShardStats } from "../../src/origin/origin-shard-stats";
import { originConfigSchema } from "../../src/origin/origin-config";
import { emptyOriginCounters } from "../../src/origin/origin-counters";

const overview: Overview = {
  at: 0,
  truncated: false,
  origin: { config: null, stats: null },
  tenants: [
    {
      tenant: "acme",
      limits: {
        rate: 10,
        burst: 20,
        maxInFlight: 4,
        maxQueue: 8,
        maxWaitMs: 100,
        maxClientPriority: "normal",
        routes: [],
        weight: 1,
      },
      state: {
        tokens: 3.5,
        inFlight: 2,
        queued: 1,
        queuedByPriority: { low: 1, normal: 0, high: 0, critical: 0 },
        holdMsEwma: 12,
        leases: { holders: 2, slots: 3, tokens: 1 },
      },
      counters: {
        ...emptyCounters(),
        arrived: 9,
        shed: 3,
        shedByReason: { ...emptyCounters().shedByReason, queue_full: 3 },
        holdersReaped: 1,
        calls: { lease: 7 },
      },
      keys: 1,
      connections: { open: 2, limit: 100, holders: 1 },
    },
  ],
};

describe("Prometheus exposition", () => {
  const text = renderPrometheus(overview);

  it("declares every family once with HELP and TYPE", () => {
    const types = text.split("\n").filter((line) => line.startsWith("# TYPE "));
    expect(new Set(types).size).toBe(types.length);
    expect(text).toContain("# TYPE guard_shed_total counter");
    expect(text).toContain("# TYPE guard_queued gauge");
  });

  it("labels samples by tenant and by reason or priority", () => {
    expect(text).toContain('guard_tokens{tenant="acme"} 3.5');
    expect(text).toContain('guard_shed_total{tenant="acme",reason="queue_full"} 3');
    expect(text).toContain('guard_queued{tenant="acme",priority="low"} 1');
    expect(text).toContain('guard_limit_queue{tenant="acme"} 8');
    expect(text).toContain('guard_object_calls_total{tenant="acme",call="lease"} 7');
  });

  it("reports the leases out at isolates: holders and the slots they hold", () => {
    expect(text).toContain("# TYPE guard_lease_holders gauge");
    expect(text).toContain('guard_lease_holders{tenant="acme"} 2');
    expect(text).toContain('guard_leased_slots{tenant="acme"} 3');
    expect(text).toContain('guard_in_flight{tenant="acme"} 2');
    expect(text).toContain("guard_overview_truncated 0");
  });

  it("ends with a newline and has one sample per line in the text format", () => {
    expect(text.endsWith("\n")).toBe(true);
    for (const line of text.trimEnd().split("\n")) {
      expect(line).toMatch(
        /^(# (HELP|TYPE) \w+ .+|\w+(\{[^}]*\})? [-+0-9.eE]+|\w+(\{[^}]*\})? [+-]Inf|\w+(\{[^}]*\})? NaN)$/,
      );
    }
  });
});

function originShard(index: number, effective: number, inFlight: number): OriginShardStats {
  return {
    index,
    limit: { ceiling: 4, floor: 1, adaptive: null, capacity: null, effective },
    inFlight,
    inFlightByPriority: { low: 0, normal: inFlight, high: 0, critical: 0 },
    lingering: 0,
    queued: 0,
    queuedByPriority: { low: 0, normal: 0, high: 0, critical: 0 },
    backoffMs: 0,
    tenantsHeld: 0,
    routesHeld: 0,
    latency: { ratio: null, lastMs: null, serviceMs: null, routeBaselines: 0 },
    counters: emptyOriginCounters(),
  };
}

const originStats: OriginStageStats = {
  limit: { ceiling: 8, floor: 2, adaptive: 6.5, capacity: null, effective: 6 },
  inFlight: 5,
  inFlightByPriority: { low: 1, normal: 3, high: 1, critical: 0 },
  lingering: 1,
  queued: 2,
  queuedByPriority: { low: 0, normal: 2, high: 0, critical: 0 },
  backoffMs: 2_500,
  tenantsHeld: 0,
  routesHeld: 0,
  latency: null,
  counters: {
    ...emptyOriginCounters(),
    arrived: 40,
    admitted: 30,
    admittedByPriority: { low: 5, normal: 20, high: 5, critical: 0 },
    shed: 8,
    shedByCause: { ...emptyOriginCounters().shedByCause, queue_full: 5, backoff: 3 },
    shedAtEdge: 3,
    drops: 4,
    reaped: 1,
    calls: { acquire: 37, release: 25, reportSheds: 2, hold: 0 },
  },
  shards: [originShard(0, 3, 3), originShard(1, 3, 2)],
};

describe("Prometheus exposition of the origin stage", () => {
  const on = renderPrometheus({
    ...overview,
    origin: { config: originConfigSchema.parse({ maxInFlight: 8, minInFlight: 2, shards: 2 }), stats: originStats },
  });

  it("reports the limit in force, its bounds and the adaptive estimate, without a tenant label", () => {
    expect(on).toContain('guard_origin_limit{kind="effective"} 6');
    expect(on).toContain('guard_origin_limit{kind="ceiling"} 8');
    expect(on).toContain('guard_origin_limit{kind="floor"} 2');
    expect(on).toContain('guard_origin_limit{kind="adaptive"} 6.5');
    expect(on).not.toContain('kind="capacity"');
    const originSamples = on.split("\n").filter((line) => /^guard_origin_(?!failed_total)/.test(line));
    expect(originSamples.length).toBeGreaterThan(0);
    for (const line of originSamples) expect(line).not.toContain("tenant=");
  });

  it("reports a capacity grant as a limit kind when the origin gave one", () => {
    const granted = renderPrometheus({
      ...overview,
      origin: {
        config: originConfigSchema.parse({ maxInFlight: 8 }),
        stats: { ...originStats, limit: { ...originStats.limit, capacity: 4 } },
      },
    });
    expect(granted).toContain('guard_origin_limit{kind="capacity"} 4');
  });

  it("reports slots, queue and backoff as gauges", () => {
    expect(on).toContain("# TYPE guard_origin_in_flight gauge");
    expect(on).toContain('guard_origin_in_flight{priority="normal"} 3');
    expect(on).toContain('guard_origin_in_flight{priority="critical"} 0');
    expect(on).toContain('guard_origin_queued{priority="normal"} 2');
    expect(on).toContain("guard_origin_backoff_seconds 2.5");
  });

  it("reports decisions as counters, sheds by cause", () => {
    expect(on).toContain("# TYPE guard_origin_shed_total counter");
    expect(on).toContain("guard_origin_arrived_total 40");
    expect(on).toContain('guard_origin_admitted_total{priority="normal"} 20');
    expect(on).toContain('guard_origin_shed_total{cause="queue_full"} 5');
    expect(on).toContain('guard_origin_shed_total{cause="backoff"} 3');
    expect(on).toContain('guard_origin_shed_total{cause="tenant_backoff"} 0');
    expect(on).toContain("guard_origin_shed_at_edge_total 3");
    expect(on).toContain("guard_origin_drops_total 4");
    expect(on).toContain("guard_origin_leases_reaped_total 1");
    expect(on).toContain('guard_origin_object_calls_total{call="acquire"} 37');
  });

  it("reports each shard's effective limit and slots by shard index", () => {
    expect(on).toContain('guard_origin_shard_limit{shard="0"} 3');
    expect(on).toContain('guard_origin_shard_limit{shard="1"} 3');
    expect(on).toContain('guard_origin_shard_in_flight{shard="0"} 3');
    expect(on).toContain('guard_origin_shard_in_flight{shard="1"} 2');
  });

  it("stays valid text format: every family declared once, one sample per line", () => {
    const types = on.split("\n").filter((line) => line.startsWith("# TYPE "));
    expect(new Set(types).size).toBe(types.length);
    const helps = on.split("\n").filter((line) => line.startsWith("# HELP "));
    expect(helps.map((line) => line.split(" ")[2])).toEqual(types.map((line) => line.split(" ")[2]));
    for (const line of on.trimEnd().split("\n")) {
      expect(line).toMatch(/^(# (HELP|TYPE) \w+ .+|\w+(\{[^}]*\})? [-+0-9.eE]+)$/);
    }
    expect(on.endsWith("\n")).toBe(true);
  });

  it("has no origin stage family at all when the stage is off", () => {
    const off = renderPrometheus(overview);
    for (const family of [
      "guard_origin_limit",
      "guard_origin_in_flight",
      "guard_origin_queued",
      "guard_origin_backoff_seconds",
      "guard_origin_arrived_total",
      "guard_origin_admitted_total",
      "guard_origin_shed_total",
      "guard_origin_shed_at_edge_total",
      "guard_origin_drops_total",
      "guard_origin_leases_reaped_total",
      "guard_origin_object_calls_total",
      "guard_origin_shard_limit",
      "guard_origin_shard_in_flight",
    ]) {
      expect(on).toContain(`# TYPE ${family} `);
      expect(off).not.toMatch(new RegExp(`^(# (HELP|TYPE) )?${family}[ {]`, "m"));
    }
  });
});
