import { Gauge, type Registry } from "prom-client";
import type { HealthMonitor } from "../core/health-monitor.js";

/**
 * Figures about the instance itself: `persistence_backend_up{backend}` (1 while the last probe found it
 * answering) and `persistence_build_info{version,node}` (always 1, to join other series with the version).
 */
export function registerSystemMetrics(registry: Registry, monitor: HealthMonitor, version: string): void {
  new Gauge({
    name: "persistence_backend_up",
    help: "1 while the backend answered its last health probe, 0 otherwise.",
    labelNames: ["backend"],
    registers: [registry],
    collect() {
      for (const [backend, state] of Object.entries(monitor.current().backends)) this.set({ backend }, state === "up" ? 1 : 0);
    },
  });
  const build = new Gauge({
    name: "persistence_build_info",
    help: "The running build: always 1, labelled with the service and Node.js versions.",
    labelNames: ["version", "node"],
    registers: [registry],
  });
  build.set({ version, node: process.versions.node }, 1);
}
