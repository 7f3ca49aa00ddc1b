import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { gzipSync } from "node:zlib";
import type { NodeRequest, NodeResponse } from "../http/node-types.js";

/** One built file, kept in memory with its gzip form and validator. */
export interface DashboardAsset {
  readonly contentType: string;
  readonly body: Buffer;
  readonly gzipped: Buffer;
  readonly etag: string;
  readonly cacheControl: string;
}

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".json": "application/json",
  ".woff2": "font/woff2",
};

/**
 * The page may load only what this service serves, and talk only to it: the dashboard works offline,
 * and an injected script could not send a key elsewhere.
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data: blob:",
  "style-src 'self'",
  "script-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

/** The folder `npm run build` writes the dashboard into: dist/dashboard, seen from the sources or from the service compiled into dist/. */
export function defaultDashboardDir(): string {
  const root = path.resolve(__dirname, "..", "..");
  return path.basename(root) === "dist" ? path.join(root, "dashboard") : path.join(root, "dist", "dashboard");
}

/**
 * Reads every file of the built dashboard once. Hashed files under assets/ never change, so they are
 * cached for a year; the page itself is revalidated on every load (its ETag answers 304), so a new build
 * is picked up at once. Returns undefined when the dashboard has not been built.
 */
export function loadDashboardAssets(dir: string): Map<string, DashboardAsset> | undefined {
  if (!existsSync(path.join(dir, "index.html"))) return undefined;
  const assets = new Map<string, DashboardAsset>();
  const walk = (sub: string) => {
    for (const name of readdirSync(path.join(dir, sub))) {
      const rel = sub ? `${sub}/${name}` : name;
      const full = path.join(dir, rel);
      if (statSync(full).isDirectory()) {
        walk(rel);
        continue;
      }
      const contentType = TYPES[path.extname(name)];
      if (contentType === undefined) continue;
      const body = readFileSync(full);
      assets.set(rel, {
        contentType,
        body,
        gzipped: gzipSync(body, { level: 9 }),
        etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 22)}"`,
        cacheControl: rel.startsWith("assets/") ? "public, max-age=31536000, immutable" : "no-cache",
      });
    }
  };
  walk("");
  return assets;
}

/** Answers one asset: 304 when the caller holds it, gzip when the caller takes it, HEAD without a body. */
export function sendAsset(req: NodeRequest, res: NodeResponse, asset: DashboardAsset): void {
  const headers: Record<string, string | number> = {
    "content-type": asset.contentType,
    "cache-control": asset.cacheControl,
    etag: asset.etag,
    vary: "accept-encoding",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
  };
  if (asset.contentType.startsWith("text/html")) headers["content-security-policy"] = CONTENT_SECURITY_POLICY;
  const held = req.headers["if-none-match"];
  if (typeof held === "string" && held.split(",").some((tag) => tag.trim() === asset.etag)) {
    res.writeHead(304, headers);
    res.end();
    return;
  }
  const accepts = String(req.headers["accept-encoding"] ?? "");
  const gzip = /\bgzip\b/.test(accepts) && asset.gzipped.length < asset.body.length;
  const body = gzip ? asset.gzipped : asset.body;
  if (gzip) headers["content-encoding"] = "gzip";
  headers["content-length"] = body.length;
  res.writeHead(200, headers);
  if (req.method === "HEAD") res.end();
  else res.end(body);
}
