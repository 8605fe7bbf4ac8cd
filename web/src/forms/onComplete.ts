// The on-complete command line of a submission: a program and its arguments, split by the
// manager like a shell would (no shell runs it). Checked here as the manager checks it, so a
// mistake is shown at the field before anything is sent.

/// The longest command line the manager takes (8 KiB).
export const MAX_ON_COMPLETE_BYTES = 8 * 1024;

/// Why the command line cannot be sent (undefined when it can; blank means none).
export function onCompleteError(text: string): string | undefined {
  const line = text.trim();
  if (!line) return undefined;
  if (new TextEncoder().encode(line).length > MAX_ON_COMPLETE_BYTES) {
    return `The on-complete command is longer than ${MAX_ON_COMPLETE_BYTES} bytes`;
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0008\u000a-\u001f\u007f]/.test(line)) {
    return "The on-complete command must be one line";
  }
  let quote: "'" | '"' | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote === "'") {
      if (c === "'") quote = null;
    } else if (c === "\\") {
      i++;
      if (i >= line.length) return "The on-complete command ends with an unfinished backslash escape";
    } else if (quote === '"') {
      if (c === '"') quote = null;
    } else if (c === "'" || c === '"') {
      quote = c;
    }
  }
  if (quote) return `The on-complete command has an unterminated ${quote === "'" ? "single" : "double"} quote`;
  return undefined;
}
