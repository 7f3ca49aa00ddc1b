import { isUnreachable } from "../../server/backends/sql/unreachable";

describe("telling an unreachable database from a refusal", () => {
  it.each(["ECONNREFUSED", "ETIMEDOUT", "ENOTFOUND", "PROTOCOL_CONNECTION_LOST", "ER_CON_COUNT_ERROR"])("counts %s as unreachable", (code) => {
    expect(isUnreachable(Object.assign(new Error(code), { code }))).toBe(true);
  });

  it.each(["ER_ACCESS_DENIED_ERROR", "ER_DBACCESS_DENIED_ERROR", "SQLITE_CANTOPEN"])("counts %s as a refusal that waiting cannot fix", (code) => {
    expect(isUnreachable(Object.assign(new Error(code), { code }))).toBe(false);
  });

  it("counts errors without a code as refusals", () => {
    expect(isUnreachable(new Error("migration failed"))).toBe(false);
    expect(isUnreachable(undefined)).toBe(false);
  });
});
