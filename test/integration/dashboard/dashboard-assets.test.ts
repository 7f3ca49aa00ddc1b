import { mkdtempSync, readFileSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { gunzipSync } from "node:zlib";
import { defaultDashboardDir, loadDashboardAssets } from "../../../server/dashboard/dashboard.assets";
import { buildDashboard } from "../../support/dashboard-build";
import { restCall } from "../../support/rest-call";
import { startTestServer, type TestServer } from "../../support/test-server";

interface RawReply {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

/** A GET that leaves the body as sent (fetch would undo the gzip). */
function get(url: string, headers: Record<string, string> = {}): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      })
      .on("error", reject);
  });
}

const KEY = "dashboard-assets-test-key-0123456789";

describe("the dashboard's files at /dashboard", () => {
  let server: TestServer;
  beforeAll(async () => {
    buildDashboard();
    server = await startTestServer({ PERSISTENCE_API_KEYS: JSON.stringify([{ name: "ops", key: KEY, scopes: ["admin"] }]) });
  });
  afterAll(() => server.close());

  it("serves the page without a key, revalidated on every load, with a policy that keeps it to this service", async () => {
    for (const pathname of ["/dashboard", "/dashboard/"]) {
      const page = await get(`${server.url}${pathname}`);
      expect(page.status).toBe(200);
      expect(page.headers["content-type"]).toBe("text/html; charset=utf-8");
      expect(page.body.toString()).toContain('<div id="app"></div>');
      expect(page.headers["cache-control"]).toBe("no-cache");
      expect(page.headers["content-security-policy"]).toContain("connect-src 'self'");
      expect(page.headers["content-security-policy"]).toContain("default-src 'self'");
      expect(page.headers["x-content-type-options"]).toBe("nosniff");
      const again = await get(`${server.url}${pathname}`, { "if-none-match": String(page.headers.etag) });
      expect(again.status).toBe(304);
      expect(again.body.length).toBe(0);
    }
  });

  it("serves the hashed assets gzipped to callers that take gzip, cached for a year, and nothing from outside", async () => {
    const page = (await get(`${server.url}/dashboard/`)).body.toString();
    const assets = [...page.matchAll(/(?:src|href)="(\/dashboard\/assets\/[^"]+)"/g)].map((m) => m[1]!);
    expect(assets.length).toBeGreaterThanOrEqual(2);
    expect(page).not.toMatch(/(?:src|href)="(?:https?:)?\/\//);
    for (const asset of assets) {
      const plain = await get(`${server.url}${asset}`);
      expect(plain.status).toBe(200);
      expect(plain.headers["content-encoding"]).toBeUndefined();
      expect(plain.headers["cache-control"]).toBe("public, max-age=31536000, immutable");
      const zipped = await get(`${server.url}${asset}`, { "accept-encoding": "gzip, deflate, br" });
      expect(zipped.headers["content-encoding"]).toBe("gzip");
      expect(zipped.headers.vary).toBe("accept-encoding");
      expect(zipped.body.length).toBeLessThan(plain.body.length);
      expect(gunzipSync(zipped.body).equals(plain.body)).toBe(true);
      expect(Number(zipped.headers["content-length"])).toBe(zipped.body.length);
    }
    const script = assets.find((a) => a.endsWith(".js"))!;
    expect((await get(`${server.url}${script}`)).headers["content-type"]).toBe("text/javascript; charset=utf-8");
    // The bundle calls the service by relative paths only.
    expect(readFileSync(path.join(defaultDashboardDir(), script.replace("/dashboard/", "")), "utf8")).not.toMatch(/https?:\/\/(?!www\.w3\.org)[a-z]/i);
  });

  it("answers 404 for a file the build did not make, and HEAD without a body", async () => {
    const missing = await restCall(server.url, "GET", "/dashboard/assets/missing.js");
    expect(missing.status).toBe(404);
    expect(missing.json).toMatchObject({ code: "not_found", message: "no dashboard file assets/missing.js" });
    const head = await fetch(`${server.url}/dashboard/`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe("");
  });

  it("keeps the figures behind the API key: the page is open, the data is not", async () => {
    expect((await restCall(server.url, "GET", "/api/v1/system/metrics")).status).toBe(401);
    expect((await restCall(server.url, "GET", "/api/v1/system/metrics", undefined, { "x-api-key": KEY })).status).toBe(200);
  });

  it("finds no dashboard in a folder the build never wrote", () => {
    expect(loadDashboardAssets(mkdtempSync(path.join(os.tmpdir(), "no-dashboard-")))).toBeUndefined();
  });
});
