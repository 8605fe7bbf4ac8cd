// Desktop notifications from the open dashboard (the browser's Notification API): once
// switched on ("Notify me on this computer", remembered in this browser), every job change
// from the event stream is checked, and a job that completed, failed or awaits approval
// shows a notification; clicking it opens the job.
import { reactive } from "vue";
import { api } from "../api/client";
import { events } from "../live";
import { router } from "../router";
import { desktopMessage } from "./desktopMessage";

const KEY = "castanet.desktop-notifications";
/// A burst with more changed jobs than this checks only the first ones.
const MAX_CHECKS_PER_BATCH = 50;

export const desktop = reactive({
  enabled: false,
  permission: (typeof Notification === "undefined" ? "unsupported" : Notification.permission) as
    | NotificationPermission
    | "unsupported",
  shown: 0,
});

const seen = new Map<string, string>();
const checking = new Set<string>();
const checkAgain = new Set<string>();
let since = 0;
let unsubscribe: (() => void) | null = null;

/// Asks for permission and starts; false when the browser or the user refused.
export async function enableDesktopNotifications(): Promise<boolean> {
  if (typeof Notification === "undefined") {
    desktop.permission = "unsupported";
    return false;
  }
  desktop.permission = await Notification.requestPermission();
  if (desktop.permission !== "granted") return false;
  localStorage.setItem(KEY, "on");
  start();
  return true;
}

export function disableDesktopNotifications() {
  localStorage.removeItem(KEY);
  unsubscribe?.();
  unsubscribe = null;
  desktop.enabled = false;
}

/// At page load: on again if it was on in this browser and permission still stands.
export function resumeDesktopNotifications() {
  if (localStorage.getItem(KEY) === "on" && typeof Notification !== "undefined" && Notification.permission === "granted") {
    start();
  }
}

function start() {
  if (unsubscribe) return;
  desktop.enabled = true;
  since = Date.now();
  unsubscribe = events.subscribe((batch) => {
    for (const id of [...batch.jobs].slice(0, MAX_CHECKS_PER_BATCH)) check(id);
    for (const id of batch.deletedJobs) seen.delete(id);
  });
}

async function check(id: string) {
  if (checking.has(id)) {
    // One read at a time per job, so a change is never announced twice.
    checkAgain.add(id);
    return;
  }
  checking.add(id);
  try {
    const job = await api.job(id);
    const text = desktopMessage(seen.get(id), job, since);
    seen.set(id, job.status);
    if (text && desktop.enabled) show(text, id);
  } catch {
    // A job deleted meanwhile, or the manager away: the next change is checked again.
  } finally {
    checking.delete(id);
    if (checkAgain.delete(id)) check(id);
  }
}

function show(text: string, jobId: string) {
  const notification = new Notification("Castanet", { body: text, tag: `castanet-job-${jobId}` });
  notification.onclick = () => {
    window.focus();
    router.push(`/jobs/${jobId}`);
  };
  desktop.shown += 1;
}
