/** `::ffff:127.0.0.1` → `127.0.0.1`, so one client has one address whichever stack it came in on. */
export function normalizeAddress(address: string | undefined): string | undefined {
  return address?.startsWith("::ffff:") ? address.slice(7) : address;
}
