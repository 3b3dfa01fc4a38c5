import { describe, expect, it } from "vitest";
import { IDLE_CLEANUP_MS, LeaseDesk } from "../../src/lease/lease-desk";
import type { LeaseAnswer, LeaseGrant } from "../../src/lease/lease-protocol";
import { A, B, LIMITS, T0, counts, report } from "./lease-fixtures";

const ONE_SLOT = { ...LIMITS, maxInFlight: 1 };

function asGrant(answer: LeaseAnswer | undefined): LeaseGrant {
  if (answer?.kind !== "lease") throw new Error(`expected a lease, got ${JSON.stringify(answer)}`);
  return answer;
}

/** A desk where A holds the only slot, in use, and B asks for it with a waiter (held renewal). */
function contended() {
  const desk = new LeaseDesk(ONE_SLOT, null);
  const a = desk.lease(report(A, 0, { waiting: counts({ normal: 1 }), wantTokens: 1 }), T0);
  expect(a.reply.kind).toBe("answer");
  const b = desk.lease(report(B, 0, { waiting: counts({ high: 1 }), waitMs: 250 }), T0 + 1);
  return { desk, a, b };
}

describe("lease desk: the tenant object's decisions without the Durable Object", () => {
  it("answers unconfigured when it has neither a config nor carried limits", () => {
    const desk = new LeaseDesk(null, null);
    const { reply, effects } = desk.lease(report(A, 0, { waiting: counts({ normal: 1 }) }), T0);
    expect(reply).toEqual({ kind: "answer", answer: { kind: "unconfigured" } });
    expect(effects.persist).toBe("no");
  });

  it("writes a grant before it is answered, and a report that grants nothing only soon", () => {
    const desk = new LeaseDesk(LIMITS, null);
    const first = desk.lease(report(A, 0, { waiting: counts({ normal: 1 }), wantTokens: 1 }), T0);
    expect(first.effects.persist).toBe("now");
    expect(asGrant(first.reply.kind === "answer" ? first.reply.answer : undefined).slotsGranted).toBeGreaterThan(0);
    const again = desk.lease(report(A, 0), T0 + 10);
    expect(again.effects.persist).toBe("soon");
  });

  it("holds a renewal that can be granted nothing, until it asked to wait", () => {
    const { desk, b } = contended();
    expect(b.reply.kind).toBe("hold");
    expect(desk.heldUntil()).toBe(T0 + 1 + 250);
    expect(desk.wake(T0 + 100).answers).toEqual([]);
    const late = desk.wake(T0 + 251);
    expect(late.answers.map((x) => x.to)).toEqual([B]);
    expect(desk.heldUntil()).toBeNull();
  });

  it("answers a held renewal as soon as another holder's report gives the slot back", () => {
    const { desk } = contended();
    const back = desk.lease(report(A, 1, { slotsReturned: 1 }), T0 + 50);
    const toB = back.effects.answers.find((x) => x.to === B);
    expect(asGrant(toB?.answer).slotsGranted).toBe(1);
    expect(back.effects.persist).toBe("now");
  });

  it("answers a holder's held renewal when a newer report of the same holder arrives", () => {
    const { desk } = contended();
    const newer = desk.lease(report(B, 1, { waiting: counts({ high: 1 }), waitMs: 0 }), T0 + 20);
    expect(newer.effects.answers.map((x) => x.to)).toEqual([B]);
    expect(newer.reply.kind).toBe("answer");
  });

  it("never holds a leaving holder, nor one with nobody waiting", () => {
    const desk = new LeaseDesk(ONE_SLOT, null);
    desk.lease(report(A, 0, { waiting: counts({ normal: 1 }), wantTokens: 1 }), T0);
    expect(desk.lease(report(B, 0, { waitMs: 250 }), T0 + 1).reply.kind).toBe("answer");
    expect(
      desk.lease(report(B, 1, { waitMs: 250, leaving: true, waiting: counts({ normal: 1 }) }), T0 + 2).reply.kind,
    ).toBe("answer");
  });

  it("answers held renewals unconfigured when the tenant is forgotten", () => {
    const { desk } = contended();
    const reset = desk.reset();
    expect(reset.answers).toEqual([{ to: B, answer: { kind: "unconfigured" } }]);
    expect(desk.limits()).toBeNull();
  });

  it("counts a vanished holder's unreleased admissions as reaped when its lease is reclaimed", () => {
    const desk = new LeaseDesk(LIMITS, null);
    desk.lease(report(A, 0, { waiting: counts({ normal: 2 }), wantTokens: 2 }), T0);
    const tally = report(A, 1).tally;
    desk.lease(
      report(A, 1, { inUse: counts({ normal: 2 }), tally: { ...tally, arrived: 2, admitted: counts({ normal: 2 }) } }),
      T0 + 10,
    );
    const { effects, forget } = desk.reap(T0 + 60_000);
    expect(forget).toBe(false);
    expect(effects.persist).toBe("now");
    expect(desk.countersNow()).toMatchObject({ admitted: 2, reaped: 2, holdersReaped: 1 });
    expect(desk.bookNow(T0 + 60_000)?.holders).toEqual([]);
  });

  it("forgets an anonymous bucket (carried limits) once idle, and never a configured tenant", () => {
    const anonymous = new LeaseDesk(null, null);
    anonymous.lease(report(A, 0, { limits: LIMITS, leaving: true }), T0);
    expect(anonymous.idleCleanupAt()).toBe(T0 + IDLE_CLEANUP_MS);
    expect(anonymous.reap(T0 + IDLE_CLEANUP_MS - 1).forget).toBe(false);
    expect(anonymous.reap(T0 + IDLE_CLEANUP_MS).forget).toBe(true);
    anonymous.reset();
    expect(anonymous.idleCleanupAt()).toBeNull();

    const configured = new LeaseDesk(LIMITS, null);
    configured.lease(report(A, 0, { leaving: true }), T0);
    expect(configured.idleCleanupAt()).toBeNull();
    expect(configured.reap(T0 + IDLE_CLEANUP_MS * 2).forget).toBe(false);
  });
});
