import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { failedOutcome, originAbort } from "../../src/proxy/origin-abort";
import { keepStreamed } from "../../src/proxy/streamed-response";

describe("origin abort: the deadline bounds a streamed route's headers, maxStreamMs its body", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("aborts a streamed route at its deadline while the headers have not come", () => {
    const abort = originAbort(300, 5_000);
    vi.advanceTimersByTime(299);
    expect(abort.signal.aborted).toBe(false);
    vi.advanceTimersByTime(1);
    expect(abort.signal.aborted).toBe(true);
    expect(abort.cause()).toBe("deadline");
  });

  it("lets a streamed body outlast the deadline once the headers came, and cuts it at maxStreamMs after them", () => {
    const abort = originAbort(300, 1_000);
    vi.advanceTimersByTime(200);
    abort.headersCame();
    vi.advanceTimersByTime(999);
    expect(abort.signal.aborted).toBe(false);
    expect(abort.cause()).toBeNull();
    vi.advanceTimersByTime(1);
    expect(abort.signal.aborted).toBe(true);
    expect(abort.cause()).toBe("stream_limit");
  });

  it("starts the stream's limit only once, and leaves no timer once stopped", () => {
    const abort = originAbort(300, 1_000);
    abort.headersCame();
    vi.advanceTimersByTime(800);
    abort.headersCame();
    vi.advanceTimersByTime(200);
    expect(abort.cause()).toBe("stream_limit");
    const stopped = originAbort(300, 1_000);
    stopped.headersCame();
    stopped.stop();
    vi.advanceTimersByTime(10_000);
    expect(stopped.signal.aborted).toBe(false);
  });

  it("reads a cut stream as cancelled (nothing left running at the origin), told apart as stream_cut", () => {
    expect(failedOutcome("stream_limit", false)).toEqual({ outcome: "cancelled", reason: "stream_cut" });
    expect(failedOutcome("deadline", false)).toEqual({ outcome: "deadline_exceeded", reason: "deadline_exceeded" });
    expect(failedOutcome(null, false)).toEqual({ outcome: "origin_failed", reason: "origin_failed" });
  });

  it("reads a body that failed after its client left as the client's cancel, never an origin failure", () => {
    expect(failedOutcome(null, true)).toEqual({ outcome: "cancelled", reason: "cancelled" });
    expect(failedOutcome("stream_limit", true).reason).toBe("stream_cut");
  });
});

describe("keepStreamed: what the local runtime would gzip without flushing is named identity", () => {
  it.each([
    [true, { "content-type": "text/plain" }, "identity"],
    [true, {}, "identity"],
    [false, { "content-type": "text/event-stream; charset=utf-8" }, "identity"],
    [false, { "content-type": "text/plain" }, null],
    [true, { "content-type": "text/plain", "content-encoding": "gzip" }, "gzip"],
  ])("streamed route %s, headers %j: content-encoding %s", (streamed, given, expected) => {
    const headers = new Headers(given);
    keepStreamed(headers, streamed);
    expect(headers.get("content-encoding")).toBe(expected);
  });
});
