// Keyboard shortcuts of the window. Ctrl on Linux and Windows is Cmd on macOS. Letters are
// matched by what the key types (Ctrl+Q is the key labelled Q, on AZERTY too), and by the key's
// position only where it types no Latin letter (a Cyrillic layout); digits after Alt by position
// (on macOS, Alt+1 types "¡").

export type Shortcut = { go: number } | "quit" | "open";

/** The shortcut `e` asks for, if any: Alt+1…5 a screen, Ctrl/Cmd+Q quit, Ctrl/Cmd+O share files. */
export function shortcut(e: Pick<KeyboardEvent, "altKey" | "ctrlKey" | "metaKey" | "shiftKey" | "code" | "key">): Shortcut | null {
  const command = e.ctrlKey || e.metaKey;
  if (e.altKey && !command) {
    const digit = /^(?:Digit|Numpad)([1-5])$/.exec(e.code)?.[1] ?? (/^[1-5]$/.test(e.key) ? e.key : null);
    return digit ? { go: Number(digit) } : null;
  }
  if (command && !e.altKey && !e.shiftKey) {
    const letter = /^[a-z]$/i.test(e.key) ? e.key.toUpperCase() : /^Key([A-Z])$/.exec(e.code)?.[1];
    if (letter === "Q") return "quit";
    if (letter === "O") return "open";
  }
  return null;
}
