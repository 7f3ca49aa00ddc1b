import { SystemService } from "../../gen/persistence/v1/system_pb";
import { startTestServer } from "../support/test-server";
import { eventually } from "../support/wait";

describe("graceful drain on shutdown", () => {
  it("takes readiness down first and goes on serving calls for the drain delay, then stops accepting", async () => {
    const server = await startTestServer({ PERSISTENCE_DRAIN_DELAY_MS: "1500" });
    const ready = async () => (await fetch(`${server.url}/readyz`)).status;
    expect(await ready()).toBe(200);
    const closing = server.close();
    try {
      await eventually(async () => (await ready()) === 503);
      // Still serving while a balancer that polls readiness takes the instance out.
      const echo = await server.client(SystemService).echo({ payload: new Uint8Array([1, 2, 3]) });
      expect([...echo.payload]).toEqual([1, 2, 3]);
    } finally {
      await closing;
    }
    await expect(fetch(`${server.url}/livez`)).rejects.toThrow();
  });
});
