import { describe, expect, it } from "vitest";
import { RETRY_PAUSE_MS, callObject, isOverloaded } from "../../src/proxy/object-calls";

/** A call that fails with each of `failures` in turn, then answers "ok". */
function scripted(...failures: unknown[]) {
  let calls = 0;
  const call = async () => {
    calls += 1;
    if (calls <= failures.length) throw failures[calls - 1];
    return "ok";
  };
  return { call, calls: () => calls };
}

function recordingPause() {
  const pauses: number[] = [];
  return { pause: async (ms: number) => void pauses.push(ms), pauses };
}

const half = () => 0.5;

describe("calling a Durable Object", () => {
  it("answers at once, without a pause, when the first call succeeds", async () => {
    const object = scripted();
    const { pause, pauses } = recordingPause();
    await expect(callObject(object.call, 1_000, half, pause)).resolves.toBe("ok");
    expect(object.calls()).toBe(1);
    expect(pauses).toEqual([]);
  });

  it("retries once, after a jittered pause, an error marked retryable", async () => {
    const object = scripted({ retryable: true });
    const { pause, pauses } = recordingPause();
    await expect(callObject(object.call, 1_000, half, pause)).resolves.toBe("ok");
    expect(object.calls()).toBe(2);
    expect(pauses).toEqual([RETRY_PAUSE_MS.min + 0.5 * RETRY_PAUSE_MS.spread]);
  });

  it("never retries an overloaded object, even when the error is also retryable", async () => {
    const error = { overloaded: true, retryable: true };
    const object = scripted(error);
    const { pause, pauses } = recordingPause();
    await expect(callObject(object.call, 1_000, half, pause)).rejects.toBe(error);
    expect(object.calls()).toBe(1);
    expect(pauses).toEqual([]);
  });

  it.each([new Error("boom"), { retryable: false }, { retryable: "true" }, "retryable", null])(
    "does not retry %j, which is not marked retryable",
    async (error) => {
      const object = scripted(error);
      const { pause } = recordingPause();
      await expect(callObject(object.call, 1_000, half, pause)).rejects.toBe(error);
      expect(object.calls()).toBe(1);
    },
  );

  it("does not retry when the budget cannot hold twice the pause", async () => {
    // random 1: a 40 ms pause, so a retry needs more than 80 ms of budget.
    const error = { retryable: true };
    const tight = scripted(error);
    await expect(callObject(tight.call, 80, () => 1, recordingPause().pause)).rejects.toBe(error);
    expect(tight.calls()).toBe(1);
    const roomy = scripted(error);
    await expect(callObject(roomy.call, 81, () => 1, recordingPause().pause)).resolves.toBe("ok");
    expect(roomy.calls()).toBe(2);
  });

  it("rethrows the second failure and tries no third time", async () => {
    const first = { retryable: true, attempt: 1 };
    const second = { retryable: true, attempt: 2 };
    const object = scripted(first, second);
    await expect(callObject(object.call, 1_000, half, recordingPause().pause)).rejects.toBe(second);
    expect(object.calls()).toBe(2);
  });

  it("knows an overloaded error only by its flag being true", () => {
    expect(isOverloaded({ overloaded: true })).toBe(true);
    for (const error of [{ overloaded: "yes" }, new Error("overloaded"), null, undefined, 1]) {
      expect(isOverloaded(error)).toBe(false);
    }
  });
});
