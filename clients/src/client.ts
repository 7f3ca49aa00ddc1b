import { randomUUID } from "node:crypto";
import type { DescService } from "@bufbuild/protobuf";
import { createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { Health } from "./gen/grpc/health/v1/health_pb.js";
import { AuditService } from "./gen/persistence/v1/audit_pb.js";
import { SystemService } from "./gen/persistence/v1/system_pb.js";
import { TranslationService } from "./gen/persistence/v1/translation_pb.js";
import { UserService } from "./gen/persistence/v1/users_pb.js";
import { PersistenceError } from "./errors.js";
import { createRetryInterceptor, type RetryOptions } from "./retry.js";
import { routingKeyInterceptor } from "./routing-key.js";

export type Protocol = "connect" | "grpc" | "grpc-web";

export interface PersistenceClientOptions {
  /** Where the service listens, e.g. `http://127.0.0.1:8001`. */
  readonly baseUrl: string;
  /** Wire protocol (default `connect`). gRPC always runs over HTTP/2. */
  readonly protocol?: Protocol | undefined;
  /** HTTP version for Connect and gRPC-Web (default `2`, one multiplexed connection). */
  readonly httpVersion?: "1.1" | "2" | undefined;
  /** Sent as `Authorization: Bearer <key>` on every call. */
  readonly apiKey?: string | undefined;
  /** Deadline of each call, retries included, in ms (default 30000). Per-call `timeoutMs` overrides it. */
  readonly timeoutMs?: number | undefined;
  /** Retry policy of unary calls; `false` turns retries off. */
  readonly retry?: RetryOptions | false | undefined;
  /** Headers added to every call. */
  readonly headers?: Readonly<Record<string, string>> | undefined;
  /** Sends `x-routing-key: <session_id>` on session-scoped calls, for a balancer that routes on it (default true). */
  readonly routingKey?: boolean | undefined;
  /** More interceptors, run inside the client's own (after request ids, retries and auth). */
  readonly interceptors?: readonly Interceptor[] | undefined;
}

/** Typed clients for every service, sharing one transport. Every error they raise is a PersistenceError. */
export interface PersistenceClient {
  readonly translation: Client<typeof TranslationService>;
  readonly system: Client<typeof SystemService>;
  /** Users, preferences, quotas and login sessions. */
  readonly users: Client<typeof UserService>;
  /** Audit logs: WriteLogs, SearchLogs, ExportLogs (a stream), GetAuditStats, VerifyAuditChain. */
  readonly audit: Client<typeof AuditService>;
  readonly health: Client<typeof Health>;
  readonly transport: Transport;
  /** Closes the HTTP/2 connection (HTTP/1.1 connections close when idle). */
  close(): void;
}

/** Creates a client of the Persistence Service. */
export function createPersistenceClient(options: PersistenceClientOptions): PersistenceClient {
  const protocol = options.protocol ?? "connect";
  const httpVersion = protocol === "grpc" ? "2" : (options.httpVersion ?? "2");
  const interceptors: Interceptor[] = [
    requestIdInterceptor,
    ...(options.retry === false ? [] : [createRetryInterceptor(options.retry)]),
    headerInterceptor(options),
    ...(options.routingKey === false ? [] : [routingKeyInterceptor]),
    ...(options.interceptors ?? []),
  ];
  // Node's HTTP/2 client buffers at most 10 MB per session by default and resets its own stream
  // (ENHANCE_YOUR_CALM) beyond that: too little for batches up to the service's 10 MB request limit.
  const sessionManager =
    httpVersion === "2" ? new Http2SessionManager(options.baseUrl, { idleConnectionTimeoutMs: 30_000 }, { maxSessionMemory: 64 }) : undefined;
  const common = { baseUrl: options.baseUrl, interceptors, defaultTimeoutMs: options.timeoutMs ?? 30_000, useBinaryFormat: true };
  let transport: Transport;
  if (sessionManager) {
    const http2 = { ...common, httpVersion: "2" as const, sessionManager };
    if (protocol === "grpc") transport = createGrpcTransport(http2);
    else transport = protocol === "grpc-web" ? createGrpcWebTransport(http2) : createConnectTransport(http2);
  } else {
    const http1 = { ...common, httpVersion: "1.1" as const };
    transport = protocol === "grpc-web" ? createGrpcWebTransport(http1) : createConnectTransport(http1);
  }
  return {
    translation: withTypedErrors(createClient(TranslationService, transport)),
    system: withTypedErrors(createClient(SystemService, transport)),
    users: withTypedErrors(createClient(UserService, transport)),
    audit: withTypedErrors(createClient(AuditService, transport)),
    health: withTypedErrors(createClient(Health, transport)),
    transport,
    close: () => sessionManager?.abort(),
  };
}

/** The same client, with every error it raises (a unary call's or a stream's) turned into a PersistenceError. */
export function withTypedErrors<S extends DescService>(client: Client<S>): Client<S> {
  const wrapped: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(client as Record<string, (...args: unknown[]) => unknown>)) {
    wrapped[name] = (...args: unknown[]) => {
      const result = fn(...args);
      if (result instanceof Promise) return result.catch((reason: unknown) => Promise.reject(PersistenceError.from(reason)));
      return (async function* () {
        try {
          yield* result as AsyncIterable<unknown>;
        } catch (reason) {
          throw PersistenceError.from(reason);
        }
      })();
    };
  }
  return wrapped as Client<S>;
}

/** One `x-request-id` per call (the caller's, if set), the same for each of its attempts. */
const requestIdInterceptor: Interceptor = (next) => (req) => {
  if (!req.header.has("x-request-id")) req.header.set("x-request-id", randomUUID());
  return next(req);
};

function headerInterceptor(options: PersistenceClientOptions): Interceptor {
  return (next) => (req) => {
    for (const [name, value] of Object.entries(options.headers ?? {})) if (!req.header.has(name)) req.header.set(name, value);
    if (options.apiKey !== undefined) req.header.set("authorization", `Bearer ${options.apiKey}`);
    return next(req);
  };
}
