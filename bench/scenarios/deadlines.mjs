// Deadlines: at 2x capacity, clients send short budgets (150-300 ms). Nothing may be forwarded to
// the origin after its deadline, and no admitted request may be answered later than its budget
// (+50 ms slack for the hops): work that cannot finish in time should be refused up front.
import { LATE_SLACK_MS } from "../stats.mjs";
import { phaseRow, target } from "./shared.mjs";

export const name = "deadlines";
export const needsGuard = true;

export async function run(lab) {
  const durationMs = lab.dur(15_000);
  const tenant = await lab.tenant("deadlines", lab.limits());
  const p = await lab.phase({
    label: "2x, budgets 150-300 ms",
    target: "guard",
    durationMs,
    streams: [{ name: "t", rate: 2 * lab.capacity, budgetMs: [150, 300], tenant }],
  });
  const s = p.all;
  const o = p.originStats;
  return {
    rows: [phaseRow(name, "2x, budget 150-300 ms", p)],
    figures: { summary: s, origin: o, guardStats: p.guardStats },
    notes: [
      `${s.ok} admitted and answered, ${s.lateOk} later than budget + ${LATE_SLACK_MS} ms (${s.lateAny} answers of any status; the latest came ${Math.round(s.overBudgetMaxMs)} ms after its budget); ` +
        `${s.timeouts504} x 504; origin: ${o.received} received (${o.deadlineHeader} with x-request-deadline), ` +
        `${o.receivedAfterDeadline} after their deadline (at worst by ${o.receivedLateMaxMs} ms), ${o.finishedAfterDeadline} finished too late (wasted work)`,
    ],
    targets: [
      target(name, "forwarded after deadline", "0", String(o.receivedAfterDeadline), o.receivedAfterDeadline === 0),
      target(name, `admitted answered after budget + ${LATE_SLACK_MS} ms`, "0", String(s.lateOk), s.lateOk === 0),
    ],
  };
}
