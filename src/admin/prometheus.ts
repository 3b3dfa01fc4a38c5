import type { OriginStageStats, Overview, TenantOverview } from "./overview";

/**
 * Prometheus text exposition (format 0.0.4) of the overview: per-tenant gauges for the live
 * state and limits, counters for decisions, and the origin stage's families (no tenant label:
 * the stage is one for the whole origin) when the stage is on. Pure: the overview in, the text out.
 */
type Sample = [labels: Record<string, string>, value: number];

interface Family<T> {
  readonly name: string;
  readonly type: "gauge" | "counter";
  readonly help: string;
  readonly samples: (subject: T) => Sample[];
}

const one = (value: number): Sample[] => [[{}, value]];
const byKey = (label: string, record: Readonly<Record<string, number>>): Sample[] =>
  Object.entries(record).map(([key, value]) => [{ [label]: key }, value]);

const TENANT_FAMILIES: readonly Family<TenantOverview>[] = [
  {
    name: "guard_tokens",
    type: "gauge",
    help: "Tokens not yet spent: in the tenant's bucket and leased to isolates.",
    samples: (t) => one(t.state.tokens),
  },
  {
    name: "guard_in_flight",
    type: "gauge",
    help: "Slots in use at the isolates (lingering ones included), as last reported.",
    samples: (t) => one(t.state.inFlight),
  },
  {
    name: "guard_leased_slots",
    type: "gauge",
    help: "Slots leased to isolates: in use, or free for their next local waiter.",
    samples: (t) => one(t.state.leases.slots),
  },
  {
    name: "guard_lease_holders",
    type: "gauge",
    help: "Isolates holding a lease of the tenant's slots and tokens.",
    samples: (t) => one(t.state.leases.holders),
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
    name: "guard_connections_open",
    type: "gauge",
    help: "WebSockets open now (held against maxConnections).",
    samples: (t) => one(t.connections.open),
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
    name: "guard_gone_total",
    type: "counter",
    help: "Queued requests whose client went away before they were admitted or shed.",
    samples: (t) => one(t.counters.gone),
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
    help: "Admissions never reported released, taken back with the lease of an isolate that stopped renewing.",
    samples: (t) => one(t.counters.reaped),
  },
  {
    name: "guard_object_calls_total",
    type: "counter",
    help: "Calls the tenant's Durable Object served, by kind.",
    samples: (t) => byKey("call", t.counters.calls),
  },
];

const ORIGIN_LIMIT_KINDS = ["effective", "ceiling", "floor", "adaptive", "capacity"] as const;

const ORIGIN_FAMILIES: readonly Family<OriginStageStats>[] = [
  {
    name: "guard_origin_limit",
    type: "gauge",
    help: "Origin stage in-flight limit over all shards: in force, bounds, adaptive estimate, the origin's grant.",
    samples: (o) =>
      ORIGIN_LIMIT_KINDS.flatMap((kind): Sample[] => {
        const value = o.limit[kind];
        return value === null ? [] : [[{ kind }, value]];
      }),
  },
  {
    name: "guard_origin_in_flight",
    type: "gauge",
    help: "Origin stage slots held, by priority (lingering slots included).",
    samples: (o) => byKey("priority", o.inFlightByPriority),
  },
  {
    name: "guard_origin_queued",
    type: "gauge",
    help: "Requests waiting in the origin stage's queues, by priority.",
    samples: (o) => byKey("priority", o.queuedByPriority),
  },
  {
    name: "guard_origin_backoff_seconds",
    type: "gauge",
    help: "Left of the origin's own hold (503 + Retry-After), longest over shards.",
    samples: (o) => one(o.backoffMs / 1000),
  },
  {
    name: "guard_origin_arrived_total",
    type: "counter",
    help: "Requests that asked the origin stage for a slot (edge sheds included).",
    samples: (o) => one(o.counters.arrived),
  },
  {
    name: "guard_origin_admitted_total",
    type: "counter",
    help: "Requests the origin stage admitted, by priority.",
    samples: (o) => byKey("priority", o.counters.admittedByPriority),
  },
  {
    name: "guard_origin_shed_total",
    type: "counter",
    help: "Requests the origin stage shed, by cause.",
    samples: (o) => byKey("cause", o.counters.shedByCause),
  },
  {
    name: "guard_origin_shed_at_edge_total",
    type: "counter",
    help: "Of the origin stage's sheds, those decided by an isolate without a round trip.",
    samples: (o) => one(o.counters.shedAtEdge),
  },
  {
    name: "guard_origin_drops_total",
    type: "counter",
    help: "Origin responses that counted as a drop for the adaptive limit (5xx, 429, deadline, failure).",
    samples: (o) => one(o.counters.drops),
  },
  {
    name: "guard_origin_leases_reaped_total",
    type: "counter",
    help: "Origin stage slots reclaimed because their holder never released them.",
    samples: (o) => one(o.counters.reaped),
  },
  {
    name: "guard_origin_object_calls_total",
    type: "counter",
    help: "Calls the origin stage's shard objects served, by kind.",
    samples: (o) => byKey("call", o.counters.calls),
  },
  {
    name: "guard_origin_shard_limit",
    type: "gauge",
    help: "Each origin shard's effective in-flight limit (its share).",
    samples: (o) => o.shards.map((shard): Sample => [{ shard: String(shard.index) }, shard.limit.effective]),
  },
  {
    name: "guard_origin_shard_in_flight",
    type: "gauge",
    help: "Slots each origin shard holds.",
    samples: (o) => o.shards.map((shard): Sample => [{ shard: String(shard.index) }, shard.inFlight]),
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

function sampleLine(name: string, labels: Record<string, string>, value: number): string {
  const text = Object.entries(labels)
    .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
    .join(",");
  return `${name}${text ? `{${text}}` : ""} ${formatValue(value)}`;
}

/** One family's HELP and TYPE, then its samples for each subject, `base` labels first. */
function renderFamily<T>(
  lines: string[],
  family: Family<T>,
  subjects: ReadonlyArray<readonly [base: Record<string, string>, subject: T]>,
): void {
  lines.push(`# HELP ${family.name} ${family.help}`, `# TYPE ${family.name} ${family.type}`);
  for (const [base, subject] of subjects) {
    for (const [labels, value] of family.samples(subject)) {
      lines.push(sampleLine(family.name, { ...base, ...labels }, value));
    }
  }
}

export function renderPrometheus(data: Overview): string {
  const lines: string[] = [];
  const tenants = data.tenants.map((t) => [{ tenant: t.tenant }, t] as const);
  for (const family of TENANT_FAMILIES) renderFamily(lines, family, tenants);
  const origin = data.origin.stats;
  // Off, the stage has no families at all: a scrape tells "off" from "idle" by their absence.
  if (origin) for (const family of ORIGIN_FAMILIES) renderFamily(lines, family, [[{}, origin]]);
  lines.push("# HELP guard_overview_truncated 1 when there were more tenants than one scrape reports.");
  lines.push("# TYPE guard_overview_truncated gauge", `guard_overview_truncated ${data.truncated ? 1 : 0}`);
  return `${lines.join("\n")}\n`;
}
