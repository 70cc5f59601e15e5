// Keyboard shortcuts of the window. Letters and digits are matched by their key position
// (`KeyboardEvent.code`) so they work on every layout (on macOS, Alt+1 types "¡"); Ctrl on
// Linux and Windows is Cmd on macOS.

export type Shortcut = { go: number } | "quit" | "open";

/** The shortcut `e` asks for, if any: Alt+1…5 a screen, Ctrl/Cmd+Q quit, Ctrl/Cmd+O share files. */
export function shortcut(e: Pick<KeyboardEvent, "altKey" | "ctrlKey" | "metaKey" | "shiftKey" | "code" | "key">): Shortcut | null {
  const command = e.ctrlKey || e.metaKey;
  if (e.altKey && !command) {
    const digit = /^(?:Digit|Numpad)([1-5])$/.exec(e.code)?.[1] ?? (/^[1-5]$/.test(e.key) ? e.key : null);
    return digit ? { go: Number(digit) } : null;
  }
  if (command && !e.altKey && !e.shiftKey) {
    // Synthetic events (assistive tools, test drivers) may carry no key position.
    const letter = e.code ? /^Key([A-Z])$/.exec(e.code)?.[1] : e.key.toUpperCase();
    if (letter === "Q") return "quit";
    if (letter === "O") return "open";
  }
  return null;
}
