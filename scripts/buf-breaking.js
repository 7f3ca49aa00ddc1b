#!/usr/bin/env node
// `buf breaking` of the working tree's contract against the last commit of main (the published contract).
"use strict";
const { execFileSync, spawnSync } = require("node:child_process");
const path = require("node:path");

const root = path.resolve(__dirname, "..");
const git = (...args) => spawnSync("git", args, { cwd: root, encoding: "utf8" });

if (git("rev-parse", "--verify", "--quiet", "refs/heads/main").status !== 0) {
  console.log("buf breaking: no local main branch to compare with; skipped");
  process.exit(0);
}
if (git("cat-file", "-e", "main:buf.yaml").status !== 0) {
  console.log("buf breaking: main has no contract yet; skipped");
  process.exit(0);
}
const buf = path.join(root, "node_modules", ".bin", "buf");
try {
  execFileSync(buf, ["breaking", "--against", ".git#branch=main"], { cwd: root, stdio: "inherit" });
} catch (err) {
  process.exit(err.status ?? 1);
}
