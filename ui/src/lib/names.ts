// Names other devices chose (device names, file names): shown, never trusted.

/** `name` without control or bidirectional formatting characters (which could make
 * `exe.txt` of `txt.exe`), cut to `max` characters. */
export function tame(name: string, max = 64): string {
  const clean = name.replace(/[\p{Cc}\u00AD\u061C\u180E\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u206F\uFEFF\uFFF9-\uFFFB]/gu, "");
  const chars = [...clean];
  return chars.length > max ? `${chars.slice(0, max - 1).join("")}…` : clean;
}
