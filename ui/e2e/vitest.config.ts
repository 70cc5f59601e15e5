import { defineConfig } from "vitest/config";

// The end-to-end suite drives the real app window; scripts/e2e.sh starts Xvfb and tauri-driver.
export default defineConfig({
  test: {
    include: ["e2e/**/*.e2e.ts"],
    environment: "node",
    testTimeout: 120_000,
    hookTimeout: 120_000,
    fileParallelism: false,
    sequence: { concurrent: false },
  },
});
