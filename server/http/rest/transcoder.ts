import { promisify } from "node:util";
import { gunzip } from "node:zlib";
import { fromBinary, fromJson, toBinary, toJson, type JsonValue } from "@bufbuild/protobuf";
import { Code, ConnectError, createContextValues } from "@connectrpc/connect";
import { createAsyncIterable, encodeEnvelope, pipe, readAllBytes, transformSplitEnvelope, type UniversalHandler } from "@connectrpc/connect/protocol";
import { endStreamFlag, endStreamFromJson, errorFromJsonBytes } from "@connectrpc/connect/protocol-connect";
import { invalidArgument, type FieldViolation } from "../../core/errors.js";
import type { Logger } from "../../core/logger.js";
import { normalizeAddress } from "../../rpc/client-address.js";
import { clientAddressKey, httpStatusKey, requestIdOf, restRouteKey } from "../../rpc/context.js";
import { headerOf, type NodeRequest, type NodeResponse } from "../node-types.js";
import { decodeUtf8Body } from "../utf8-body.js";
import { readHttpRules, type RestRoute } from "./http-rules.js";
import { restError } from "./rest-errors.js";
import { sendError, sendJson } from "./reply.js";
import { findField, toRestJson, fieldToRestJson, type RestJsonOptions } from "./rest-json.js";
import { restRequestToJson } from "./rest-request.js";

const gunzipAsync = promisify(gunzip);

/** Comment lines keep idle event streams open through proxies. */
const SSE_HEARTBEAT_MS = 15_000;
/** JSON nested deeper than this is refused before it is parsed. */
const MAX_JSON_DEPTH = 64;
/** Request headers that describe the REST request itself and are not passed on to the RPC. */
const HOP_HEADERS = ["content-type", "content-length", "content-encoding", "accept-encoding", "transfer-encoding", "connection", "host", "te", "keep-alive", "upgrade"];

export interface TranscoderOptions {
  /** The Connect router's handlers: every annotated RPC among them gets its REST paths. */
  readonly handlers: readonly UniversalHandler[];
  readonly maxRequestBytes: number;
  readonly json: RestJsonOptions;
  readonly logger: Logger;
  /**
   * Checks the caller before anything else is read, so a request without a valid key gets 401/403
   * rather than a complaint about its body (the interceptors check the call again).
   */
  readonly authorize?: (rpcPath: string, header: (name: string) => string | undefined) => ConnectError | undefined;
}

export interface Transcoder {
  /** The route table, most specific first. */
  readonly routes: readonly RestRoute[];
  /** Serves the request when its path is a REST path (returns true); leaves it alone otherwise. */
  handle(req: NodeRequest, res: NodeResponse): boolean;
}

/**
 * The `google.api.http` transcoder: REST requests become calls of the same Connect handlers the RPC
 * protocols reach, so interceptors (request ids, logging, metrics, error mapping) apply unchanged.
 * A request is turned into the RPC's message (path variables, query, body), sent as a Connect call,
 * and the reply is written back as REST JSON; server streams become server-sent events (or
 * newline-delimited JSON for callers that do not ask for `text/event-stream`).
 */
export function createTranscoder(options: TranscoderOptions): Transcoder {
  const handlers = new Map(options.handlers.map((h) => [h.method, h]));
  const routes = readHttpRules([...new Set(options.handlers.map((h) => h.service))]);

  const handle = (req: NodeRequest, res: NodeResponse): boolean => {
    const target = req.url ?? "/";
    const q = target.indexOf("?");
    const path = q < 0 ? target : target.slice(0, q);
    const matches: { route: RestRoute; values: Map<string, string> }[] = [];
    for (const route of routes) {
      const values = route.template.match(path);
      if (values) matches.push({ route, values });
    }
    if (matches.length === 0) return false;
    const requestId = requestIdOf(headerOf(req, "x-request-id"));
    const verb = req.method === "HEAD" ? "GET" : req.method;
    const match = matches.find((m) => m.route.verb === verb);
    if (!match) {
      const allowed = [...new Set(matches.flatMap((m) => (m.route.verb === "GET" ? ["GET", "HEAD"] : [m.route.verb])))];
      allowed.push("OPTIONS");
      if (req.method === "OPTIONS") {
        res.writeHead(204, { allow: allowed.join(", ") });
        res.end();
      } else {
        const error = new ConnectError(`${req.method} is not allowed on ${path}; allowed: ${allowed.join(", ")}`, Code.Unimplemented);
        sendError(req, res, restError(error, requestId, 405), { allow: allowed.join(", ") });
        logRejected(options.logger, req, path, requestId, 405);
      }
      return true;
    }
    const handler = handlers.get(match.route.method);
    if (!handler) return false;
    const query = new URLSearchParams(q < 0 ? "" : target.slice(q + 1));
    serve(req, res, handler, match.route, match.values, query, requestId).catch((err: unknown) => {
      options.logger.error({ err, request_id: requestId }, "REST request failed");
      if (!res.headersSent) sendError(req, res, restError(new ConnectError(`internal error (request id ${requestId})`, Code.Internal), requestId));
      else res.destroy();
    });
    return true;
  };

  async function serve(
    req: NodeRequest,
    res: NodeResponse,
    handler: UniversalHandler,
    route: RestRoute,
    pathValues: Map<string, string>,
    query: URLSearchParams,
    requestId: string,
  ): Promise<void> {
    const reject = (error: ConnectError, status?: number) => {
      const reply = restError(error, requestId, status);
      sendError(req, res, reply);
      logRejected(options.logger, req, route.template.source, requestId, reply.status);
    };
    const denied = options.authorize?.(handler.requestPath, (name) => headerOf(req, name));
    if (denied) return reject(denied);
    let body: unknown;
    if (route.body !== undefined) {
      const read = await readJsonBody(req, options.maxRequestBytes);
      if ("error" in read) return reject(read.error, read.status);
      body = read.value;
    } else {
      // A body here would be dropped, and what it says with it: `{"soft": true}` on a DELETE would
      // make a soft delete a hard one. So it is refused, save the empty object some clients always send.
      const read = await readBodyBytes(req, options.maxRequestBytes);
      if ("error" in read) return reject(read.error, read.status);
      const violations = strayBodyViolations(route, read.raw);
      if (violations.length > 0) return reject(invalidArgument(violations));
    }
    const { json, violations } = restRequestToJson(route, { pathValues, query, body }, options.json);
    if (violations.length > 0) return reject(invalidArgument(violations));
    const input = route.method.input;
    let message;
    try {
      message = fromJson(input, json, { ignoreUnknownFields: true });
    } catch (err) {
      return reject(invalidArgument([{ field: "body", description: (err as Error).message }]));
    }

    const abort = new AbortController();
    res.on("close", () => {
      if (!res.writableFinished) abort.abort(new ConnectError("the caller went away", Code.Canceled));
    });
    const header = new Headers();
    for (const [name, value] of Object.entries(req.headers)) {
      if (name.startsWith(":") || HOP_HEADERS.includes(name) || value === undefined) continue;
      for (const v of Array.isArray(value) ? value : [value]) header.append(name, v);
    }
    header.set("x-request-id", requestId);
    header.set("connect-protocol-version", "1");
    const contextValues = createContextValues();
    contextValues.set(restRouteKey, `${route.verb} ${route.template.source}`);
    contextValues.set(clientAddressKey, normalizeAddress(req.socket?.remoteAddress));
    let status = 200;
    contextValues.set(httpStatusKey, (s) => (status = s));
    const streaming = route.method.methodKind === "server_streaming";
    const bytes = toBinary(input, message);
    header.set("content-type", streaming ? "application/connect+proto" : "application/proto");
    const reply = await handler({
      httpVersion: req.httpVersion,
      url: `http://localhost${handler.requestPath}`,
      method: "POST",
      header,
      body: createAsyncIterable([streaming ? encodeEnvelope(0, bytes) : bytes]),
      signal: abort.signal,
      contextValues,
    });
    const replyId = reply.header?.get("x-request-id") ?? requestId;
    const replyBody = reply.body ?? createAsyncIterable<Uint8Array>([]);
    if (reply.status !== 200) {
      const raw = await readAllBytes(replyBody, 4 * options.maxRequestBytes);
      const error = errorFromJsonBytes(raw, reply.header, new ConnectError(`HTTP ${reply.status}`, Code.Internal));
      return sendError(req, res, restError(error, replyId));
    }
    if (!streaming) {
      const raw = await readAllBytes(replyBody, Number.MAX_SAFE_INTEGER);
      const json = replyJson(route, fromBinary(route.method.output, raw));
      return sendJson(req, res, status, json, { "x-request-id": replyId });
    }
    await sendStream(req, res, route, replyBody, replyId, options.maxRequestBytes);
    // A stream cut short (HEAD, an error reply) must not keep its handler running.
    abort.abort(new ConnectError("the REST reply is complete", Code.Canceled));
  }

  return { routes, handle };
}

/** The reply message as REST JSON: the whole message or its `response_body` field, zero values included. */
function replyJson(route: RestRoute, message: Parameters<typeof toJson>[1]): JsonValue {
  const output = route.method.output;
  const json = toJson(output, message, { useProtoFieldName: true, alwaysEmitImplicit: true });
  if (!route.responseBody) return toRestJson(output, json);
  const value = (json as Record<string, JsonValue>)[route.responseBody.name];
  return value === undefined ? null : fieldToRestJson(route.responseBody, value);
}

async function sendStream(
  req: NodeRequest,
  res: NodeResponse,
  route: RestRoute,
  body: AsyncIterable<Uint8Array>,
  requestId: string,
  maxBytes: number,
): Promise<void> {
  const sse = (headerOf(req, "accept") ?? "").includes("text/event-stream");
  const headers = { "content-type": sse ? "text/event-stream" : "application/x-ndjson", "cache-control": "no-store", "x-request-id": requestId };
  let heartbeat: NodeJS.Timeout | undefined;
  try {
    for await (const envelope of pipe(body, transformSplitEnvelope(4 * maxBytes))) {
      if ((envelope.flags & endStreamFlag) === endStreamFlag) {
        const { error } = endStreamFromJson(envelope.data);
        if (!error) break;
        const reply = restError(error, requestId);
        // An error before the first message is an ordinary error reply.
        if (!res.headersSent) return sendError(req, res, reply);
        res.write(sse ? `event: error\ndata: ${JSON.stringify(reply.body)}\n\n` : `${JSON.stringify({ error: reply.body })}\n`);
        break;
      }
      if (!res.headersSent) {
        res.writeHead(200, headers);
        if (req.method === "HEAD") return void res.end();
        if (sse) heartbeat = setInterval(() => res.write(": keep-alive\n\n"), SSE_HEARTBEAT_MS).unref();
      }
      const text = JSON.stringify(replyJson(route, fromBinary(route.method.output, envelope.data)));
      res.write(sse ? `data: ${text}\n\n` : `${text}\n`);
    }
  } finally {
    clearInterval(heartbeat);
  }
  if (!res.headersSent) res.writeHead(200, headers);
  res.end();
}

type BodyRead = { value: unknown } | { error: ConnectError; status?: number };
type BytesRead = { raw: Buffer } | { error: ConnectError; status?: number };

/** Reads a JSON request body: size limit (before and after gunzip), content type, UTF-8, nesting depth. */
async function readJsonBody(req: NodeRequest, maxBytes: number): Promise<BodyRead> {
  const read = await readBodyBytes(req, maxBytes);
  if ("error" in read) return read;
  const raw = read.raw;
  if (raw.length === 0) return { value: undefined };
  const contentType = (headerOf(req, "content-type") ?? "application/json").split(";")[0]?.trim().toLowerCase() ?? "";
  if (contentType !== "application/json" && !contentType.endsWith("+json")) {
    return { error: new ConnectError(`unsupported content-type ${JSON.stringify(contentType)}; send application/json`, Code.InvalidArgument), status: 415 };
  }
  let text: string;
  try {
    text = decodeUtf8Body(raw);
  } catch (err) {
    return { error: ConnectError.from(err) };
  }
  if (jsonDepth(text) > MAX_JSON_DEPTH) return { error: invalidArgument([{ field: "body", description: `JSON nested deeper than ${MAX_JSON_DEPTH} levels` }]) };
  try {
    return { value: JSON.parse(text) as unknown };
  } catch (err) {
    return { error: invalidArgument([{ field: "body", description: `is not valid JSON (${(err as Error).message})` }]) };
  }
}

/**
 * What is wrong with a body sent to a route that takes none: nothing when it is empty (or blank, or
 * the empty object `{}`); otherwise each key it holds, named, or the body as a whole.
 */
function strayBodyViolations(route: RestRoute, raw: Buffer): FieldViolation[] {
  const text = raw.toString("utf8").trim();
  if (text === "") return [];
  const where = `${route.verb} ${route.template.source} takes no body`;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return [{ field: "body", description: where }];
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return [{ field: "body", description: where }];
  return Object.keys(parsed).map((key) => {
    const field = findField(route.method.input, key);
    if (!field) return { field: key, description: `${where}, and ${key} is no field of it` };
    if (route.template.fields.includes(field.name)) return { field: field.name, description: `${where}; ${field.name} is set by the path` };
    return { field: field.name, description: `${where}; send ${field.name} in the query (?${field.name}=...)` };
  });
}

/** Reads a request body's bytes: size limit (before and after gunzip) and content encoding. */
async function readBodyBytes(req: NodeRequest, maxBytes: number): Promise<BytesRead> {
  const tooLarge = (): BytesRead => ({
    error: new ConnectError(`request body larger than ${maxBytes} bytes`, Code.ResourceExhausted),
    status: 413,
  });
  const declared = Number(headerOf(req, "content-length") ?? "0");
  if (declared > maxBytes) {
    req.resume();
    return tooLarge();
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) {
      req.resume();
      return tooLarge();
    }
    chunks.push(chunk);
  }
  let raw = Buffer.concat(chunks);
  const encoding = (headerOf(req, "content-encoding") ?? "identity").trim().toLowerCase();
  if (encoding === "gzip") {
    try {
      raw = await gunzipAsync(raw, { maxOutputLength: maxBytes });
    } catch (err) {
      if ((err as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") return tooLarge();
      return { error: new ConnectError("request body is not valid gzip", Code.InvalidArgument) };
    }
  } else if (encoding !== "identity" && encoding !== "") {
    return { error: new ConnectError(`unsupported content-encoding ${JSON.stringify(encoding)}; use gzip or none`, Code.InvalidArgument), status: 415 };
  }
  return { raw };
}

/** The deepest nesting of objects and arrays in JSON text (strings skipped). */
export function jsonDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) max = Math.max(max, ++depth);
    else if (c === 0x7d || c === 0x5d) depth--;
  }
  return max;
}

function logRejected(logger: Logger, req: NodeRequest, route: string, requestId: string, status: number): void {
  logger.info({ request_id: requestId, protocol: "rest", http_method: req.method, route, status }, "request rejected");
}


