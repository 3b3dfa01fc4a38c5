import { describe, expect, it } from "vitest";
import { GUARD_ERRORS, type GuardErrorCode, guardError, guardErrorResponse } from "../../src/guard-errors";
import { GUARD_PROBLEM_BASE } from "../../src/problem";

describe("the closed list of errors that are not sheds", () => {
  it("gives every code a client or server error status, a title, and a tag URI or about:blank type", () => {
    for (const [code, kind] of Object.entries(GUARD_ERRORS)) {
      expect(kind.status, code).toBeGreaterThanOrEqual(400);
      expect(kind.status, code).toBeLessThan(600);
      expect(kind.title.length, code).toBeGreaterThan(0);
      expect(kind.type === "about:blank" || kind.type.startsWith(GUARD_PROBLEM_BASE), code).toBe(true);
    }
  });

  it("answers a code as problem+json with its status, type and title, the detail and the extensions", async () => {
    const response = guardErrorResponse("conflict", "the key belongs to another tenant", { field: "key" });
    expect(response.status).toBe(409);
    expect(response.headers.get("content-type")).toBe("application/problem+json");
    expect(await response.json()).toEqual({
      ...GUARD_ERRORS.conflict,
      detail: "the key belongs to another tenant",
      field: "key",
    });
  });

  it("lets a call site add headers but never change the status or type", async () => {
    const code: GuardErrorCode = "unauthorized";
    const error = guardError(code, "no token", { status: 200, type: "x" }, { "www-authenticate": "Bearer" });
    const response = error.response();
    expect(response.status).toBe(401);
    expect(response.headers.get("www-authenticate")).toBe("Bearer");
    expect(await response.json()).toMatchObject({ status: 401, type: "about:blank" });
  });
});
