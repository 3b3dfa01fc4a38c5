import { describe, expect, it } from "vitest";
import type { Overview } from "../../src/admin/overview";
import { renderPrometheus } from "../../src/admin/prometheus";
import { emptyCounters } from "../../src/admission/counters";

const overview: Overview = {
  at: 0,
  truncated: false,
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
        lingering: 0,
        creditSlots: 0,
        queued: 1,
        queuedByPriority: { low: 1, normal: 0, high: 0, critical: 0 },
        holdMsEwma: 12,
      },
      counters: {
        ...emptyCounters(),
        arrived: 9,
        shed: 3,
        shedByReason: { ...emptyCounters().shedByReason, queue_full: 3 },
      },
      keys: 1,
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
