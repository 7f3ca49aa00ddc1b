import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { keepLogLine } from "./secrets";

export const ROOT = path.resolve(__dirname, "..", "..");

/**
 * The service as users run it, in its own process, on a free loopback port. It runs the command behind
 * `npm start` (`node scripts/start.js`) directly, so signals reach the service itself: npm does not
 * forward them to its child.
 */
export interface ServiceProcess {
  readonly url: string;
  readonly child: ChildProcess;
  /** Every JSON line the process logged so far. */
  readonly logs: Record<string, unknown>[];
  /** Sends `signal` and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Starts the service with `PERSISTENCE_*` settings `env` (port 0 and a temp data dir by default) and waits until it listens.
 * `onLog` sees each JSON line as it is logged, from the first (before listening) on.
 */
export async function startServiceProcess(
  env: Record<string, string> = {},
  timeoutMs = 60_000,
  onLog: (entry: Record<string, unknown>) => void = () => {},
): Promise<ServiceProcess> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), "persistence-proc-"));
  const child = spawn(process.execPath, [path.join(ROOT, "scripts", "start.js")], {
    cwd: ROOT,
    env: { ...process.env, PERSISTENCE_LISTEN: "127.0.0.1:0", PERSISTENCE_DATA_DIR: dataDir, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logs: Record<string, unknown>[] = [];
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
    keepLogLine(JSON.stringify({ stderr: chunk.toString() }));
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));

  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "listening" line within ${timeoutMs} ms; stderr: ${stderr}`)), timeoutMs);
    readline.createInterface({ input: child.stdout! }).on("line", (line) => {
      keepLogLine(line);
      try {
        const entry = JSON.parse(line) as Record<string, unknown>;
        logs.push(entry);
        onLog(entry);
        if (entry.msg === "listening") {
          clearTimeout(timer);
          resolve(String(entry.url));
        }
      } catch {
        // not a log line
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`the service exited with ${code} before listening; stderr: ${stderr}`));
    });
  });

  return {
    url,
    child,
    logs,
    async stop(signal = "SIGTERM") {
      if (child.exitCode === null) child.kill(signal);
      const code = await exited;
      rmSync(dataDir, { recursive: true, force: true });
      return code;
    },
  };
}
