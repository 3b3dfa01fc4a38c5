/**
 * The Python and Go verifiers in examples/ agree with the Node one on the known-answer vector:
 * all accept it, all refuse it forged or stale. Each runs as its own process (JSON on stdin);
 * a missing toolchain skips its half with the reason printed.
 */
import { spawnSync } from "node:child_process";
import { rmSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { verifyGuardRequest } from "../../examples/verify-signature.mjs";
import { VECTOR, vectorRequest } from "./signature-vector";

type Case = { name: string; request: ReturnType<typeof vectorRequest>; now: number; expected: string };

const CASES: Case[] = [
  { name: "the vector", request: vectorRequest(), now: VECTOR.now, expected: "ok" },
  {
    name: "a forged tenant",
    request: vectorRequest({ headers: { "x-guard-tenant": "evil" } }),
    now: VECTOR.now,
    expected: "bad_signature",
  },
  {
    name: "a forged path",
    request: vectorRequest({ path: "/v1/reports?from=0" }),
    now: VECTOR.now,
    expected: "bad_signature",
  },
  { name: "a stale timestamp", request: vectorRequest(), now: VECTOR.now + 3_600_000, expected: "stale" },
];

function available(command: string, args: string[]): boolean {
  const probe = spawnSync(command, args, { encoding: "utf8" });
  if (probe.error || probe.status !== 0) {
    console.log(
      `skipping the ${command} verifier: \`${command} ${args.join(" ")}\` failed (${probe.error?.message ?? probe.stderr})`,
    );
    return false;
  }
  return true;
}

function run(command: string, args: string[], cwd: string, input: Case): string {
  const stdin = JSON.stringify({ secrets: [VECTOR.secret], now: input.now, ...input.request });
  const result = spawnSync(command, args, { cwd, input: stdin, encoding: "utf8", timeout: 120_000 });
  if (result.status !== 0) throw new Error(`${command} failed: ${result.stderr}`);
  const answer = JSON.parse(result.stdout) as { ok: boolean; reason?: string };
  return answer.ok ? "ok" : (answer.reason ?? "?");
}

function nodeAnswer(input: Case): string {
  const answer = verifyGuardRequest(input.request, { secrets: [VECTOR.secret], now: input.now });
  return answer.ok ? "ok" : answer.reason;
}

const hasPython = available("python3", ["--version"]);
const hasGo = available("go", ["version"]);

describe("the verifiers in examples/ agree", () => {
  it.each(CASES)("node says what is expected of $name", (input) => {
    expect(nodeAnswer(input)).toBe(input.expected);
  });

  it.skipIf(!hasPython).each(CASES)("python agrees with node on $name", (input) => {
    expect(run("python3", ["verify_signature.py"], "examples", input)).toBe(input.expected);
  });

  it.skipIf(!hasGo)(
    "go agrees with node on every case",
    () => {
      // One build, then the binary per case: `go run` would rebuild for each.
      const out = `${process.env.TMPDIR ?? "/tmp"}/guardsig-verify-${process.pid}`;
      const build = spawnSync("go", ["build", "-o", out, "./cmd/guardsig-verify"], {
        cwd: "examples/guardsig",
        encoding: "utf8",
        timeout: 120_000,
      });
      try {
        if (build.status !== 0) throw new Error(`go build failed: ${build.stderr}`);
        for (const input of CASES) expect(run(out, [], ".", input), input.name).toBe(input.expected);
      } finally {
        rmSync(out, { force: true });
      }
    },
    150_000,
  );
});
