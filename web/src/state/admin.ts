// Helpers of the admin page: the registration secret's display and the audit log's pages.
import type { AuditEntry } from "../api/types";

/// The secret with all but its last four characters hidden, to tell secrets apart at a
/// glance without showing them to whoever looks over the admin's shoulder.
export function maskSecret(secret: string): string {
  const shown = secret.length > 8 ? secret.slice(-4) : "";
  return "•".repeat(Math.max(secret.length - shown.length, 8)) + shown;
}

/// Where the audit log's next older page starts, or undefined when this page is the last.
/// The log is read newest first; `before` excludes the entry it names.
export function olderCursor(entries: AuditEntry[], limit: number): number | undefined {
  return entries.length < limit ? undefined : entries.at(-1)?.id;
}

/// The pages of the audit log visited so far, newest first: each is the `before`
/// cursor it was read with (undefined for the newest page).
export class AuditPages {
  private cursors: (number | undefined)[] = [undefined];

  get current(): number | undefined {
    return this.cursors[this.cursors.length - 1];
  }

  get atNewest(): boolean {
    return this.cursors.length === 1;
  }

  /// Steps to the page after `entries` (the current page); false when there is none.
  older(entries: AuditEntry[], limit: number): boolean {
    const cursor = olderCursor(entries, limit);
    if (cursor === undefined) return false;
    this.cursors.push(cursor);
    return true;
  }

  /// Steps back towards the newest page.
  newer() {
    if (this.cursors.length > 1) this.cursors.pop();
  }
}
