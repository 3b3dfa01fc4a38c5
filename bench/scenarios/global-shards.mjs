// Global sum with the origin stage split over shards: the same six tenants at 3x the origin, with
// the stage's limit, queue and adaptive limiter divided over SHARDS Durable Objects (each holds its
// share and is picked at random per request). Set against global-sum (one shard), it prices the
// trade-off of sharding: the same round trips per request, spread over more objects, against the
// accuracy lost when one shard is full while another has room (goodput, fairness).
import { runSum } from "./global-sum.mjs";

export const name = "global-shards";
export const needsGuard = true;

const SHARDS = 4;

export function run(lab) {
  return runSum(lab, name, { shards: SHARDS, minInFlight: SHARDS });
}
