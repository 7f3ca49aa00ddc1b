import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import path from "node:path";

/**
 * The real S3-compatible server tests run against (Swift + s3api on loopback): `TEST_S3_URL` when set
 * (CI sets it), else whatever `scripts/s3-server.sh start` brings up (installing Swift when missing).
 * Either the URL, or why there is none, for a suite's `skip`. Resolved once per test file.
 */
export function s3ServerUrl(): { readonly url: string } | { readonly skip: string } {
  cached ??= resolve();
  return cached;
}

let cached: { readonly url: string } | { readonly skip: string } | undefined;

function resolve(): { readonly url: string } | { readonly skip: string } {
  const fromEnv = process.env.TEST_S3_URL;
  if (fromEnv) return { url: fromEnv };
  const script = path.resolve(__dirname, "..", "..", "scripts", "s3-server.sh");
  const run = spawnSync("bash", [script, "start"], { encoding: "utf8", timeout: 300_000 });
  const url = run.stdout?.trim().split("\n").pop();
  if (run.status === 0 && url) return { url };
  const why = (run.stderr ?? "").trim().split("\n").pop() || run.error?.message || `exit status ${run.status}`;
  return { skip: `TEST_S3_URL is not set and scripts/s3-server.sh could not start a server (${why})` };
}

/** The same server and credentials with a bucket of the test's own (created by the store on open). */
export function withOwnBucket(url: string, suite: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${`pt-${suite}-${randomBytes(4).toString("hex")}`.toLowerCase().replace(/[^a-z0-9-]/g, "-").slice(0, 63)}`;
  return parsed.toString();
}
