import { createClient, createRouterTransport } from "@connectrpc/connect";
import { SystemService } from "../../gen/persistence/v1/system_pb";
import { createInFlightTracker } from "../../server/rpc/interceptors/in-flight";

describe("in-flight call tracking", () => {
  it("waits for running calls to finish, or gives up after the timeout", async () => {
    const tracker = createInFlightTracker();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const transport = createRouterTransport(
      ({ service }) =>
        service(SystemService, {
          async getInfo() {
            await gate;
            return { name: "slow" };
          },
        }),
      { router: { interceptors: [tracker.interceptor] } },
    );
    const call = createClient(SystemService, transport).getInfo({});
    await new Promise((r) => setTimeout(r, 10));
    expect(tracker.count()).toBe(1);
    expect(await tracker.drained(20)).toBe(false);
    const drained = tracker.drained(5000);
    release();
    expect((await call).name).toBe("slow");
    expect(await drained).toBe(true);
    expect(tracker.count()).toBe(0);
    expect(await tracker.drained(0)).toBe(true);
  });
});
