// Builds dist/ (the service, and the dashboard when stale) once before the suites run, so end-to-end
// suites that start `npm start` in parallel find it current instead of each building it.
"use strict";
const { execFileSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");

module.exports = async () => {
  const root = path.resolve(__dirname, "..", "..");
  // Where every service started by this run keeps its log lines (read back by global-teardown.js).
  process.env.PERSISTENCE_TEST_RUN_DIR = fs.mkdtempSync(path.join(os.tmpdir(), "persistence-test-run-"));
  execFileSync(process.execPath, [require.resolve("typescript/bin/tsc"), "-p", "tsconfig.build.json"], { cwd: root, stdio: "inherit" });
  require("../../scripts/build-if-stale.js").buildDashboardIfStale();
};
