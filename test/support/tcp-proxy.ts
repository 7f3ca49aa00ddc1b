import net from "node:net";

/**
 * A TCP proxy on loopback in front of a server (a shared MariaDB, say), that can make the server
 * look hung to the proxy's clients without touching the server: while frozen, connections stay open
 * and every byte either way is held back, until thawed.
 */
export interface TcpProxy {
  readonly port: number;
  /** Stops forwarding: bytes from now on are held (new connections are accepted and held too). */
  freeze(): void;
  /** Forwards what was held, in order, and forwards again. */
  thaw(): void;
  /** Bytes that arrived while frozen, either way. */
  heldBytes(): number;
  close(): Promise<void>;
}

/** Listens on `listenPort` (default: a free one) and forwards to `targetHost:targetPort`. */
export async function createTcpProxy(targetPort: number, targetHost = "127.0.0.1", listenPort = 0): Promise<TcpProxy> {
  let frozen = false;
  let held: (() => void)[] = [];
  let heldBytes = 0;
  const sockets = new Set<net.Socket>();

  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, targetHost);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on("error", () => {});
      socket.once("close", () => {
        sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    const forward = (from: net.Socket, to: net.Socket) =>
      from.on("data", (chunk: Buffer) => {
        if (!frozen) return void to.write(chunk);
        heldBytes += chunk.length;
        held.push(() => to.write(chunk));
      });
    forward(client, upstream);
    forward(upstream, client);
  });
  await new Promise<void>((resolve) => server.listen(listenPort, "127.0.0.1", resolve));

  return {
    port: (server.address() as net.AddressInfo).port,
    freeze() {
      frozen = true;
    },
    thaw() {
      const release = held;
      held = [];
      frozen = false;
      for (const write of release) write();
    },
    heldBytes: () => heldBytes,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
