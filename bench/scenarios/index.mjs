// Scenarios in the order a full run takes them (cheap and calm first, the heaviest last).
import * as burst from "./burst.mjs";
import * as deadlines from "./deadlines.mjs";
import * as flood from "./flood.mjs";
import * as globalPriority from "./global-priority.mjs";
import * as globalShards from "./global-shards.mjs";
import * as globalSlow from "./global-slow.mjs";
import * as globalSum from "./global-sum.mjs";
import * as memory from "./memory.mjs";
import * as noisy from "./noisy.mjs";
import * as origin503 from "./origin-503.mjs";
import * as overload from "./overload.mjs";
import * as priority from "./priority.mjs";
import * as slowOrigin from "./slow-origin.mjs";
import * as steady from "./steady.mjs";

// The origin-stage scenarios (global-*, origin-503) turn the guard's global origin stage on for their
// own phases and off again after, so the others run with per-tenant limits only, as before.
export const scenarios = [
  steady,
  burst,
  overload,
  noisy,
  flood,
  priority,
  slowOrigin,
  deadlines,
  globalSum,
  globalShards,
  globalSlow,
  origin503,
  globalPriority,
  memory,
];
