import type { BusEvent, GatherReply, GatherResult } from "./event-bus.js";

/** What one instance answered to a gather: its responder's answer or failure, or that it has none. */
export type Answer = { readonly answer: BusEvent } | { readonly error: string } | "no responder";

export interface GatherCollector {
  add(instance: string, answer: Answer): void;
  /** Settles once every expected instance has answered (not before `settleAt`), or after the timeout. */
  readonly result: Promise<GatherResult>;
}

/**
 * Collects the answers to one gather. `expected` are the instances known to be live; answers from
 * others count too. `settleAt` (ms since the epoch) holds back an early result while this instance may
 * not yet know every other one (just after joining).
 */
export function createGatherCollector(expected: readonly string[], timeoutMs: number, settleAt = 0): GatherCollector {
  const answered = new Set<string>();
  const replies: GatherReply[] = [];
  let finish: (result: GatherResult) => void = () => {};
  const result = new Promise<GatherResult>((resolve) => {
    finish = resolve;
  });
  const timers: NodeJS.Timeout[] = [];
  let done = false;
  const settle = () => {
    if (done) return;
    done = true;
    for (const t of timers) clearTimeout(t);
    finish({ replies: [...replies], missing: expected.filter((id) => !answered.has(id)) });
  };
  timers.push(setTimeout(settle, timeoutMs));
  const complete = () => {
    if (!expected.every((id) => answered.has(id))) return;
    const wait = settleAt - Date.now();
    if (wait <= 0) settle();
    else timers.push(setTimeout(settle, wait));
  };
  complete();
  return {
    add(instance, answer) {
      if (done || answered.has(instance)) return;
      answered.add(instance);
      if (answer !== "no responder") replies.push({ instance, ...answer });
      complete();
    },
    result,
  };
}
