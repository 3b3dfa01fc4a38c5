// Scenarios in the order a full run takes them (cheap and calm first, the heaviest last).
import * as burst from "./burst.mjs";
import * as deadlines from "./deadlines.mjs";
import * as flood from "./flood.mjs";
import * as memory from "./memory.mjs";
import * as noisy from "./noisy.mjs";
import * as overload from "./overload.mjs";
import * as priority from "./priority.mjs";
import * as slowOrigin from "./slow-origin.mjs";
import * as steady from "./steady.mjs";

export const scenarios = [steady, burst, overload, noisy, flood, priority, slowOrigin, deadlines, memory];
