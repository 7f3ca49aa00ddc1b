"use strict";
// A minimal gRPC unary caller over one HTTP/2 connection that sends requests encoded beforehand:
// the load generator then spends almost no CPU per call, so the figures measure the service. It
// checks each reply's grpc-status and nothing else (the service's behaviour is the tests' job).
const http2 = require("node:http2");

function connectGrpc(baseUrl) {
  const session = http2.connect(baseUrl);
  session.on("error", () => {});
  /** Frames a serialized message (no compression). */
  const frame = (bytes) => {
    const out = Buffer.allocUnsafe(5 + bytes.length);
    out[0] = 0;
    out.writeUInt32BE(bytes.length, 1);
    out.set(bytes, 5);
    return out;
  };
  /** Calls `path` (e.g. "/persistence.v1.SystemService/Echo") with a framed body and extra `headers`; rejects on a non-OK status. */
  const call = (path, framed, headers = {}) =>
    new Promise((resolve, reject) => {
      const stream = session.request({ ":method": "POST", ":path": path, "content-type": "application/grpc+proto", te: "trailers", ...headers });
      let status;
      let message;
      stream.on("response", (headers) => {
        status = headers["grpc-status"];
        message = headers["grpc-message"];
      });
      stream.on("trailers", (trailers) => {
        status = trailers["grpc-status"] ?? status;
        message = trailers["grpc-message"] ?? message;
      });
      stream.on("data", () => {});
      stream.on("end", () => {
        if (status === "0") resolve();
        else {
          const err = new Error(`grpc-status ${status}: ${decodeURIComponent(message ?? "")}`);
          err.code = Number(status);
          reject(err);
        }
      });
      stream.on("error", reject);
      stream.end(framed);
    });
  return { frame, call, close: () => session.close() };
}

module.exports = { connectGrpc };
