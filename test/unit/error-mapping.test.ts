import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb";
import { SystemService } from "../../gen/persistence/v1/system_pb";
import { failedPrecondition, invalidArgument, notFound, resourceExhausted, retryDelayMs, unavailable } from "../../server/core/errors";
import { createLogger } from "../../server/core/logger";
import { errorOf } from "../support/errors";
import { createAccessLogInterceptor } from "../../server/rpc/interceptors/access-log";
import { createErrorMappingInterceptor } from "../../server/rpc/interceptors/error-mapping";
import { createRequestIdInterceptor } from "../../server/rpc/interceptors/request-id";

/** SystemService.GetInfo answering with whatever `fail` throws, behind the real interceptor chain. */
function clientThrowing(fail: () => never) {
  const logs: Record<string, unknown>[] = [];
  const logger = createLogger("info", { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
  const transport = createRouterTransport(({ service }) => service(SystemService, { getInfo: fail }), {
    router: {
      interceptors: [createRequestIdInterceptor(), createAccessLogInterceptor(logger), createErrorMappingInterceptor(logger)],
    },
  });
  return { client: createClient(SystemService, transport), logs };
}

function callError(client: ReturnType<typeof clientThrowing>["client"], requestId?: string): Promise<ConnectError> {
  return errorOf(client.getInfo({}, { headers: requestId ? { "x-request-id": requestId } : {} }));
}

describe("error mapping", () => {
  it("turns an unexpected error into INTERNAL with the request id and no internals, and logs the cause", async () => {
    const { client, logs } = clientThrowing(() => {
      throw new Error("ER_DUP_ENTRY: INSERT INTO translation_tasks (secret_column) VALUES ('x')");
    });
    const err = await callError(client, "req-123");
    expect(err.code).toBe(Code.Internal);
    expect(err.rawMessage).toBe("internal error (request id req-123)");
    expect(err.message).not.toMatch(/INSERT|translation_tasks|at /);
    expect(err.metadata.get("x-request-id")).toBe("req-123");
    const logged = logs.find((l) => l.msg === "unexpected error");
    expect(logged?.request_id).toBe("req-123");
    expect(JSON.stringify(logged?.err)).toContain("ER_DUP_ENTRY");
  });

  it("passes domain errors through with their code and details", async () => {
    const violations = [
      { field: "tasks[3].confidence", description: "must be between 0 and 1" },
      { field: "tasks[7].status", description: "unknown status" },
    ];
    const invalid = await callError(clientThrowing(() => { throw invalidArgument(violations); }).client);
    expect(invalid.code).toBe(Code.InvalidArgument);
    expect(invalid.rawMessage).toContain("tasks[3].confidence: must be between 0 and 1");
    expect(invalid.findDetails(BadRequestSchema)[0]?.fieldViolations.map((v) => ({ field: v.field, description: v.description }))).toEqual(violations);

    const full = await callError(clientThrowing(() => { throw resourceExhausted("write buffer full", 1500); }).client);
    expect(full.code).toBe(Code.ResourceExhausted);
    expect(retryDelayMs(full)).toBe(1500);

    const down = await callError(clientThrowing(() => { throw unavailable("database unreachable", 250); }).client);
    expect(down.code).toBe(Code.Unavailable);
    expect(retryDelayMs(down)).toBe(250);

    const missing = await callError(clientThrowing(() => { throw notFound("session", "s-1"); }).client);
    expect(missing.code).toBe(Code.NotFound);
    expect(missing.rawMessage).toBe('session "s-1" not found');
    expect(retryDelayMs(missing)).toBeUndefined();

    const ambiguous = await callError(
      clientThrowing(() => {
        throw failedPrecondition("task TASK_1 exists in 2 sessions", { type: "AMBIGUOUS", subject: "TASK_1", description: "a, b" });
      }).client,
    );
    expect(ambiguous.code).toBe(Code.FailedPrecondition);
  });

  it("summarises long violation lists in the message but keeps all of them in the details", async () => {
    const violations = Array.from({ length: 12 }, (_, i) => ({ field: `tasks[${i}].task_id`, description: "required" }));
    const err = await callError(clientThrowing(() => { throw invalidArgument(violations); }).client);
    expect(err.rawMessage).toContain("(and 7 more)");
    expect(err.findDetails(BadRequestSchema)[0]?.fieldViolations).toHaveLength(12);
  });

  it("generates a request id when the caller sends none or a malformed one", async () => {
    const { client } = clientThrowing(() => { throw notFound("x", "y"); });
    const generated = (await callError(client)).metadata.get("x-request-id");
    expect(generated).toMatch(/^[0-9a-f-]{36}$/);
    const replaced = (await callError(client, "bad id with spaces\n")).metadata.get("x-request-id");
    expect(replaced).toMatch(/^[0-9a-f-]{36}$/);
  });
});
