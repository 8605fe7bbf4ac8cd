// Live log tailing from the manager's `logtail` (the last 2 KiB of the log): each fresh
// tail is joined to what is shown at the place where the two overlap.

export interface TailMerge {
  text: string;
  /// The new tail did not overlap what was shown: lines in between were not seen.
  gap: boolean;
}

/// How much of the shown text must be found in the new tail to join them.
const ANCHOR = 160;

/// Most characters kept in view; older lines are dropped (the whole log can be loaded).
export const MAX_SHOWN = 400_000;

export function mergeTail(shown: string, tail: string): TailMerge {
  if (!shown) return { text: clip(tail), gap: false };
  if (!tail || shown.endsWith(tail)) return { text: shown, gap: false };
  const anchor = shown.slice(-Math.min(ANCHOR, shown.length));
  const at = tail.lastIndexOf(anchor);
  if (at >= 0) return { text: clip(shown + tail.slice(at + anchor.length)), gap: false };
  // The log restarted (task requeued) or grew by more than a tail in between.
  if (tail.length < anchor.length && anchor.endsWith(tail)) return { text: shown, gap: false };
  return { text: clip(`${shown}\n…\n${tail}`), gap: true };
}

function clip(text: string): string {
  if (text.length <= MAX_SHOWN) return text;
  const cut = text.indexOf("\n", text.length - MAX_SHOWN);
  return text.slice(cut < 0 ? text.length - MAX_SHOWN : cut + 1);
}
