import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { startServiceProcess, ROOT, type ServiceProcess } from "../support/service-process";

const run = promisify(execFile);
const npm = process.platform === "win32" ? "npm.cmd" : "npm";

/** The fenced code blocks of a Markdown file, with their language. */
function codeBlocks(markdown: string): { lang: string; code: string }[] {
  return [...markdown.matchAll(/^```(\w+)\n([\s\S]*?)^```$/gm)].map((m) => ({ lang: m[1]!, code: m[2]! }));
}

/** Runs `command` in `cwd` (`env` over this process's; undefined removes a variable); resolves with its output, or rejects with the output in the message. */
async function sh(command: string, args: string[], cwd: string, env: Record<string, string | undefined> = {}): Promise<string> {
  const merged: NodeJS.ProcessEnv = { ...process.env, ...env };
  for (const [name, value] of Object.entries(merged)) if (value === undefined) delete merged[name];
  try {
    const { stdout, stderr } = await run(command, args, { cwd, env: merged, maxBuffer: 16 << 20 });
    return stdout + stderr;
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${command} ${args.join(" ")} failed: ${e.message}\n${e.stdout ?? ""}\n${e.stderr ?? ""}`);
  }
}

/**
 * The package as a user gets it: packed by `npm pack` (which builds it), installed from the tarball
 * into a new project outside the repository, compiled with the settings of a fresh `tsc --init`, and
 * every example of its README run against the service.
 */
describe("the @persistence/client package, installed outside the repository", () => {
  const rootPackage = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")) as { devDependencies: Record<string, string> };
  const readme = readFileSync(path.join(ROOT, "clients", "README.md"), "utf8");
  const examples = codeBlocks(readme).filter((b) => b.lang === "ts" || b.lang === "js");
  const apiKey = randomBytes(24).toString("hex");
  let work: string;
  let project: string;
  let packed: { filename: string; files: { path: string }[] };
  let service: ServiceProcess | undefined;

  beforeAll(async () => {
    work = mkdtempSync(path.join(os.tmpdir(), "persistence-client-package-"));
    project = path.join(work, "app");
    const [packOutput] = await Promise.all([
      sh(npm, ["pack", "-w", "clients", "--pack-destination", work, "--json", "--silent"], ROOT),
      startServiceProcess({ PERSISTENCE_API_KEYS: JSON.stringify([{ name: "examples", key: apiKey, scopes: ["admin"] }]) }).then((s) => {
        service = s;
      }),
    ]);
    packed = (JSON.parse(packOutput.slice(packOutput.indexOf("["))) as (typeof packed)[])[0]!;

    await sh("mkdir", ["-p", project], work);
    writeFileSync(
      path.join(project, "package.json"),
      JSON.stringify({
        name: "persistence-client-example",
        private: true,
        type: "module",
        dependencies: { "@persistence/client": `file:${path.join(work, packed.filename)}` },
        devDependencies: { typescript: rootPackage.devDependencies.typescript, "@types/node": rootPackage.devDependencies["@types/node"] },
      }),
    );
    await sh(npm, ["install", "--prefer-offline", "--no-audit", "--no-fund", "--ignore-scripts"], project);
    await sh(npm, ["exec", "--", "tsc", "--init"], project);
    // A fresh tsc --init names no ambient types; a Node program adds Node's, for `process` and `node:*`.
    const tsconfig = readFileSync(path.join(project, "tsconfig.json"), "utf8");
    expect(tsconfig).toMatch(/"exactOptionalPropertyTypes": true/);
    writeFileSync(path.join(project, "tsconfig.json"), tsconfig.replace(/"types": \[\]/, '"types": ["node"]'));
  }, 300_000);

  afterAll(async () => {
    await service?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("ships its ES module and CommonJS builds with their types, and not its sources", () => {
    const files = packed.files.map((f) => f.path);
    for (const file of ["dist/esm/index.js", "dist/esm/index.d.ts", "dist/cjs/index.js", "dist/cjs/index.d.ts", "README.md", "LICENSE", "CHANGELOG.md", "package.json"]) {
      expect(files).toContain(file);
    }
    expect(files.filter((f) => f.startsWith("src/") || f.endsWith(".map") || f.startsWith("scripts/"))).toEqual([]);
    const manifest = JSON.parse(readFileSync(path.join(project, "node_modules", "@persistence", "client", "package.json"), "utf8")) as Record<string, unknown>;
    expect(manifest.private).toBeUndefined();
    expect(manifest.license).toBe("Apache-2.0");
  });

  it("type-checks every README example, and a CommonJS consumer, under a fresh tsc --init", async () => {
    expect(examples.filter((e) => e.lang === "ts").length).toBeGreaterThanOrEqual(3);
    examples.forEach((e, i) => writeFileSync(path.join(project, `example-${i + 1}.${e.lang === "ts" ? "ts" : "cjs"}`), e.code));
    writeFileSync(
      path.join(project, "consumer.cts"),
      [
        'import persistence = require("@persistence/client");',
        "const code: persistence.Code = persistence.Code.NotFound;",
        "const options: persistence.PersistenceClientOptions = { baseUrl: 'http://127.0.0.1:1', apiKey: process.env.NO_SUCH_KEY, retry: undefined };",
        "const error: persistence.PersistenceError = persistence.PersistenceError.from(new persistence.ConnectError('x', code));",
        "console.log(error.codeName, typeof persistence.createPersistenceClient, options.baseUrl);",
        "",
      ].join("\n"),
    );
    await sh(npm, ["exec", "--", "tsc", "-p", "."], project);
    expect(await sh(process.execPath, ["consumer.cjs"], project)).toBe("not_found function http://127.0.0.1:1\n");
  }, 120_000);

  it("runs every README example against the service, the API key taken from the environment", async () => {
    const expected = ["quests.xlsx PROCESSING healthy", "tasks[0].confidence", "quests.xlsx: 100% done", "persistence Unavailable", "true undefined"];
    const outputs: string[] = [];
    for (let i = 0; i < examples.length; i++) {
      const file = `example-${i + 1}.${examples[i]!.lang === "ts" ? "js" : "cjs"}`;
      outputs.push(await sh(process.execPath, [file], project, { PERSISTENCE_URL: service!.url, PERSISTENCE_API_KEY: apiKey }));
    }
    for (const line of expected) expect(outputs.join("\n")).toContain(line);
    // The errors example reports the refused batch by its code's name.
    expect(outputs.find((o) => o.includes("tasks[0].confidence"))).toContain("invalid_argument");
  }, 120_000);

  it("refuses the examples without the key: the client really sends it", async () => {
    const first = `example-${examples.findIndex((e) => e.lang === "ts") + 1}.js`;
    await expect(sh(process.execPath, [first], project, { PERSISTENCE_URL: service!.url, PERSISTENCE_API_KEY: undefined })).rejects.toThrow(/unauthenticated|Unauthenticated/);
  }, 60_000);
});
