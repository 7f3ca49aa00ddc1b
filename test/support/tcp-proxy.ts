import net from "node:net";

/** A loopback TCP proxy in front of a shared server, so a test can cut its own connections without touching the server. */
export interface TcpProxy {
  readonly port: number;
  /** Destroys every connection through the proxy (both sides). */
  dropConnections(): void;
  /** While refusing, new connections are closed at once (the server looks down). */
  refuse(refusing: boolean): void;
  close(): Promise<void>;
}

export async function createTcpProxy(targetPort: number, targetHost = "127.0.0.1"): Promise<TcpProxy> {
  const sockets = new Set<net.Socket>();
  let refusing = false;
  const track = (socket: net.Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
  };
  const server = net.createServer((client) => {
    track(client);
    if (refusing) return client.destroy();
    const upstream = net.connect(targetPort, targetHost);
    track(upstream);
    client.pipe(upstream).pipe(client);
    const both = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("close", both);
    upstream.on("close", both);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const dropConnections = () => {
    for (const s of sockets) s.destroy();
  };
  return {
    port: (server.address() as net.AddressInfo).port,
    dropConnections,
    refuse: (on) => {
      refusing = on;
    },
    close: async () => {
      dropConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
