/**
 * One contract suite per backend role, run against every implementation of it that can run here
 * (like `describeEachDialect` for SQL): `describeEachBackend("kv", [sqlite, mariadb, redis], (kv) => ...)`.
 */

/** One implementation of a role, as a suite opens it. */
export interface BackendCase<T> {
  /** Names the implementation in the test titles ("redis", "sqlite", "s3"). */
  readonly name: string;
  /** Opens a fresh instance of its own (its own database, bucket, key prefix...) for one suite run. */
  open(): Promise<T>;
  /** Releases it and removes what the run stored. */
  close(backend: T): Promise<void>;
  /**
   * Why it cannot run here (e.g. "PERSISTENCE_OPENSEARCH_URL is not set"), or undefined when it can.
   * A skipped implementation says so loudly on stderr, so a green run cannot hide it.
   */
  readonly skip?: string;
}

export function describeEachBackend<T>(role: string, cases: readonly BackendCase<T>[], body: (backend: () => T, name: string) => void): void {
  for (const c of cases) {
    if (c.skip !== undefined) {
      process.stderr.write(`\n*** SKIPPED: the ${role} contract suite against ${c.name}: ${c.skip} ***\n\n`);
      describe.skip(`${role} contract [${c.name}] (skipped: ${c.skip})`, () => body(() => undefined as T, c.name));
      continue;
    }
    describe(`${role} contract [${c.name}]`, () => {
      let backend: T | undefined;
      beforeAll(async () => {
        backend = await c.open();
      });
      afterAll(async () => {
        if (backend !== undefined) await c.close(backend);
      });
      body(() => {
        if (backend === undefined) throw new Error("the backend exists only inside tests and hooks");
        return backend;
      }, c.name);
    });
  }
}
