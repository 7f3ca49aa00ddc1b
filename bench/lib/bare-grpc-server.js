"use strict";
// The floor of a gRPC call on this machine: a bare node:http2 server, in its own process, that
// answers every call with an empty message and grpc-status 0 (no routing, no decoding, no logging).
// Prints {"msg":"listening","url":...} once it listens.
const http2 = require("node:http2");

const EMPTY = Buffer.from([0, 0, 0, 0, 0]);
const server = http2.createServer();
server.on("stream", (stream) => {
  stream.on("data", () => {});
  stream.on("end", () => {
    stream.respond({ ":status": 200, "content-type": "application/grpc+proto" }, { waitForTrailers: true });
    stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
    stream.end(EMPTY);
  });
});
server.listen(0, "127.0.0.1", () => console.log(JSON.stringify({ msg: "listening", url: `http://127.0.0.1:${server.address().port}` })));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
