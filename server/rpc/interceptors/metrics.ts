import { ConnectError, type Interceptor } from "@connectrpc/connect";
import { Counter, Histogram, type Registry } from "prom-client";
import { codeName } from "../../core/errors.js";
import { observeCall } from "./observe-call.js";

/** The interval of the event-loop delay sampler in the service's default metrics (prom-client's, in ms). */
export const LOOP_SAMPLE_MS = 10;

/** Upper bounds of the handling-time histogram, in seconds. */
const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const RATE_WINDOW_SECONDS = 60;

/** Figures of one RPC, as GetMetrics reports them. */
export interface RpcSummary {
  service: string;
  method: string;
  requests: number;
  errors: number;
  ratePerSecond: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  codes: Record<string, number>;
}

export interface RpcMetrics {
  readonly interceptor: Interceptor;
  /** Every RPC called so far, with rates over the last minute and quantiles from the histogram. */
  summary(): Promise<RpcSummary[]>;
}

interface MethodStats {
  service: string;
  method: string;
  requests: number;
  errors: number;
  codes: Record<string, number>;
  /** Calls per second for the last RATE_WINDOW_SECONDS seconds, indexed by epoch second modulo the window. */
  perSecond: number[];
  stamps: number[];
}

/**
 * Prometheus RPC metrics in the go-grpc-prometheus naming (`grpc_server_started_total`,
 * `grpc_server_handled_total`, `grpc_server_handling_seconds`), plus the per-RPC summary behind GetMetrics.
 */
export function createRpcMetrics(registry: Registry): RpcMetrics {
  const started = new Counter({
    name: "grpc_server_started_total",
    help: "RPCs started on the server.",
    labelNames: ["grpc_service", "grpc_method", "grpc_type"],
    registers: [registry],
  });
  const handled = new Counter({
    name: "grpc_server_handled_total",
    help: "RPCs completed on the server, whatever their code.",
    labelNames: ["grpc_service", "grpc_method", "grpc_type", "grpc_code"],
    registers: [registry],
  });
  const seconds = new Histogram({
    name: "grpc_server_handling_seconds",
    help: "Time from the start of an RPC to its last response message.",
    labelNames: ["grpc_service", "grpc_method", "grpc_type"],
    buckets: BUCKETS,
    registers: [registry],
  });
  const stats = new Map<string, MethodStats>();

  const record = (service: string, method: string, code: string) => {
    const key = `${service}/${method}`;
    let s = stats.get(key);
    if (!s) {
      s = { service, method, requests: 0, errors: 0, codes: {}, perSecond: [], stamps: [] };
      stats.set(key, s);
    }
    s.requests++;
    if (code !== "ok") s.errors++;
    s.codes[code] = (s.codes[code] ?? 0) + 1;
    const second = Math.floor(Date.now() / 1000);
    const slot = second % RATE_WINDOW_SECONDS;
    if (s.stamps[slot] !== second) {
      s.stamps[slot] = second;
      s.perSecond[slot] = 0;
    }
    s.perSecond[slot] = (s.perSecond[slot] ?? 0) + 1;
  };

  const interceptor: Interceptor = (next) => (req) => {
    const labels = {
      grpc_service: req.service.typeName,
      grpc_method: req.method.name,
      grpc_type: GRPC_TYPES[req.method.methodKind],
    };
    started.inc(labels);
    const stopTimer = seconds.startTimer(labels);
    return observeCall(next, req, {
      end(err) {
        stopTimer();
        const code = err === undefined ? "ok" : codeName(ConnectError.from(err).code);
        handled.inc({ ...labels, grpc_code: prometheusCode(code) });
        record(labels.grpc_service, labels.grpc_method, code);
      },
    });
  };

  const summary = async (): Promise<RpcSummary[]> => {
    const histogram = await seconds.get();
    const now = Math.floor(Date.now() / 1000);
    return [...stats.values()].map((s) => {
      const buckets = histogram.values
        .filter(
          (v) =>
            v.metricName === "grpc_server_handling_seconds_bucket" &&
            v.labels.grpc_service === s.service &&
            v.labels.grpc_method === s.method,
        )
        .map((v) => {
          const le = (v.labels as Record<string, string | number | undefined>).le;
          return { le: le === "+Inf" ? Infinity : Number(le), count: v.value };
        })
        .sort((a, b) => a.le - b.le);
      let recent = 0;
      for (let slot = 0; slot < RATE_WINDOW_SECONDS; slot++) {
        const stamp = s.stamps[slot];
        if (stamp !== undefined && now - stamp < RATE_WINDOW_SECONDS) recent += s.perSecond[slot] ?? 0;
      }
      return {
        service: s.service,
        method: s.method,
        requests: s.requests,
        errors: s.errors,
        ratePerSecond: recent / RATE_WINDOW_SECONDS,
        p50Ms: quantile(buckets, 0.5) * 1000,
        p95Ms: quantile(buckets, 0.95) * 1000,
        p99Ms: quantile(buckets, 0.99) * 1000,
        codes: { ...s.codes },
      };
    });
  };

  return { interceptor, summary };
}

/**
 * The q-quantile of cumulative histogram buckets, interpolating linearly inside the bucket that holds
 * it (as Prometheus' histogram_quantile does). Observations past the last finite bound count as that bound.
 */
export function quantile(buckets: readonly { le: number; count: number }[], q: number): number {
  const total = buckets.at(-1)?.count ?? 0;
  if (total === 0) return 0;
  const rank = q * total;
  let lowerBound = 0;
  let lowerCount = 0;
  for (const { le, count } of buckets) {
    if (count >= rank) {
      if (le === Infinity) return lowerBound;
      const inBucket = count - lowerCount;
      return inBucket === 0 ? le : lowerBound + ((le - lowerBound) * (rank - lowerCount)) / inBucket;
    }
    lowerBound = le;
    lowerCount = count;
  }
  return lowerBound;
}

/** go-grpc-prometheus names for the four call shapes. */
const GRPC_TYPES = {
  unary: "unary",
  server_streaming: "server_stream",
  client_streaming: "client_stream",
  bidi_streaming: "bidi_stream",
} as const;

/** "invalid_argument" → "InvalidArgument", "ok" → "OK", as gRPC names its codes. */
function prometheusCode(code: string): string {
  if (code === "ok") return "OK";
  return code.replace(/(^|_)([a-z])/g, (_, __, c: string) => c.toUpperCase());
}
