import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { parse } from "yaml";
import { ROOT } from "../support/service-process";
import { startTestServer, type TestServer } from "../support/test-server";

const run = promisify(execFile);
const DEPLOY = path.join(ROOT, "deploy");

/** Series Prometheus makes itself for every scrape target, not the service. */
const PROMETHEUS_OWN = new Set(["up"]);
/** Words of PromQL that are not metric names when not followed by "(". */
const KEYWORDS = new Set(["and", "or", "unless", "bool", "offset"]);

/** Each metric a PromQL expression selects, with the labels its matchers name. */
function selectors(expr: string): { metric: string; labels: string[] }[] {
  const text = expr
    .replace(/label_values\((.*),\s*\w+\s*\)/g, "$1")
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " ")
    .replace(/\[[^\]]*\]/g, " ");
  const out: { metric: string; labels: string[] }[] = [];
  const selector = /([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{([^}]*)\})?(\s*\()?/g;
  for (const m of text.matchAll(selector)) {
    if (m[4] !== undefined || KEYWORDS.has(m[1]!)) continue;
    const labels = [...(m[3] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"/g)].map((l) => l[1]!);
    out.push({ metric: m[1]!, labels });
  }
  return out;
}

/** The exposition's series names, each with the label names it carries. */
function exported(text: string): Map<string, Set<string>> {
  const names = new Map<string, Set<string>>();
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s/.exec(line);
    if (!m) continue;
    const labels = names.get(m[1]!) ?? new Set<string>();
    for (const l of (m[3] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)) labels.add(l[1]!);
    names.set(m[1]!, labels);
  }
  return names;
}

interface Panel {
  title: string;
  targets?: { expr: string }[];
  panels?: Panel[];
}

async function promtool(args: string[], cwd: string): Promise<string> {
  try {
    const { stdout, stderr } = await run("promtool", args, { cwd });
    return stdout + stderr;
  } catch (error) {
    const e = error as { code?: string; stdout?: string; stderr?: string; message: string };
    if (e.code === "ENOENT") throw new Error("promtool is not installed: apt-get install prometheus (bash .ci/run does)");
    throw new Error(`promtool ${args.join(" ")}: ${e.stdout ?? ""}${e.stderr ?? e.message}`);
  }
}

describe("operations material under deploy/", () => {
  const rulesFile = path.join(DEPLOY, "prometheus", "alerts.yml");
  const rules = parse(readFileSync(rulesFile, "utf8")) as { groups: { rules: { alert: string; expr: string }[] }[] };
  const dashboard = JSON.parse(readFileSync(path.join(DEPLOY, "grafana", "persistence-dashboard.json"), "utf8")) as {
    panels: Panel[];
    templating: { list: { name: string; query: string | { query: string } }[] };
  };
  const queries: { where: string; expr: string }[] = [
    ...rules.groups.flatMap((g) => g.rules.map((r) => ({ where: `alert ${r.alert}`, expr: r.expr }))),
    ...dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]).flatMap((p) => (p.targets ?? []).map((t) => ({ where: `panel "${p.title}"`, expr: t.expr }))),
    ...dashboard.templating.list
      .filter((v) => v.name !== "datasource")
      .map((v) => ({ where: `variable ${v.name}`, expr: typeof v.query === "string" ? v.query : v.query.query })),
  ];
  let server: TestServer;
  let metrics: Map<string, Set<string>>;

  beforeAll(async () => {
    server = await startTestServer();
    // One call of each shape, so the per-call series (counters and histogram buckets) exist.
    await fetch(`${server.url}/api/v1/translation/flush`, { method: "POST" });
    await fetch(`${server.url}/api/v1/translation/sessions/no-such-session`);
    metrics = exported(await (await fetch(`${server.url}/metrics`)).text());
  });
  afterAll(async () => {
    await server?.close();
  });

  it("has alert rules that promtool accepts and whose unit tests pass", async () => {
    expect(await promtool(["check", "rules", rulesFile], DEPLOY)).toContain("SUCCESS");
    expect(await promtool(["test", "rules", "alerts.test.yml"], path.join(DEPLOY, "prometheus"))).toContain("SUCCESS");
  }, 60_000);

  it("reads PromQL selectors as Prometheus does", () => {
    expect(selectors('sum by (le) (rate(grpc_server_handling_seconds_bucket{job=~"$job", grpc_type="unary"}[$__rate_interval])) / up')).toEqual([
      { metric: "grpc_server_handling_seconds_bucket", labels: ["job", "grpc_type"] },
      { metric: "up", labels: [] },
    ]);
    expect(selectors('label_values(persistence_build_info{job=~"$job"}, instance)')).toEqual([{ metric: "persistence_build_info", labels: ["job"] }]);
    expect(selectors("count(persistence_backend_up == 0) or vector(0)")).toEqual([{ metric: "persistence_backend_up", labels: [] }]);
  });

  it("queries only metrics, and labels, that a running service exports", () => {
    expect(queries.length).toBeGreaterThan(30);
    const problems: string[] = [];
    const scrapeLabels = new Set(["job", "instance"]); // added by Prometheus to every series it scrapes
    for (const { where, expr } of queries) {
      const found = selectors(expr);
      if (found.length === 0) problems.push(`${where}: no metric in ${expr}`);
      for (const { metric, labels } of found) {
        if (PROMETHEUS_OWN.has(metric)) continue;
        const known = metrics.get(metric);
        if (!known) {
          problems.push(`${where}: ${metric} is not exported`);
          continue;
        }
        for (const label of labels) if (!known.has(label) && !scrapeLabels.has(label)) problems.push(`${where}: ${metric} has no label ${label}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it("alerts on every write-path failure the service counts", () => {
    const alerted = new Set(queries.filter((q) => q.where.startsWith("alert")).flatMap((q) => selectors(q.expr).map((s) => s.metric)));
    for (const metric of ["persistence_data_loss_total", "persistence_dead_letters_total", "persistence_buffer_full_total", "persistence_wal_append_failures_total", "persistence_backend_up"]) {
      expect(alerted).toContain(metric);
    }
  });
});
