import { encodeGrpcMessage } from "../../server/http/grpc-message";

describe("grpc-message encoding", () => {
  it("leaves printable ASCII as is and escapes only '%' and the UTF-8 bytes outside 0x20-0x7E", () => {
    expect(encodeGrpcMessage('invalid request: tasks[0].status: unknown status "x" (#3, a&b=c?)')).toBe(
      'invalid request: tasks[0].status: unknown status "x" (#3, a&b=c?)',
    );
    expect(encodeGrpcMessage("100% done")).toBe("100%25 done");
    expect(encodeGrpcMessage("line\nnext\ttab\u007f")).toBe("line%0Anext%09tab%7F");
    expect(encodeGrpcMessage("会话 ü")).toBe("%E4%BC%9A%E8%AF%9D %C3%BC");
  });

  it("decodes back to the text with decodeURI (grpc-js) and decodeURIComponent (Connect)", () => {
    const text = 'unknown field "源文本 100%": a/b?c#d';
    expect(decodeURI(encodeGrpcMessage(text))).toBe(text);
    expect(decodeURIComponent(encodeGrpcMessage(text))).toBe(text);
  });

  it("encodes a lone surrogate as the replacement character instead of throwing", () => {
    expect(encodeGrpcMessage("bad \ud800 half")).toBe("bad %EF%BF%BD half");
  });
});
