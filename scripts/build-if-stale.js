// Compiles the service into dist/ when dist/ is missing or older than its sources (used by `npm start`
// and by tests that run compiled code in a process of its own).
"use strict";
const { execFileSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");

const root = path.resolve(__dirname, "..");
const entry = path.join(root, "dist", "server", "main.js");

function newestMtime(target) {
  const stat = fs.statSync(target);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let newest = stat.mtimeMs;
  for (const name of fs.readdirSync(target)) newest = Math.max(newest, newestMtime(path.join(target, name)));
  return newest;
}

/** Builds when stale; returns the path of the compiled entry point. */
function buildIfStale() {
  const sources = ["server", "gen", "package.json", "tsconfig.json", "tsconfig.build.json"].map((p) => path.join(root, p));
  const stale = !fs.existsSync(entry) || Math.max(...sources.map(newestMtime)) > fs.statSync(entry).mtimeMs;
  if (stale) {
    process.stderr.write("building the service (npm run build)...\n");
    execFileSync(process.execPath, [require.resolve("typescript/bin/tsc"), "-p", path.join(root, "tsconfig.build.json")], {
      cwd: root,
      stdio: "inherit",
    });
    // tsc leaves outputs it did not need to rewrite untouched; mark the build as current.
    const now = new Date();
    fs.utimesSync(entry, now, now);
  }
  return entry;
}

const dashboardEntry = path.join(root, "dist", "dashboard", "index.html");

/**
 * Builds the dashboard (Vite) into dist/dashboard when it is missing or older than its sources. Without
 * Vite (an install that left out devDependencies) it says so and leaves the service to answer 503 there.
 */
function buildDashboardIfStale() {
  const sources = [path.join("server", "dashboard", "web"), path.join("gen", "persistence"), "package.json"].map((p) => path.join(root, p));
  const stale = !fs.existsSync(dashboardEntry) || Math.max(...sources.map(newestMtime)) > fs.statSync(dashboardEntry).mtimeMs;
  if (!stale) return;
  let vite;
  try {
    const manifest = require.resolve("vite/package.json", { paths: [root] });
    vite = path.join(path.dirname(manifest), require(manifest).bin.vite);
  } catch {
    process.stderr.write("the dashboard is not built and Vite is not installed (npm ci installs it); /dashboard will answer 503\n");
    return;
  }
  process.stderr.write("building the dashboard (npm run build:dashboard)...\n");
  execFileSync(process.execPath, [vite, "build", "--config", path.join(root, "server", "dashboard", "web", "vite.config.mts")], { cwd: root, stdio: "inherit" });
}

module.exports = { buildIfStale, buildDashboardIfStale };
