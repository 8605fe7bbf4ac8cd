// The notification area: results of actions and errors, newest first.
import { reactive } from "vue";

export interface Notice {
  id: number;
  kind: "ok" | "error";
  text: string;
}

export const notices = reactive<Notice[]>([]);
let nextId = 1;
const MAX_NOTICES = 6;

export function notify(kind: Notice["kind"], text: string) {
  const notice = { id: nextId++, kind, text };
  notices.unshift(notice);
  notices.splice(MAX_NOTICES);
  if (kind === "ok") setTimeout(() => dismiss(notice.id), 6000);
}

export function dismiss(id: number) {
  const at = notices.findIndex((n) => n.id === id);
  if (at >= 0) notices.splice(at, 1);
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/// Runs an action; tells its result (or its error) in the notification area.
export async function act<T>(work: () => Promise<T>, success: string): Promise<T | undefined> {
  try {
    const result = await work();
    if (success) notify("ok", success);
    return result;
  } catch (error) {
    notify("error", message(error));
    return undefined;
  }
}

/// Runs one action per item; tells how many worked and why the others did not.
export async function actOnAll<T>(
  items: T[],
  work: (item: T) => Promise<unknown>,
  describe: (done: number) => string,
  name: (item: T) => string,
) {
  const results = await Promise.allSettled(items.map(work));
  const done = results.filter((r) => r.status === "fulfilled").length;
  if (done > 0) notify("ok", describe(done));
  results.forEach((result, index) => {
    if (result.status === "rejected") {
      notify("error", `${name(items[index])}: ${message(result.reason)}`);
    }
  });
}
