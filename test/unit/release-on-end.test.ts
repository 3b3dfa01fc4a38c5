import { describe, expect, it } from "vitest";
import { type BodyEnd, releaseOnEnd } from "../../src/proxy/release-on-end";

const chunk = (n: number) => new Uint8Array([n]);

/** An origin body whose chunks and end the test pushes by hand. */
function originBody() {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const body = new ReadableStream<Uint8Array>(
    {
      start(c) {
        controller = c;
      },
    },
    { highWaterMark: 0 },
  );
  return { body, controller };
}

function wrapped(body: ReadableStream<Uint8Array>) {
  const outcomes: BodyEnd[] = [];
  const stream = releaseOnEnd(body, (o) => outcomes.push(o));
  return { stream, outcomes };
}

const settle = () => new Promise((r) => setTimeout(r, 0));

describe("releaseOnEnd: the slot goes back once, when the origin's body is over", () => {
  it("releases as completed when the origin's body ends, before the client asks past the last chunk", async () => {
    const { body, controller } = originBody();
    const { stream, outcomes } = wrapped(body);
    const reader = stream.getReader();
    const first = reader.read();
    controller.enqueue(chunk(1));
    expect((await first).value).toEqual(chunk(1));
    controller.close();
    await settle();
    // The client has not read again: the origin is done all the same, so its slot is free.
    expect(outcomes).toEqual(["completed"]);
    expect((await reader.read()).done).toBe(true);
    expect(outcomes).toEqual(["completed"]);
  });

  it("releases a small body's slot before the client starts reading", async () => {
    const { body, controller } = originBody();
    const { stream, outcomes } = wrapped(body);
    controller.enqueue(chunk(1));
    controller.close();
    await settle();
    expect(outcomes).toEqual(["completed"]);
    const reader = stream.getReader();
    expect((await reader.read()).value).toEqual(chunk(1));
    expect((await reader.read()).done).toBe(true);
    expect(outcomes).toEqual(["completed"]);
  });

  it("reads at most two chunks ahead of the client, so a slow client slows the origin read", async () => {
    let pulls = 0;
    const body = new ReadableStream<Uint8Array>(
      {
        pull(c) {
          pulls++;
          c.enqueue(chunk(pulls));
        },
      },
      { highWaterMark: 0 },
    );
    const { stream, outcomes } = wrapped(body);
    await settle();
    // Nobody has read yet: one chunk queued, one read ahead.
    expect(pulls).toBe(2);
    const reader = stream.getReader();
    await reader.read();
    await settle();
    await settle();
    expect(pulls).toBe(3);
    await reader.cancel("client left");
    expect(outcomes).toEqual(["cancelled"]);
  });

  it("counts a client that leaves mid-body as cancelled, and only once", async () => {
    const { body, controller } = originBody();
    const { stream, outcomes } = wrapped(body);
    const reader = stream.getReader();
    const first = reader.read();
    controller.enqueue(chunk(1));
    await first;
    await reader.cancel("gone");
    await settle();
    expect(outcomes).toEqual(["cancelled"]);
  });

  it("reports a failure once, even when it comes on a read ahead, and passes the error on", async () => {
    const { body, controller } = originBody();
    const { stream, outcomes } = wrapped(body);
    const reader = stream.getReader();
    const first = reader.read();
    controller.enqueue(chunk(1));
    await first;
    controller.error(new Error("reset"));
    await settle();
    expect(outcomes).toEqual(["failed"]);
    await expect(reader.read()).rejects.toThrow("reset");
    expect(outcomes).toEqual(["failed"]);
  });

  it("releases an empty body as completed at once", async () => {
    const { body, controller } = originBody();
    const { stream, outcomes } = wrapped(body);
    controller.close();
    const reader = stream.getReader();
    expect((await reader.read()).done).toBe(true);
    expect(outcomes).toEqual(["completed"]);
  });
});
