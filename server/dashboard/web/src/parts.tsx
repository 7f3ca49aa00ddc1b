import type { ComponentChildren } from "preact";
import type { ApiError } from "./api.js";
import { describeError } from "./api.js";
import { fixed } from "./format.js";
import { useServes } from "./hooks.js";

const GOOD = new Set(["up", "healthy", "ok", "serving", "success", "completed"]);
const BAD = new Set(["down", "unhealthy", "failure", "failed", "not_serving"]);

/** A state word with a mark and colour; the word itself carries the meaning. */
export function Status({ value }: { value: string }) {
  const tone = GOOD.has(value) ? "good" : BAD.has(value) ? "bad" : "neutral";
  const mark = tone === "good" ? "●" : tone === "bad" ? "▲" : "○";
  return (
    <span class={`status ${tone}`}>
      <span aria-hidden="true">{mark} </span>
      {value}
    </span>
  );
}

/** A failure to load `what`, said plainly, as an alert. */
export function ErrorNote({ error, what }: { error: ApiError; what: string }) {
  return (
    <p class="error" role="alert">
      Could not load {what}: {describeError(error)}
    </p>
  );
}

/** A labelled progress bar, 0-100. */
export function ProgressBar({ value, label }: { value: number; label: string }) {
  return (
    <div class="progress">
      <div class="bar" role="progressbar" aria-label={label} aria-valuemin={0} aria-valuemax={100} aria-valuenow={Math.round(value * 10) / 10}>
        <div class="fill" style={{ width: `${Math.max(0, Math.min(100, value))}%` }} />
      </div>
      <span class="progress-text">{fixed(value)} %</span>
    </div>
  );
}

/** Shows `children` only when this instance serves `service`; says plainly when it does not. */
export function ServiceGate({ service, name, children }: { service: string; name: string; children: ComponentChildren }) {
  const { serves, error } = useServes(`persistence.v1.${service}`);
  if (error) return <ErrorNote error={error} what="the services of this instance" />;
  if (serves === undefined) return <p role="status">Checking what this instance serves…</p>;
  if (!serves) {
    return (
      <p class="notice" role="status" data-state={`${name}-unavailable`}>
        The {name} service is not available on this instance: it does not serve {service}.
      </p>
    );
  }
  return <>{children}</>;
}
