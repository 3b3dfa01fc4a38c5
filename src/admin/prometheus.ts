import type { Overview, TenantOverview } from "./overview";

/**
 * Prometheus text exposition (format 0.0.4) of the overview: per-tenant gauges for the live
 * state and limits, and counters for decisions. Pure: the overview in, the text out.
 */
interface Family {
  readonly name: string;
  readonly type: "gauge" | "counter";
  readonly help: string;
  readonly samples: (t: TenantOverview) => Array<[labels: Record<string, string>, value: number]>;
}

const one = (value: number): Array<[Record<string, string>, number]> => [[{}, value]];
const byKey = (label: string, record: Readonly<Record<string, number>>): Array<[Record<string, string>, number]> =>
  Object.entries(record).map(([key, value]) => [{ [label]: key }, value]);

const FAMILIES: readonly Family[] = [
  { name: "guard_tokens", type: "gauge", help: "Tokens in the tenant's bucket.", samples: (t) => one(t.state.tokens) },
  {
    name: "guard_in_flight",
    type: "gauge",
    help: "Slots held: admitted and not released (lingering and credit slots included).",
    samples: (t) => one(t.state.inFlight),
  },
  {
    name: "guard_lingering",
    type: "gauge",
    help: "Slots held after a deadline abort, while the origin may still work.",
    samples: (t) => one(t.state.lingering),
  },
  {
    name: "guard_credit_slots",
    type: "gauge",
    help: "Slots held by credits handed to isolates.",
    samples: (t) => one(t.state.creditSlots),
  },
  {
    name: "guard_queued",
    type: "gauge",
    help: "Requests waiting in the queue, by priority.",
    samples: (t) => byKey("priority", t.state.queuedByPriority),
  },
  {
    name: "guard_limit_rate",
    type: "gauge",
    help: "Configured token rate per second.",
    samples: (t) => one(t.limits?.rate ?? 0),
  },
  {
    name: "guard_limit_burst",
    type: "gauge",
    help: "Configured bucket size.",
    samples: (t) => one(t.limits?.burst ?? 0),
  },
  {
    name: "guard_limit_in_flight",
    type: "gauge",
    help: "Configured in-flight limit.",
    samples: (t) => one(t.limits?.maxInFlight ?? 0),
  },
  {
    name: "guard_limit_queue",
    type: "gauge",
    help: "Configured queue bound.",
    samples: (t) => one(t.limits?.maxQueue ?? 0),
  },
  {
    name: "guard_arrived_total",
    type: "counter",
    help: "Requests that asked for admission.",
    samples: (t) => one(t.counters.arrived),
  },
  {
    name: "guard_admitted_total",
    type: "counter",
    help: "Requests admitted, by priority.",
    samples: (t) => byKey("priority", t.counters.admittedByPriority),
  },
  {
    name: "guard_shed_total",
    type: "counter",
    help: "Requests shed, by reason.",
    samples: (t) => byKey("reason", t.counters.shedByReason),
  },
  {
    name: "guard_shed_by_priority_total",
    type: "counter",
    help: "Requests shed, by priority.",
    samples: (t) => byKey("priority", t.counters.shedByPriority),
  },
  {
    name: "guard_shed_at_edge_total",
    type: "counter",
    help: "Of the sheds, those decided by an isolate without a round trip.",
    samples: (t) => one(t.counters.shedAtEdge),
  },
  {
    name: "guard_deadline_exceeded_total",
    type: "counter",
    help: "Admitted requests the origin did not answer in time (504).",
    samples: (t) => one(t.counters.deadlineExceeded),
  },
  {
    name: "guard_origin_failed_total",
    type: "counter",
    help: "Admitted requests whose origin fetch failed.",
    samples: (t) => one(t.counters.originFailed),
  },
  {
    name: "guard_leases_reaped_total",
    type: "counter",
    help: "Slots reclaimed because their holder never released them.",
    samples: (t) => one(t.counters.reaped),
  },
  {
    name: "guard_object_calls_total",
    type: "counter",
    help: "Calls the tenant's Durable Object served, by kind.",
    samples: (t) => byKey("call", t.counters.calls),
  },
];

function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (!Number.isFinite(value)) return value > 0 ? "+Inf" : "-Inf";
  return String(value);
}

export function renderPrometheus(data: Overview): string {
  const lines: string[] = [];
  for (const family of FAMILIES) {
    lines.push(`# HELP ${family.name} ${family.help}`, `# TYPE ${family.name} ${family.type}`);
    for (const tenant of data.tenants) {
      for (const [labels, value] of family.samples(tenant)) {
        const all = { tenant: tenant.tenant, ...labels };
        const text = Object.entries(all)
          .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
          .join(",");
        lines.push(`${family.name}{${text}} ${formatValue(value)}`);
      }
    }
  }
  lines.push("# HELP guard_overview_truncated 1 when there were more tenants than one scrape reports.");
  lines.push("# TYPE guard_overview_truncated gauge", `guard_overview_truncated ${data.truncated ? 1 : 0}`);
  return `${lines.join("\n")}\n`;
}
