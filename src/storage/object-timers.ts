import { type Clock, systemClock } from "../clock";

/**
 * The three timers a guard object keeps: the storage alarm that reaps leases (it survives
 * eviction), the batched write of runtime state, and the in-memory wake-up of its queue.
 */
export class ObjectTimers {
  private alarmAt: number | null = null;
  private flushTimer: ReturnType<typeof setTimeout> | null = null;
  private wakeTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly storage: DurableObjectStorage,
    private readonly flush: () => void,
    private readonly flushIntervalMs: number,
    private readonly clock: Clock = systemClock,
  ) {}

  /**
   * Makes sure the alarm fires by `at`. The recorded alarm time is trusted only while it is
   * still ahead: one that has passed has fired, or was dropped by the runtime (a time in the
   * millisecond being run), and must not stop a new one from being set.
   */
  ensureAlarm(at: number | null): void {
    if (at === null) return;
    const now = this.clock.now();
    if (this.alarmAt !== null && this.alarmAt > now && this.alarmAt <= at) return;
    this.alarmAt = Math.max(Math.ceil(at), now + 1);
    void this.storage.setAlarm(this.alarmAt);
  }

  alarmFired(): void {
    this.alarmAt = null;
  }

  async deleteAlarm(): Promise<void> {
    await this.storage.deleteAlarm();
    this.alarmAt = null;
  }

  /** Runtime state changed: it is written within the flush interval. */
  markDirty(): void {
    this.flushTimer ??= setTimeout(() => this.flush(), this.flushIntervalMs);
  }

  /** Writes at once (the state is about to be relied on), instead of within the interval. */
  flushNow(): void {
    this.flushing();
    this.flush();
  }

  /** A flush is running now: the pending one is not needed. */
  flushing(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
  }

  /**
   * Runs `pump` at `at` (or at once if it has passed); replaces any earlier wake-up, and null
   * cancels it. The clock only moves at I/O in workerd; a timer is the I/O that moves it.
   */
  wakeAt(at: number | null, pump: () => void): void {
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.wakeTimer = null;
    if (at === null) return;
    this.wakeTimer = setTimeout(
      () => {
        this.wakeTimer = null;
        pump();
      },
      Math.max(0, at - this.clock.now()),
    );
  }

  /** Stops the in-memory timers (the alarm is separate: see deleteAlarm). */
  clear(): void {
    this.wakeAt(null, () => {});
    this.flushing();
  }
}
