import { createPatch, mergeInto, clonePatch, type Patch } from "../../server/core/patch";

const fieldsOf = (p: Patch) => Object.fromEntries([...p.fields].map(([c, [v]]) => [c, v]));

describe("patches", () => {
  it("merge field by field, the newest stamp winning whatever the order of arrival", () => {
    const a = createPatch("t", ["k"], 100, [["status", "processing"], ["retry_count", 1]]);
    const b = createPatch("t", ["k"], 200, [["status", "completed"], ["target_text", "done"]]);
    const c = createPatch("t", ["k"], 50, [["status", "pending"], ["error_message", "old"]]);
    const orders = [[a, b, c], [c, b, a], [b, a, c], [c, a, b]];
    const results = orders.map((order) => {
      const merged = clonePatch(order[0]!);
      for (const p of order.slice(1)) mergeInto(merged, p);
      return { fields: fieldsOf(merged), stamp: merged.stamp };
    });
    for (const r of results) {
      expect(r).toEqual({ fields: { status: "completed", retry_count: 1, target_text: "done", error_message: "old" }, stamp: 200 });
    }
  });

  it("let the later arrival win a tie, and keep their byte estimate up to date", () => {
    const first = createPatch("t", ["k"], 100, [["target_text", "short"]]);
    const second = createPatch("t", ["k"], 100, [["target_text", "a much longer translation"]]);
    const before = first.bytes;
    mergeInto(first, second);
    expect(fieldsOf(first)).toEqual({ target_text: "a much longer translation" });
    expect(first.bytes).toBe(before + 2 * ("a much longer translation".length - "short".length));
  });
});
