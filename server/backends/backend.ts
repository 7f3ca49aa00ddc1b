/** What every storage backend offers the rest of the service besides its own data operations. */
export interface Backend {
  /** The data role it plays in health and info reports ("sql", "redis", ...). */
  readonly name: string;
  /** The implementation behind it ("sqlite", "mysql", ...). */
  readonly kind: string;
  /** Resolves when the backend answers; rejects when it is unreachable. */
  ping(): Promise<void>;
  /** Releases connections and handles. */
  close(): Promise<void>;
}
