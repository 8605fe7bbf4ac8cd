import { describe, expect, it } from "vitest";
import { CoalescedRead } from "../src/state/coalescedRead";

/// A clock and scheduler the test moves by hand, and reads it finishes by hand.
function harness(minGapMs: number) {
  let time = 0;
  const timers: { at: number; run: () => void }[] = [];
  const finishers: (() => void)[] = [];
  let reads = 0;
  const coalesced = new CoalescedRead(
    () => {
      reads += 1;
      return new Promise<void>((resolve) => finishers.push(resolve));
    },
    minGapMs,
    () => time,
    (run, delay) => timers.push({ at: time + delay, run }),
  );
  const settle = () => new Promise((resolve) => setTimeout(resolve, 0));
  return {
    coalesced,
    reads: () => reads,
    async finish() {
      finishers.shift()?.();
      await settle();
    },
    advance(ms: number) {
      time += ms;
      for (const timer of timers.splice(0)) {
        if (timer.at <= time) timer.run();
        else timers.push(timer);
      }
    },
  };
}

describe("a coalesced read", () => {
  it("reads at once when nothing ran lately", () => {
    const h = harness(2000);
    h.coalesced.request();
    expect(h.reads()).toBe(1);
  });

  it("folds every ask while a read runs into one more read after the gap", async () => {
    const h = harness(2000);
    h.coalesced.request();
    h.coalesced.request();
    h.coalesced.request();
    expect(h.reads()).toBe(1);
    h.advance(500);
    await h.finish();
    expect(h.reads()).toBe(1);
    h.advance(1499);
    expect(h.reads()).toBe(1);
    h.advance(1);
    expect(h.reads()).toBe(2);
    await h.finish();
    h.advance(5000);
    expect(h.reads()).toBe(2);
  });

  it("reads again at once when the gap has passed", async () => {
    const h = harness(2000);
    h.coalesced.request();
    h.advance(3000);
    await h.finish();
    h.coalesced.request();
    expect(h.reads()).toBe(2);
  });

  it("reads no more once stopped", async () => {
    const h = harness(2000);
    h.coalesced.request();
    h.coalesced.request();
    h.coalesced.stop();
    await h.finish();
    h.advance(5000);
    expect(h.reads()).toBe(1);
  });
});
