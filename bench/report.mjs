// Output of a run: the terminal table, bench/results/latest.json and bench/results/latest.md.
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";

const COLUMNS = [
  ["scenario", (r) => r.scenario],
  ["phase", (r) => r.phase],
  ["offered/s", (r) => num(r.offeredPerS, 0)],
  ["sent", (r) => String(r.sent)],
  ["2xx/s", (r) => num(r.goodputPerS, 1)],
  ["%cap", (r) => pct0(r.goodputShareOfCapacity)],
  ["2xx p50", (r) => num(r.okP50Ms, 0)],
  ["2xx p99", (r) => num(r.okP99Ms, 0)],
  ["shed", (r) => String(r.shed)],
  ["shed p50", (r) => num(r.shedP50Ms, 0)],
  ["signals", (r) => (r.shed ? pct0(r.shedAllSignalsShare) : "-")],
  ["504", (r) => String(r.timeouts504)],
  ["no answer", (r) => String(r.clientErrors)],
  ["gen drop", (r) => String(r.droppedByGenerator)],
  ["origin max", (r) => (r.originMaxConcurrency === undefined ? "-" : String(r.originMaxConcurrency))],
  ["hand-off ms", (r) => (r.originHandoffMs === undefined ? "-" : r.originHandoffMs.toFixed(1))],
  ["held after", (r) => held(r.slotsHeldAfter)],
  ["other CPU", (r) => num(r.otherCpuCores, 2)],
  ["cpu ms/req", (r) => num(r.cpuMsPerReq, 2)],
  ["shed reasons", (r) => reasons(r.shedByReason)],
];

export function renderTerminal(result) {
  const lines = [];
  lines.push(header(result));
  lines.push("");
  lines.push(
    ...table(
      COLUMNS.map((c) => c[0]),
      result.rows.map((r) => COLUMNS.map((c) => c[1](r))),
      "text",
    ),
  );
  for (const t of result.tables ?? []) {
    lines.push("", `${t.scenario}: ${t.title}`, ...table(t.head, t.rows, "text"));
  }
  lines.push("", "Notes:");
  for (const n of result.notes) lines.push(`  ${n}`);
  lines.push("", "Targets (goals, not assertions):");
  lines.push(...table(["", "scenario", "target", "goal", "measured"], result.targets.map(targetCells), "text"));
  for (const t of result.timelines ?? []) {
    lines.push("", `Timeline, ${t.title}:`, ...table(t.head, t.rows, "text"));
  }
  if (result.errors.length) {
    lines.push("", "Scenarios that did not finish:");
    for (const e of result.errors) lines.push(`  ${e.scenario}: ${e.error}`);
  }
  return lines.join("\n");
}

export function renderMarkdown(result) {
  const lines = [`# Overload lab: latest run`, "", header(result), ""];
  // The configuration matrix (and any scenario's own tables) first: it is the run's summary.
  // A table names its section (`section`); the matrix's do not, and keep their heading.
  if (result.tables?.length) {
    let section;
    for (const t of result.tables) {
      const heading = t.section ?? "Configuration matrix beside HAProxy";
      if (heading !== section) lines.push(`## ${heading}`, "");
      section = heading;
      lines.push(`### ${t.title}`, "");
      if (t.intro?.length) lines.push(t.intro.join("\n"), "");
      lines.push(...table(t.head, t.rows, "md"), "");
    }
    lines.push("## All phases", "");
  }
  lines.push(
    ...table(
      COLUMNS.map((c) => c[0]),
      result.rows.map((r) => COLUMNS.map((c) => c[1](r))),
      "md",
    ),
  );
  lines.push(
    "",
    "Latencies in ms, from the generator's send to the end of the body. `2xx/s` is goodput (2xx completed",
    "per second after warm-up), `%cap` its share of the origin's capacity. `signals` is the share of shed",
    "(429/503) responses carrying Retry-After >= 1, RateLimit, RateLimit-Policy, problem+json and a `reason`.",
    "`no answer` counts requests without an HTTP answer (client timeout, reset, cut at phase end);",
    "`gen drop` arrivals the generator did not send because its outstanding bound was reached;",
    "`origin max` the most requests the origin held at once (served + queued). `hand-off ms` how long a slot the origin freed with nothing queued stayed idle, on average, before the next request reached it (gaps over 100 ms not counted: no demand). `other CPU` is the CPU",
    "(in cores, of this machine's total) that programs outside the benchmark used during the phase:",
    "when it is high, the figures of that phase are noisy. `held after` is the guard's in-flight count",
    "(from its admin stats) once the phase has drained and the origin is idle: it should be 0; slots",
    "still held there are withheld from the next requests (a lease held too long, or leaked).",
    "`cpu ms/req` is the CPU time (user + system, /proc) of the measured wrangler's workerd processes",
    "(the guard's, or the pass-through's) over the phase and its settle time, per request sent; it is",
    "left out of one-stream rows of a phase with several streams.",
    "",
    "## Notes",
    "",
  );
  for (const n of result.notes) lines.push(`- ${n}`);
  lines.push(
    "",
    "## Targets",
    "",
    ...table(["", "scenario", "target", "goal", "measured"], result.targets.map(targetCells), "md"),
  );
  if (result.timelines?.length) {
    lines.push(
      "",
      "## Origin stage timelines",
      "",
      "Per second of the phase: 2xx, shed (429/503) and other answers completed in it; the origin stage's",
      "`effective` limit and `in flight` count (min-max over GET /__guard/origin polled every 250 ms), its",
      "queue and Retry-After hold (`backoff ms`) at most; `event` marks changes made to the origin.",
    );
    // A timeline with columns of its own says what they are in its `intro`.
    for (const t of result.timelines) {
      lines.push("", `### ${t.title}`, "");
      if (t.intro?.length) lines.push(t.intro.join("\n"), "");
      lines.push(...table(t.head, t.rows, "md"));
    }
  }
  if (result.errors.length) {
    lines.push("", "## Scenarios that did not finish", "");
    for (const e of result.errors) lines.push(`- ${e.scenario}: ${e.error}`);
  }
  return `${lines.join("\n")}\n`;
}

/** Writes latest.json and latest.md atomically (temp file + rename), so a crash leaves the old ones. */
export function writeResults(dir, result) {
  mkdirSync(dir, { recursive: true });
  const write = (name, text) => {
    const tmp = path.join(dir, `${name}.tmp`);
    writeFileSync(tmp, text);
    renameSync(tmp, path.join(dir, name));
  };
  write(
    "latest.json",
    `${JSON.stringify(result, (_, v) => (typeof v === "number" && !Number.isFinite(v) ? null : v), 2)}\n`,
  );
  write("latest.md", renderMarkdown(result));
}

function header(result) {
  const m = result.meta;
  const s = result.sizing;
  return [
    `${m.startedAt}, ${m.mode} run, ${m.cpus} CPUs, node ${m.node}, ${(m.elapsedMs / 1000).toFixed(0)} s` +
      (m.gitHead ? `, git ${m.gitHead}` : "") +
      (m.srcChanges ? ` + ${m.srcChanges} uncommitted file(s) in src/ (the guard ran the working tree)` : ""),
    `origin: C=${s.concurrency} x ${s.serviceMs} ms (±${Math.round(s.jitter * 100)}%) = capacity ${s.capacity} req/s; ` +
      `tenant limits ${JSON.stringify(result.limits)}; guard: ${m.guard}`,
  ].join("\n");
}

function targetCells(t) {
  const mark = t.met === null ? "n/a" : t.met ? "met" : "MISSED";
  return [mark, t.scenario, t.name, t.goal, t.measured];
}

function table(head, rows, kind) {
  if (kind === "md") {
    const esc = (c) => String(c).replaceAll("|", "\\|");
    return [
      `| ${head.join(" | ")} |`,
      `|${head.map(() => "---").join("|")}|`,
      ...rows.map((r) => `| ${r.map(esc).join(" | ")} |`),
    ];
  }
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) =>
    cells
      .map((c, i) => String(c).padEnd(widths[i]))
      .join("  ")
      .trimEnd();
  return [line(head), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)];
}

function num(v, digits) {
  return Number.isFinite(v) ? v.toFixed(digits) : "-";
}

function pct0(v) {
  return Number.isFinite(v) ? `${Math.round(v * 100)}%` : "-";
}

function held(h) {
  if (!h) return "-";
  return h.lingering ? `${h.inFlight} (${h.lingering} lingering)` : String(h.inFlight);
}

function reasons(byReason) {
  const entries = Object.entries(byReason ?? {}).sort((a, b) => b[1] - a[1]);
  return entries.length ? entries.map(([k, v]) => `${k} ${v}`).join(", ") : "-";
}
