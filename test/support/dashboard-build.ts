/** Builds the dashboard into dist/dashboard when it is missing or older than its sources (as `npm start` does). */
export function buildDashboard(): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { buildDashboardIfStale } = require("../../scripts/build-if-stale.js") as { buildDashboardIfStale(): void };
  buildDashboardIfStale();
}
