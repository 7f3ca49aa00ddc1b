import { fromBinary, toBinary, type DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError, createHandlerContext, type ContextValues, type HandlerContext, type Interceptor } from "@connectrpc/connect";
import { invokeUnaryImplementation } from "@connectrpc/connect/protocol";
import { parseTimeout, setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import type { Logger } from "../core/logger.js";
import { headerOf, type NodeRequest, type NodeResponse } from "./node-types.js";

/** A unary RPC served by this path: its method and implementation, as registered with the router. */
export interface UnaryMethod {
  readonly method: DescMethod;
  readonly impl: (request: never, context: HandlerContext) => Promise<unknown>;
}

export interface GrpcUnaryOptions {
  readonly interceptors: readonly Interceptor[];
  /** Where a reply that could not be written is reported. */
  readonly logger: Logger;
  readonly readMaxBytes: number;
  readonly writeMaxBytes: number;
  readonly maxTimeoutMs?: number;
  readonly shutdownSignal?: AbortSignal;
}

/**
 * Serves a plain gRPC call to the unary `method` (HTTP/2, protobuf, no compression, one message)
 * without Connect's streaming pipeline, which every call runs through, unary or not: the body is read
 * whole, the envelope checked, and the call goes through Connect's own context, interceptors and
 * implementation invoker, then its reply is written with Connect's trailer encoding. For the batch
 * writes that pipeline was a third of the service's CPU per request, and most of an Echo's. Anything
 * else about the call — a compressed or malformed envelope, a message over the size limit, a bad
 * timeout, bytes that do not decode — is handed to Connect (`fallback`) with the body chunks read so
 * far (the rest is still unread), so the caller gets exactly the reply Connect would give.
 */
export function createGrpcUnary(unary: UnaryMethod, options: GrpcUnaryOptions) {
  const spec = { kind: "unary" as const, method: unary.method, impl: unary.impl };
  const { method } = unary;
  return (req: NodeRequest, res: NodeResponse, contextValues: ContextValues | undefined, fallback: (read: readonly Uint8Array[]) => void): void => {
    const chunks: Buffer[] = [];
    let size = 0;
    /** The message length the envelope declares, once its five bytes are in. */
    let declared = -1;
    const stopReading = () => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
    };
    const handOver = () => {
      stopReading();
      req.pause();
      fallback(chunks);
    };
    // The stream failed while its body was read: there is nobody to answer.
    const onError = () => stopReading();
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      if (declared < 0 && size >= 5) {
        const head = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
        // A compressed message (flag 1) or a reserved flag, or a message over the limit: Connect answers.
        if (head[0] !== 0) return handOver();
        declared = head.readUInt32BE(1);
        if (declared > options.readMaxBytes) return handOver();
      }
      // A second message after the first: Connect answers.
      if (declared >= 0 && size > 5 + declared) handOver();
    };
    const onEnd = () => {
      stopReading();
      if (declared < 0 || size !== 5 + declared) return fallback(chunks);
      const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
      let message;
      try {
        message = fromBinary(method.input, body.subarray(5));
      } catch {
        return fallback(chunks);
      }
      const timeout = parseTimeout(headerOf(req, "grpc-timeout") ?? null, options.maxTimeoutMs ?? Number.MAX_SAFE_INTEGER);
      if (timeout.error) return fallback(chunks);
      respond(message, timeout.timeoutMs).catch((err: unknown) => {
        // The caller went away while the reply was being written, or the stream failed under it.
        if (!res.destroyed) options.logger.error({ err, rpc: `/${method.parent.typeName}/${method.name}` }, "RPC failed outside its handler");
      });
    };
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);

    const respond = async (message: unknown, timeoutMs: number | undefined) => {
      let context: ReturnType<typeof createHandlerContext>;
      const requestAbort = new AbortController();
      try {
        context = createHandlerContext({
          service: method.parent,
          method,
          protocolName: "grpc",
          requestMethod: "POST",
          timeoutMs,
          shutdownSignal: options.shutdownSignal,
          requestSignal: requestAbort.signal,
          requestHeader: requestHeaders(req),
          url: `${"encrypted" in req.socket && req.socket.encrypted ? "https" : "http"}://${headerOf(req, ":authority") ?? headerOf(req, "host") ?? ""}${req.url ?? ""}`,
          responseHeader: { "content-type": CONTENT_TYPE },
          responseTrailer: { "grpc-status": "0" },
          contextValues,
        });
      } catch {
        // Headers Connect's own conversion would refuse too: it answers them.
        return fallback(chunks);
      }
      // Until the reply is written: the caller went away, or reset the stream.
      const onClose = () => requestAbort.abort(new ConnectError("the caller closed the call", Code.Canceled));
      req.once("close", onClose);
      let reply: Buffer | undefined;
      try {
        const output = await invokeUnaryImplementation(spec as never, context, message as never, options.interceptors as Interceptor[]);
        const bytes = toBinary(method.output, output as never);
        if (bytes.length > options.writeMaxBytes) {
          throw new ConnectError(`message size ${bytes.length} is larger than configured writeMaxBytes ${options.writeMaxBytes}`, Code.ResourceExhausted);
        }
        reply = Buffer.allocUnsafe(5 + bytes.length);
        reply[0] = 0;
        reply.writeUInt32BE(bytes.length, 1);
        reply.set(bytes, 5);
      } catch (err) {
        setTrailerStatus(
          context.responseTrailer,
          err instanceof ConnectError ? err : new ConnectError("internal error", Code.Internal, undefined, undefined, err),
        );
      } finally {
        // Ends the context's deadline timer and linked signals, with a reason made once, not a fresh AbortError per call.
        context.abort(FINISHED);
        req.off("close", onClose);
      }
      if (res.destroyed || res.writableEnded) return;
      res.writeHead(200, nodeHeaders(context.responseHeader));
      if (reply) res.write(reply);
      res.addTrailers(nodeHeaders(context.responseTrailer));
      res.end();
    };
  };
}

/** Whether a request is a plain gRPC call this path can take: HTTP/2, POST, protobuf, uncompressed. */
export function isPlainGrpc(req: NodeRequest): boolean {
  if (req.httpVersionMajor !== 2 || req.method !== "POST") return false;
  const type = headerOf(req, "content-type");
  if (type !== "application/grpc" && type !== "application/grpc+proto") return false;
  const encoding = headerOf(req, "grpc-encoding");
  return encoding === undefined || encoding === "identity";
}

const CONTENT_TYPE = "application/grpc+proto";
const FINISHED = new ConnectError("the call has finished", Code.Canceled);

/** The request's headers as Connect's handlers see them (HTTP/2 pseudo-headers left out). */
function requestHeaders(req: NodeRequest): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (name.startsWith(":") || value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) headers.append(name, v);
    else headers.append(name, value);
  }
  return headers;
}

function nodeHeaders(headers: Headers): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  headers.forEach((value, name) => {
    out[name] = value;
  });
  const cookies = headers.getSetCookie();
  if (cookies.length > 0) out["set-cookie"] = cookies;
  return out;
}

