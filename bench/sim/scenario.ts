/**
 * The scenario: 120 isolates at 5-80 ms one-way from the tenant's object (each with its
 * own clock skew), a tenant flooding at 10 000 req/s over them (Zipf), a quiet tenant at 20 req/s
 * on three of them, and an origin at 1/5 of the flood. Demand moves twice: the hottest isolates
 * go quiet and new isolates take their traffic, then it moves back. The traffic stops at the end,
 * so every lease should go home and the object's counters should match what the isolates did.
 */
import { type Rng, Picker, rngFor, shuffled, uniform, zipfWeights } from "./rng";
import { Isolate, type Lt, type Stream, type TenantSpec, World, type WorldConfig } from "./world";

export interface Layout {
  readonly isolates: number;
  readonly newIsolates: number;
  /** The hottest isolates that go quiet when demand moves. */
  readonly movedHot: number;
  readonly zipfS: number;
  readonly floodRate: number;
  /** The quiet tenant's rate on each of its isolates, and the flood rank of each isolate. */
  readonly quietRates: readonly number[];
  readonly quietRanks: readonly number[];
  readonly latencyMs: readonly [number, number];
  readonly skewMs: number;
}

export const LAYOUT: Layout = {
  isolates: 120,
  newIsolates: 3,
  movedHot: 10,
  zipfS: 1,
  floodRate: 10_000,
  quietRates: [10, 7, 3],
  quietRanks: [1, 30, 100],
  latencyMs: [5, 80],
  skewMs: 5_000,
};

export interface Cell {
  readonly name: string;
  readonly title: string;
  readonly flood: TenantSpec;
  readonly quiet: TenantSpec;
  /** What the origin can serve of the flood, req/s: min(maxInFlight / service, rate). */
  readonly capacityPerS: number;
}

const FLOOD_MIX = [
  ["low", 0.2],
  ["normal", 0.75],
  ["high", 0.05],
] as const;

function quietSpec(serviceMs: number): TenantSpec {
  return {
    name: "quiet",
    limits: { rate: 100, burst: 100, maxInFlight: 20, maxQueue: 20, maxWaitMs: 1_000 },
    timeoutMs: 5_000,
    serviceMs: { mean: serviceMs, jitter: 0.3 },
    mix: [["normal", 1]],
    fullBehaviour: "evict-lowest",
  };
}

export const CELLS: readonly Cell[] = [
  {
    name: "slots",
    title: "slot-bound: maxInFlight 200, service 100 ms +-30% (2 000 req/s), tokens plentiful",
    flood: {
      name: "flood",
      limits: { rate: 20_000, burst: 4_000, maxInFlight: 200, maxQueue: 50, maxWaitMs: 1_000 },
      timeoutMs: 5_000,
      serviceMs: { mean: 100, jitter: 0.3 },
      mix: FLOOD_MIX,
      fullBehaviour: "evict-lowest",
    },
    quiet: quietSpec(100),
    capacityPerS: 2_000,
  },
  {
    name: "fast",
    title: "slot-bound, short requests: maxInFlight 40, service 20 ms +-30% (2 000 req/s), tokens plentiful",
    flood: {
      name: "flood",
      limits: { rate: 20_000, burst: 4_000, maxInFlight: 40, maxQueue: 50, maxWaitMs: 1_000 },
      timeoutMs: 5_000,
      serviceMs: { mean: 20, jitter: 0.3 },
      mix: FLOOD_MIX,
      fullBehaviour: "evict-lowest",
    },
    quiet: quietSpec(20),
    capacityPerS: 2_000,
  },
  {
    name: "tokens",
    title: "token-bound: maxInFlight 200, service 20 ms +-30%, rate 2 000/s, burst 400",
    flood: {
      name: "flood",
      limits: { rate: 2_000, burst: 400, maxInFlight: 200, maxQueue: 50, maxWaitMs: 1_000 },
      timeoutMs: 5_000,
      serviceMs: { mean: 20, jitter: 0.3 },
      mix: FLOOD_MIX,
      fullBehaviour: "evict-lowest",
    },
    quiet: quietSpec(20),
    capacityPerS: 2_000,
  },
];

export interface Phase {
  readonly name: string;
  readonly from: number;
  readonly to: number;
}

export function phasesFor(scale: number): Phase[] {
  const s = (ms: number) => Math.round(ms * scale);
  return [
    { name: "steady", from: 0, to: s(10_000) },
    { name: "moved", from: s(10_000), to: s(24_000) },
    { name: "back", from: s(24_000), to: s(30_000) },
    { name: "drain", from: s(30_000), to: s(30_000) + 3_000 },
  ];
}

export interface Built {
  readonly world: World;
  readonly isolates: readonly Isolate[];
  /** Flood isolate-tenants by isolate index; the new isolates come last. */
  readonly flood: readonly Lt[];
  readonly quiet: readonly Lt[];
  readonly newLts: readonly Lt[];
  readonly movedLts: readonly Lt[];
  /** Flood weight of each base isolate (Zipf by rank), for the proportional-share reference. */
  readonly weights: readonly number[];
  readonly rankOf: readonly number[];
}

export function build(
  cell: Cell,
  layout: Layout,
  config: Omit<WorldConfig, "phases"> & { phases: readonly Phase[] },
): Built {
  const world = new World(config);
  const rng = rngFor(config.seed, "layout");
  const total = layout.isolates + layout.newIsolates;
  const isolates = Array.from(
    { length: total },
    (_, i) =>
      new Isolate(
        i,
        uniform(rng, layout.latencyMs[0], layout.latencyMs[1]),
        Math.round(uniform(rng, -layout.skewMs, layout.skewMs)),
        rngFor(config.seed, `net-${i}`),
      ),
  );
  const floodTenant = world.addTenant(cell.flood);
  const quietTenant = world.addTenant(cell.quiet);

  // Rank r (1 = hottest) goes to a random isolate, so heat and latency are unrelated.
  const order = shuffled(
    rng,
    Array.from({ length: layout.isolates }, (_, i) => i),
  );
  const rankOf = new Array<number>(layout.isolates);
  order.forEach((iso, r) => {
    rankOf[iso] = r + 1;
  });
  const zipf = zipfWeights(layout.isolates, layout.zipfS);
  const weights = rankOf.map((r) => zipf[r - 1] as number);
  const movedIsos = new Set(order.slice(0, layout.movedHot));

  const flood = isolates.map((iso) =>
    world.addLt(floodTenant, iso, movedIsos.has(iso.index) || iso.index >= layout.isolates),
  );
  const quietIsos = layout.quietRanks.map((r) => order[r - 1] as number);
  const quiet = quietIsos.map((i) => world.addLt(quietTenant, isolates[i] as Isolate, true));
  const newLts = flood.slice(layout.isolates);
  const movedLts = flood.filter((lt) => movedIsos.has(lt.iso.index));

  const floodStream: Stream = {
    tenant: floodTenant,
    lts: flood,
    rng: rngFor(config.seed, "flood"),
    rate: 0,
    pick: null,
    gen: 0,
  };
  const quietStream: Stream = {
    tenant: quietTenant,
    lts: quiet,
    rng: rngFor(config.seed, "quiet"),
    rate: 0,
    pick: null,
    gen: 0,
  };
  const picker = (w: readonly number[], r: Rng) => {
    const p = new Picker(w);
    return () => p.pick(r);
  };
  const steadyW = [...weights, ...new Array(layout.newIsolates).fill(0)];
  const movedShare = weights.filter((_, i) => movedIsos.has(i)).reduce((a, b) => a + b, 0);
  const movedW = steadyW.map((w, i) =>
    i >= layout.isolates ? movedShare / layout.newIsolates : movedIsos.has(i) ? 0 : w,
  );
  const quietRate = layout.quietRates.reduce((a, b) => a + b, 0);
  const [steady, moved, back, drain] = config.phases as [Phase, Phase, Phase, Phase];

  world.hook(steady.from, () => {
    world.phase = 0;
    world.setStream(floodStream, layout.floodRate, picker(steadyW, floodStream.rng));
    world.setStream(quietStream, quietRate, picker(layout.quietRates, quietStream.rng));
  });
  world.hook(moved.from, () => {
    world.phase = 1;
    world.setStream(floodStream, layout.floodRate, picker(movedW, floodStream.rng));
  });
  world.hook(back.from, () => {
    world.phase = 2;
    world.setStream(floodStream, layout.floodRate, picker(steadyW, floodStream.rng));
  });
  world.hook(drain.from, () => {
    world.phase = 3;
    world.setStream(floodStream, 0, null);
    world.setStream(quietStream, 0, null);
  });
  return { world, isolates, flood, quiet, newLts, movedLts, weights, rankOf };
}
