import { routingKeyOf } from "../../clients/src/routing-key";

describe("the SDK's routing key", () => {
  it("is the session a call is about: its session_id, or the first record's of a batch write", () => {
    expect(routingKeyOf({ sessionId: "s-1", taskId: "T1" })).toBe("s-1");
    expect(routingKeyOf({ sessions: [{ sessionId: "s-2" }, { sessionId: "s-3" }] })).toBe("s-2");
    expect(routingKeyOf({ tasks: [{ sessionId: "s-4", taskId: "T1" }] })).toBe("s-4");
  });

  it("is absent for calls about no one session", () => {
    expect(routingKeyOf({})).toBeUndefined();
    expect(routingKeyOf({ sessionId: "" })).toBeUndefined();
    expect(routingKeyOf({ tasks: [] })).toBeUndefined();
    expect(routingKeyOf(undefined)).toBeUndefined();
  });
});
