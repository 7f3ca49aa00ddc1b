import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";

/** A MariaDB server of a test's own (its own port and data directory), so the test may stop and start it. */
export interface PrivateMariadb {
  readonly port: number;
  /** `mysql://root@127.0.0.1:<port>/<database>` */
  url(database: string): string;
  start(): Promise<void>;
  /** Shuts the server down and waits for it to exit. */
  stop(): Promise<void>;
  /** Stops it and removes its data. */
  destroy(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

/** Starts one; `args` are extra server options (e.g. `--max-allowed-packet=64K`). */
export async function createPrivateMariadb(args: readonly string[] = []): Promise<PrivateMariadb> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "persistence-mariadb-"));
  const install = spawnSync(
    "mariadb-install-db",
    ["--no-defaults", `--datadir=${dir}/data`, "--auth-root-authentication-method=normal", "--skip-test-db", "--user=root"],
    { encoding: "utf8" },
  );
  if (install.status !== 0) throw new Error(`mariadb-install-db failed: ${install.stderr}`);
  const port = await freePort();
  let child: ChildProcess | undefined;

  const start = async () => {
    child = spawn(
      "/usr/sbin/mariadbd",
      [
        "--no-defaults",
        `--datadir=${dir}/data`,
        `--port=${port}`,
        "--bind-address=127.0.0.1",
        `--socket=${dir}/mariadb.sock`,
        `--pid-file=${dir}/mariadb.pid`,
        `--log-error=${dir}/error.log`,
        "--user=root",
        "--skip-log-bin",
        "--innodb-buffer-pool-size=64M",
        ...args,
      ],
      { stdio: "ignore" },
    );
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      const up = await new Promise<boolean>((resolve) => {
        const socket = net.connect(port, "127.0.0.1", () => {
          socket.destroy();
          resolve(true);
        });
        socket.once("error", () => resolve(false));
      });
      if (up) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`private MariaDB did not start on port ${port}`);
  };
  const stop = async () => {
    const running = child;
    child = undefined;
    if (!running || running.exitCode !== null) return;
    const exited = new Promise((resolve) => running.once("exit", resolve));
    running.kill("SIGTERM");
    await exited;
  };
  await start();
  return {
    port,
    url: (database) => `mysql://root@127.0.0.1:${port}/${database}`,
    start,
    stop,
    async destroy() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
