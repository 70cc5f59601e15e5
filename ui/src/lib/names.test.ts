import { describe, expect, it } from "vitest";
import { tame } from "./names";

describe("names from other devices", () => {
  it("lose what could disguise them, and their excess length", () => {
    expect(tame("report\u202Etxt.exe")).toBe("reporttxt.exe");
    expect(tame("Office\nlaptop")).toBe("Officelaptop");
    expect(tame("x".repeat(100)).length).toBe(64);
    expect(tame("Küche")).toBe("Küche");
  });
});
