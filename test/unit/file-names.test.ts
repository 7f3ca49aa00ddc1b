import { Code, ConnectError } from "@connectrpc/connect";
import { contentDisposition, sanitizeFilename } from "../../server/files/files.names";

describe("file names", () => {
  it("keeps only the last path segment of a name, whichever separator", () => {
    expect(sanitizeFilename("../../etc/passwd")).toBe("passwd");
    expect(sanitizeFilename("C:\\Users\\x\\关卡.xlsx")).toBe("关卡.xlsx");
    expect(sanitizeFilename("plain.csv")).toBe("plain.csv");
  });

  it("refuses control characters, and names that are only dots or a path", () => {
    for (const bad of ["a\u0000b", "line\nbreak", "..", "a/..", "dir/", ""]) {
      const err = (() => {
        try {
          sanitizeFilename(bad);
        } catch (e) {
          return e as ConnectError;
        }
        throw new Error(`${JSON.stringify(bad)} was accepted`);
      })();
      expect(err.code).toBe(Code.InvalidArgument);
      expect(err.rawMessage).toMatch(/filename/);
    }
  });

  it("writes Content-Disposition with an ASCII fallback and the exact name per RFC 5987", () => {
    const header = contentDisposition('翻译 "结果" (v2).xlsx');
    expect(header).toBe(`attachment; filename="__ ____ (v2).xlsx"; filename*=UTF-8''%E7%BF%BB%E8%AF%91%20%22%E7%BB%93%E6%9E%9C%22%20%28v2%29.xlsx`);
    expect(decodeURIComponent(header.split("filename*=UTF-8''")[1]!)).toBe('翻译 "结果" (v2).xlsx');
    expect(contentDisposition("a.txt", true)).toBe(`inline; filename="a.txt"; filename*=UTF-8''a.txt`);
    // nothing in a name can end the header or start another
    expect(contentDisposition('x";\r\nSet-Cookie: a=b')).not.toMatch(/[\r\n]/);
  });
});
