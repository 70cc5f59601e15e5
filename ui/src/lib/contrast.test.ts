// WCAG AA contrast of the theme's colours, in both themes: text ≥ 4.5:1 on every background it
// is shown on, control borders and focus rings ≥ 3:1 (WCAG 1.4.3 and 1.4.11).
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { join } from "node:path";

const css = readFileSync(join(__dirname, "..", "theme.css"), "utf8");

function tokens(block: string): Record<string, string> {
  return Object.fromEntries([...block.matchAll(/--([\w-]+):\s*(#[0-9a-f]{6})/gi)].map((m) => [m[1], m[2].toLowerCase()]));
}

const light = tokens(css.slice(0, css.indexOf("@media (prefers-color-scheme: dark)")));
const dark = { ...light, ...tokens(css.slice(css.indexOf("@media (prefers-color-scheme: dark)"))) };

type Rgb = [number, number, number];
const rgb = (hex: string): Rgb => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255) as Rgb;
const luminance = ([r, g, b]: Rgb) => {
  const ch = (x: number) => (x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4);
  return 0.2126 * ch(r) + 0.7152 * ch(g) + 0.0722 * ch(b);
};
const ratio = (a: Rgb, b: Rgb) => {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
};
/** `color-mix(in srgb, c p%, transparent)` drawn over `under`. */
const tint = (c: Rgb, p: number, under: Rgb): Rgb => c.map((v, i) => v * p + under[i] * (1 - p)) as Rgb;

/** [foreground, background, what it is]; a background "x@18" is token x at 18% over the panel and the page. */
const TEXT: [string, string, string][] = [
  ["text", "bg", "body text"],
  ["text", "panel", "text on cards"],
  ["text", "nav", "navigation"],
  ["text", "hover", "hovered items"],
  ["muted", "bg", "secondary text"],
  ["muted", "panel", "secondary text on cards"],
  ["muted", "nav", "status line"],
  ["muted", "hover", "plain badges"],
  ["accent", "bg", "links and ghost buttons"],
  ["accent", "panel", "links and ghost buttons on cards"],
  ["accent-strong", "accent-soft", "the current screen in the navigation"],
  ["accent-text", "accent", "primary buttons"],
  ["ok", "panel", "success text"],
  ["ok", "bg", "success text on the page"],
  ["error", "panel", "error text"],
  ["error", "bg", "error text on the page"],
  ["ok", "ok@18", "live / completed badges"],
  ["error", "error@16", "failed badges"],
  ["warn", "warn@18", "interrupted / cancelled / paused badges"],
];

const BORDERS: [string, string, string][] = [
  ["control-border", "bg", "input and button borders"],
  ["control-border", "panel", "input and button borders on cards"],
  ["control-border", "nav", "controls in the navigation"],
  ["accent", "bg", "focus ring"],
  ["accent", "panel", "focus ring on cards"],
];

function check(theme: Record<string, string>, pairs: [string, string, string][], min: number): string[] {
  const failures: string[] = [];
  for (const [fg, bg, what] of pairs) {
    const [name, pct] = bg.split("@");
    const backgrounds: Rgb[] = pct
      ? [tint(rgb(theme[name]), Number(pct) / 100, rgb(theme.panel)), tint(rgb(theme[name]), Number(pct) / 100, rgb(theme.bg))]
      : [rgb(theme[bg])];
    expect(theme[fg], `--${fg} is defined`).toBeDefined();
    for (const b of backgrounds) {
      const r = ratio(rgb(theme[fg]), b);
      if (r < min) failures.push(`${what}: --${fg} on ${bg} is ${r.toFixed(2)}:1, needs ${min}:1`);
    }
  }
  return failures;
}

describe("theme contrast (WCAG AA)", () => {
  for (const [name, theme] of [["light", light], ["dark", dark]] as const) {
    it(`${name}: text is at least 4.5:1 on what it sits on`, () => {
      expect(check(theme, TEXT, 4.5)).toEqual([]);
    });
    it(`${name}: control borders and focus rings are at least 3:1`, () => {
      expect(check(theme, BORDERS, 3)).toEqual([]);
    });
  }
  it("reads both themes from theme.css", () => {
    expect(light.bg).not.toBe(dark.bg);
    expect(Object.keys(dark).length).toBeGreaterThan(10);
  });
});
