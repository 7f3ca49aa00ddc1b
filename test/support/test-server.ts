import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { DescService } from "@bufbuild/protobuf";
import { createClient, type Client, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { startApp, type App } from "../../server/app";
import { loadConfig } from "../../server/config";
import { createLogger } from "../../server/core/logger";
import { keepLogLine } from "./secrets";

export type Protocol = "connect" | "grpc" | "grpc-web";
export const PROTOCOLS: Protocol[] = ["connect", "grpc", "grpc-web"];

/** The real service, in this process, on a free loopback port, with its log lines captured. */
export interface TestServer {
  readonly app: App;
  readonly url: string;
  /** Every JSON log line written so far, parsed. */
  readonly logs: Record<string, unknown>[];
  /** A generated client for `service` over `protocol` (Connect over HTTP/1.1, gRPC over h2c, gRPC-Web over HTTP/1.1). */
  client<S extends DescService>(service: S, protocol?: Protocol): Client<S>;
  transport(protocol: Protocol): Transport;
  close(): Promise<void>;
}

/** Starts the service with `PERSISTENCE_*` settings `env` over test defaults (port 0, a temp data dir). */
export async function startTestServer(env: Record<string, string> = {}): Promise<TestServer> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), "persistence-data-"));
  const config = loadConfig({
    PERSISTENCE_LISTEN: "127.0.0.1:0",
    PERSISTENCE_DATA_DIR: dataDir,
    PERSISTENCE_SHUTDOWN_TIMEOUT_MS: "2000",
    ...env,
  });
  const logs: Record<string, unknown>[] = [];
  const logger = createLogger(config.logLevel, {
    write: (line: string) => {
      keepLogLine(line);
      logs.push(JSON.parse(line) as Record<string, unknown>);
    },
  });
  const app = await startApp(config, { logger });
  const transports: Record<Protocol, Transport> = {
    connect: createConnectTransport({ baseUrl: app.url, httpVersion: "1.1" }),
    grpc: createGrpcTransport({ baseUrl: app.url, idleConnectionTimeoutMs: 200 }),
    "grpc-web": createGrpcWebTransport({ baseUrl: app.url, httpVersion: "1.1" }),
  };
  return {
    app,
    url: app.url,
    logs,
    transport: (protocol) => transports[protocol],
    client: (service, protocol = "connect") => createClient(service, transports[protocol]),
    async close() {
      await app.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
