// The tasks of one job as the dashboard holds them: fixed-size pages read on demand for
// the rows in view (a job may have 100,000 tasks), a bounded number kept, and single tasks
// patched in place when the event stream says they changed.
import type { TaskSummary } from "../api/types";

export class TaskPageCache {
  /// Matching tasks in all, as the server last said; null before the first page.
  total: number | null = null;
  private pages = new Map<number, TaskSummary[]>();
  private loading = new Set<number>();
  /// Task id → page number, for patching.
  private where = new Map<string, number>();
  /// Pages in the order they were last used, oldest first.
  private used: number[] = [];
  /// Bumped on every reset, so answers to older requests are dropped.
  generation = 0;

  constructor(
    readonly pageSize = 200,
    private readonly maxPages = 40,
  ) {}

  /// Forgets everything (filter changed or a resync).
  reset() {
    this.pages.clear();
    this.loading.clear();
    this.where.clear();
    this.used = [];
    this.total = null;
    this.generation += 1;
  }

  pageOf(row: number): number {
    return Math.floor(row / this.pageSize);
  }

  /// Pages covering rows `first..=last` that are neither held nor being read.
  missingPages(first: number, last: number): number[] {
    const lastRow = this.total === null ? last : Math.min(last, this.total - 1);
    const wanted: number[] = [];
    for (let page = this.pageOf(Math.max(0, first)); page <= this.pageOf(Math.max(0, lastRow)); page++) {
      if (!this.pages.has(page) && !this.loading.has(page)) wanted.push(page);
    }
    if (this.total === null && wanted.length === 0 && !this.pages.has(0) && !this.loading.has(0)) {
      wanted.push(0);
    }
    return wanted;
  }

  markLoading(page: number) {
    this.loading.add(page);
  }

  /// Stores a page read under `generation`; ignored when the cache was reset since.
  store(generation: number, page: number, tasks: TaskSummary[], total: number): boolean {
    if (generation !== this.generation) return false;
    this.loading.delete(page);
    this.total = total;
    this.drop(page);
    this.pages.set(page, tasks);
    tasks.forEach((task) => this.where.set(task.id, page));
    this.touch(page);
    this.evict();
    return true;
  }

  /// A page read failed: it may be asked for again.
  failed(generation: number, page: number) {
    if (generation === this.generation) this.loading.delete(page);
  }

  row(index: number): TaskSummary | undefined {
    const page = this.pages.get(this.pageOf(index));
    return page?.[index % this.pageSize];
  }

  has(taskId: string): boolean {
    return this.where.has(taskId);
  }

  /// Replaces a held task by its fresh state; false when the task is not held.
  patch(task: TaskSummary): boolean {
    const page = this.where.get(task.id);
    if (page === undefined) return false;
    const rows = this.pages.get(page);
    const at = rows?.findIndex((t) => t.id === task.id) ?? -1;
    if (!rows || at < 0) return false;
    rows[at] = task;
    return true;
  }

  /// Held pages that intersect rows `first..=last`.
  heldPages(first: number, last: number): number[] {
    const pages: number[] = [];
    for (let page = this.pageOf(Math.max(0, first)); page <= this.pageOf(Math.max(0, last)); page++) {
      if (this.pages.has(page)) pages.push(page);
    }
    return pages;
  }

  /// Forgets pages so they are read again when in view.
  forget(pages: number[]) {
    pages.forEach((page) => this.drop(page));
  }

  /// Forgets every held page but `keep` (the pages in view, read again by the caller): when
  /// tasks were replaced, pages out of view hold rows that are gone.
  forgetAllBut(keep: number[]) {
    const kept = new Set(keep);
    this.forget([...this.pages.keys()].filter((page) => !kept.has(page)));
  }

  get pageCount(): number {
    return this.pages.size;
  }

  private drop(page: number) {
    this.pages.get(page)?.forEach((task) => {
      if (this.where.get(task.id) === page) this.where.delete(task.id);
    });
    this.pages.delete(page);
    this.used = this.used.filter((p) => p !== page);
  }

  private touch(page: number) {
    this.used = this.used.filter((p) => p !== page);
    this.used.push(page);
  }

  private evict() {
    while (this.used.length > this.maxPages) {
      const oldest = this.used[0];
      this.drop(oldest);
    }
  }
}
