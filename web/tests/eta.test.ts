import { describe, expect, it } from "vitest";
import { Throttle, describeCompletion, describeFarm } from "../src/state/eta";

const now = new Date(2026, 2, 4, 14, 0, 0);
const at = (hours: number, minutes: number) => new Date(2026, 2, 4, hours, minutes, 10).toISOString();

describe("completion estimates in words", () => {
  it("gives the finish time with its range", () => {
    const completion = {
      remaining_tasks: 12,
      finish_at: at(14, 32),
      earliest: at(14, 20),
      latest: at(14, 45),
      basis: "from 37 completed tasks, mean 12.3 s",
    };
    expect(describeCompletion(completion, now)).toBe("done ≈ 14:32 (14:20–14:45)");
    expect(describeFarm(completion, now)).toBe("Farm done ≈ 14:32 (14:20–14:45)");
  });

  it("leaves out a range that says nothing more", () => {
    const completion = { remaining_tasks: 1, finish_at: at(14, 5), earliest: at(14, 5), latest: at(14, 5), basis: "" };
    expect(describeCompletion(completion, now)).toBe("done ≈ 14:05");
  });

  it("gives the basis when there is no estimate", () => {
    const basis = "no task of the job has completed yet";
    expect(describeCompletion({ remaining_tasks: 3, basis }, now)).toBe(basis);
    expect(describeFarm({ remaining_tasks: 0, basis: "nothing left to run" }, now)).toBe("Farm: nothing left to run");
    expect(describeCompletion(undefined)).toBe("");
  });
});

describe("the estimate throttle", () => {
  function fakeTime() {
    let time = 0;
    const timers: { due: number; run: () => void }[] = [];
    return {
      now: () => time,
      schedule: (run: () => void, delay: number) => {
        const timer = { due: time + delay, run };
        timers.push(timer);
        return timer;
      },
      cancel: (timer: unknown) => timers.splice(timers.indexOf(timer as (typeof timers)[0]), 1),
      advance(ms: number) {
        time += ms;
        for (const timer of timers.filter((t) => t.due <= time)) {
          timers.splice(timers.indexOf(timer), 1);
          timer.run();
        }
      },
      pending: () => timers.length,
    };
  }

  it("runs at once, then at most once per gap", () => {
    const time = fakeTime();
    let runs = 0;
    const throttle = new Throttle(() => runs++, 5000, time.schedule, time.cancel, time.now);
    throttle.request();
    expect(runs).toBe(1);
    throttle.request();
    throttle.request();
    expect(runs).toBe(1);
    time.advance(4999);
    expect(runs).toBe(1);
    time.advance(1);
    expect(runs).toBe(2);
    time.advance(10000);
    throttle.request();
    expect(runs).toBe(3);
  });

  it("drops what is put off when stopped", () => {
    const time = fakeTime();
    let runs = 0;
    const throttle = new Throttle(() => runs++, 5000, time.schedule, time.cancel, time.now);
    throttle.request();
    throttle.request();
    throttle.stop();
    expect(time.pending()).toBe(0);
    time.advance(6000);
    expect(runs).toBe(1);
  });
});
