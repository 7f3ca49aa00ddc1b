import { useEffect, useState } from "preact/hooks";
import { SessionStatus, TaskStatus, WatchEventType, type Session } from "../../../../gen/persistence/v1/translation_pb.js";
import { apiError, translation, type ApiError } from "./api.js";
import { count, enumName, percent } from "./format.js";
import { useKeyVersion, usePoll } from "./hooks.js";
import { ErrorNote, ProgressBar, Status } from "./parts.js";

/** How often the list of incomplete sessions refreshes (one session's progress is a live stream). */
export const SESSIONS_REFRESH_MS = 5000;
/** Tasks read to start a session's breakdown per sheet; changes then arrive through WatchSession. */
const MAX_TASKS_READ = 20_000;

const sessionStatus = (s: Session) => enumName(SessionStatus[s.status]);

/** Incomplete sessions with their progress, and one session followed live. */
export function TranslationPane() {
  const [watched, setWatched] = useState<string>("");
  const [typed, setTyped] = useState("");
  const sessions = usePoll((signal) => translation.listIncompleteSessions({}, { signal }), SESSIONS_REFRESH_MS);

  return (
    <div class="pane-grid">
      <section aria-labelledby="incomplete-title" class="card wide">
        <h2 id="incomplete-title">Incomplete sessions</h2>
        {sessions.error && <ErrorNote error={sessions.error} what="the incomplete sessions" />}
        {!sessions.loaded && <p role="status">Loading sessions…</p>}
        {sessions.data && (
          <div class="scroll" tabIndex={0} role="region" aria-labelledby="incomplete-title">
            <table data-table="sessions">
              <caption class="visually-hidden">{count(sessions.data.count)} sessions pending or processing, newest first</caption>
              <thead>
                <tr>
                  <th scope="col">Session</th>
                  <th scope="col">Status</th>
                  <th scope="col" class="num">Tasks</th>
                  <th scope="col">Progress</th>
                  <th scope="col">
                    <span class="visually-hidden">Follow</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {sessions.data.sessions.length === 0 && (
                  <tr>
                    <td colSpan={5}>No session is pending or processing.</td>
                  </tr>
                )}
                {sessions.data.sessions.map((s) => (
                  <tr key={s.sessionId} aria-current={s.sessionId === watched ? "true" : undefined}>
                    <th scope="row">
                      <span class="filename">{s.filename ?? "(no file name)"}</span>
                      <span class="muted mono">{s.sessionId}</span>
                    </th>
                    <td>
                      <Status value={sessionStatus(s)} />
                    </td>
                    <td class="num">
                      {count(s.completedTasks)} / {count(s.totalTasks)}
                    </td>
                    <td>
                      <ProgressBar value={s.progress} label={`Progress of ${s.filename ?? s.sessionId}`} />
                    </td>
                    <td>
                      <button type="button" onClick={() => setWatched(s.sessionId)} aria-pressed={s.sessionId === watched}>
                        Follow
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        <form
          class="inline-form"
          onSubmit={(e) => {
            e.preventDefault();
            if (typed.trim()) setWatched(typed.trim());
          }}
        >
          <label for="watch-id">Follow any session by id</label>
          <input id="watch-id" name="session_id" value={typed} onInput={(e) => setTyped(e.currentTarget.value)} autocomplete="off" spellcheck={false} />
          <button type="submit">Follow</button>
        </form>
      </section>
      {watched && <WatchedSession key={watched} sessionId={watched} />}
    </div>
  );
}

interface TaskState {
  readonly sheet: string;
  readonly status: TaskStatus;
}

interface SheetRow {
  sheet: string;
  total: number;
  completed: number;
  failed: number;
  processing: number;
  pending: number;
  cancelled: number;
}

/** One session through WatchSession: a snapshot, then each change; its tasks counted per sheet. */
function WatchedSession({ sessionId }: { sessionId: string }) {
  const keyVersion = useKeyVersion();
  const [session, setSession] = useState<Session>();
  const [tasks, setTasks] = useState<ReadonlyMap<string, TaskState>>(new Map());
  const [state, setState] = useState<"connecting" | "live" | "ended" | "deleted">("connecting");
  const [error, setError] = useState<ApiError>();
  const [truncated, setTruncated] = useState(false);
  const [updates, setUpdates] = useState(0);

  useEffect(() => {
    const controller = new AbortController();
    const { signal } = controller;
    // Changes seen on the stream win over the listing, which may have been read before them.
    const seen = new Map<string, TaskState>();
    const publish = () => setTasks(new Map(seen));
    setError(undefined);
    setState("connecting");
    const watch = (async () => {
      for await (const message of translation.watchSession({ sessionId }, { signal })) {
        if (message.session) setSession(message.session);
        for (const task of message.tasks) seen.set(task.taskId, { sheet: task.sheetName ?? "", status: task.status });
        if (message.tasks.length) publish();
        setUpdates((n) => n + 1);
        setState(message.type === WatchEventType.DELETED ? "deleted" : "live");
      }
      if (!signal.aborted) setState((s) => (s === "deleted" ? s : "ended"));
    })();
    const list = (async () => {
      const listed = new Map<string, TaskState>();
      let pageToken = "";
      do {
        const page = await translation.listSessionTasks({ sessionId, pageSize: 100, pageToken }, { signal });
        for (const task of page.items) listed.set(task.taskId, { sheet: task.sheetName ?? "", status: task.status });
        pageToken = page.nextPageToken;
      } while (pageToken && listed.size < MAX_TASKS_READ);
      setTruncated(pageToken !== "");
      for (const [id, task] of listed) if (!seen.has(id)) seen.set(id, task);
      publish();
    })();
    Promise.all([watch, list]).catch((err: unknown) => {
      if (!signal.aborted) {
        setError(apiError(err));
        setState("ended");
      }
    });
    return () => controller.abort();
  }, [sessionId, keyVersion]);

  const sheets = new Map<string, SheetRow>();
  for (const task of tasks.values()) {
    let row = sheets.get(task.sheet);
    if (!row) sheets.set(task.sheet, (row = { sheet: task.sheet, total: 0, completed: 0, failed: 0, processing: 0, pending: 0, cancelled: 0 }));
    row.total++;
    if (task.status === TaskStatus.COMPLETED) row.completed++;
    else if (task.status === TaskStatus.FAILED) row.failed++;
    else if (task.status === TaskStatus.PROCESSING) row.processing++;
    else if (task.status === TaskStatus.CANCELLED) row.cancelled++;
    else row.pending++;
  }
  const rows = [...sheets.values()].sort((a, b) => a.sheet.localeCompare(b.sheet));
  const name = session?.filename ?? sessionId;

  return (
    <section aria-labelledby="watched-title" class="card wide" data-session={sessionId}>
      <h2 id="watched-title">Following {name}</h2>
      <p>
        <span class="mono muted">{sessionId}</span> · stream:{" "}
        <span role="status" data-stream-state={state}>
          {state === "live" ? `live (${count(updates)} updates)` : state}
        </span>
      </p>
      {error && <ErrorNote error={error} what="this session" />}
      {session && (
        <>
          <ProgressBar value={session.progress} label={`Progress of ${name}`} />
          <dl class="figures">
            <div>
              <dt>Status</dt>
              <dd>
                <Status value={sessionStatus(session)} />
              </dd>
            </div>
            <div>
              <dt>Total</dt>
              <dd data-figure="total">{count(session.totalTasks)}</dd>
            </div>
            <div>
              <dt>Completed</dt>
              <dd data-figure="completed">{count(session.completedTasks)}</dd>
            </div>
            <div>
              <dt>Processing</dt>
              <dd>{count(session.processingTasks)}</dd>
            </div>
            <div>
              <dt>Failed</dt>
              <dd>{count(session.failedTasks)}</dd>
            </div>
            <div>
              <dt>Pending</dt>
              <dd>{count(session.pendingTasks)}</dd>
            </div>
            <div>
              <dt>Estimated completion</dt>
              <dd>{session.estimatedCompletion ? new Date(Number(session.estimatedCompletion.seconds) * 1000).toLocaleString() : "unknown"}</dd>
            </div>
          </dl>
        </>
      )}
      <h3>By sheet</h3>
      {truncated && <p class="muted">Counted from the first {count(MAX_TASKS_READ)} tasks and every change since.</p>}
      <div class="scroll" tabIndex={0} role="region" aria-label="Tasks by sheet">
        <table data-table="sheets">
          <thead>
            <tr>
              <th scope="col">Sheet</th>
              <th scope="col" class="num">Tasks</th>
              <th scope="col" class="num">Completed</th>
              <th scope="col" class="num">Processing</th>
              <th scope="col" class="num">Failed</th>
              <th scope="col" class="num">Pending</th>
              <th scope="col">Progress</th>
            </tr>
          </thead>
          <tbody>
            {rows.length === 0 && (
              <tr>
                <td colSpan={7}>No tasks stored yet.</td>
              </tr>
            )}
            {rows.map((r) => (
              <tr key={r.sheet}>
                <th scope="row">{r.sheet || "(no sheet)"}</th>
                <td class="num">{count(r.total)}</td>
                <td class="num">{count(r.completed)}</td>
                <td class="num">{count(r.processing)}</td>
                <td class="num">{count(r.failed)}</td>
                <td class="num">{count(r.pending)}</td>
                <td>
                  <ProgressBar value={percent(r.completed, r.total)} label={`Progress of sheet ${r.sheet}`} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}
