import net from "node:net";
import { Code } from "@connectrpc/connect";
import { aggregateBody, createOpenSearchIndex, indexTemplate, searchBody, sourceOf } from "../../server/backends/search/opensearch";
import { normalizeSchema, planAggregate, planSearch, schemaDefinition } from "../../server/backends/search/search-plan";
import { retryDelayMs } from "../../server/core/errors";
import { errorOf } from "../support/errors";

// What the OpenSearch adapter sends; its behaviour against a cluster is the contract suite's (run
// when PERSISTENCE_OPENSEARCH_URL is set).
const schema = normalizeSchema({ time: "at", text: ["message", "agent"], keyword: ["action"], numeric: ["ms"] });

describe("OpenSearch requests", () => {
  it("create daily indices from a template with strict mappings and the schema in _meta", () => {
    const template = indexTemplate("p-audit_logs", schema, schemaDefinition(schema));
    expect(template).toMatchObject({
      index_patterns: ["p-audit_logs-*"],
      _meta: { schema: schemaDefinition(schema) },
      template: {
        mappings: {
          dynamic: "strict",
          properties: {
            id: { type: "keyword" },
            at: { type: "date", format: "epoch_millis" },
            action: { type: "keyword" },
            ms: { type: "double" },
            message: { type: "text", index: false },
            agent: { type: "text", index: false },
            search_tokens: { type: "text", analyzer: "whitespace" },
          },
        },
      },
    });
  });

  it("send each text field's tokens as one array element, so phrases stay within a field", () => {
    const source = sourceOf(schema, { id: "e1", time: 5, values: { message: "機械翻訳 OK", agent: null, action: "a.b", ms: null } });
    expect(source).toEqual({ id: "e1", at: 5, message: "機械翻訳 OK", action: "a.b", search_tokens: ["機械 械翻 翻訳 ok", ""] });
  });

  it("search with phrases of tokens, filters, newest first, search_after and a total bounded past the limit", () => {
    const request = {
      text: 'disk "Full Volume" 翻',
      filters: [
        { field: "action", prefix: "file." },
        { field: "action", term: ["a", "b"] },
        { field: "at", gte: new Date(10), lt: new Date(20) },
      ],
      pageSize: 5,
      totalLimit: 100,
    } as const;
    const first = planSearch(schema, "audit_logs", request);
    const body = searchBody(schema, first, 6);
    expect(body).toMatchObject({
      query: {
        bool: {
          must: [
            { match_phrase: { search_tokens: { query: "disk" } } },
            { match_phrase: { search_tokens: { query: "full volume" } } },
            { wildcard: { search_tokens: { value: "*翻*" } } },
          ],
          filter: [{ prefix: { action: { value: "file." } } }, { terms: { action: ["a", "b"] } }, { range: { at: { gte: 10, lt: 20 } } }],
        },
      },
      sort: [{ at: { order: "desc" } }, { id: { order: "desc" } }],
      size: 6,
      track_total_hits: 101,
    });
    expect(body.search_after).toBeUndefined();
    const token = Buffer.from(JSON.stringify({ a: [15, "e9"], q: first.fingerprint })).toString("base64url");
    expect(searchBody(schema, planSearch(schema, "audit_logs", { ...request, pageToken: token }), 6).search_after).toEqual([15, "e9"]);
  });

  it("rank by score first when asked, and let any term match with or", () => {
    const body = searchBody(schema, planSearch(schema, "audit_logs", { text: "a b", operator: "or", sort: "relevance" }), 3);
    expect(body.sort).toEqual([{ _score: { order: "desc" } }, { at: { order: "desc" } }, { id: { order: "desc" } }]);
    expect(body.query).toEqual({
      bool: { should: [{ match_phrase: { search_tokens: { query: "a" } } }, { match_phrase: { search_tokens: { query: "b" } } }], minimum_should_match: 1, filter: [] },
    });
    expect(searchBody(schema, planSearch(schema, "audit_logs", {}), 3).query).toEqual({ match_all: {} });
  });

  it("count by value (ties by value) and by fixed interval, with an exact total", () => {
    const body = aggregateBody(schema, planAggregate(schema, { terms: [{ field: "action", size: 3 }], histogram: { interval: "1h" } }));
    expect(body).toMatchObject({
      size: 0,
      track_total_hits: true,
      aggs: {
        terms_0: { terms: { field: "action", size: 3, order: [{ _count: "desc" }, { _key: "asc" }] } },
        histogram: { date_histogram: { field: "at", fixed_interval: "60m", min_doc_count: 1 } },
      },
    });
  });

  it("report a cluster that cannot be reached as UNAVAILABLE with a retry delay", async () => {
    const port = await new Promise<number>((resolve) => {
      const server = net.createServer().listen(0, "127.0.0.1", () => {
        const { port } = server.address() as net.AddressInfo;
        server.close(() => resolve(port));
      });
    });
    const search = createOpenSearchIndex({ url: `http://127.0.0.1:${port}`, requestTimeoutMs: 2000 });
    try {
      for (const call of [search.ping(), search.declareIndex("audit_logs", { time: "at", text: ["message"] })]) {
        const err = await errorOf(call);
        expect(err.code).toBe(Code.Unavailable);
        expect(retryDelayMs(err)).toBe(1000);
      }
    } finally {
      await search.close();
    }
  });
});
