#!/usr/bin/env node
// Builds the package twice from the same sources: CommonJS into dist/cjs and ES modules into
// dist/esm, each folder marked with its module type so Node and TypeScript read it as such.
const { execFileSync } = require("node:child_process");
const { mkdirSync, rmSync, writeFileSync } = require("node:fs");
const path = require("node:path");

const root = path.resolve(__dirname, "..");
const dist = path.join(root, "dist");
const tsc = require.resolve("typescript/bin/tsc");

rmSync(dist, { recursive: true, force: true });
const builds = [
  { dir: "cjs", type: "commonjs", args: [] },
  { dir: "esm", type: "module", args: ["--module", "es2022", "--moduleResolution", "bundler"] },
];
for (const { dir, type, args } of builds) {
  execFileSync(process.execPath, [tsc, "-p", path.join(root, "tsconfig.json"), "--outDir", path.join(dist, dir), ...args], { stdio: "inherit" });
  mkdirSync(path.join(dist, dir), { recursive: true });
  writeFileSync(path.join(dist, dir, "package.json"), `${JSON.stringify({ type })}\n`);
}
