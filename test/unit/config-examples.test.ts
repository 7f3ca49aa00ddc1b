import { readFileSync } from "node:fs";
import path from "node:path";
import { loadConfig, redactedConfig, type UnknownSetting } from "../../server/config";

const ROOT = path.resolve(__dirname, "..", "..");

/** Every variable loadConfig reads: it reads each setting whatever the others say. */
function settingsRead(): string[] {
  const read = new Set<string>();
  const env = new Proxy({} as Record<string, string | undefined>, {
    get: (_target, name) => {
      if (typeof name === "string" && name.startsWith("PERSISTENCE_")) read.add(name);
      return undefined;
    },
  });
  loadConfig(env);
  return [...read].sort();
}

describe("the example configuration", () => {
  const variables = settingsRead();
  const envExample = readFileSync(path.join(ROOT, ".env.example"), "utf8");
  const yamlFile = path.join(ROOT, "deploy", "persistence.example.yaml");
  const defaults = redactedConfig(loadConfig({}));

  it("reads a setting for each of the service's settings (the list the examples are checked against)", () => {
    expect(variables.length).toBeGreaterThan(40);
    expect(variables).toContain("PERSISTENCE_LOG_FORMAT");
  });

  it(".env.example lists every variable, and its uncommented lines are the defaults", () => {
    const listed = [...envExample.matchAll(/^#?(PERSISTENCE_[A-Z0-9_]+)=/gm)].map((m) => m[1]!);
    expect([...new Set(listed)].sort()).toEqual(variables);
    const set = Object.fromEntries([...envExample.matchAll(/^(PERSISTENCE_[A-Z0-9_]+)=(.*)$/gm)].map((m) => [m[1]!, m[2]!]));
    const unknown: UnknownSetting[] = [];
    expect(redactedConfig(loadConfig(set, (u) => unknown.push(u)))).toEqual(defaults);
    expect(unknown).toEqual([]);
  });

  it("the example config file names every setting, and as it stands changes nothing", () => {
    const text = readFileSync(yamlFile, "utf8");
    const keys = [...text.matchAll(/^#? ?([a-z0-9_]+):/gm)].map((m) => m[1]!);
    const expected = variables.filter((v) => v !== "PERSISTENCE_CONFIG").map((v) => v.slice("PERSISTENCE_".length).toLowerCase());
    expect([...new Set(keys)].sort()).toEqual(expected.sort());
    const unknown: UnknownSetting[] = [];
    expect(redactedConfig(loadConfig({ PERSISTENCE_CONFIG: yamlFile }, (u) => unknown.push(u)))).toEqual(defaults);
    expect(unknown).toEqual([]);
  });

  it("the README documents every variable", () => {
    const readme = readFileSync(path.join(ROOT, "README.md"), "utf8");
    expect(variables.filter((v) => !readme.includes(`\`${v}\``))).toEqual([]);
  });
});
