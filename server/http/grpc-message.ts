import type { OutgoingHttpHeaders } from "node:http";
import { headerOf, type NodeRequest, type NodeResponse } from "./node-types.js";

const GRPC_MESSAGE = "grpc-message";
/** What the gRPC spec leaves as is: printable ASCII except '%'. */
const PLAIN = /^[\x20-\x24\x26-\x7e]*$/;

/**
 * A `grpc-message` value as the gRPC spec percent-encodes it: the UTF-8 bytes outside 0x20-0x7E, and
 * '%', as %XX; everything else as is. Every gRPC client decodes that, including @grpc/grpc-js, whose
 * `decodeURI` leaves the `%3A` of an `encodeURIComponent` value (what Connect sends) undecoded.
 */
export function encodeGrpcMessage(text: string): string {
  if (PLAIN.test(text)) return text;
  let encoded = "";
  for (const byte of Buffer.from(text, "utf8")) {
    encoded += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return encoded;
}

/**
 * Wraps a request handler so that gRPC replies carry `grpc-message` in the spec's encoding, in the
 * headers of a trailers-only reply and in the trailers. Connect writes it with `encodeURIComponent`,
 * which `decodeURIComponent` turns back into the text before it is encoded again.
 */
export function withGrpcMessageEncoding(handler: (req: NodeRequest, res: NodeResponse) => void): (req: NodeRequest, res: NodeResponse) => void {
  return (req, res) => {
    if (headerOf(req, "content-type")?.startsWith("application/grpc")) {
      const writeHead = res.writeHead.bind(res) as (...args: unknown[]) => NodeResponse;
      const addTrailers = res.addTrailers.bind(res) as (headers: OutgoingHttpHeaders) => void;
      Object.assign(res, {
        writeHead: (...args: unknown[]) => writeHead(...args.map((arg) => (isHeaders(arg) ? reencoded(arg) : arg))),
        addTrailers: (headers: OutgoingHttpHeaders) => addTrailers(reencoded(headers)),
      });
    }
    handler(req, res);
  };
}

function isHeaders(value: unknown): value is OutgoingHttpHeaders {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function reencoded(headers: OutgoingHttpHeaders): OutgoingHttpHeaders {
  const value = headers[GRPC_MESSAGE];
  if (typeof value !== "string") return headers;
  let text: string;
  try {
    text = decodeURIComponent(value);
  } catch {
    return headers;
  }
  return { ...headers, [GRPC_MESSAGE]: encodeGrpcMessage(text) };
}
