import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { freePort } from "./private-mariadb";

/** A Redis Cluster of a test's own: three masters on free loopback ports, nothing kept on disk. */
export interface PrivateRedisCluster {
  /** `redis+cluster://127.0.0.1:<port>,...` */
  readonly url: string;
  /** Stops the nodes and removes their files. */
  destroy(): Promise<void>;
}

/** Why a private cluster cannot start here, or undefined when it can. */
export function redisClusterUnavailable(): string | undefined {
  for (const tool of ["redis-server", "redis-cli"]) {
    if (spawnSync(tool, ["--version"], { encoding: "utf8" }).status !== 0) return `${tool} is not installed`;
  }
  return undefined;
}

export async function createPrivateRedisCluster(): Promise<PrivateRedisCluster> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "persistence-redis-cluster-"));
  const ports = [await freePort(), await freePort(), await freePort()];
  const nodes: ChildProcess[] = ports.map((port) =>
    spawn(
      "redis-server",
      [
        "--port", String(port),
        "--bind", "127.0.0.1",
        "--cluster-enabled", "yes",
        "--cluster-config-file", path.join(dir, `nodes-${port}.conf`),
        "--dir", dir,
        "--save", "",
        "--appendonly", "no",
      ],
      { stdio: "ignore" },
    ),
  );
  const destroy = async () => {
    await Promise.all(
      nodes.map(async (node) => {
        if (node.exitCode !== null || node.signalCode !== null) return;
        const exited = new Promise((resolve) => node.once("exit", resolve));
        node.kill("SIGTERM");
        await exited;
      }),
    );
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await until(() => ports.every((p) => cli(p, "ping") === "PONG"), "the cluster nodes to answer");
    const create = spawnSync("redis-cli", ["--cluster", "create", ...ports.map((p) => `127.0.0.1:${p}`), "--cluster-replicas", "0", "--cluster-yes"], {
      encoding: "utf8",
    });
    if (create.status !== 0) throw new Error(`redis-cli --cluster create failed: ${create.stdout}${create.stderr}`);
    await until(() => ports.every((p) => cli(p, "cluster", "info").includes("cluster_state:ok")), "the cluster to be ok");
  } catch (err) {
    await destroy();
    throw err;
  }
  return { url: `redis+cluster://${ports.map((p) => `127.0.0.1:${p}`).join(",")}`, destroy };
}

function cli(port: number, ...args: string[]): string {
  return spawnSync("redis-cli", ["-h", "127.0.0.1", "-p", String(port), ...args], { encoding: "utf8" }).stdout?.trim() ?? "";
}

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
