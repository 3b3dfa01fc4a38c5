/**
 * The tenant object's connection calls, as the Worker sends them: parsed at the object's edge,
 * since a holder id or a count is the caller's word.
 */
import { z } from "zod";
import { BOUNDS } from "../tenant/tenant-config";

const holder = z.string().min(1).max(64);

export const connectionOpenSchema = z.strictObject({
  holder,
  /** The limit the caller read from the tenant's config; an object with its own config uses that. */
  limit: z.number().int().min(0).max(BOUNDS.maxConnections),
});

export const connectionCloseSchema = z.strictObject({ holder });

export const connectionRenewSchema = z.strictObject({
  holder,
  /** Connections the isolate knows to be open (opened and not yet closed) for this tenant. */
  open: z.number().int().min(0).max(BOUNDS.maxConnections),
});

export type ConnectionOpen = z.infer<typeof connectionOpenSchema>;
export type ConnectionClose = z.infer<typeof connectionCloseSchema>;
export type ConnectionRenew = z.infer<typeof connectionRenewSchema>;

export interface ConnectionAnswer {
  readonly kind: "open" | "full";
  /** Open connections of the tenant, this one included when opened. */
  readonly open: number;
  readonly limit: number;
}

/** What the tenant stats show of the tenant's WebSockets. */
export interface ConnectionStats {
  readonly open: number;
  readonly limit: number | null;
  readonly holders: number;
}
