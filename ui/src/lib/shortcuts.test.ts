import { describe, expect, it } from "vitest";
import { shortcut } from "./shortcuts";

const key = (k: Partial<KeyboardEvent>) => ({ altKey: false, ctrlKey: false, metaKey: false, shiftKey: false, code: "", key: "", ...k });

describe("shortcuts", () => {
  it("switches screens with Alt and a digit on any layout", () => {
    expect(shortcut(key({ altKey: true, code: "Digit3", key: "3" }))).toEqual({ go: 3 });
    // macOS: Alt+1 types "¡"; the key position still says Digit1.
    expect(shortcut(key({ altKey: true, code: "Digit1", key: "¡" }))).toEqual({ go: 1 });
    expect(shortcut(key({ altKey: true, code: "Digit9", key: "9" }))).toBeNull();
  });
  it("quits and opens with Ctrl on Linux and Cmd on macOS, by key position", () => {
    expect(shortcut(key({ ctrlKey: true, code: "KeyQ", key: "q" }))).toBe("quit");
    expect(shortcut(key({ metaKey: true, code: "KeyQ", key: "q" }))).toBe("quit");
    expect(shortcut(key({ metaKey: true, code: "KeyO", key: "o" }))).toBe("open");
    // A French AZERTY keyboard: the key labelled A sits where Q is on QWERTY, and Q where A is.
    expect(shortcut(key({ ctrlKey: true, code: "KeyQ", key: "a" }))).toBeNull();
    expect(shortcut(key({ ctrlKey: true, code: "KeyA", key: "q" }))).toBe("quit");
    // A Russian layout types no Latin letter: the key's position decides.
    expect(shortcut(key({ ctrlKey: true, code: "KeyQ", key: "й" }))).toBe("quit");
    expect(shortcut(key({ ctrlKey: true, shiftKey: true, code: "KeyQ", key: "Q" }))).toBeNull();
    expect(shortcut(key({ code: "KeyQ", key: "q" }))).toBeNull();
    expect(shortcut(key({ ctrlKey: true, code: "", key: "q" }))).toBe("quit");
  });
});
