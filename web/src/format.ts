// Small display helpers.

export function when(iso: string | undefined): string {
  if (!iso) return "—";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return date.toLocaleString(undefined, { dateStyle: "short", timeStyle: "medium" });
}

export function shortId(id: string): string {
  return id.slice(0, 8);
}

export function bytes(n: unknown): string {
  if (typeof n !== "number") return String(n ?? "—");
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit ? 1 : 0)} ${units[unit]}`;
}

const pad = (n: number) => String(n).padStart(2, "0");

/// A local time of day, "14:32" ("14:32:05" with `seconds`), for times near now: the day
/// is put in front only when it is not today ("tomorrow 09:10", "2026-03-04 09:10").
/// Written out by hand so that it reads the same in every locale.
export function clock(
  iso: string | undefined,
  options: { seconds?: boolean; now?: Date } = {},
): string {
  if (!iso) return "—";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  let text = `${pad(date.getHours())}:${pad(date.getMinutes())}`;
  if (options.seconds) text += `:${pad(date.getSeconds())}`;
  const now = options.now ?? new Date();
  const day = (d: Date) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  const tomorrow = new Date(now.getFullYear(), now.getMonth(), now.getDate() + 1);
  if (day(date) === day(now)) return text;
  if (day(date) === day(tomorrow)) return `tomorrow ${text}`;
  return `${day(date)} ${text}`;
}
