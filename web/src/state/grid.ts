// The grid views' state: cards of jobs (or of one job's tasks) with their newest preview
// image, status and progress. Every merge returns a new list that keeps the card objects
// of unchanged jobs and tasks, so Vue re-renders only the cards that changed.
import type { Counts, Job, PreviewImage, RenderedFrame, TaskSummary } from "../api/types";
import { taskProgress } from "./jobList";

export interface JobCard {
  job: Job;
  /// Completed and total tasks.
  done: number;
  total: number;
  /// The image's URL with its cache-buster, or null when the job has no preview yet.
  image: string | null;
}

export interface TaskCard {
  task: TaskSummary;
  /// The frame the image shows, with the image's URL (cache-busted).
  frame: number | null;
  image: string | null;
}

/// An image path made unique per version: a browser never shows an older image it cached
/// under the same URL.
export function cacheBusted(path: string, updated: string): string {
  return `${path}${path.includes("?") ? "&" : "?"}v=${encodeURIComponent(updated)}`;
}

/// The job cards of `jobs` (in their order) with their counts and images.
export function jobCards(jobs: Job[], counts: Record<string, Counts>, images: PreviewImage[]): JobCard[] {
  const imageOf = new Map(images.map((i) => [i.job_id, cacheBusted(i.image, i.updated)]));
  return jobs.map((job) => {
    const { completed, total } = taskProgress(counts[job.id]);
    return { job, done: completed, total, image: imageOf.get(job.id) ?? null };
  });
}

export interface JobCardPatch {
  cards: JobCard[];
  /// A job the grid does not show now belongs on it: read the list again.
  reload: boolean;
}

/// Folds freshly read `changed` jobs and `gone` (deleted) ids into the cards. A job that
/// leaves the status filter drops out; one that enters it (or a new job) needs a reload,
/// since only the manager knows its place among the others.
export function mergeJobs(cards: JobCard[], changed: Job[], gone: string[], statuses: string[]): JobCardPatch {
  const fresh = new Map(changed.map((job) => [job.id, job]));
  const dropped = new Set(gone);
  const shown = new Set(cards.map((card) => card.job.id));
  const matches = (job: Job) => statuses.length === 0 || statuses.includes(job.status);
  const reload = changed.some((job) => !shown.has(job.id) && !dropped.has(job.id) && matches(job));
  const next: JobCard[] = [];
  for (const card of cards) {
    if (dropped.has(card.job.id)) continue;
    const job = fresh.get(card.job.id);
    if (!job) next.push(card);
    else if (matches(job)) next.push(sameJob(card.job, job) ? card : { ...card, job });
  }
  return { cards: next, reload };
}

/// Folds task counts of some jobs into their cards.
export function mergeCounts(cards: JobCard[], counts: Record<string, Counts>): JobCard[] {
  return cards.map((card) => {
    const fresh = counts[card.job.id];
    if (!fresh) return card;
    const { completed, total } = taskProgress(fresh);
    return completed === card.done && total === card.total ? card : { ...card, done: completed, total };
  });
}

/// Swaps in the images of the jobs in `images` (jobs not named keep theirs).
export function mergeImages(cards: JobCard[], images: PreviewImage[]): JobCard[] {
  const imageOf = new Map(images.map((i) => [i.job_id, cacheBusted(i.image, i.updated)]));
  return cards.map((card) => {
    const image = imageOf.get(card.job.id);
    return image === undefined || image === card.image ? card : { ...card, image };
  });
}

/// Each task's newest frame image: the one updated last (the higher frame on a tie).
export function newestFramePerTask(frames: RenderedFrame[]): Map<string, RenderedFrame> {
  const newest = new Map<string, RenderedFrame>();
  for (const frame of frames) {
    const known = newest.get(frame.task_id);
    if (
      !known ||
      frame.updated > known.updated ||
      (frame.updated === known.updated && frame.frame > known.frame)
    ) {
      newest.set(frame.task_id, frame);
    }
  }
  return newest;
}

/// The task cards of `tasks` (in their order) with each task's newest frame image.
export function taskCards(tasks: TaskSummary[], frames: RenderedFrame[]): TaskCard[] {
  const newest = newestFramePerTask(frames);
  return tasks.map((task) => withFrame({ task, frame: null, image: null }, newest.get(task.id)));
}

/// Folds freshly read tasks into their cards (tasks not shown are ignored).
export function mergeTasks(cards: TaskCard[], changed: TaskSummary[]): TaskCard[] {
  const fresh = new Map(changed.map((task) => [task.id, task]));
  return cards.map((card) => {
    const task = fresh.get(card.task.id);
    return !task || sameTask(card.task, task) ? card : { ...card, task };
  });
}

/// Swaps in the newest frame image of every task `frames` names.
export function mergeFrames(cards: TaskCard[], frames: RenderedFrame[]): TaskCard[] {
  const newest = newestFramePerTask(frames);
  return cards.map((card) => withFrame(card, newest.get(card.task.id)));
}

function withFrame(card: TaskCard, frame: RenderedFrame | undefined): TaskCard {
  if (!frame) return card;
  const image = cacheBusted(frame.image, frame.updated);
  return image === card.image && frame.frame === card.frame ? card : { ...card, frame: frame.frame, image };
}

/// What a job card shows changed.
function sameJob(a: Job, b: Job): boolean {
  return a.name === b.name && a.status === b.status && a.updated === b.updated && a.activity === b.activity;
}

/// What a task card shows changed.
function sameTask(a: TaskSummary, b: TaskSummary): boolean {
  return (
    a.name === b.name &&
    a.status === b.status &&
    a.updated === b.updated &&
    a.steps_completed === b.steps_completed &&
    a.steps_total === b.steps_total &&
    a.progress === b.progress &&
    a.activity === b.activity
  );
}

/// The card's progress in percent: a task's own progress when it reports one, else its steps.
export function taskPercent(task: TaskSummary): number {
  if (task.status === "completed") return 100;
  if (typeof task.progress === "number") return Math.max(0, Math.min(100, Math.round(task.progress)));
  return task.steps_total > 0 ? Math.round((100 * task.steps_completed) / task.steps_total) : 0;
}

/// `fresh` cards (a re-read of the whole grid) keeping the objects of `old` cards whose
/// content is unchanged, so a reload re-renders only what moved.
export function reconcileJobCards(old: JobCard[], fresh: JobCard[]): JobCard[] {
  const before = new Map(old.map((card) => [card.job.id, card]));
  return fresh.map((card) => {
    const known = before.get(card.job.id);
    return known &&
      sameJob(known.job, card.job) &&
      known.done === card.done &&
      known.total === card.total &&
      known.image === card.image
      ? known
      : card;
  });
}

/// Cards for a fresh read of the task page: a task already shown keeps its card (and image),
/// updated when it changed; a new task (a regrouped chunk) starts without an image.
export function reconcileTaskCards(old: TaskCard[], tasks: TaskSummary[]): TaskCard[] {
  const before = new Map(old.map((card) => [card.task.id, card]));
  return tasks.map((task) => {
    const known = before.get(task.id);
    if (!known) return { task, frame: null, image: null };
    return sameTask(known.task, task) ? known : { ...known, task };
  });
}
