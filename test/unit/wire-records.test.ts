import { create, fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { ConnectError } from "@connectrpc/connect";
import {
  BatchUpsertTasksRequestSchema,
  SessionSchema,
  SessionStatus,
  TaskSchema,
  TaskStatus,
} from "../../gen/persistence/v1/translation_pb";
import type { Patch } from "../../server/core/patch";
import { toPatches } from "../../server/records/to-patches";
import { readWireFrame, isWireFrame } from "../../server/records/wire-records";
import { wireInputMethod } from "../../server/records/wire-input";
import { SESSION, SESSION_WIRE, TASK, TASK_WIRE } from "../../server/translation/translation.fields";
import { TranslationService } from "../../gen/persistence/v1/translation_pb";

const RECEIVED = 1_764_000_000_000_000;
const ts = (seconds: number, nanos = 0) => ({ seconds: BigInt(seconds), nanos });
const plain = (patches: readonly Patch[]) => patches.map((p) => ({ table: p.table, key: p.key, stamp: p.stamp, bytes: p.bytes, fields: [...p.fields] }));

const tasks: MessageInitShape<typeof TaskSchema>[] = [
  { sessionId: "s-1", taskId: "TASK_0001" },
  { sessionId: "s-1", taskId: "TASK_0002", batchId: "B", sheetName: "Items", rowIndex: 7, columnName: "Text", sourceText: "héllo ✓", status: TaskStatus.PENDING, updatedAt: ts(1_764_000_000, 123_456_789) },
  { sessionId: "s-1", taskId: "TASK_0003", status: TaskStatus.COMPLETED, targetText: "", confidence: 0.93, durationMs: 850, startTime: ts(1_764_000_001), endTime: ts(1_764_000_002, 5000), cost: 0, tokenCount: 0 },
  { sessionId: "s-1", taskId: "TASK_0004", clearFields: ["error_message", "targetText", "updated_at", "created_at"], retryCount: 2, llmModel: "m", targetLanguage: "ja-JP", createdAt: ts(1_700_000_000) },
  // Every kind of violation, each with its path.
  { sessionId: "", taskId: "bad id!", rowIndex: -1, confidence: 1.5, status: 99 as TaskStatus, updatedAt: ts(-5), startTime: ts(0, 2_000_000_000), sheetName: "x".repeat(256), clearFields: ["nope", "status", "row_index"], cost: Number.NaN },
  { sessionId: "..", taskId: "T", errorMessage: "e", clearFields: ["error_message", "context", "context"] },
];

const sessions: MessageInitShape<typeof SessionSchema>[] = [
  { sessionId: "sess-a", filename: "a.xlsx", status: SessionStatus.PROCESSING, totalTasks: 10 },
  { sessionId: "sess-b", gameInfo: { game_name: "G", nested: { n: 1, list: [true, null, "x"] } }, metadata: { a: 1 } },
  { sessionId: "sess-c", completedTasks: 3, clearFields: ["filename"] },
  { sessionId: "sess-d", pendingTasks: 4, progress: 50 },
];

describe("records decoded from their wire bytes", () => {
  it("become the patches, violations and missing required fields that the decoded messages give", () => {
    for (const [spec, wire, schema, records] of [
      [TASK, TASK_WIRE, TaskSchema, tasks],
      [SESSION, SESSION_WIRE, SessionSchema, sessions],
    ] as const) {
      const bytes = (records as MessageInitShape<typeof schema>[]).map((r) => toBinary(schema, create(schema, r as never)));
      const expected = toPatches(spec, bytes.map((b) => fromBinary(schema, b)) as never, RECEIVED, 1000);
      const actual = wire.decode(bytes, RECEIVED, 1000);
      expect(plain(actual.patches)).toEqual(plain(expected.patches));
      expect(actual.violations).toEqual(expected.violations);
      expect([...actual.lacking]).toEqual([...expected.lacking]);
    }
    // The cases above do reach the rules.
    const bytes = tasks.map((r) => toBinary(TaskSchema, create(TaskSchema, r)));
    expect(TASK_WIRE.decode(bytes, RECEIVED, 1000).violations.map((v) => v.field)).toContain("tasks[4].clear_fields[1]");
  });

  it("keep the last of a repeated scalar and skip fields they do not know, as protobuf-es does", () => {
    const writer = new BinaryWriter();
    writer.tag(1, 2).string("s-1").tag(2, 2).string("T1").tag(7, 2).string("first").tag(7, 2).string("second");
    writer.tag(99, 0).uint32(5).tag(98, 2).bytes(new Uint8Array([1, 2, 3]));
    const bytes = writer.finish();
    const expected = toPatches(TASK, [fromBinary(TaskSchema, bytes)] as never, RECEIVED, 10);
    const actual = TASK_WIRE.decode([bytes], RECEIVED, 10);
    expect(plain(actual.patches)).toEqual(plain(expected.patches));
    expect(actual.patches[0]!.fields.get("source_text")?.[0]).toBe("second");
  });

  it("decode what the fast reader leaves to protobuf-es as protobuf-es does", () => {
    const record = (build: (w: BinaryWriter) => void) => {
      const writer = new BinaryWriter();
      writer.tag(1, 2).string("s-1").tag(2, 2).string("T1");
      build(writer);
      return writer.finish();
    };
    const timestamp = (w: BinaryWriter, field: number, seconds: bigint | number, nanos: number) =>
      w.tag(field, 2).fork().tag(1, 0).int64(seconds).tag(2, 0).int32(nanos).join();
    const cases = [
      // A message field given twice merges: the second one's seconds with the first one's nanos.
      record((w) => {
        timestamp(w, 18, 1_764_000_000, 5000);
        w.tag(18, 2).fork().tag(1, 0).int64(1_764_000_100).join();
      }),
      record((w) => {
        timestamp(w, 14, 1_764_000_000, 0);
        w.tag(14, 2).fork().tag(2, 0).int32(7000).join();
      }),
      // Out of range: negative seconds, negative nanos, past 9999, nanos over a second.
      record((w) => timestamp(w, 18, -1n, 0)),
      record((w) => timestamp(w, 14, 1_764_000_000, -1)),
      record((w) => timestamp(w, 15, 253_402_300_800, 0)),
      record((w) => timestamp(w, 15, 1_764_000_000, 1_000_000_000)),
      // The last second of 9999 is in range; a negative int32 takes ten bytes.
      record((w) => timestamp(w, 15, 253_402_300_799, 999_999_999).tag(5, 0).int32(-3).tag(13, 0).int32(2)),
      // A text that holds U+FFFD itself, fields in any order, a double, unknown fixed32/fixed64 fields.
      record((w) => w.tag(7, 2).string("a\uFFFDb").tag(11, 1).double(0.5).tag(3, 2).string("B").tag(97, 5).fixed32(1).tag(96, 1).fixed64(2n)),
      // A varint where a string belongs: protobuf-es decides.
      record((w) => w.tag(4, 0).uint32(1)),
    ];
    for (const bytes of cases) {
      let expected: unknown;
      try {
        expected = toPatches(TASK, [fromBinary(TaskSchema, bytes)] as never, RECEIVED, 10);
      } catch (err) {
        expected = `parse binary: ${(err as Error).message}`;
      }
      let actual: unknown;
      try {
        actual = TASK_WIRE.decode([bytes], RECEIVED, 10);
      } catch (err) {
        actual = (err as ConnectError).rawMessage;
      }
      if (typeof expected === "string") expect(actual).toBe(expected);
      else {
        const e = expected as ReturnType<typeof toPatches>;
        const a = actual as ReturnType<typeof toPatches>;
        expect({ patches: plain(a.patches), violations: a.violations }).toEqual({ patches: plain(e.patches), violations: e.violations });
      }
    }
    // The cases reach the range checks.
    expect(TASK_WIRE.decode([cases[2]!], RECEIVED, 10).violations).toEqual([{ field: "tasks[0].updated_at", description: "must be a valid time between 1970 and 9999" }]);
    expect(TASK_WIRE.decode([cases[6]!], RECEIVED, 10).patches[0]!.fields.get("end_time")?.[0]).toBe(253_402_300_799_999_999);
  });

  it("refuse undecodable bytes and invalid UTF-8 as Connect refuses them", () => {
    const undecodable = [
      new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f]),
      new Uint8Array([0x0a, 0x05, 0x61]),
      new Uint8Array([0x0a, 0x02, 0xc3, 0x28]),
      // A varint that never ends, a group, a double cut short, a timestamp longer than the record.
      new Uint8Array([0x28, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
      new Uint8Array([0x0b, 0x0c]),
      new Uint8Array([0x59, 0x00, 0x00]),
      new Uint8Array([0x92, 0x01, 0x09, 0x08, 0x01]),
    ];
    for (const bytes of undecodable) {
      let expected: string | undefined;
      try {
        fromBinary(TaskSchema, bytes);
      } catch (err) {
        expected = `parse binary: ${(err as Error).message}`;
      }
      expect(expected).toBeDefined();
      const thrown = (() => {
        try {
          TASK_WIRE.decode([bytes], RECEIVED, 10);
        } catch (err) {
          return err;
        }
        return undefined;
      })();
      expect(thrown).toBeInstanceOf(ConnectError);
      expect((thrown as ConnectError).rawMessage).toBe(expected);
    }
  });

  it("refuse an empty or oversized batch naming the list", () => {
    expect(TASK_WIRE.decode([], RECEIVED, 10).violations).toEqual([{ field: "tasks", description: "must hold 1 to 10 records, got 0" }]);
  });

  it("make a log frame that reads back to the same patches", () => {
    const bytes = tasks.slice(0, 4).map((r) => toBinary(TaskSchema, create(TaskSchema, r)));
    const frame = TASK_WIRE.logFrame(bytes, RECEIVED);
    expect(isWireFrame(frame)).toBe(true);
    // Frames of patches (JSON) start with "[": never taken for wire frames.
    expect(isWireFrame(Buffer.from("[]"))).toBe(false);
    const back = readWireFrame(frame, new Map([[TASK_WIRE.table, TASK_WIRE]]));
    expect(plain(back.patches)).toEqual(plain(TASK_WIRE.decode(bytes, RECEIVED, 1000).patches));
    expect(() => readWireFrame(frame, new Map())).toThrow(/translation_tasks/);
  });
});

describe("a write RPC's binary twin", () => {
  it("reads the same request bytes, its records left as their wire bytes", () => {
    const twin = wireInputMethod(TranslationService.method.batchUpsertTasks, "tasks");
    expect(twin.name).toBe("BatchUpsertTasks");
    expect(twin.parent.typeName).toBe("persistence.v1.TranslationService");
    const request = create(BatchUpsertTasksRequestSchema, { tasks: tasks.slice(0, 2), durability: 3 });
    const decoded = fromBinary(twin.input, toBinary(BatchUpsertTasksRequestSchema, request)) as unknown as { tasks: Uint8Array[]; durability: number };
    expect(decoded.durability).toBe(3);
    expect(decoded.tasks.map((b) => fromBinary(TaskSchema, b))).toEqual(request.tasks);
  });
});
