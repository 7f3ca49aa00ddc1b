import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";

/** A small tmpfs of a test's own: a real disk that fills up. */
export interface Tmpfs {
  readonly dir: string;
  /** Unmounts it and removes its mount point. */
  remove(): void;
}

/**
 * Mounts a tmpfs of `size` (e.g. "2m"), or returns undefined where mounting is not permitted, after
 * saying loudly on stderr that `what` is skipped.
 */
export function mountTmpfs(size: string, what: string): Tmpfs | undefined {
  const dir = mkdtempSync(path.join(os.tmpdir(), "persistence-tmpfs-"));
  if (spawnSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir]).status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    process.stderr.write(`\n*** SKIPPED: ${what} needs \`mount -t tmpfs\` (not permitted here) ***\n\n`);
    return undefined;
  }
  return {
    dir,
    remove() {
      spawnSync("umount", [dir]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
