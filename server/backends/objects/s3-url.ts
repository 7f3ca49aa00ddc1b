/** Where an S3-compatible store is, parsed from `PERSISTENCE_S3_URL`. */
export interface S3Target {
  readonly useSSL: boolean;
  readonly host: string;
  readonly port: number;
  readonly accessKey: string;
  readonly secretKey: string;
  readonly bucket: string;
  /** `?region=`, default us-east-1. */
  readonly region: string;
}

const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/**
 * Parses `http(s)://<access key>:<secret>@host:port/<bucket>?region=...`: user info percent-encoded
 * (a ":" or "@" in a key is %3A or %40), requests path-style, the bucket created when missing.
 * Errors name `variable` and never repeat the URL, which holds the secret.
 */
export function parseS3Url(url: string, variable = "PERSISTENCE_S3_URL"): S3Target {
  const fail = (problem: string): never => {
    throw new Error(`${variable}: ${problem} (expected http(s)://<access key>:<secret>@host:port/<bucket>?region=...)`);
  };
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return fail("not a URL");
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") fail(`the scheme must be http or https, not ${parsed.protocol.replace(/:$/, "")}`);
  if (parsed.hostname === "") fail("no host");
  const decode = (part: string, what: string): string => {
    try {
      return decodeURIComponent(part);
    } catch {
      return fail(`the ${what} is not correctly percent-encoded`);
    }
  };
  const accessKey = decode(parsed.username, "access key");
  const secretKey = decode(parsed.password, "secret");
  if (accessKey === "") fail("no access key in the user info");
  if (secretKey === "") fail("no secret in the user info");
  const bucket = decode(parsed.pathname.replace(/^\//, "").replace(/\/$/, ""), "bucket");
  if (bucket === "") fail("no bucket in the path");
  if (bucket.includes("/")) fail("the path must be the bucket alone");
  if (!BUCKET.test(bucket) || bucket.includes("..")) {
    fail(`bucket ${JSON.stringify(bucket)} is not a valid S3 bucket name (3-63 lower-case letters, digits, "." and "-")`);
  }
  for (const name of parsed.searchParams.keys()) {
    if (name !== "region") fail(`unknown parameter ${JSON.stringify(name)} (only region is known)`);
  }
  const region = parsed.searchParams.get("region") || "us-east-1";
  if (!/^[a-z0-9-]{1,64}$/.test(region)) fail(`region ${JSON.stringify(region)} is not a region name`);
  const useSSL = parsed.protocol === "https:";
  return {
    useSSL,
    host: parsed.hostname.replace(/^\[|\]$/g, ""),
    port: parsed.port ? Number(parsed.port) : useSSL ? 443 : 80,
    accessKey,
    secretKey,
    bucket,
    region,
  };
}
