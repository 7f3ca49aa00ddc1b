import { timestampFromMs, timestampNow } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { Durability as DurabilityEnum } from "../../gen/persistence/v1/common_pb.js";
import { TranslationService as TranslationServiceDesc } from "../../gen/persistence/v1/translation_pb.js";
import { invalidArgument } from "../core/errors.js";
import type { Durability } from "../core/write-batcher.js";
import type { TranslationService } from "./translation.service.js";

/** How long Flush waits for everything accepted to commit. */
const FLUSH_TIMEOUT_MS = 10_000;

const TO_ENUM: Record<Durability, DurabilityEnum> = {
  accepted: DurabilityEnum.ACCEPTED,
  logged: DurabilityEnum.LOGGED,
  committed: DurabilityEnum.COMMITTED,
};

/** persistence.v1.TranslationService: maps the contract onto the translation service. */
export function createTranslationHandler(
  translation: TranslationService,
  defaultDurability: Durability,
): Partial<ServiceImpl<typeof TranslationServiceDesc>> {
  const durabilityOf = (requested: DurabilityEnum): Durability => {
    switch (requested) {
      case DurabilityEnum.UNSPECIFIED:
        return defaultDurability;
      case DurabilityEnum.ACCEPTED:
        return "accepted";
      case DurabilityEnum.LOGGED:
        return "logged";
      case DurabilityEnum.COMMITTED:
        return "committed";
      default:
        throw invalidArgument([{ field: "durability", description: `unknown durability ${String(requested)}` }]);
    }
  };
  const accepted = ({ count, durability }: { count: number; durability: Durability }) => ({
    status: "accepted",
    count,
    durability: TO_ENUM[durability],
    timestamp: timestampNow(),
  });

  return {
    async batchUpsertSessions(req, ctx) {
      return accepted(await translation.upsertSessions(req.sessions, durabilityOf(req.durability), ctx.signal));
    },
    async batchUpsertTasks(req, ctx) {
      return accepted(await translation.upsertTasks(req.tasks, durabilityOf(req.durability), ctx.signal));
    },
    async flush() {
      const started = performance.now();
      const result = await translation.flush(FLUSH_TIMEOUT_MS);
      return {
        status: result.empty ? "empty" : "flushed",
        sessionsWritten: result.sessions,
        tasksWritten: result.tasks,
        durationMs: Math.round(performance.now() - started),
      };
    },
    async getRecoveryStatus() {
      const s = await translation.recoveryStatus();
      return {
        walReplayedRecords: BigInt(s.walReplayed),
        walPendingRecords: BigInt(s.walPendingRecords),
        bufferRecords: BigInt(s.bufferRecords),
        bufferBytes: BigInt(s.bufferBytes),
        oldestUnflushedAgeMs: BigInt(Math.round(s.oldestAgeMs)),
        lastFlushAt: s.lastFlushAt === undefined ? undefined : timestampFromMs(s.lastFlushAt),
        databaseReachable: s.databaseReachable,
        retryBacklog: BigInt(s.retryBacklog),
        deadLetters: BigInt(s.deadLetters),
        incompleteSessions: s.incompleteSessions,
      };
    },
  };
}
