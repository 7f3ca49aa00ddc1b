/** Display helpers: numbers, bytes, durations and enum names as people read them. */
const integer = new Intl.NumberFormat("en", { maximumFractionDigits: 0 });
const decimal = new Intl.NumberFormat("en", { maximumFractionDigits: 2 });

export function count(n: number | bigint | undefined): string {
  return integer.format(n ?? 0);
}

export function fixed(n: number | undefined): string {
  return decimal.format(n ?? 0);
}

export function bytes(n: number | bigint | undefined): string {
  let value = Number(n ?? 0);
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? integer.format(value) : decimal.format(value)} ${units[unit]}`;
}

export function millis(ms: number | bigint | undefined): string {
  const value = Number(ms ?? 0);
  if (value < 1000) return `${decimal.format(value)} ms`;
  if (value < 120_000) return `${decimal.format(value / 1000)} s`;
  return `${decimal.format(value / 60_000)} min`;
}

/** `SESSION_STATUS_PROCESSING` or `PROCESSING` → `processing`. */
export function enumName(name: string | undefined): string {
  return (name ?? "unspecified").replace(/^[A-Z_]*?_STATUS_/, "").toLowerCase();
}

export function percent(done: number, total: number): number {
  return total > 0 ? Math.min(100, (done / total) * 100) : 0;
}
