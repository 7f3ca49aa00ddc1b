import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import { Counter, Gauge, type Registry } from "prom-client";
import type { Logger } from "../core/logger.js";
import { normalizeAddress } from "../rpc/client-address.js";

type Handler = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => void;

/** One TCP port that speaks HTTP/1.1 and h2c (HTTP/2 with prior knowledge) to the same handler. */
export interface Listener {
  /** The bound address (the real port when asked for port 0). */
  readonly address: { readonly host: string; readonly port: number };
  /** Stops accepting connections, asks open ones to finish (HTTP/2 GOAWAY, HTTP/1.1 `Connection: close`). */
  stopAccepting(): void;
  /** Ends every connection now. */
  destroyConnections(): void;
  /** Resolves once every connection is gone. */
  closed(): Promise<void>;
}

export interface ListenerOptions {
  readonly host: string;
  readonly port: number;
  /** PEM certificate chain and key: TLS on the same port, ALPN choosing h2 or http/1.1. */
  readonly tls?: { readonly cert: Buffer; readonly key: Buffer };
  readonly connections: ConnectionLimits;
  /** Where refused connections are reported (a warning at most once a minute). */
  readonly logger: Logger;
  /** Gets `persistence_connections_open` and `persistence_connections_refused_total{reason}`. */
  readonly registry: Registry;
}

/** How long a connection may take, or sit idle, and how much it may run at once; whatever protocol it speaks. */
export interface ConnectionLimits {
  /**
   * Time a new connection has to show its protocol (the HTTP/2 preface, an HTTP/1.1 request line, a
   * TLS handshake), and each HTTP/1.1 request to send its headers, in ms.
   */
  readonly headersTimeoutMs: number;
  /** Time each request has to arrive whole, headers and body (an HTTP/2 stream: until the client half-closes it), in ms; 0: no limit. */
  readonly requestTimeoutMs: number;
  /** Time a connection may sit with no request in flight before it is closed, in ms. */
  readonly idleTimeoutMs: number;
  /** Concurrent streams per HTTP/2 connection, announced in SETTINGS (Node's own default is 2^32-1). */
  readonly maxStreams: number;
  /** Open connections, all clients together, past which new ones are turned away. */
  readonly maxConnections: number;
  /** Open connections from one client address past which its new ones are turned away; 0: no limit. */
  readonly maxConnectionsPerAddress: number;
}

/** HTTP/2 receive windows: per stream (announced in SETTINGS) and per connection. */
const STREAM_WINDOW = 4 * 1024 * 1024;
const CONNECTION_WINDOW = 32 * 1024 * 1024;

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
/** How often Node's HTTP/1.1 server looks for requests past their headers or request timeout. */
const TIMEOUT_CHECK_MS = 1000;
/** How long a turned-away connection may take to read its 503 and go. */
const REFUSAL_TIMEOUT_MS = 2000;
/** Refused connections are logged at most this often (each is counted in the metrics). */
const REFUSAL_LOG_INTERVAL_MS = 60_000;

/**
 * Node's http2 server only falls back to HTTP/1.1 under TLS (ALPN), so plaintext needs a sniffer:
 * each new socket's first bytes are read until they either match the HTTP/2 connection preface or
 * stop matching it, then pushed back and the socket is handed to the matching server. With TLS, each
 * socket goes to one secure HTTP/2 server that also speaks HTTP/1.1 to clients whose ALPN asks for it.
 */
export async function listen(handler: Handler, options: ListenerOptions): Promise<Listener> {
  const limits = options.connections;
  const h1Timeouts = {
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.idleTimeoutMs,
    connectionsCheckingInterval: TIMEOUT_CHECK_MS,
  };
  const h1 = http.createServer(h1Timeouts, handler as http.RequestListener);
  // Room for several 10 MB requests in flight on one connection (the default is 10 MB per session).
  // Flow-control windows sized for batch writes: with HTTP/2's default 64 KiB windows, a 1 MB request
  // waits a round trip for every 64 KiB the server acknowledges.
  const settings: http2.Settings = { initialWindowSize: STREAM_WINDOW, maxConcurrentStreams: limits.maxStreams };
  const h2 = http2.createServer({ maxSessionMemory: 64, settings }, handler as (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void);
  const sockets = new Set<net.Socket>();
  const sessions = new Set<http2.Http2Session>();
  /** HTTP/1.1 sockets and how many requests each is serving (Node only tracks idleness for servers it listened with). */
  const h1Sockets = new Map<net.Socket, number>();
  /** Sockets whose protocol is not known yet. */
  const sniffing = new Set<net.Socket>();
  let accepting = true;

  const secure = options.tls
    ? http2.createSecureServer(
        {
          cert: options.tls.cert,
          key: options.tls.key,
          allowHTTP1: true,
          ALPNProtocols: ["h2", "http/1.1"],
          maxSessionMemory: 64,
          settings,
          handshakeTimeout: limits.headersTimeoutMs,
        },
        handler as (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void,
      )
    : undefined;
  // Its HTTP/1.1 side takes the same timeouts (Node gives it none for keep-alive).
  if (secure) Object.assign(secure, h1Timeouts);
  // Node's HTTP/1.1 servers enforce headersTimeout and requestTimeout only on connections they track,
  // and start tracking when they listen. These never listen (the TCP server below hands them their
  // sockets), so they are told they do.
  for (const server of [h1, secure]) server?.emit("listening");

  const onSession = (session: http2.Http2Session) => {
    sessions.add(session);
    session.setLocalWindowSize(CONNECTION_WINDOW);
    // Closed once it has no open stream for the idle timeout. (Node's session timeout counts frames
    // instead, so it would also end a quiet watch stream.)
    let streams = 0;
    let idle: NodeJS.Timeout | undefined;
    const startIdle = () => (idle = setTimeout(() => session.close(), limits.idleTimeoutMs));
    startIdle();
    session.on("stream", (stream: http2.ServerHttp2Stream) => {
      streams++;
      clearTimeout(idle);
      const late = limits.requestTimeoutMs > 0 ? setTimeout(() => resetIfIncomplete(stream), limits.requestTimeoutMs) : undefined;
      stream.once("close", () => {
        clearTimeout(late);
        if (--streams === 0 && !session.closed) startIdle();
      });
    });
    session.once("close", () => {
      clearTimeout(idle);
      sessions.delete(session);
    });
    if (!accepting) session.close();
  };
  h2.on("session", onSession);
  secure?.on("session", onSession);
  /** Counts the requests in flight on each HTTP/1.1 socket, so a shutdown can close the idle ones. */
  const trackH1 = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => {
    if (req.httpVersionMajor !== 1) return;
    const socket = req.socket as net.Socket;
    if (!h1Sockets.has(socket)) socket.once("close", () => h1Sockets.delete(socket));
    h1Sockets.set(socket, (h1Sockets.get(socket) ?? 0) + 1);
    if (!accepting) (res as http.ServerResponse).setHeader("connection", "close");
    res.once("close", () => {
      const active = (h1Sockets.get(socket) ?? 1) - 1;
      h1Sockets.set(socket, active);
      // A call that was running when the shutdown began takes its keep-alive connection with it.
      if (!accepting && active === 0) socket.end();
    });
  };
  h1.on("request", trackH1);
  secure?.on("request", trackH1);

  /** Connections being served (not turned away), in all and per client address. */
  let open = 0;
  const openFrom = new Map<string, number>();
  new Gauge({
    name: "persistence_connections_open",
    help: "Connections being served (not turned away).",
    registers: [options.registry],
    collect() {
      this.set(open);
    },
  });
  const refused = new Counter({
    name: "persistence_connections_refused_total",
    help: "Connections turned away: too many in all (total) or from one client address (per_address).",
    labelNames: ["reason"],
    registers: [options.registry],
  });
  for (const reason of ["total", "per_address"]) refused.inc({ reason }, 0);
  let lastWarned = -Infinity;
  let unlogged = 0;
  const limit = (reason: string, message: string) => ({ reason, message, turnAway: createRefusal(message) });
  const tooMany = limit("total", `more than ${limits.maxConnections} connections are open`);
  const tooManyFrom = limit("per_address", `more than ${limits.maxConnectionsPerAddress} connections are open from this address`);
  /** Why a new connection from `address` is turned away, if it is. */
  const overLimit = (address: string) => {
    if (open >= limits.maxConnections) return tooMany;
    if (limits.maxConnectionsPerAddress > 0 && (openFrom.get(address) ?? 0) >= limits.maxConnectionsPerAddress) return tooManyFrom;
    return undefined;
  };

  const tcp = net.createServer((socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    const address = normalizeAddress(socket.remoteAddress) ?? "";
    const refusal = overLimit(address);
    if (refusal) {
      refused.inc({ reason: refusal.reason });
      unlogged++;
      if (Date.now() - lastWarned >= REFUSAL_LOG_INTERVAL_MS) {
        options.logger.warn({ reason: refusal.reason, address, refused: unlogged }, `connections turned away: ${refusal.message}`);
        lastWarned = Date.now();
        unlogged = 0;
      }
      refusal.turnAway(socket, secure !== undefined);
      return;
    }
    open++;
    openFrom.set(address, (openFrom.get(address) ?? 0) + 1);
    socket.once("close", () => {
      open--;
      const left = (openFrom.get(address) ?? 1) - 1;
      if (left === 0) openFrom.delete(address);
      else openFrom.set(address, left);
      sniffing.delete(socket);
      h1Sockets.delete(socket);
    });
    if (secure) {
      socket.on("error", () => socket.destroy());
      secure.emit("connection", socket);
      return;
    }
    let seen = Buffer.alloc(0);
    sniffing.add(socket);
    const timer = setTimeout(() => socket.destroy(), limits.headersTimeoutMs);
    const sniff = () => {
      let chunk: Buffer | null;
      while ((chunk = socket.read() as Buffer | null) !== null) seen = Buffer.concat([seen, chunk]);
      const n = Math.min(seen.length, PREFACE.length);
      const stillPreface = seen.subarray(0, n).equals(PREFACE.subarray(0, n));
      if (stillPreface && seen.length < PREFACE.length) return;
      socket.off("readable", sniff);
      clearTimeout(timer);
      sniffing.delete(socket);
      socket.unshift(seen);
      if (!stillPreface) h1Sockets.set(socket, 0);
      (stillPreface ? h2 : h1).emit("connection", socket);
    };
    socket.on("readable", sniff);
    socket.on("error", () => socket.destroy());
    socket.once("close", () => clearTimeout(timer));
  });

  await new Promise<void>((resolve, reject) => {
    tcp.once("error", reject);
    tcp.listen(options.port, options.host, () => {
      tcp.off("error", reject);
      resolve();
    });
  });
  const bound = tcp.address() as net.AddressInfo;
  const closedTcp = new Promise<void>((resolve) => tcp.once("close", () => resolve()));

  return {
    address: { host: options.host, port: bound.port },
    stopAccepting() {
      accepting = false;
      tcp.close();
      for (const session of sessions) session.close();
      for (const [socket, active] of h1Sockets) if (active === 0) socket.end();
      for (const socket of sniffing) socket.destroy();
    },
    destroyConnections() {
      for (const socket of sockets) socket.destroy();
    },
    closed: () => closedTcp,
  };
}

/** Resets (CANCEL) an HTTP/2 stream whose request has not arrived whole: the client has not half-closed it. */
function resetIfIncomplete(stream: http2.ServerHttp2Stream): void {
  if (!stream.destroyed && !stream.state.remoteClose) stream.close(http2.constants.NGHTTP2_CANCEL);
}

/**
 * Turns connections away with an answer every client can show: 503 with `why` and `Retry-After: 1`.
 * HTTP/1.1 gets it once and the connection closes. HTTP/2 (its first bytes are the preface) gets it on
 * each stream it opens (gRPC clients report UNAVAILABLE) until the connection is closed,
 * REFUSAL_TIMEOUT_MS later. TLS connections are closed before their handshake, which would cost
 * more than the answer is worth.
 */
function createRefusal(why: string): (socket: net.Socket, tls: boolean) => void {
  const body = `${why}; retry later\n`;
  const headers = { "content-type": "text/plain; charset=utf-8", "retry-after": "1" };
  const h1Reply =
    `HTTP/1.1 503 Service Unavailable\r\ncontent-type: ${headers["content-type"]}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
    `retry-after: ${headers["retry-after"]}\r\nconnection: close\r\n\r\n${body}`;
  const h2 = http2.createServer();
  h2.on("session", (session) => {
    session.on("error", () => session.destroy());
    setTimeout(() => session.close(), REFUSAL_TIMEOUT_MS);
  });
  h2.on("stream", (stream) => {
    stream.on("error", () => stream.destroy());
    stream.respond({ ":status": 503, ...headers });
    stream.end(body);
  });
  return (socket, tls) => {
    socket.on("error", () => socket.destroy());
    if (tls) {
      socket.destroy();
      return;
    }
    const timer = setTimeout(() => socket.destroy(), REFUSAL_TIMEOUT_MS);
    socket.once("close", () => clearTimeout(timer));
    socket.once("readable", () => {
      const chunk = (socket.read() as Buffer | null) ?? Buffer.alloc(0);
      const n = Math.min(chunk.length, PREFACE.length);
      if (n > 0 && chunk.subarray(0, n).equals(PREFACE.subarray(0, n))) {
        clearTimeout(timer);
        socket.unshift(chunk);
        h2.emit("connection", socket);
        return;
      }
      socket.end(h1Reply);
      // The rest of the request is read and dropped, so that the close is not a reset.
      socket.resume();
    });
  };
}
