import { promisify } from "node:util";
import { gzip } from "node:zlib";
import type { JsonValue } from "@bufbuild/protobuf";
import { headerOf, type NodeRequest, type NodeResponse } from "../node-types.js";
import type { RestError } from "./rest-errors.js";

const gzipAsync = promisify(gzip);

/** Replies at least this large are gzipped for callers that accept it. */
const GZIP_MIN_BYTES = 1024;

/** Writes a JSON reply (never cached; gzipped when large and accepted; headers only for HEAD). */
export async function sendJson(req: NodeRequest, res: NodeResponse, status: number, json: JsonValue, headers: Record<string, string>): Promise<void> {
  let body: Buffer = Buffer.from(JSON.stringify(json));
  const out: Record<string, string | number> = { ...headers, "content-type": "application/json", "cache-control": "no-store", vary: "accept-encoding" };
  if (body.length >= GZIP_MIN_BYTES && acceptsGzip(req)) {
    body = await gzipAsync(body);
    out["content-encoding"] = "gzip";
  }
  out["content-length"] = body.length;
  res.writeHead(status, out);
  if (req.method === "HEAD") res.end();
  else res.end(body);
}

/** Writes an error reply of SPEC §2, with its status, headers and request id. */
export function sendError(req: NodeRequest, res: NodeResponse, error: RestError, extra: Record<string, string> = {}): void {
  void sendJson(req, res, error.status, error.body, { ...error.headers, ...extra, "x-request-id": String(error.body.request_id) });
}

function acceptsGzip(req: NodeRequest): boolean {
  return /\bgzip\b/i.test(headerOf(req, "accept-encoding") ?? "");
}

