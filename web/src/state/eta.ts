// Estimated completion times (`GET /api/v3/eta`) in words, and the throttle that keeps
// the pages from asking for them on every burst of events.
import type { Completion } from "../api/types";
import { clock } from "../format";
import type { Scheduler } from "../live/changeBatcher";

/// "done ≈ 14:32 (14:20–14:45)"; the manager's basis ("no task of the job has completed
/// yet") when it has no estimate; empty without an answer.
export function describeCompletion(completion: Completion | undefined, now = new Date()): string {
  if (!completion) return "";
  if (!completion.finish_at) return completion.basis;
  let text = `done ≈ ${clock(completion.finish_at, { now })}`;
  if (completion.earliest && completion.latest) {
    const earliest = clock(completion.earliest, { now });
    const latest = clock(completion.latest, { now });
    // A range that rounds to one minute says nothing the estimate does not.
    if (earliest !== latest) text += ` (${earliest}–${latest})`;
  }
  return text;
}

/// "Farm done ≈ 14:32 (14:20–14:45)", or "Farm: nothing left to run".
export function describeFarm(completion: Completion | undefined, now = new Date()): string {
  if (!completion) return "";
  const text = describeCompletion(completion, now);
  return completion.finish_at ? `Farm ${text}` : `Farm: ${text}`;
}

/// Runs `run` at most once per `gapMs`: a request inside the gap is put off to its end,
/// and any more requests until then ride along with that one.
export class Throttle {
  private last = -Infinity;
  private timer: unknown = null;

  constructor(
    private readonly run: () => void,
    private readonly gapMs: number,
    private readonly schedule: Scheduler = (work, delay) => setTimeout(work, delay),
    private readonly cancel: (handle: unknown) => void = (handle) =>
      clearTimeout(handle as ReturnType<typeof setTimeout>),
    private readonly now: () => number = Date.now,
  ) {}

  request() {
    if (this.timer !== null) return;
    const wait = this.last + this.gapMs - this.now();
    if (wait <= 0) {
      this.fire();
      return;
    }
    this.timer = this.schedule(() => {
      this.timer = null;
      this.fire();
    }, wait);
  }

  stop() {
    if (this.timer !== null) this.cancel(this.timer);
    this.timer = null;
  }

  private fire() {
    this.last = this.now();
    this.run();
  }
}
