import { describe, expect, it } from "vitest";
import { DEFAULT_TIMEOUT_MS, deadlineBudgetMs, parseClientTimeoutMs, remainingMs } from "../../src/admission/deadline";
import { effectivePriority } from "../../src/admission/priority-hint";

describe("deadline budget", () => {
  it.each([
    ["250", 250],
    [" 1000 ", 1000],
    ["0", null],
    ["-5", null],
    ["1e3", null],
    ["12.5", null],
    ["abc", null],
    ["9999999999", null],
    ["", null],
  ])("parses the client's x-request-timeout-ms %j as %j", (raw, expected) => {
    expect(parseClientTimeoutMs(raw)).toBe(expected);
  });

  it("is the smaller of the client's budget and the configured one, 10 s by default", () => {
    expect(deadlineBudgetMs(null, undefined)).toBe(DEFAULT_TIMEOUT_MS);
    expect(deadlineBudgetMs(300, undefined)).toBe(300);
    expect(deadlineBudgetMs(60_000, undefined)).toBe(10_000);
    expect(deadlineBudgetMs(60_000, 2000)).toBe(2000);
    expect(deadlineBudgetMs(null, 30_000)).toBe(30_000);
  });

  it("has nothing left, not a negative amount, after the deadline", () => {
    expect(remainingMs(1000, 400)).toBe(600);
    expect(remainingMs(1000, 4000)).toBe(0);
  });
});

describe("client priority hints", () => {
  it("let a client lower its priority freely", () => {
    expect(effectivePriority("high", "low", "normal")).toBe("low");
  });

  it("let a client raise it only up to maxClientPriority", () => {
    expect(effectivePriority("normal", "critical", "normal")).toBe("normal");
    expect(effectivePriority("normal", "critical", "high")).toBe("high");
    expect(effectivePriority("low", "critical", "critical")).toBe("critical");
  });

  it("never go below what the route grants when asking higher", () => {
    expect(effectivePriority("high", "critical", "normal")).toBe("high");
  });

  it("are ignored when garbage", () => {
    expect(effectivePriority("normal", "urgent!!", "critical")).toBe("normal");
    expect(effectivePriority("normal", null, "critical")).toBe("normal");
    expect(effectivePriority("normal", " LOW ", "critical")).toBe("low");
  });
});
