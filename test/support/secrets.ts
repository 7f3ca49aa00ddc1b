import { appendFileSync, mkdirSync } from "node:fs";
import path from "node:path";

/**
 * Every test run keeps the log lines of every service it starts (in-process and child processes) in
 * one directory, and the secrets the tests hand the services in a list there. The global teardown
 * then checks that no log line holds any of them (see global-teardown.js).
 */
export function runLogDir(): string | undefined {
  return process.env.PERSISTENCE_TEST_RUN_DIR;
}

/** Registers `value` as a secret that must never appear in a log line; returns it. */
export function secret<T extends string>(value: T): T {
  const dir = runLogDir();
  if (dir) {
    mkdirSync(dir, { recursive: true });
    appendFileSync(path.join(dir, "secrets.txt"), `${value}\n`);
  }
  return value;
}

/** Appends log lines of one service to the run's log directory. */
export function keepLogLine(line: string): void {
  const dir = runLogDir();
  if (!dir) return;
  try {
    appendFileSync(path.join(dir, `logs-${process.pid}.jsonl`), line.endsWith("\n") ? line : `${line}\n`);
  } catch (err) {
    // A server a failed test left running may still log after the run's directory was checked and removed.
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
}
