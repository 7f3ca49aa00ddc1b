import { spawn, type ChildProcess } from "node:child_process";
import { accessSync, constants, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { ROOT } from "./service-process";

/** deploy/nginx/nginx.conf, used as it is. */
export const NGINX_CONF = path.join(ROOT, "deploy", "nginx", "nginx.conf");
/** The loopback ports that config names: the instances it balances, its HTTP/1.1 and its h2c listener. */
export const NGINX_PORTS = { instances: [18101, 18102, 18103], http: 18100, h2c: 18110 } as const;

export interface Balancer {
  /** HTTP/1.1 (REST, Connect, gRPC-Web). */
  readonly httpUrl: string;
  /** HTTP/2 cleartext (gRPC). */
  readonly h2cUrl: string;
  /** What nginx logged (warnings and errors). */
  errorLog(): string;
  stop(): Promise<void>;
}

/** Whether an nginx binary is on the PATH (`.ci/run` installs Debian's). */
export function nginxAvailable(): boolean {
  return [...(process.env.PATH ?? "").split(path.delimiter), "/usr/sbin"].some((dir) => {
    try {
      accessSync(path.join(dir, "nginx"), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** Starts nginx in the foreground with the deploy config under a fresh prefix, and waits until both listeners answer. */
export async function startBalancer(): Promise<Balancer> {
  const prefix = mkdtempSync(path.join(os.tmpdir(), "persistence-nginx-"));
  mkdirSync(path.join(prefix, "logs"));
  mkdirSync(path.join(prefix, "temp"));
  const child: ChildProcess = spawn("nginx", ["-p", `${prefix}/`, "-c", NGINX_CONF, "-e", "logs/error.log", "-g", "daemon off;"], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const deadline = Date.now() + 10_000;
  for (const port of [NGINX_PORTS.http, NGINX_PORTS.h2c]) {
    while (!(await connects(port))) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`nginx did not start: ${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  const errorLog = () => {
    try {
      return readFileSync(path.join(prefix, "logs", "error.log"), "utf8");
    } catch {
      return "";
    }
  };
  return {
    httpUrl: `http://127.0.0.1:${NGINX_PORTS.http}`,
    h2cUrl: `http://127.0.0.1:${NGINX_PORTS.h2c}`,
    errorLog,
    async stop() {
      if (child.exitCode === null) child.kill("SIGTERM");
      await exited;
      rmSync(prefix, { recursive: true, force: true });
    },
  };
}

function connects(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}
