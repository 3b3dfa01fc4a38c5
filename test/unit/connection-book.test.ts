import { describe, expect, it } from "vitest";
import {
  CONNECTION_TIMING,
  type ConnectionBook,
  MAX_CONNECTION_HOLDERS,
  closeConnection,
  emptyConnectionBook,
  openConnection,
  openTotal,
  reclaimConnections,
  renewConnections,
} from "../../src/connections/connection-book";

const T0 = 1_700_000_000_000;

function opened(book: ConnectionBook, holder: string, limit: number, now = T0): ConnectionBook {
  const result = openConnection(book, holder, limit, now);
  if (result.kind !== "open") throw new Error("expected the connection to open");
  return result.book;
}

describe("connection book", () => {
  it("opens connections across holders up to the limit and refuses the next, whoever asks", () => {
    let book = opened(emptyConnectionBook(), "a", 3);
    book = opened(book, "b", 3);
    book = opened(book, "a", 3);
    expect(openTotal(book)).toBe(3);
    const refused = openConnection(book, "c", 3, T0);
    expect(refused).toMatchObject({ kind: "full", open: 3 });
    expect(openConnection(book, "a", 3, T0).kind).toBe("full");
  });

  it("refuses every connection with a limit of 0", () => {
    expect(openConnection(emptyConnectionBook(), "a", 0, T0)).toMatchObject({ kind: "full", open: 0 });
  });

  it("a lowered limit refuses new connections until enough close, without cutting those open", () => {
    let book = opened(opened(opened(emptyConnectionBook(), "a", 5), "a", 5), "b", 5);
    expect(openConnection(book, "a", 2, T0).kind).toBe("full");
    book = closeConnection(book, "a", T0);
    expect(openTotal(book)).toBe(2);
    expect(openConnection(book, "a", 2, T0).kind).toBe("full");
    book = closeConnection(book, "b", T0);
    expect(openConnection(book, "a", 2, T0).kind).toBe("open");
  });

  it("frees a connection on close, forgets a holder at zero, and never counts below zero", () => {
    let book = opened(emptyConnectionBook(), "a", 1);
    book = closeConnection(book, "a", T0 + 1);
    expect(book.holders).toHaveLength(0);
    book = closeConnection(book, "a", T0 + 2);
    expect(openTotal(book)).toBe(0);
    expect(openConnection(book, "a", 1, T0 + 3).kind).toBe("open");
  });

  it("takes back a vanished holder's connections once it has not renewed for expiryMs", () => {
    let book = opened(opened(emptyConnectionBook(), "gone", 2), "gone", 2);
    expect(openConnection(book, "live", 2, T0 + CONNECTION_TIMING.expiryMs - 1).kind).toBe("full");
    book = reclaimConnections(book, T0 + CONNECTION_TIMING.expiryMs);
    expect(openTotal(book)).toBe(0);
    expect(openConnection(book, "live", 2, T0 + CONNECTION_TIMING.expiryMs).kind).toBe("open");
  });

  it("keeps a renewing holder's connections past the expiry", () => {
    let book = opened(emptyConnectionBook(), "a", 1);
    for (let t = 1; t <= 5; t += 1) book = renewConnections(book, "a", 1, T0 + t * CONNECTION_TIMING.renewEveryMs);
    const later = T0 + 5 * CONNECTION_TIMING.renewEveryMs + CONNECTION_TIMING.expiryMs - 1;
    expect(openTotal(reclaimConnections(book, later))).toBe(1);
  });

  it("heals an overcount from a lost answer with a settled renewal, but never raises the count", () => {
    // The isolate saw its second open fail (answer lost): it knows of one, the object counts two.
    let book = opened(opened(emptyConnectionBook(), "a", 5), "a", 5);
    const soon = T0 + CONNECTION_TIMING.settleMs - 1;
    expect(openTotal(renewConnections(book, "a", 1, soon))).toBe(2);
    book = renewConnections(book, "a", 1, T0 + CONNECTION_TIMING.settleMs);
    expect(openTotal(book)).toBe(1);
    book = renewConnections(book, "a", 50, T0 + 2 * CONNECTION_TIMING.settleMs);
    expect(openTotal(book)).toBe(1);
  });

  it("ignores a renewal of a holder it does not know (reclaimed, or never opened)", () => {
    const book = renewConnections(emptyConnectionBook(), "stranger", 7, T0);
    expect(book.holders).toHaveLength(0);
  });

  it("refuses a new holder once MAX_CONNECTION_HOLDERS hold connections", () => {
    let book = emptyConnectionBook();
    for (let i = 0; i < MAX_CONNECTION_HOLDERS; i += 1) book = opened(book, `h${i}`, 100_000);
    expect(openConnection(book, "one-more", 100_000, T0).kind).toBe("full");
    expect(openConnection(book, "h0", 100_000, T0).kind).toBe("open");
  });
});
