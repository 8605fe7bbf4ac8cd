import { describe, expect, it } from "vitest";
import { ChangeBatcher, type ChangeBatch } from "../src/live/changeBatcher";
import { EventStream, type EventSourceLike } from "../src/live/eventStream";

describe("batching change events", () => {
  it("delivers one deduplicated batch per burst", () => {
    const batches: ChangeBatch[] = [];
    const pending: (() => void)[] = [];
    const batcher = new ChangeBatcher((b) => batches.push(b), 100, (run) => pending.push(run));
    batcher.add({ kind: "task", job_id: "j1", task_id: "t1" });
    batcher.add({ kind: "task", job_id: "j1", task_id: "t1" });
    batcher.add({ kind: "job", job_id: "j1" });
    batcher.add({ kind: "worker", worker_id: "w1" });
    batcher.add({ kind: "task-log", job_id: "j1", task_id: "t1" });
    batcher.add({ kind: "job-deleted", job_id: "j2" });
    expect(pending).toHaveLength(1);
    pending.shift()!();
    expect(batches).toHaveLength(1);
    expect([...batches[0].tasks]).toEqual([["t1", "j1"]]);
    expect([...batches[0].jobs]).toEqual(["j1"]);
    expect([...batches[0].workers]).toEqual(["w1"]);
    expect([...batches[0].taskLogs]).toEqual(["t1"]);
    expect([...batches[0].deletedJobs]).toEqual(["j2"]);
    batcher.add({ kind: "resync" });
    pending.shift()!();
    expect(batches[1].resync).toBe(true);
  });
});

class FakeSource implements EventSourceLike {
  readyState = 0;
  onopen: EventSourceLike["onopen"] = null;
  onerror: EventSourceLike["onerror"] = null;
  listeners = new Map<string, (ev: MessageEvent) => void>();
  closed = false;
  constructor(readonly url: string) {}
  addEventListener(kind: string, listener: (ev: MessageEvent) => void) {
    this.listeners.set(kind, listener);
  }
  close() {
    this.closed = true;
    this.readyState = 2;
  }
  emit(kind: string, data: unknown) {
    this.listeners.get(kind)?.({ data: JSON.stringify(data) } as MessageEvent);
  }
}

describe("the event stream", () => {
  it("reconnects after the manager went away and asks pages to resync", async () => {
    const sources: FakeSource[] = [];
    const stream = new EventStream(() => "/api/v3/events", (url) => {
      const source = new FakeSource(url);
      sources.push(source);
      return source;
    }, 0);
    const batches: ChangeBatch[] = [];
    stream.subscribe((b) => batches.push(b));
    stream.start();
    sources[0].readyState = 1;
    sources[0].onopen!.call(sources[0], new Event("open"));
    expect(stream.state.value).toBe("live");
    sources[0].emit("job", { type: "job", job_id: "j1" });
    await new Promise((r) => setTimeout(r, 5));
    expect([...batches[0].jobs]).toEqual(["j1"]);

    // The manager stops: the browser gives up on this source.
    sources[0].readyState = 2;
    sources[0].onerror!.call(sources[0], new Event("error"));
    expect(stream.state.value).toBe("reconnecting");
    const deadline = Date.now() + 3000;
    while (sources.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(sources).toHaveLength(2);
    sources[1].readyState = 1;
    sources[1].onopen!.call(sources[1], new Event("open"));
    await new Promise((r) => setTimeout(r, 5));
    expect(stream.state.value).toBe("live");
    expect(batches.at(-1)?.resync).toBe(true);
    stream.stop();
  });
});
