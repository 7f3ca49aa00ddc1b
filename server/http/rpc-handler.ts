import type { Readable } from "node:stream";
import { finished } from "node:stream/promises";
import { Code, ConnectError, createConnectRouter, type ConnectRouter, type ConnectRouterOptions, type ContextValues } from "@connectrpc/connect";
import { compressionBrotli, compressionGzip, universalRequestFromNodeRequest, universalResponseToNodeResponse } from "@connectrpc/connect-node";
import type { UniversalHandler, UniversalServerRequest } from "@connectrpc/connect/protocol";
import type { Logger } from "../core/logger.js";
import { createGrpcUnary, isPlainGrpc, type UnaryMethod } from "./grpc-unary.js";
import type { NodeRequest, NodeResponse } from "./node-types.js";

export interface RpcHandlerOptions extends ConnectRouterOptions {
  /** Registers the services on the router. */
  readonly routes: (router: ConnectRouter) => void;
  /**
   * Twins of some of those RPCs that serve their protobuf binary requests (gRPC, gRPC-Web and Connect
   * with proto bodies); JSON requests of the same RPCs stay with `routes`. Plain gRPC calls of unary
   * RPCs, these and those of `routes`, take the lean path of grpc-unary.ts.
   */
  readonly binaryMethods?: readonly UnaryMethod[];
  /** Serves every request whose path is no RPC's. */
  readonly fallback: (req: NodeRequest, res: NodeResponse) => void;
  /** The context values of a call, from its request. */
  readonly contextValues?: (req: NodeRequest) => ContextValues;
  /** Where a call that fails outside its handler (writing the reply, for one) is reported. */
  readonly logger: Logger;
}

/**
 * The Connect router as a Node request handler: connect-node's adapter, except that a call refused
 * before its request was read to the end (a message over the size limit, say) is answered only once
 * the rest of the request has been read and dropped. A client still sending holds its unsent bytes,
 * and Node's HTTP/2 client counts them against its session memory (10 MB by default): if the reply's
 * headers arrive while it is over, it resets its own stream with ENHANCE_YOUR_CALM, and the caller
 * sees INTERNAL instead of the RESOURCE_EXHAUSTED the service sent. Gzip and brotli are accepted, as
 * connect-node's adapter does by default.
 */
export function createRpcHandler(options: RpcHandlerOptions): (req: NodeRequest, res: NodeResponse) => void {
  const router = createConnectRouter({ acceptCompression: [compressionGzip, compressionBrotli], ...options });
  const unary: UnaryMethod[] = [];
  options.routes(recordingUnary(router, unary));
  const handlers = new Map(router.handlers.map((h) => [h.requestPath, h]));
  const binaryRouter = createConnectRouter({ acceptCompression: [compressionGzip, compressionBrotli], ...options });
  for (const { method, impl } of options.binaryMethods ?? []) binaryRouter.rpc(method, impl as never);
  const binaryHandlers = new Map(binaryRouter.handlers.map((h) => [h.requestPath, h]));
  const leanOptions = {
    interceptors: options.interceptors ?? [],
    logger: options.logger,
    readMaxBytes: options.readMaxBytes ?? 0xffffffff,
    writeMaxBytes: options.writeMaxBytes ?? 0xffffffff,
    ...(options.maxTimeoutMs === undefined ? {} : { maxTimeoutMs: options.maxTimeoutMs }),
    ...(options.shutdownSignal === undefined ? {} : { shutdownSignal: options.shutdownSignal }),
  };
  const leanOf = (methods: readonly UnaryMethod[]) =>
    new Map(methods.filter(({ method }) => method.methodKind === "unary").map((m) => [`/${m.method.parent.typeName}/${m.method.name}`, createGrpcUnary(m, leanOptions)]));
  const lean = leanOf(unary);
  const leanBinary = leanOf(options.binaryMethods ?? []);
  return (req, res) => {
    const requestPath = (req.url ?? "").split("?", 1)[0] ?? "";
    const binary = binaryHandlers.size > 0 ? binaryHandlers.get(requestPath) : undefined;
    const isBinary = binary !== undefined && BINARY.test(req.headers["content-type"] ?? "");
    const handler = isBinary ? binary : handlers.get(requestPath);
    if (!handler) {
      options.fallback(req, res);
      return;
    }
    const leanPath = isBinary ? leanBinary.get(requestPath) : lean.get(requestPath);
    if (leanPath && isPlainGrpc(req)) {
      leanPath(req, res, options.contextValues?.(req), (read) => serve(handler, req, res, read));
      return;
    }
    serve(handler, req, res, []);
  };

  /** Connect's handler for the call, `read` being the chunks of its body read already. */
  function serve(handler: UniversalHandler, req: NodeRequest, res: NodeResponse, read: readonly Uint8Array[]): void {
    let request: UniversalServerRequest;
    try {
      request = universalRequestFromNodeRequest(req, res, undefined, options.contextValues?.(req));
    } catch (err) {
      // An HTTP/1.0 request without a Host header has no authority. (Node refuses HTTP/1.1 ones itself.)
      res.writeHead(400, { "content-type": "text/plain; charset=utf-8" });
      res.end(`${ConnectError.from(err).rawMessage}\n`);
      return;
    }
    const body = requestBody(req, read);
    handler({ ...request, body: body.chunks })
      .then(async (reply) => {
        await body.settle();
        await universalResponseToNodeResponse(reply, res);
      })
      .catch((err: unknown) => {
        // Aborted: the caller went away while the reply was being written.
        if (ConnectError.from(err).code !== Code.Aborted) options.logger.error({ err, rpc: handler.requestPath }, "RPC failed outside its handler");
      });
  }
}

/** Content types of protobuf binary bodies: gRPC, gRPC-Web (not its base64 text form), Connect unary and streaming. */
const BINARY = /^application\/(grpc(-web)?(\+proto)?|proto|connect\+proto)\s*(;|$)/i;

/**
 * The request body as the router reads it (the chunks `read` already, then the rest), without destroying
 * the request when the router stops early; `settle` then reads and drops the rest. A router still reading (a client stream) is left to it.
 */
function requestBody(req: NodeRequest, read: readonly Uint8Array[]) {
  let reading = false;
  async function* chunks(): AsyncGenerator<Uint8Array> {
    reading = true;
    try {
      yield* read;
      if (req.readableEnded) return;
      for await (const chunk of req.iterator({ destroyOnReturn: false })) yield chunk as Uint8Array;
    } finally {
      reading = false;
    }
  }
  return {
    chunks: chunks(),
    async settle(): Promise<void> {
      if (reading || req.readableEnded || req.destroyed) return;
      req.resume();
      await finished(req as Readable).catch(() => undefined);
    },
  };
}

/**
 * `router`, noting in `into` the unary RPCs registered on it (with a service-wide implementation and
 * no options of their own), for the lean gRPC path.
 */
function recordingUnary(router: ConnectRouter, into: UnaryMethod[]): ConnectRouter {
  return {
    get handlers() {
      return router.handlers;
    },
    service(desc, impl, serviceOptions) {
      if (serviceOptions === undefined) {
        for (const method of desc.methods) {
          const fn = (impl as Record<string, unknown>)[method.localName];
          if (method.methodKind === "unary" && typeof fn === "function") into.push({ method, impl: fn.bind(impl) as UnaryMethod["impl"] });
        }
      }
      return router.service(desc, impl, serviceOptions);
    },
    rpc(method, impl, rpcOptions) {
      if (rpcOptions === undefined && method.methodKind === "unary") into.push({ method, impl: impl as UnaryMethod["impl"] });
      return router.rpc(method, impl, rpcOptions);
    },
  } as ConnectRouter;
}
