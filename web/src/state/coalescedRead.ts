// A read that many events ask for, done at most once at a time and at most once per
// `minGapMs`: asks while one runs or within the gap become one more read afterwards. A
// job's frame list grows with its frames, so one read per event would not stay cheap.
import type { Scheduler } from "../live/changeBatcher";

export class CoalescedRead {
  private running = false;
  private wanted = false;
  private waiting = false;
  private lastStart = Number.NEGATIVE_INFINITY;
  private stopped = false;

  constructor(
    private readonly read: () => Promise<void>,
    private readonly minGapMs = 2000,
    private readonly now: () => number = () => Date.now(),
    private readonly schedule: Scheduler = (run, delay) => setTimeout(run, delay),
  ) {}

  /// Asks for a read; it starts now, or after the running one and the gap.
  request() {
    this.wanted = true;
    this.pump();
  }

  /// No more reads (the page is gone).
  stop() {
    this.stopped = true;
  }

  private pump() {
    if (this.stopped || !this.wanted || this.running || this.waiting) return;
    const wait = this.lastStart + this.minGapMs - this.now();
    if (wait > 0) {
      this.waiting = true;
      this.schedule(() => {
        this.waiting = false;
        this.pump();
      }, wait);
      return;
    }
    this.wanted = false;
    this.running = true;
    this.lastStart = this.now();
    this.read()
      .catch(() => undefined)
      .finally(() => {
        this.running = false;
        this.pump();
      });
  }
}
