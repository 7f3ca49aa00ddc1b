import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from "node:crypto";

/**
 * Password hashing with Node's built-in scrypt (no native add-on to build or download). The default
 * cost is one of OWASP's equivalent scrypt settings (Password Storage Cheat Sheet: N=2^17 r=8 p=1,
 * ... N=2^14 r=8 p=5): N=2^14, r=8, p=5 takes the same work as N=2^17 with an eighth of the memory
 * (16 MiB per hash instead of 128 MiB), which matters when logins run four at a time on the libuv pool.
 * A hash records its own parameters, so raising the cost later still verifies older hashes.
 */
export interface PasswordCost {
  /** log2 of scrypt's N. */
  readonly log2N: number;
  readonly r: number;
  readonly p: number;
}

export const OWASP_COST: PasswordCost = { log2N: 14, r: 8, p: 5 };

const SALT_BYTES = 16;
const KEY_BYTES = 32;
const FORMAT = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9_-]+)\$([A-Za-z0-9_-]+)$/;

export interface Passwords {
  /** A new salted hash of `password`, in the `$scrypt$ln=..,r=..,p=..$<salt>$<key>` form. */
  hash(password: string): Promise<string>;
  /**
   * Whether `password` matches `stored`, compared in constant time. With no stored hash (an unknown
   * user) it hashes against a dummy of the current cost and answers false, so both take as long.
   */
  verify(password: string, stored: string | undefined): Promise<boolean>;
  /** Whether `stored` was made with another cost than the current one (then it is worth re-hashing). */
  outdated(stored: string): boolean;
}

export function createPasswords(cost: PasswordCost = OWASP_COST): Passwords {
  const derive = (password: string, salt: Buffer, c: PasswordCost) => {
    const options: ScryptOptions = { N: 2 ** c.log2N, r: c.r, p: c.p, maxmem: 256 * 2 ** c.log2N * c.r + 1024 * 1024 };
    return new Promise<Buffer>((resolve, reject) => scrypt(password.normalize("NFC"), salt, KEY_BYTES, options, (err, key) => (err ? reject(err) : resolve(key))));
  };
  const encode = (c: PasswordCost, salt: Buffer, key: Buffer) => `$scrypt$ln=${c.log2N},r=${c.r},p=${c.p}$${salt.toString("base64url")}$${key.toString("base64url")}`;
  let dummy: Promise<string> | undefined;
  const hash = async (password: string) => {
    const salt = randomBytes(SALT_BYTES);
    return encode(cost, salt, await derive(password, salt, cost));
  };
  return {
    hash,
    async verify(password, stored) {
      const target = stored ?? (await (dummy ??= hash(randomBytes(16).toString("base64url"))));
      const parsed = parse(target);
      if (!parsed) {
        // A stored value this code cannot read: spend the same time, and refuse.
        await derive(password, randomBytes(SALT_BYTES), cost);
        return false;
      }
      const key = await derive(password, parsed.salt, parsed.cost);
      return key.length === parsed.key.length && timingSafeEqual(key, parsed.key) && stored !== undefined;
    },
    outdated(stored) {
      const parsed = parse(stored);
      return !parsed || parsed.cost.log2N !== cost.log2N || parsed.cost.r !== cost.r || parsed.cost.p !== cost.p;
    },
  };
}

function parse(stored: string): { cost: PasswordCost; salt: Buffer; key: Buffer } | undefined {
  const m = FORMAT.exec(stored);
  if (!m) return undefined;
  const cost = { log2N: Number(m[1]), r: Number(m[2]), p: Number(m[3]) };
  if (cost.log2N < 1 || cost.log2N > 24 || cost.r < 1 || cost.p < 1) return undefined;
  return { cost, salt: Buffer.from(m[4]!, "base64url"), key: Buffer.from(m[5]!, "base64url") };
}
