/**
 * How settings are read: each is a `PERSISTENCE_<KEY>` variable or a `<key>` in the config file
 * (variables win). The service-wide ones are read in config.ts; each module reads its own section
 * through a SettingsReader, so a setting no one reads is reported as unknown.
 */
export interface SettingsReader {
  /**
   * The value of `key` (lower case, e.g. `cleanup_interval_ms`), parsed; `fallback` when absent.
   * A value `parse` refuses stops the start-up with a ConfigError naming the variable or file key and `expected`.
   */
  get<T>(key: string, fallback: T, parse: (raw: string) => T | undefined, expected: string): T;
}

/** An integer from `min` to `max`. */
export function integer(min: number, max: number): (raw: string) => number | undefined {
  return (raw) => {
    if (!/^-?\d+$/.test(raw)) return undefined;
    const n = Number(raw);
    return Number.isSafeInteger(n) && n >= min && n <= max ? n : undefined;
  };
}

/** on/off, true/false, 1/0, yes/no. */
export function parseOnOff(raw: string): boolean | undefined {
  const v = raw.toLowerCase();
  if (["on", "true", "1", "yes"].includes(v)) return true;
  if (["off", "false", "0", "no"].includes(v)) return false;
  return undefined;
}

export function nonEmpty(raw: string): string | undefined {
  return raw === "" ? undefined : raw;
}
