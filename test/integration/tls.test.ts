import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import https from "node:https";
import http2 from "node:http2";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { SystemService } from "../../gen/persistence/v1/system_pb";
import { startTestServer, type TestServer } from "../support/test-server";
import { eventually, within } from "../support/wait";

describe("TLS on the one port", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "persistence-tls-"));
  const certFile = path.join(dir, "cert.pem");
  const keyFile = path.join(dir, "key.pem");
  let server: TestServer;
  let ca: Buffer;

  beforeAll(async () => {
    // A self-signed certificate for 127.0.0.1, made here.
    execFileSync("openssl", [
      "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
      "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", keyFile, "-out", certFile,
    ], { stdio: "ignore" });
    ca = readFileSync(certFile);
    server = await startTestServer({ PERSISTENCE_TLS_CERT: certFile, PERSISTENCE_TLS_KEY: keyFile });
  });
  afterAll(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const alpn = (protocols: string[]) =>
    new Promise<string | false>((resolve, reject) => {
      const { port } = new URL(server.url);
      const socket = tls.connect({ host: "127.0.0.1", port: Number(port), ca, ALPNProtocols: protocols }, () => {
        resolve(socket.alpnProtocol ?? false);
        socket.end();
      });
      socket.on("error", reject);
    });

  it("serves https and negotiates h2 or http/1.1 by ALPN", async () => {
    expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(await alpn(["h2", "http/1.1"])).toBe("h2");
    expect(await alpn(["http/1.1"])).toBe("http/1.1");
  });

  it("answers REST over HTTP/1.1 and HTTP/2 with TLS", async () => {
    const h1 = await new Promise<{ status?: number; body: string }>((resolve, reject) => {
      https.get(`${server.url}/health`, { ca }, (res) => {
        let body = "";
        res.on("data", (c: Buffer) => (body += c.toString()));
        res.on("end", () => resolve({ status: res.statusCode, body }));
      }).on("error", reject);
    });
    expect(h1.status).toBe(200);
    expect(JSON.parse(h1.body)).toMatchObject({ status: "healthy" });

    const h2 = await new Promise<{ status?: number; body: string }>((resolve, reject) => {
      const session = http2.connect(server.url, { ca });
      session.on("error", reject);
      const stream = session.request({ ":path": "/api/v1/translation/stats" });
      let body = "";
      let status: number | undefined;
      stream.on("response", (h) => (status = h[":status"]));
      stream.on("data", (c: Buffer) => (body += c.toString()));
      stream.on("end", () => {
        session.close();
        resolve({ status, body });
      });
    });
    expect(h2.status).toBe(200);
    expect(JSON.parse(h2.body)).toMatchObject({ total_sessions: 0 });
  });

  it("serves gRPC, gRPC-Web and Connect clients over TLS", async () => {
    const nodeOptions = { ca };
    const grpc = createClient(SystemService, createGrpcTransport({ baseUrl: server.url, nodeOptions, idleConnectionTimeoutMs: 100 }));
    expect((await grpc.getInfo({})).name).toBe("persistence");
    const web = createClient(SystemService, createGrpcWebTransport({ baseUrl: server.url, httpVersion: "1.1", nodeOptions }));
    expect((await web.getHealth({})).status).toBe("healthy");
    const connect = createClient(SystemService, createConnectTransport({ baseUrl: server.url, httpVersion: "1.1", nodeOptions }));
    expect((await connect.echo({ payload: new Uint8Array([1, 2, 3]) })).payload).toEqual(new Uint8Array([1, 2, 3]));
  });

  it("refuses plaintext on the TLS port", async () => {
    const plain = server.url.replace("https://", "http://");
    await expect(fetch(`${plain}/health`)).rejects.toThrow();
  });

  it("closes TLS connections past the connection limit before their handshake", async () => {
    const limited = await startTestServer({ PERSISTENCE_TLS_CERT: certFile, PERSISTENCE_TLS_KEY: keyFile, PERSISTENCE_MAX_CONNECTIONS_PER_ADDRESS: "1" });
    const port = Number(new URL(limited.url).port);
    const held = net.connect(port, "127.0.0.1");
    try {
      await new Promise((resolve) => held.once("connect", resolve));
      const handshake = (): Promise<string> =>
        new Promise((resolve) => {
          const socket = tls.connect({ host: "127.0.0.1", port, ca }, () => {
            socket.end();
            resolve("secure");
          });
          socket.on("error", () => resolve("closed"));
          socket.on("close", () => resolve("closed"));
        });
      expect(await handshake()).toBe("closed");
      held.destroy();
      // Once the held connection is gone there is room again (the server may take a moment to see it go).
      await eventually(async () => (await handshake()) === "secure");
    } finally {
      held.destroy();
      await limited.close();
    }
  });

  describe("with slow clients", () => {
    let slow: TestServer;
    beforeAll(async () => {
      slow = await startTestServer({ PERSISTENCE_TLS_CERT: certFile, PERSISTENCE_TLS_KEY: keyFile, PERSISTENCE_HEADERS_TIMEOUT_MS: "1000", PERSISTENCE_IDLE_TIMEOUT_MS: "1500" });
    });
    afterAll(async () => {
      await slow?.close();
    });

    const closed = (socket: net.Socket) => within(new Promise((resolve) => socket.once("close", resolve)), "closed");

    it("closes a connection that never completes its TLS handshake", async () => {
      const socket = net.connect(Number(new URL(slow.url).port), "127.0.0.1");
      socket.on("error", () => {});
      await closed(socket);
    });

    it("answers 408 to an HTTP/1.1 request whose headers trickle in, and closes an idle one", async () => {
      const open = (onReady: (socket: tls.TLSSocket) => void) => {
        const socket = tls.connect({ host: "127.0.0.1", port: Number(new URL(slow.url).port), ca, ALPNProtocols: ["http/1.1"] }, () => onReady(socket));
        let received = "";
        socket.on("data", (chunk: Buffer) => (received += chunk.toString("latin1")));
        socket.on("error", () => {});
        return { socket, received: () => received };
      };
      const trickling = open((socket) => {
        const text = `GET /health HTTP/1.1\r\nHost: x\r\n${"X-Slow: 1\r\n".repeat(1000)}\r\n`;
        let i = 0;
        const timer = setInterval(() => (socket.destroyed ? clearInterval(timer) : socket.write(text[i++]!)), 200);
      });
      const idle = open((socket) => socket.write("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"));
      await Promise.all([closed(trickling.socket), closed(idle.socket)]);
      expect(trickling.received()).toMatch(/^HTTP\/1\.1 408 /);
      expect(idle.received()).toMatch(/^HTTP\/1\.1 200 /);
    });
  });
});
