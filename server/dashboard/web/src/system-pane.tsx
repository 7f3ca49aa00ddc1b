import type { GetHealthResponse, GetMetricsResponse } from "../../../../gen/persistence/v1/system_pb.js";
import { system } from "./api.js";
import { TimeChart } from "./chart.js";
import { bytes, count, fixed, millis } from "./format.js";
import { usePoll } from "./hooks.js";
import { ErrorNote, Status } from "./parts.js";

/** How often the figures refresh. */
export const SYSTEM_REFRESH_MS = 3000;
/** Samples kept for the charts (about five minutes). */
const HISTORY = 100;
/** The samples so far, kept while another pane is shown so the charts resume where they were. */
const history: { current: Sample[] } = { current: [] };

interface Sample {
  readonly at: number;
  readonly rate: number;
  readonly buffered: number;
  readonly flushesPerSecond: number;
  readonly flushes: number;
}

interface Figures {
  readonly health: GetHealthResponse;
  readonly metrics: GetMetricsResponse;
}

/** Live figures of this instance: backends, calls per RPC with their latency, the write buffer and its flushes. */
export function SystemPane() {
  const polled = usePoll<Figures>(async (signal) => {
    const [health, metrics] = await Promise.all([system.getHealth({}, { signal }), system.getMetrics({}, { signal })]);
    const flushes = metrics.writePaths.reduce((n, p) => n + Number(p.flushes), 0);
    const now = Date.now() / 1000;
    const previous = history.current.at(-1);
    const elapsed = previous ? now - previous.at : 0;
    history.current = [
      ...history.current.slice(-(HISTORY - 1)),
      {
        at: now,
        rate: metrics.rpcs.reduce((n, r) => n + r.ratePerSecond, 0),
        buffered: metrics.writePaths.reduce((n, p) => n + Number(p.bufferRecords), 0),
        flushes,
        flushesPerSecond: previous && elapsed > 0 ? Math.max(0, flushes - previous.flushes) / elapsed : 0,
      },
    ];
    return { health, metrics };
  }, SYSTEM_REFRESH_MS);

  if (polled.error && !polled.data) return <ErrorNote error={polled.error} what="system figures" />;
  if (!polled.data) return <p role="status">Loading system figures…</p>;
  const { health, metrics } = polled.data;
  const samples = history.current;
  const times = samples.map((s) => s.at);
  const last = samples.at(-1);
  const deadLetters = metrics.writePaths.reduce((n, p) => n + Number(p.deadLetters), 0);
  const rpcs = [...metrics.rpcs].sort((a, b) => b.ratePerSecond - a.ratePerSecond || Number(b.requests - a.requests));

  return (
    <div class="pane-grid">
      <section aria-labelledby="health-title" class="card">
        <h2 id="health-title">Health</h2>
        <p>
          Service: <Status value={health.status} /> · version {health.version} · up {millis(health.uptimeSeconds * 1000)}
        </p>
        <table>
          <caption class="visually-hidden">Backends</caption>
          <thead>
            <tr>
              <th scope="col">Backend</th>
              <th scope="col">State</th>
            </tr>
          </thead>
          <tbody>
            {Object.entries(health.backends).map(([name, state]) => (
              <tr key={name}>
                <th scope="row">{name}</th>
                <td>
                  <Status value={state} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>

      <section aria-labelledby="buffer-title" class="card">
        <h2 id="buffer-title">Write buffer</h2>
        <dl class="figures">
          <div>
            <dt>Buffered records</dt>
            <dd data-figure="buffer-records">{count(health.buffer?.records)}</dd>
          </div>
          <div>
            <dt>Buffered bytes</dt>
            <dd>{bytes(health.buffer?.bytes)}</dd>
          </div>
          <div>
            <dt>Oldest unflushed</dt>
            <dd>{millis(health.buffer?.oldestAgeMs)}</dd>
          </div>
          <div>
            <dt>Fill level</dt>
            <dd>{fixed((health.buffer?.utilization ?? 0) * 100)} %</dd>
          </div>
          <div>
            <dt>Flushes per second</dt>
            <dd data-figure="flush-rate">{fixed(last?.flushesPerSecond)}</dd>
          </div>
          <div>
            <dt>Dead letters</dt>
            <dd data-figure="dead-letters" class={deadLetters > 0 ? "warn" : ""}>
              {count(deadLetters)}
            </dd>
          </div>
        </dl>
        <div class="scroll" tabIndex={0} role="region" aria-label="Write paths">
        <table>
          <caption>Write paths</caption>
          <thead>
            <tr>
              <th scope="col">Path</th>
              <th scope="col" class="num">Buffered</th>
              <th scope="col" class="num">Flushes</th>
              <th scope="col" class="num">Written</th>
              <th scope="col" class="num">Retries</th>
              <th scope="col" class="num">Dead letters</th>
            </tr>
          </thead>
          <tbody>
            {metrics.writePaths.map((p) => (
              <tr key={p.name}>
                <th scope="row">{p.name}</th>
                <td class="num">{count(p.bufferRecords)}</td>
                <td class="num">{count(p.flushes)}</td>
                <td class="num">{count(p.recordsWritten)}</td>
                <td class="num">{count(p.retries)}</td>
                <td class="num">{count(p.deadLetters)}</td>
              </tr>
            ))}
          </tbody>
        </table>
        </div>
      </section>

      <section aria-labelledby="traffic-title" class="card wide">
        <h2 id="traffic-title">Traffic</h2>
        <div class="charts">
          <TimeChart title="Requests per second, all RPCs" times={times} series={[{ label: "requests/s", values: samples.map((s) => s.rate) }]} />
          <TimeChart
            title="Buffered records and flushes per second"
            times={times}
            series={[
              { label: "buffered records", values: samples.map((s) => s.buffered) },
              { label: "flushes/s", values: samples.map((s) => s.flushesPerSecond) },
            ]}
          />
        </div>
      </section>

      <section aria-labelledby="rpcs-title" class="card wide">
        <h2 id="rpcs-title">Calls per RPC</h2>
        <div class="scroll" tabIndex={0} role="region" aria-labelledby="rpcs-title">
          <table data-table="rpcs">
            <thead>
              <tr>
                <th scope="col">RPC</th>
                <th scope="col" class="num">Calls</th>
                <th scope="col" class="num">Errors</th>
                <th scope="col" class="num">Calls/s (1 min)</th>
                <th scope="col" class="num">p50</th>
                <th scope="col" class="num">p95</th>
                <th scope="col" class="num">p99</th>
              </tr>
            </thead>
            <tbody>
              {rpcs.length === 0 && (
                <tr>
                  <td colSpan={7}>No calls yet.</td>
                </tr>
              )}
              {rpcs.map((r) => (
                <tr key={`${r.service}/${r.method}`}>
                  <th scope="row">
                    <span class="muted">{r.service.replace(/^persistence\.v1\./, "")}.</span>
                    {r.method}
                  </th>
                  <td class="num">{count(r.requests)}</td>
                  <td class="num">{count(r.errors)}</td>
                  <td class="num">{fixed(r.ratePerSecond)}</td>
                  <td class="num">{millis(r.p50Ms)}</td>
                  <td class="num">{millis(r.p95Ms)}</td>
                  <td class="num">{millis(r.p99Ms)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </section>
      {polled.error && <ErrorNote error={polled.error} what="the latest system figures" />}
    </div>
  );
}
