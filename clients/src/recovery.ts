import type { Session, Task } from "./gen/persistence/v1/translation_pb.js";
import type { PersistenceClient } from "./client.js";

export interface RecoveryOptions {
  /** Sessions with more pending and processing tasks than this are read as a stream (default 5000). */
  readonly streamAbove?: number | undefined;
  /** Tasks per streamed chunk (default 500). */
  readonly chunkSize?: number | undefined;
}

export interface RecoveryReport {
  /** Sessions handed to the handler without error. */
  readonly recovered: string[];
  /** Sessions that could not be read, or whose handler threw, with the error. */
  readonly failed: { readonly sessionId: string; readonly error: Error }[];
  /** Tasks handed to the handler in all. */
  readonly tasks: number;
}

/**
 * Start-up recovery: lists the sessions still pending or processing (newest first) and, for each,
 * reads the session with every task not yet finished (in sheet, row, column order) and calls
 * `handler`. Large sessions are read with `StreamRestoreSession`. A failure with one session (a
 * PersistenceError from the service, or whatever the handler threw) is recorded in the report and
 * the others go on.
 */
export async function recoverIncompleteSessions(
  client: PersistenceClient,
  handler: (session: Session, tasks: Task[]) => void | Promise<void>,
  options: RecoveryOptions = {},
): Promise<RecoveryReport> {
  const streamAbove = options.streamAbove ?? 5000;
  const { sessions } = await client.translation.listIncompleteSessions({});
  const recovered: string[] = [];
  const failed: { sessionId: string; error: Error }[] = [];
  let taskCount = 0;
  for (const listed of sessions) {
    const sessionId = listed.sessionId;
    try {
      let session: Session | undefined;
      let tasks: Task[];
      if ((listed.pendingTasks ?? 0) + (listed.processingTasks ?? 0) > streamAbove) {
        tasks = [];
        for await (const chunk of client.translation.streamRestoreSession({ sessionId, chunkSize: options.chunkSize ?? 500 })) {
          session ??= chunk.session;
          tasks.push(...chunk.tasks);
        }
      } else {
        const restored = await client.translation.restoreSession({ sessionId });
        session = restored.session;
        tasks = restored.tasks;
      }
      await handler(session ?? listed, tasks);
      recovered.push(sessionId);
      taskCount += tasks.length;
    } catch (reason) {
      failed.push({ sessionId, error: reason instanceof Error ? reason : new Error(String(reason)) });
    }
  }
  return { recovered, failed, tasks: taskCount };
}
