import type { Backend } from "../../server/backends/backend";
import { createHealthMonitor } from "../../server/core/health-monitor";

/** A backend whose pings are answered only when the test says so. */
function backendAnsweringOnCall(name: string) {
  const pending: { resolve: () => void; reject: (e: Error) => void }[] = [];
  const backend: Backend = {
    name,
    kind: "fake",
    ping: () => new Promise<void>((resolve, reject) => pending.push({ resolve, reject })),
    close: async () => {},
  };
  return { backend, pending };
}

describe("health monitor", () => {
  it("counts a backend that does not answer within the timeout as down, and says how old its picture is", async () => {
    const hung = backendAnsweringOnCall("sql");
    const monitor = createHealthMonitor([hung.backend], { intervalMs: 3_600_000, timeoutMs: 50 });
    try {
      expect(monitor.current().backends).toEqual({ sql: "up" });
      const probing = monitor.check();
      // Readers do not wait for the probe in flight.
      expect(monitor.current().backends).toEqual({ sql: "up" });
      expect(monitor.serving()).toBe(true);
      expect(await probing).toEqual({ sql: "down" });
      expect(monitor.serving()).toBe(false);
      expect(monitor.current().ageMs).toBeGreaterThanOrEqual(0);
    } finally {
      monitor.stop();
    }
  });

  it("waits again for a ping still unanswered instead of sending another, and recovers when it is answered", async () => {
    const hung = backendAnsweringOnCall("sql");
    const monitor = createHealthMonitor([hung.backend], { intervalMs: 3_600_000, timeoutMs: 20 });
    try {
      await monitor.check();
      await monitor.check();
      expect(hung.pending).toHaveLength(1);
      hung.pending[0]!.resolve();
      expect(await monitor.check()).toEqual({ sql: "up" });
      expect(monitor.serving()).toBe(true);
    } finally {
      monitor.stop();
    }
  });

  it("runs one probe round at a time", async () => {
    const slow = backendAnsweringOnCall("redis");
    const monitor = createHealthMonitor([slow.backend], { intervalMs: 3_600_000, timeoutMs: 60_000 });
    try {
      const first = monitor.check();
      const second = monitor.check();
      expect(slow.pending).toHaveLength(1);
      slow.pending[0]!.reject(new Error("connection refused"));
      expect(await first).toEqual({ redis: "down" });
      expect(await second).toEqual({ redis: "down" });
    } finally {
      monitor.stop();
    }
  });
});
