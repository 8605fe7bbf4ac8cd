// The dashboard's one event stream. EventSource retries dropped connections by itself; when
// it gives up (the manager answered with an error while restarting) we open a new one with
// back-off. After every reconnect subscribers get a resync: events sent while we were away
// are lost, so pages re-read what they show.
import { ref } from "vue";
import type { ChangeEvent } from "../api/types";
import { ChangeBatcher, type ChangeBatch } from "./changeBatcher";

export const EVENT_KINDS = [
  "job",
  "task",
  "worker",
  "task-log",
  "last-rendered",
  "job-deleted",
  "resync",
] as const;

export type ConnectionState = "connecting" | "live" | "reconnecting";

/// The parts of EventSource the stream uses, so tests can give a fake.
export interface EventSourceLike {
  readyState: number;
  onopen: ((this: EventSourceLike, ev: Event) => unknown) | null;
  onerror: ((this: EventSourceLike, ev: Event) => unknown) | null;
  addEventListener(kind: string, listener: (ev: MessageEvent) => void): void;
  close(): void;
}

export type EventSourceFactory = (url: string) => EventSourceLike;

const CLOSED = 2;

export class EventStream {
  readonly state = ref<ConnectionState>("connecting");
  private source: EventSourceLike | null = null;
  private listeners = new Set<(batch: ChangeBatch) => void>();
  private batcher: ChangeBatcher;
  private wasLive = false;
  private retryMs = 500;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private stopped = false;

  constructor(
    private readonly url: () => string,
    private readonly open: EventSourceFactory = (url) => new EventSource(url) as EventSourceLike,
    batchDelayMs = 150,
  ) {
    this.batcher = new ChangeBatcher((batch) => this.listeners.forEach((l) => l(batch)), batchDelayMs);
  }

  /// Calls `listener` with every batch of changes; returns the unsubscribe function.
  subscribe(listener: (batch: ChangeBatch) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.source?.close();
    this.source = null;
  }

  private connect() {
    const source = this.open(this.url());
    this.source = source;
    source.onopen = () => {
      this.retryMs = 500;
      this.state.value = "live";
      if (this.wasLive) this.batcher.add({ kind: "resync" });
      this.wasLive = true;
    };
    source.onerror = () => {
      if (this.stopped || this.source !== source) return;
      this.state.value = "reconnecting";
      if (source.readyState === CLOSED) {
        source.close();
        this.retryTimer = setTimeout(() => this.connect(), this.retryMs);
        this.retryMs = Math.min(this.retryMs * 2, 5000);
      }
    };
    for (const kind of EVENT_KINDS) {
      source.addEventListener(kind, (message) => this.received(kind, message));
    }
  }

  private received(kind: ChangeEvent["kind"], message: MessageEvent) {
    let data: Record<string, string> = {};
    try {
      data = JSON.parse(String(message.data)) ?? {};
    } catch {
      // An event without usable data still tells that something changed.
    }
    this.batcher.add({
      kind,
      job_id: data.job_id,
      task_id: data.task_id,
      worker_id: data.worker_id,
    });
  }
}
