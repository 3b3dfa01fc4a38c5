import { describe, expect, it } from "vitest";
import { countOriginAdmit, emptyOriginCounters, originCountersSchema } from "../../src/origin/origin-counters";

describe("reading stored origin counters", () => {
  it("reads a record of this version back as it was written", () => {
    const counters = countOriginAdmit(emptyOriginCounters(), "high");
    expect(originCountersSchema.parse(JSON.parse(JSON.stringify(counters)))).toEqual(counters);
  });

  it("reads counters an older version did not write, or wrote broken, as zero, keeping the rest", () => {
    const older = { arrived: 7, admitted: 5, shedByCause: { queue_full: 2 }, calls: { acquire: "x" }, drops: -3 };
    expect(originCountersSchema.parse(older)).toEqual({
      ...emptyOriginCounters(),
      arrived: 7,
      admitted: 5,
      shedByCause: { ...emptyOriginCounters().shedByCause, queue_full: 2 },
    });
  });

  it("drops keys it does not know, so a record cannot smuggle in properties", () => {
    const parsed = originCountersSchema.parse({ ...emptyOriginCounters(), extra: 1, calls: { constructor: 9 } });
    expect(parsed).toEqual(emptyOriginCounters());
  });
});
