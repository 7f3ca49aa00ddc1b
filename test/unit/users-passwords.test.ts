import { createPasswords } from "../../server/users/users.passwords";

describe("password hashing", () => {
  const passwords = createPasswords({ log2N: 10, r: 8, p: 1 });

  it("stores a salted scrypt hash that records its cost and never the password", async () => {
    const a = await passwords.hash("correct horse battery staple");
    const b = await passwords.hash("correct horse battery staple");
    expect(a).toMatch(/^\$scrypt\$ln=10,r=8,p=1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
    expect(a).not.toBe(b);
    expect(a).not.toContain("horse");
  });

  it("accepts the password and refuses any other", async () => {
    const stored = await passwords.hash("s3cret-pass");
    await expect(passwords.verify("s3cret-pass", stored)).resolves.toBe(true);
    await expect(passwords.verify("s3cret-pasS", stored)).resolves.toBe(false);
    await expect(passwords.verify("", stored)).resolves.toBe(false);
  });

  it("treats composed and decomposed forms of one text as the same password", async () => {
    const stored = await passwords.hash("caf\u00e9-latte");
    await expect(passwords.verify("cafe\u0301-latte", stored)).resolves.toBe(true);
  });

  it("refuses an unknown user or an unreadable hash after doing the same work", async () => {
    await expect(passwords.verify("anything", undefined)).resolves.toBe(false);
    await expect(passwords.verify("anything", "not a hash")).resolves.toBe(false);
  });

  it("verifies hashes of another cost and says they are worth re-hashing", async () => {
    const older = await createPasswords({ log2N: 11, r: 8, p: 1 }).hash("pass-word-1");
    await expect(passwords.verify("pass-word-1", older)).resolves.toBe(true);
    expect(passwords.outdated(older)).toBe(true);
    expect(passwords.outdated(await passwords.hash("x-y-z-w-1"))).toBe(false);
  });
});
