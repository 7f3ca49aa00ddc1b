import { quantile } from "../../server/rpc/interceptors/metrics";

describe("latency quantiles from histogram buckets", () => {
  const buckets = [
    { le: 0.001, count: 50 },
    { le: 0.01, count: 90 },
    { le: 0.1, count: 100 },
    { le: Infinity, count: 100 },
  ];

  it("interpolates inside the bucket holding the rank", () => {
    expect(quantile(buckets, 0.5)).toBeCloseTo(0.001);
    expect(quantile(buckets, 0.25)).toBeCloseTo(0.0005);
    expect(quantile(buckets, 0.7)).toBeCloseTo(0.001 + 0.009 * 0.5);
    expect(quantile(buckets, 0.95)).toBeCloseTo(0.01 + 0.09 * 0.5);
  });

  it("is 0 with no observations and the last finite bound past it", () => {
    expect(quantile([{ le: 0.1, count: 0 }, { le: Infinity, count: 0 }], 0.99)).toBe(0);
    expect(quantile([{ le: 0.1, count: 1 }, { le: Infinity, count: 10 }], 0.99)).toBe(0.1);
  });
});
