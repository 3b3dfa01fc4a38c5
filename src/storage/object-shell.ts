import type { Clock } from "../clock";
import { ObjectTimers } from "./object-timers";

/**
 * What a pure desk asks of its Durable Object after a call: the held calls to answer now, and
 * how soon to write its state ("now" before an answer that hands out capacity, "soon" for what a
 * restart may lose a few hundred milliseconds of).
 */
export interface DeskEffects<Answer> {
  readonly answers: ReadonlyArray<{ readonly to: string; readonly answer: Answer }>;
  readonly persist: "now" | "soon" | "no";
}

/** The timing a desk tells its shell, read after every call. */
export interface TimedDesk<Answer> {
  /** Times by which the storage alarm must fire (lease reaping, idle cleanup): the earliest is armed. */
  alarmsAt(): ReadonlyArray<number | null>;
  /** When held calls must be looked at again (a wait ends, a hold lapses); null for never. */
  wakeAt(now: number): number | null;
  wake(now: number): DeskEffects<Answer>;
}

/**
 * The part both guard objects share: the promises of the calls their desk holds (a renewal's
 * long poll, a queued origin request), the three timers, and applying a desk's effects. The
 * object keeps only its RPC surface, its store and what is its own (sibling shards, keys).
 */
export class ObjectShell<Answer> {
  /** At most one per held call; the desk bounds how many it holds. */
  private readonly held = new Map<string, (answer: Answer) => void>();
  readonly timers: ObjectTimers;

  constructor(
    storage: DurableObjectStorage,
    private readonly desk: TimedDesk<Answer>,
    private readonly clock: Clock,
    flush: () => void,
    flushIntervalMs: number,
  ) {
    this.timers = new ObjectTimers(storage, flush, flushIntervalMs, clock);
  }

  /** The answer to a call the desk is holding, once a later call's effects name it. */
  answerLater(to: string): Promise<Answer> {
    return new Promise<Answer>((resolve) => this.held.set(to, resolve));
  }

  apply(effects: DeskEffects<Answer>): void {
    for (const { to, answer } of effects.answers) {
      this.held.get(to)?.(answer);
      this.held.delete(to);
    }
    if (effects.persist === "now") this.timers.flushNow();
    else if (effects.persist === "soon") this.timers.markDirty();
    for (const at of this.desk.alarmsAt()) this.timers.ensureAlarm(at);
    this.timers.wakeAt(this.desk.wakeAt(this.clock.now()), () => this.apply(this.desk.wake(this.clock.now())));
  }

  /** The storage alarm fired: it is no longer armed. Returns the time to reap as of. */
  alarmFired(): number {
    this.timers.alarmFired();
    return this.clock.now();
  }
}
