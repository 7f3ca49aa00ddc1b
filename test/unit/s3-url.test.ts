import { parseS3Url } from "../../server/backends/objects/s3-url";

/** The message `parse` fails with; fails the test when it does not. */
function failure(url: string): string {
  try {
    parseS3Url(url);
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error("the URL was accepted");
}

describe("PERSISTENCE_S3_URL", () => {
  it("reads the endpoint, percent-encoded credentials, bucket and region", () => {
    expect(parseS3Url("http://test%3Atester:testing@127.0.0.1:8080/persistence?region=us-east-1")).toEqual({
      useSSL: false,
      host: "127.0.0.1",
      port: 8080,
      accessKey: "test:tester",
      secretKey: "testing",
      bucket: "persistence",
      region: "us-east-1",
    });
    expect(parseS3Url("https://AKIA:s%2Fe%40c%3Aret@oss-cn-hangzhou.aliyuncs.com/files.bucket?region=oss-cn-hangzhou")).toEqual({
      useSSL: true,
      host: "oss-cn-hangzhou.aliyuncs.com",
      port: 443,
      accessKey: "AKIA",
      secretKey: "s/e@c:ret",
      bucket: "files.bucket",
      region: "oss-cn-hangzhou",
    });
  });

  it("defaults the port to the scheme's and the region to us-east-1", () => {
    expect(parseS3Url("http://k:s@minio.local/b-1")).toMatchObject({ port: 80, region: "us-east-1", bucket: "b-1" });
    expect(parseS3Url("https://k:s@[::1]/bkt/")).toMatchObject({ host: "::1", port: 443, bucket: "bkt" });
  });

  it("refuses what it cannot use, naming the variable and never the secret", () => {
    const secret = "Sup3rS3cretValue";
    const cases: [string, RegExp][] = [
      [`ftp://key:${secret}@host/bucket`, /scheme must be http or https/],
      [`http://key:${secret}@host/`, /no bucket/],
      [`http://key:${secret}@host/a/b`, /bucket alone/],
      [`http://key:${secret}@host/Bad_Bucket`, /not a valid S3 bucket name/],
      [`http://key:${secret}@host/ab`, /not a valid S3 bucket name/],
      [`http://:${secret}@host/bucket`, /no access key/],
      ["http://key@host/bucket", /no secret/],
      [`http://key:${secret}%ZZ@host/bucket`, /secret is not correctly percent-encoded/],
      [`http://key:${secret}@host/bucket?regoin=eu-west-1`, /unknown parameter "regoin"/],
      [`http://key:${secret}@host/bucket?region=EU WEST`, /not a region name/],
      [`not a url ${secret}`, /not a URL/],
    ];
    for (const [url, problem] of cases) {
      const message = failure(url);
      expect(message).toMatch(/^PERSISTENCE_S3_URL: /);
      expect(message).toMatch(problem);
      expect(message).not.toContain(secret);
    }
    expect(() => parseS3Url("http://k:s@host/", "TEST_S3_URL")).toThrow(/^TEST_S3_URL: no bucket/);
  });
});
