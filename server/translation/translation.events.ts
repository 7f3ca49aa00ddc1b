import type { Patch } from "../core/patch.js";
import { TASK } from "./translation.fields.js";

/** What changed in one session: its own row and/or some of its tasks. */
export interface SessionChange {
  readonly taskIds: ReadonlySet<string>;
  /** Which tasks changed is not known (changes may have been missed): start again from the session as it is now. */
  readonly resync?: boolean;
}

/**
 * Change notifications per session, fed by this instance's committed flushes and deletes and by the
 * other instances' (see translation.cluster.ts).
 */
export interface SessionEvents {
  /** Calls `listener` on every change of `sessionId`; returns the unsubscribe function. */
  subscribe(sessionId: string, listener: (change: SessionChange) => void): () => void;
  /** Tells the subscribers of each session touched by committed patches. */
  committed(patches: readonly Patch[]): void;
  /** Tells the subscribers of a session that it changed as a whole (deleted, status set). */
  changed(sessionId: string): void;
  /** Tells the subscribers of a session that another instance committed changes to it (and to these tasks). */
  remote(sessionId: string, taskIds: readonly string[]): void;
  /** Tells the subscribers of a session that some of its changes may have gone unseen. */
  resync(sessionId: string): void;
  /** Tells every subscriber that changes may have gone unseen (the events bus lost its connection). */
  resyncAll(): void;
}

export function createSessionEvents(): SessionEvents {
  const listeners = new Map<string, Set<(change: SessionChange) => void>>();
  const emit = (sessionId: string, change: SessionChange) => {
    for (const listener of listeners.get(sessionId) ?? []) listener(change);
  };
  return {
    subscribe(sessionId, listener) {
      let set = listeners.get(sessionId);
      if (!set) listeners.set(sessionId, (set = new Set()));
      set.add(listener);
      return () => {
        set.delete(listener);
        if (set.size === 0) listeners.delete(sessionId);
      };
    },
    committed(patches) {
      if (listeners.size === 0) return;
      const bySession = new Map<string, Set<string>>();
      for (const patch of patches) {
        const sessionId = patch.key[0]!;
        if (!listeners.has(sessionId)) continue;
        let tasks = bySession.get(sessionId);
        if (!tasks) bySession.set(sessionId, (tasks = new Set()));
        if (patch.table === TASK.table) tasks.add(patch.key[1]!);
      }
      for (const [sessionId, taskIds] of bySession) emit(sessionId, { taskIds });
    },
    changed(sessionId) {
      emit(sessionId, { taskIds: new Set() });
    },
    remote(sessionId, taskIds) {
      if (listeners.has(sessionId)) emit(sessionId, { taskIds: new Set(taskIds) });
    },
    resync(sessionId) {
      emit(sessionId, { taskIds: new Set(), resync: true });
    },
    resyncAll() {
      for (const sessionId of [...listeners.keys()]) emit(sessionId, { taskIds: new Set(), resync: true });
    },
  };
}
