/**
 * The translation backend's persistence client as the original design documents it, over plain HTTP
 * (fetch): a local buffer of `batchSize` records per kind, sent once it is full, fire and forget
 * with a 2 s timeout (a failed batch is logged and dropped, never retried), `flushAll` on Stop (the
 * session buffer, the task buffer, then `POST /flush` with 10 s), and start-up recovery
 * (`incomplete-sessions` within 5 s, then `restore` of each within 30 s).
 */

/** JSON as the REST paths write it. */
export type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** The client-side timeouts of the original design, in ms. */
export const TIMEOUTS = { write: 2000, query: 5000, flush: 10_000, restore: 30_000, health: 1000 } as const;

export interface SentBatch {
  readonly path: string;
  readonly records: number;
  readonly status: number;
  readonly ms: number;
}

export class BackendV2Client {
  private readonly sessions: Json[] = [];
  private readonly tasks: Json[] = [];
  /** Every batch POST this client made, in order. */
  readonly sent: SentBatch[] = [];
  /** What the client logged as warnings (failed batches it dropped). */
  readonly warnings: string[] = [];

  constructor(
    private readonly baseUrl: string,
    private readonly batchSize = 100,
  ) {}

  persistSession(session: Json): Promise<void> {
    this.sessions.push(session);
    return this.sessions.length >= this.batchSize ? this.send("sessions") : Promise.resolve();
  }

  async persistTasks(tasks: readonly Json[]): Promise<void> {
    for (const task of tasks) {
      this.tasks.push(task);
      if (this.tasks.length >= this.batchSize) await this.send("tasks");
    }
  }

  /** Stop or Pause: everything buffered goes out, then the service commits it. */
  async flushAll(): Promise<Json> {
    if (this.sessions.length > 0) await this.send("sessions");
    if (this.tasks.length > 0) await this.send("tasks");
    const res = await fetch(`${this.baseUrl}/api/v1/translation/flush`, { method: "POST", signal: AbortSignal.timeout(TIMEOUTS.flush) });
    return (await res.json()) as Json;
  }

  async getIncompleteSessions(): Promise<Json[]> {
    try {
      const res = await fetch(`${this.baseUrl}/api/v1/translation/recovery/incomplete-sessions`, { signal: AbortSignal.timeout(TIMEOUTS.query) });
      return ((await res.json()) as Json).sessions as Json[];
    } catch (err) {
      this.warnings.push(`incomplete sessions: ${(err as Error).message}`);
      return [];
    }
  }

  async restoreSession(sessionId: string): Promise<Json> {
    const res = await fetch(`${this.baseUrl}/api/v1/translation/recovery/restore/${encodeURIComponent(sessionId)}`, {
      method: "POST",
      signal: AbortSignal.timeout(TIMEOUTS.restore),
    });
    if (res.status !== 200) throw new Error(`restore ${sessionId}: HTTP ${res.status}`);
    return (await res.json()) as Json;
  }

  async querySession(sessionId: string): Promise<Json | undefined> {
    const res = await fetch(`${this.baseUrl}/api/v1/translation/sessions/${encodeURIComponent(sessionId)}`, { signal: AbortSignal.timeout(TIMEOUTS.query) });
    return res.status === 200 ? ((await res.json()) as Json) : undefined;
  }

  private async send(kind: "sessions" | "tasks"): Promise<void> {
    const buffer = kind === "sessions" ? this.sessions : this.tasks;
    // The v1 client clears its buffer whatever the outcome: a failed batch is dropped.
    const batch = buffer.splice(0, buffer.length);
    const path = `/api/v1/translation/${kind}/batch`;
    const started = performance.now();
    try {
      const res = await fetch(`${this.baseUrl}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ [kind]: batch }),
        signal: AbortSignal.timeout(TIMEOUTS.write),
      });
      await res.text();
      this.sent.push({ path, records: batch.length, status: res.status, ms: performance.now() - started });
      if (res.status !== 200) this.warnings.push(`${path}: HTTP ${res.status}`);
    } catch (err) {
      this.sent.push({ path, records: batch.length, status: 0, ms: performance.now() - started });
      this.warnings.push(`${path}: ${(err as Error).message}`);
    }
  }
}
