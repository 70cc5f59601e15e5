import { describe, expect, it } from "vitest";
import { formatBytes, formatEta, formatRate } from "./format";
import { describeError } from "./api";

describe("format", () => {
  it("formats sizes with sensible precision", () => {
    expect(formatBytes(0)).toBe("0 B");
    expect(formatBytes(999)).toBe("999 B");
    expect(formatBytes(1500)).toBe("1.5 KB");
    expect(formatBytes(25_000_000)).toBe("25 MB");
    expect(formatBytes(-1)).toBe("–");
  });
  it("formats rates and time left", () => {
    expect(formatRate(2_500_000)).toBe("2.5 MB/s");
    expect(formatEta(42)).toBe("42 s left");
    expect(formatEta(125)).toBe("2 min 5 s left");
    expect(formatEta(null)).toBe("");
  });
  it("turns rejected commands into messages", () => {
    expect(describeError({ code: "ticket_malformed", message: "this is not a Ferry ticket" })).toBe(
      "this is not a Ferry ticket",
    );
    expect(describeError("plain")).toBe("plain");
  });
});
