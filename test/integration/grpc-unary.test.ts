import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type HandlerContext, type Interceptor } from "@connectrpc/connect";
import { compressionGzip, createGrpcTransport } from "@connectrpc/connect-node";
import { SystemService } from "../../gen/persistence/v1/system_pb";
import { BatchUpsertTasksRequestSchema, TranslationService } from "../../gen/persistence/v1/translation_pb";
import { createLogger } from "../../server/core/logger";
import { createRpcHandler } from "../../server/http/rpc-handler";
import { wireInputMethod } from "../../server/records/wire-input";
import { frame, grpcRaw } from "../support/grpc-raw";
import { eventually } from "../support/wait";

/**
 * The lean path for plain gRPC unary calls (server/http/grpc-unary.ts) against Connect's: the same
 * interceptors, replies, errors, deadlines and cancellation; every call it does not take whole goes to
 * Connect. Which path served a call shows in the reason its signal ends with: Connect aborts it with
 * an AbortError, the lean path with "the call has finished".
 */
describe("plain gRPC unary calls", () => {
  const twin = wireInputMethod(TranslationService.method.batchUpsertTasks, "tasks");
  let server: http2.Http2Server;
  const sessions = new Set<http2.ServerHttp2Session>();
  let url: string;
  /** What the implementation saw of the last call. */
  let last: { signal: AbortSignal; records: number; header: string | null } | undefined;
  /** Makes the implementation wait until the call's signal ends. */
  let hang = false;

  const impl = async (req: { tasks: Uint8Array[] }, ctx: HandlerContext) => {
    last = { signal: ctx.signal, records: req.tasks.length, header: ctx.requestHeader.get("x-probe") };
    if (hang) {
      await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
      throw ctx.signal.reason;
    }
    if (req.tasks.length > 2) throw new ConnectError("at most 2 tasks", Code.InvalidArgument);
    return { status: "accepted", count: req.tasks.length };
  };
  const interceptor: Interceptor = (next) => async (req) => {
    if (req.header.get("x-deny")) throw new ConnectError("denied by the test", Code.PermissionDenied);
    const res = await next(req);
    res.header.set("x-seen", "yes");
    res.trailer.set("x-after", "done");
    return res;
  };
  /** A raw call of the twin. */
  const raw = (body: Buffer, headers: Record<string, string> = {}) => grpcRaw(url, `/${twin.parent.typeName}/${twin.name}`, body, headers);
  const servedBy = () => (last?.signal.reason instanceof ConnectError && last.signal.reason.rawMessage === "the call has finished" ? "lean" : "connect");

  beforeAll(async () => {
    const handler = createRpcHandler({
      logger: createLogger("silent"),
      routes: (router) => {
        router.rpc(SystemService.method.echo, async (req, ctx) => {
          last = { signal: ctx.signal, records: 0, header: ctx.requestHeader.get("x-probe") };
          return { payload: req.payload };
        });
      },
      binaryMethods: [{ method: twin, impl: impl as never }],
      interceptors: [interceptor],
      readMaxBytes: 4096,
      fallback: (_req, res) => {
        res.writeHead(404);
        res.end();
      },
    });
    server = http2.createServer(handler as never);
    server.on("session", (session) => sessions.add(session));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    for (const session of sessions) session.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  beforeEach(() => {
    last = undefined;
    hang = false;
  });

  const client = (options: Partial<Parameters<typeof createGrpcTransport>[0]> = {}) => createClient(TranslationService, createGrpcTransport({ baseUrl: url, ...options }));
  const tasks = (n: number) => Array.from({ length: n }, (_, i) => ({ sessionId: "s", taskId: `T${i}` }));

  it("answers a call with the implementation's reply, the interceptors' headers and trailers", async () => {
    const seen: { header?: string | null; trailer?: string | null } = {};
    const reply = await client().batchUpsertTasks(
      { tasks: tasks(2) },
      { headers: { "x-probe": "p1" }, onHeader: (h) => (seen.header = h.get("x-seen")), onTrailer: (t) => (seen.trailer = t.get("x-after")) },
    );
    expect({ status: reply.status, count: reply.count, seen, records: last?.records, probe: last?.header, path: servedBy() }).toEqual({
      status: "accepted",
      count: 2,
      seen: { header: "yes", trailer: "done" },
      records: 2,
      probe: "p1",
      path: "lean",
    });
  });

  it("serves every unary RPC so, not only the batch writes' binary twins; JSON over gRPC stays with Connect", async () => {
    const system = (binary: boolean) => createClient(SystemService, createGrpcTransport({ baseUrl: url, useBinaryFormat: binary }));
    const echoed = await system(true).echo({ payload: new Uint8Array([1, 2, 3]) }, { headers: { "x-probe": "e" } });
    expect({ payload: [...echoed.payload], probe: last?.header, path: servedBy() }).toEqual({ payload: [1, 2, 3], probe: "e", path: "lean" });
    const json = await system(false).echo({ payload: new Uint8Array([4]) });
    expect({ payload: [...json.payload], path: servedBy() }).toEqual({ payload: [4], path: "connect" });
  });

  it("gives the implementation's and the interceptors' errors as Connect does", async () => {
    await expect(client().batchUpsertTasks({ tasks: tasks(3) })).rejects.toMatchObject({ code: Code.InvalidArgument, rawMessage: "at most 2 tasks" });
    expect(servedBy()).toBe("lean");
    await expect(client().batchUpsertTasks({ tasks: tasks(1) }, { headers: { "x-deny": "1" } })).rejects.toMatchObject({ code: Code.PermissionDenied, rawMessage: "denied by the test" });
  });

  it("ends the call's signal at its deadline and when the caller cancels", async () => {
    hang = true;
    // A raw call, so that only the service's timer ends it (a client gives up at its deadline too, and
    // its reset could reach the service first).
    const message = toBinary(BatchUpsertTasksRequestSchema, create(BatchUpsertTasksRequestSchema, { tasks: tasks(1) }));
    expect(await raw(frame(message), { "grpc-timeout": "100m" })).toMatchObject({ status: String(Code.DeadlineExceeded) });
    expect((last!.signal.reason as ConnectError).code).toBe(Code.DeadlineExceeded);
    last = undefined;
    const abort = new AbortController();
    const call = client().batchUpsertTasks({ tasks: tasks(1) }, { signal: abort.signal });
    await eventually(async () => last !== undefined);
    abort.abort();
    await expect(call).rejects.toMatchObject({ code: Code.Canceled });
    await eventually(async () => last!.signal.aborted);
    expect((last!.signal.reason as ConnectError).code).toBe(Code.Canceled);
  });

  it("leaves compressed, oversized, doubled or malformed calls to Connect, which answers them", async () => {
    const gzipped = await client({ sendCompression: compressionGzip, compressMinBytes: 1 }).batchUpsertTasks({ tasks: tasks(2) });
    expect({ count: gzipped.count, path: servedBy() }).toEqual({ count: 2, path: "connect" });
    await expect(client().batchUpsertTasks({ tasks: Array.from({ length: 2 }, (_, i) => ({ sessionId: "s", taskId: `T${i}`, sourceText: "x".repeat(4000) })) })).rejects.toMatchObject({
      code: Code.ResourceExhausted,
    });
    const message = toBinary(BatchUpsertTasksRequestSchema, create(BatchUpsertTasksRequestSchema, { tasks: tasks(1) }));
    const doubled = await raw(Buffer.concat([frame(message), frame(message)]));
    expect(doubled).toMatchObject({ status: String(Code.Unimplemented), message: "protocol error: received extra input message for unary method" });
    expect(await raw(frame(message), { "grpc-timeout": "soon" })).toMatchObject({ status: String(Code.InvalidArgument), message: "protocol error: invalid grpc timeout value: soon" });
    expect(await raw(frame(message).subarray(0, 7))).toMatchObject({ status: String(Code.InvalidArgument), message: "protocol error: incomplete envelope" });
    expect((await raw(frame(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f])))).message).toMatch(/^parse binary:/);
    // A well-formed call after them is still served on the lean path.
    last = undefined;
    expect(await raw(frame(message))).toMatchObject({ status: "0", replied: true });
    expect(servedBy()).toBe("lean");
  });

  it("keeps serving after a caller resets its stream halfway through the body", async () => {
    const session = http2.connect(url);
    const stream = session.request({ ":method": "POST", ":path": `/${twin.parent.typeName}/${twin.name}`, "content-type": "application/grpc", te: "trailers" });
    stream.on("error", () => undefined);
    stream.write(Buffer.from([0, 0, 0, 0, 40, 0x0a]));
    await new Promise((resolve) => setTimeout(resolve, 20));
    stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    await new Promise((resolve) => stream.once("close", resolve));
    session.close();
    const reply = await client().batchUpsertTasks({ tasks: tasks(1) });
    expect({ count: reply.count, path: servedBy() }).toEqual({ count: 1, path: "lean" });
  });
});
