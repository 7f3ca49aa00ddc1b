import path from "node:path";
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

const here = path.dirname(fileURLToPath(import.meta.url));

/** Builds the dashboard into dist/dashboard, served by server/dashboard at /dashboard/. */
export default defineConfig({
  root: here,
  base: "/dashboard/",
  logLevel: "warn",
  build: {
    outDir: path.resolve(here, "../../../dist/dashboard"),
    emptyOutDir: true,
    assetsDir: "assets",
    target: "es2022",
    chunkSizeWarningLimit: 1024,
  },
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
});
