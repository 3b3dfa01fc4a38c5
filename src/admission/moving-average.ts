/**
 * Weight of the newest sample in the hold-time averages (tenant slots, origin slots): they
 * follow a change within about ten releases without jumping at one outlier.
 */
export const HOLD_AVERAGE_ALPHA = 0.2;

/** The next hold-time average; the first sample is taken as it is. */
export function nextAverage(previous: number | null, sample: number, alpha = HOLD_AVERAGE_ALPHA): number {
  return previous === null ? sample : previous + alpha * (sample - previous);
}
