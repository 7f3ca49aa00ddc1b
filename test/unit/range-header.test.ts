import { parseRangeHeader } from "../../server/backends/objects/object-http";

describe("Range header", () => {
  it("reads first-last, open-ended and suffix ranges, clamping to the object", () => {
    expect(parseRangeHeader("bytes=0-99", 1000)).toEqual({ start: 0, end: 99 });
    expect(parseRangeHeader("bytes=900-", 1000)).toEqual({ start: 900, end: 999 });
    expect(parseRangeHeader("bytes=900-5000", 1000)).toEqual({ start: 900, end: 999 });
    expect(parseRangeHeader("bytes=-100", 1000)).toEqual({ start: 900, end: 999 });
    expect(parseRangeHeader("bytes=-5000", 1000)).toEqual({ start: 0, end: 999 });
  });

  it("says when a range cannot be satisfied", () => {
    expect(parseRangeHeader("bytes=1000-", 1000)).toBe("unsatisfiable");
    expect(parseRangeHeader("bytes=1000-1005", 1000)).toBe("unsatisfiable");
    expect(parseRangeHeader("bytes=-0", 1000)).toBe("unsatisfiable");
    expect(parseRangeHeader("bytes=0-", 0)).toBe("unsatisfiable");
  });

  it("ignores what it does not understand, so the whole object is sent", () => {
    for (const header of [undefined, "", "bytes=", "bytes=-", "bytes=5-1", "items=0-1", "bytes=0-1,5-6", "bytes=a-b"]) {
      expect(parseRangeHeader(header, 1000)).toBeUndefined();
    }
  });
});
