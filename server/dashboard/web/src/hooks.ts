import { useEffect, useState } from "preact/hooks";
import { apiError, onKeyChange, system, type ApiError } from "./api.js";

/** A number that changes whenever the API key does, so panes reload with the new key. */
export function useKeyVersion(): number {
  const [version, setVersion] = useState(0);
  useEffect(() => onKeyChange(() => setVersion((v) => v + 1)), []);
  return version;
}

export interface Polled<T> {
  readonly data?: T;
  readonly error?: ApiError;
  /** Set once the first answer (or error) is in. */
  readonly loaded: boolean;
}

/**
 * Calls `load` now and every `intervalMs` (0: once), again when `deps` or the API key change; a call
 * still running when the next is due is waited for, never doubled.
 */
export function usePoll<T>(load: (signal: AbortSignal) => Promise<T>, intervalMs: number, deps: readonly unknown[] = []): Polled<T> & { reload(): void } {
  const [state, setState] = useState<Polled<T>>({ loaded: false });
  const [tick, setTick] = useState(0);
  const key = useKeyVersion();
  useEffect(() => {
    const controller = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const run = async () => {
      try {
        const data = await load(controller.signal);
        if (!controller.signal.aborted) setState({ data, loaded: true });
      } catch (err) {
        // A refused key hides what an earlier key could see; another failure keeps the last answer on show.
        const error = apiError(err);
        if (!controller.signal.aborted) setState((s) => ({ error, loaded: true, data: error.refused ? undefined : s.data }));
      }
      if (intervalMs > 0 && !controller.signal.aborted) timer = setTimeout(() => void run(), intervalMs);
    };
    void run();
    return () => {
      controller.abort();
      clearTimeout(timer);
    };
  }, [key, tick, intervalMs, ...deps]);
  return { ...state, reload: () => setTick((t) => t + 1) };
}

/**
 * Whether this instance serves `service` (GetInfo's list), so a pane whose service is not part of the
 * instance says so instead of calling it. `serves` is undefined until known.
 */
export function useServes(service: string): { serves?: boolean; error?: ApiError } {
  const info = usePoll((signal) => system.getInfo({}, { signal }), 0);
  if (info.data) return { serves: info.data.services.includes(service) };
  return info.error ? { error: info.error } : {};
}
