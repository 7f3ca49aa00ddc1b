import { useEffect, useState } from "preact/hooks";
import { apiError, restFetch, restGet, type ApiError } from "./api.js";
import { TimeChart, type Series } from "./chart.js";
import { count } from "./format.js";
import { useKeyVersion } from "./hooks.js";
import { ErrorNote, ServiceGate, Status } from "./parts.js";

/** GET /api/v1/audit/logs and /api/v1/audit/stats (SPEC §6, §11), in the REST dialect. */
interface AuditEntry {
  readonly id: string;
  readonly occurred_at: string;
  readonly actor?: { type?: string; id?: string; name?: string } | null;
  readonly action: string;
  readonly resource?: { type?: string; id?: string } | null;
  readonly result: string;
  readonly ip?: string | null;
  readonly message?: string | null;
}
interface SearchReply {
  readonly total: number;
  readonly items: AuditEntry[];
  readonly next_page_token?: string | null;
}
interface StatsReply {
  readonly total: number;
  readonly by_action?: { value: string; count: number }[];
  readonly by_result?: { value: string; count: number }[];
  readonly by_time?: { start: string; count: number }[];
}

/** The search form's fields: the REST query parameters of SearchLogs. */
const FILTERS = [
  { name: "q", label: "Text", hint: "words in the message" },
  { name: "action", label: "Action", hint: "prefix, e.g. session." },
  { name: "actor_id", label: "Actor id" },
  { name: "resource_type", label: "Resource type" },
  { name: "resource_id", label: "Resource id" },
  { name: "ip", label: "IP address" },
] as const;
type Filters = Record<(typeof FILTERS)[number]["name"] | "result" | "from" | "to" | "interval", string>;
const EMPTY: Filters = { q: "", action: "", actor_id: "", resource_type: "", resource_id: "", ip: "", result: "", from: "", to: "", interval: "1h" };
const PAGE_SIZE = 25;
/** Actions drawn as their own series in the chart. */
const TOP_ACTIONS = 5;

/** The filters as query parameters: the form's local times become RFC 3339 UTC. */
function query(filters: Filters): Record<string, string> {
  const params: Record<string, string> = {};
  for (const [name, value] of Object.entries(filters)) {
    if (!value || name === "interval") continue;
    params[name] = name === "from" || name === "to" ? new Date(value).toISOString() : value.trim();
  }
  return params;
}

/** Audit search, when this instance serves AuditService. */
export function AuditPane() {
  return (
    <ServiceGate service="AuditService" name="audit">
      <AuditSearch />
    </ServiceGate>
  );
}

/** Filters and free text, a paged table, events over time by action and result, export. */
function AuditSearch() {
  const keyVersion = useKeyVersion();
  const [form, setForm] = useState<Filters>(EMPTY);
  const [applied, setApplied] = useState<Filters>(EMPTY);
  const [tokens, setTokens] = useState<string[]>([""]);
  const [page, setPage] = useState<SearchReply>();
  const [error, setError] = useState<ApiError>();
  const [loading, setLoading] = useState(false);
  const [runs, setRuns] = useState(0);

  useEffect(() => {
    const controller = new AbortController();
    setLoading(true);
    restGet<SearchReply>("/api/v1/audit/logs", { ...query(applied), page_size: PAGE_SIZE, page_token: tokens.at(-1) }, controller.signal)
      .then((reply) => {
        setPage(reply);
        setError(undefined);
      })
      .catch((err: unknown) => {
        if (controller.signal.aborted) return;
        setError(apiError(err));
        setPage(undefined);
      })
      .finally(() => controller.signal.aborted || setLoading(false));
    return () => controller.abort();
  }, [applied, tokens, keyVersion, runs]);

  const search = (e: Event) => {
    e.preventDefault();
    setApplied({ ...form });
    setTokens([""]);
    setRuns((n) => n + 1);
  };
  const set = (name: keyof Filters) => (e: Event) => setForm({ ...form, [name]: (e.currentTarget as HTMLInputElement).value });
  const pageNumber = tokens.length;

  return (
    <div class="pane-grid">
      <section aria-labelledby="audit-search-title" class="card wide">
        <h2 id="audit-search-title">Search audit logs</h2>
        <form class="filters" role="search" aria-labelledby="audit-search-title" onSubmit={search}>
          {FILTERS.map((f) => (
            <div class="field" key={f.name}>
              <label for={`audit-${f.name}`}>{f.label}</label>
              <input id={`audit-${f.name}`} name={f.name} value={form[f.name]} onInput={set(f.name)} placeholder={"hint" in f ? f.hint : ""} autocomplete="off" />
            </div>
          ))}
          <div class="field">
            <label for="audit-result">Result</label>
            <select id="audit-result" name="result" value={form.result} onChange={set("result")}>
              <option value="">any</option>
              <option value="success">success</option>
              <option value="failure">failure</option>
            </select>
          </div>
          <div class="field">
            <label for="audit-from">From</label>
            <input id="audit-from" name="from" type="datetime-local" value={form.from} onInput={set("from")} />
          </div>
          <div class="field">
            <label for="audit-to">To</label>
            <input id="audit-to" name="to" type="datetime-local" value={form.to} onInput={set("to")} />
          </div>
          <div class="field">
            <label for="audit-interval">Chart buckets</label>
            <select id="audit-interval" name="interval" value={form.interval} onChange={set("interval")}>
              <option value="1m">1 minute</option>
              <option value="5m">5 minutes</option>
              <option value="1h">1 hour</option>
              <option value="1d">1 day</option>
            </select>
          </div>
          <div class="actions">
            <button type="submit">Search</button>
            <button type="button" class="secondary" onClick={() => setForm(EMPTY)}>
              Clear
            </button>
            <ExportButton filters={applied} format="ndjson" />
            <ExportButton filters={applied} format="csv" />
          </div>
        </form>
        {error && <ErrorNote error={error} what="audit entries" />}
        <p role="status" aria-live="polite" data-state={loading ? "searching" : "done"}>
          {loading ? "Searching…" : page ? `${count(page.total)} entries match; page ${pageNumber}.` : ""}
        </p>
        {page && <ResultTable items={page.items} />}
        <nav class="pager" aria-label="Result pages">
          <button type="button" disabled={tokens.length < 2 || loading} onClick={() => setTokens(tokens.slice(0, -1))}>
            Previous page
          </button>
          <button type="button" disabled={!page?.next_page_token || loading} onClick={() => page?.next_page_token && setTokens([...tokens, page.next_page_token])}>
            Next page
          </button>
        </nav>
      </section>
      <AuditCharts filters={applied} runs={runs} keyVersion={keyVersion} />
    </div>
  );
}

function ResultTable({ items }: { items: AuditEntry[] }) {
  return (
    <div class="scroll" tabIndex={0} role="region" aria-label="Audit entries">
      <table data-table="audit">
        <thead>
          <tr>
            <th scope="col">Time (UTC)</th>
            <th scope="col">Action</th>
            <th scope="col">Result</th>
            <th scope="col">Actor</th>
            <th scope="col">Resource</th>
            <th scope="col">IP</th>
            <th scope="col">Message</th>
          </tr>
        </thead>
        <tbody>
          {items.length === 0 && (
            <tr>
              <td colSpan={7}>No entry matches.</td>
            </tr>
          )}
          {items.map((e) => (
            <tr key={e.id}>
              <td class="mono">{e.occurred_at.replace("T", " ").replace(/\.\d+Z$|Z$/, "")}</td>
              <th scope="row">{e.action}</th>
              <td>
                <Status value={e.result} />
              </td>
              <td>{[e.actor?.type, e.actor?.name || e.actor?.id].filter(Boolean).join(": ")}</td>
              <td>{[e.resource?.type, e.resource?.id].filter(Boolean).join(": ")}</td>
              <td class="mono">{e.ip ?? ""}</td>
              <td class="message">{e.message ?? ""}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** Downloads every matching entry (ExportLogs, streamed by the service) with the key in a header, not the URL. */
function ExportButton({ filters, format }: { filters: Filters; format: "ndjson" | "csv" }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError>();
  const run = async () => {
    setBusy(true);
    setError(undefined);
    try {
      const res = await restFetch("/api/v1/audit/logs/export", { ...query(filters), format });
      const url = URL.createObjectURL(await res.blob());
      const link = document.createElement("a");
      link.href = url;
      link.download = `audit-logs.${format}`;
      link.click();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (err) {
      setError(apiError(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <button type="button" class="secondary" onClick={() => void run()} disabled={busy} aria-busy={busy}>
        Export {format.toUpperCase()}
      </button>
      {error && <ErrorNote error={error} what="the export" />}
    </>
  );
}

interface ChartData {
  readonly times: number[];
  readonly byResult: Series[];
  readonly byAction: Series[];
  readonly total: number;
}

/** Events over time, one series per result and per most frequent action (GetAuditStats' time buckets). */
function AuditCharts({ filters, runs, keyVersion }: { filters: Filters; runs: number; keyVersion: number }) {
  const [data, setData] = useState<ChartData>();
  const [error, setError] = useState<ApiError>();
  useEffect(() => {
    const controller = new AbortController();
    const { signal } = controller;
    const base = { ...query(filters), interval: filters.interval };
    (async () => {
      const all = await restGet<StatsReply>("/api/v1/audit/stats", { ...base, top: TOP_ACTIONS }, signal);
      const results = filters.result ? [filters.result] : ["success", "failure"];
      const actions = (all.by_action ?? []).slice(0, TOP_ACTIONS).map((a) => a.value);
      const [perResult, perAction] = await Promise.all([
        Promise.all(results.map((result) => restGet<StatsReply>("/api/v1/audit/stats", { ...base, result, top: 1 }, signal))),
        Promise.all(actions.map((action) => restGet<StatsReply>("/api/v1/audit/stats", { ...base, action, top: 1 }, signal))),
      ]);
      const starts = new Set<number>();
      for (const reply of [all, ...perResult, ...perAction]) for (const b of reply.by_time ?? []) starts.add(Date.parse(b.start) / 1000);
      const times = [...starts].sort((a, b) => a - b);
      const series = (label: string, reply: StatsReply): Series => {
        const at = new Map((reply.by_time ?? []).map((b) => [Date.parse(b.start) / 1000, b.count]));
        return { label, values: times.map((t) => at.get(t) ?? 0) };
      };
      if (!signal.aborted) {
        setData({
          times,
          total: all.total,
          byResult: results.map((r, i) => series(r, perResult[i]!)),
          byAction: actions.map((a, i) => series(a, perAction[i]!)),
        });
        setError(undefined);
      }
    })().catch((err: unknown) => signal.aborted || setError(apiError(err)));
    return () => controller.abort();
  }, [filters, runs, keyVersion]);

  return (
    <section aria-labelledby="audit-charts-title" class="card wide">
      <h2 id="audit-charts-title">Events over time</h2>
      {error && <ErrorNote error={error} what="audit figures" />}
      {data && data.times.length === 0 && <p>No events in this range.</p>}
      {data && data.times.length > 0 && (
        <div class="charts">
          <div>
            <h3 id="by-result-title">By result</h3>
            <TimeChart title="Audit events over time by result" times={data.times} series={data.byResult} />
          </div>
          <div>
            <h3 id="by-action-title">By action (top {TOP_ACTIONS})</h3>
            <TimeChart title="Audit events over time by action" times={data.times} series={data.byAction} />
          </div>
        </div>
      )}
    </section>
  );
}
