/**
 * This isolate's open WebSockets, per tenant object: what it renews with the object, and its
 * holder id there. An entry exists only while a socket of that object is open here, so the map
 * is bounded by the sockets this isolate relays (each socket holds at most one entry).
 */
import { CONNECTION_TIMING } from "../connections/connection-book";

interface Held {
  open: number;
  renewedAt: number;
}

const held = new Map<string, Held>();
let holderId: string | null = null;

/** Made on first use: workerd refuses random values at global scope. */
export function connectionHolder(): string {
  holderId ??= crypto.randomUUID();
  return holderId;
}

export function connectionOpened(objectName: string, now: number): void {
  const entry = held.get(objectName);
  if (entry) entry.open += 1;
  else held.set(objectName, { open: 1, renewedAt: now });
}

/** Called once the object has been told (or could not be): until then the socket still counts. */
export function connectionClosed(objectName: string): void {
  const entry = held.get(objectName);
  if (!entry) return;
  entry.open -= 1;
  if (entry.open <= 0) held.delete(objectName);
}

/**
 * The count to renew with, if a renewal of this object is due; marks it renewed. Every open
 * socket asks on its own timer, and only the first ask in each interval sends a renewal.
 */
export function renewalDue(objectName: string, now: number): number | null {
  const entry = held.get(objectName);
  if (!entry || now - entry.renewedAt < CONNECTION_TIMING.renewEveryMs / 2) return null;
  entry.renewedAt = now;
  return entry.open;
}

export function openHere(objectName: string): number {
  return held.get(objectName)?.open ?? 0;
}
