import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { ROOT } from "../support/service-process";
import { startTestServer, type TestServer } from "../support/test-server";

const run = promisify(execFile);
const BUF = path.join(ROOT, "node_modules", ".bin", "buf");
const KEY = "buf-curl-key-0123456789abcdef0123456789";

/**
 * The README's `buf curl` with an API key: `-H` for the call, `--reflect-header` for the reflection it makes
 * first. (Without the second flag the reflection is refused and buf looks for the schema on the Buf Schema
 * Registry instead, hence its BUF_TOKEN message; the test does not take that path, which leaves the machine.)
 */
describe("buf curl against a service with API keys", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ PERSISTENCE_API_KEYS: JSON.stringify([{ name: "ops", key: KEY, scopes: ["system:read"] }]) });
  });
  afterAll(async () => {
    await server?.close();
  });
  const curl = (...flags: string[]) =>
    run(BUF, ["curl", "--protocol", "grpc", "--http2-prior-knowledge", ...flags, "-d", "{}", `${server.url}/persistence.v1.SystemService/GetInfo`]);

  it("works with the key in -H and --reflect-header", async () => {
    const { stdout } = await curl("-H", `Authorization: Bearer ${KEY}`, "--reflect-header", `Authorization: Bearer ${KEY}`);
    expect(JSON.parse(stdout)).toMatchObject({ name: "persistence" });
  });
});
