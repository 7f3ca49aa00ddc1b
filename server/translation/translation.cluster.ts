import type { EventBus, Unsubscribe } from "../backends/events/event-bus.js";
import { unavailable } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import type { Patch } from "../core/patch.js";
import type { SessionEvents } from "./translation.events.js";
import { TASK } from "./translation.fields.js";
import type { FlushResult } from "./translation.service.js";

/** Asks every instance to commit what it accepted; each answers with its FlushResult. */
export const FLUSH_TOPIC = "translation.flush";
/** Sessions (and tasks of them) an instance committed or deleted: watchers elsewhere re-read them. */
export const CHANGED_TOPIC = "translation.changed";

/** Past this many changed tasks of one session in one flush, the event says "re-read the session" instead of listing them. */
const MAX_TASK_IDS_PER_SESSION = 500;
/** Time a cluster Flush leaves, beyond the instances' own flush bound, for their answers to travel. */
const ANSWER_MARGIN_MS = 1000;

/** One session's part of a CHANGED_TOPIC event: its id, the tasks that changed, or `all` when they were too many (or unknown). */
interface ChangedSession {
  readonly s: string;
  readonly t?: readonly string[];
  readonly all?: true;
}

/** A cluster Flush: the sums over every instance that committed, and which instances those were. */
export interface ClusterFlushResult extends FlushResult {
  readonly instances: readonly string[];
}

export interface TranslationCluster {
  /** Tells the other instances which sessions a flush of this one committed. */
  committed(patches: readonly Patch[]): void;
  /** Tells the other instances that a session changed as a whole (deleted, status set). */
  changed(sessionId: string): void;
  /**
   * Has every live instance (this one included) commit what it accepted, each within `timeoutMs`.
   * UNAVAILABLE naming them when some live instance failed or did not answer; the others have committed.
   */
  flush(timeoutMs: number): Promise<ClusterFlushResult>;
  stop(): Promise<void>;
}

export interface TranslationClusterDeps {
  readonly bus: EventBus;
  /** This instance's Flush. */
  readonly flushLocal: (timeoutMs: number) => Promise<FlushResult>;
  /** The local watchers, told about changes other instances committed. */
  readonly events: SessionEvents;
  readonly logger: Logger;
}

/**
 * Translation across instances through the events role: the responder that runs this instance's part
 * of a cluster Flush, and the change events that let WatchSession on any instance follow commits made
 * by every other one. Events are signals (at most once); when the bus may have dropped some, every
 * watcher is told to re-read its session.
 */
export async function startTranslationCluster(deps: TranslationClusterDeps): Promise<TranslationCluster> {
  const { bus, events, logger } = deps;
  const self = bus.instanceId;
  let failing = false;
  const publish = (sessions: ChangedSession[]) => {
    if (sessions.length === 0) return;
    bus.publish(CHANGED_TOPIC, { sessions }).then(
      () => {
        if (failing) logger.info("telling other instances about committed sessions again");
        failing = false;
      },
      (err: unknown) => {
        // Watchers elsewhere see these changes with the next event, or re-read after their bus's gap. One warning per outage.
        if (!failing) logger.warn({ err: (err as Error).message, sessions: sessions.length }, "could not tell other instances about committed sessions");
        failing = true;
      },
    );
  };
  const stops: Unsubscribe[] = [];
  stops.push(
    await bus.respond(FLUSH_TOPIC, async (request) => {
      const { timeoutMs } = request.json<{ timeoutMs: number }>();
      return deps.flushLocal(timeoutMs);
    }),
  );
  stops.push(
    await bus.subscribe(CHANGED_TOPIC, (event) => {
      if (event.from === self) return;
      for (const change of event.json<{ sessions: ChangedSession[] }>().sessions) {
        if (change.all) events.resync(change.s);
        else events.remote(change.s, change.t ?? []);
      }
    }),
  );
  const removeGap = bus.onGap(() => events.resyncAll());

  return {
    committed(patches) {
      const bySession = new Map<string, Set<string>>();
      for (const patch of patches) {
        const sessionId = patch.key[0]!;
        let tasks = bySession.get(sessionId);
        if (!tasks) bySession.set(sessionId, (tasks = new Set()));
        if (patch.table === TASK.table) tasks.add(patch.key[1]!);
      }
      publish(
        [...bySession].map(([s, tasks]) => (tasks.size > MAX_TASK_IDS_PER_SESSION ? { s, all: true as const } : { s, t: [...tasks] })),
      );
    },
    changed(sessionId) {
      publish([{ s: sessionId, all: true }]);
    },
    async flush(timeoutMs) {
      const { replies, missing } = await bus.gather(FLUSH_TOPIC, { timeoutMs }, timeoutMs + ANSWER_MARGIN_MS);
      const failed = replies.flatMap((r) => ("error" in r ? [`${r.instance} (${r.error})`] : []));
      const unanswered = [...missing.map((id) => `${id} (no answer within ${timeoutMs + ANSWER_MARGIN_MS} ms)`), ...failed];
      if (unanswered.length > 0) {
        const flushed = replies.filter((r) => !("error" in r)).map((r) => r.instance);
        throw unavailable(
          `cluster flush incomplete: ${unanswered.join(", ")} did not confirm; ${flushed.length > 0 ? `${flushed.join(", ")} committed` : "none committed"}`,
          1000,
        );
      }
      const total = { empty: true, sessions: 0, tasks: 0, sessionsDeadLettered: 0, tasksDeadLettered: 0 };
      const instances: string[] = [];
      for (const reply of replies) {
        if (!("answer" in reply)) continue;
        const r = reply.answer.json<FlushResult>();
        instances.push(reply.instance);
        total.empty &&= r.empty;
        total.sessions += r.sessions;
        total.tasks += r.tasks;
        total.sessionsDeadLettered += r.sessionsDeadLettered;
        total.tasksDeadLettered += r.tasksDeadLettered;
      }
      return { ...total, instances };
    },
    async stop() {
      removeGap();
      for (const stop of stops) await stop();
    },
  };
}
