import http2 from "node:http2";

/** A gRPC message envelope: flags 0 and a length (`declaredLength`, to lie about it), then the bytes. */
export function frame(bytes: Uint8Array, declaredLength = bytes.length): Buffer {
  const out = Buffer.alloc(5 + bytes.length);
  out.writeUInt32BE(declaredLength, 1);
  out.set(bytes, 5);
  return out;
}

/**
 * A raw gRPC call over h2c (content type `application/grpc` unless `headers` say otherwise): the status
 * and message from the trailers (or headers), and whether any reply bytes came.
 */
export function grpcRaw(base: string, rpcPath: string, body: Buffer, headers: Record<string, string> = {}): Promise<{ status: string; message: string; replied: boolean }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(base);
    session.on("error", reject);
    const stream = session.request({ ":method": "POST", ":path": rpcPath, "content-type": "application/grpc", te: "trailers", ...headers });
    const seen: Record<string, unknown> = {};
    let replied = false;
    stream.on("response", (h) => Object.assign(seen, h));
    stream.on("trailers", (h) => Object.assign(seen, h));
    stream.on("data", (chunk: Buffer) => (replied ||= chunk.length > 0));
    stream.on("end", () => {
      session.close();
      resolve({ status: String(seen["grpc-status"]), message: decodeURIComponent(String(seen["grpc-message"] ?? "")), replied });
    });
    stream.on("error", reject);
    stream.end(body);
  });
}
