import { describe, expect, it } from "vitest";
import { sendableCode } from "../../src/proxy/websocket-relay";

describe("WebSocket close codes across the relay", () => {
  it.each([
    [1000, 1000],
    [1001, 1001],
    [1011, 1011],
    [4001, 4001],
    [3000, 3000],
    [1004, 1011],
    [1005, 1000],
    [1006, 1011],
    [1015, 1011],
    [999, 1011],
    [2000, 1011],
    [5000, 1011],
  ])("passes %i on as %i (codes no endpoint may send are mapped)", (code, sent) => {
    expect(sendableCode(code)).toBe(sent);
  });
});
