// Builds dist/ once before the suites run, so end-to-end suites that start `npm start` in parallel
// find it current instead of each compiling it.
"use strict";
const { execFileSync } = require("node:child_process");
const path = require("node:path");

module.exports = async () => {
  const root = path.resolve(__dirname, "..", "..");
  execFileSync(process.execPath, [require.resolve("typescript/bin/tsc"), "-p", "tsconfig.build.json"], { cwd: root, stdio: "inherit" });
};
