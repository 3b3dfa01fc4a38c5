/**
 * The lab's origin (bench/origin.mjs) for unit tests: plain JavaScript, imported by a computed
 * path so the type checker does not look for its declarations. Origins made with `labOrigin`
 * are closed by `closeLabOrigins` (register it with afterEach).
 */
export interface LabOrigin {
  listen(port?: number): Promise<number>;
  close(): Promise<void>;
}

const ORIGIN_MODULE = "../../bench/origin.mjs";
export const { createOrigin } = (await import(/* @vite-ignore */ ORIGIN_MODULE)) as {
  createOrigin: (opts?: Record<string, unknown>) => LabOrigin;
};

const open: LabOrigin[] = [];

export function labOrigin(opts: Record<string, unknown> = {}): LabOrigin {
  const origin = createOrigin(opts);
  open.push(origin);
  return origin;
}

export async function closeLabOrigins(): Promise<void> {
  for (const origin of open.splice(0)) await origin.close();
}
