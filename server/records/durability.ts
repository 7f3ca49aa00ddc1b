import { Durability as DurabilityEnum } from "../../gen/persistence/v1/common_pb.js";
import { invalidArgument } from "../core/errors.js";
import type { Durability } from "../core/write-batcher.js";

/** The contract's Durability enum ↔ the write batcher's durability, for every module that takes writes. */
const TO_ENUM: Record<Durability, DurabilityEnum> = {
  accepted: DurabilityEnum.ACCEPTED,
  logged: DurabilityEnum.LOGGED,
  committed: DurabilityEnum.COMMITTED,
};

export function durabilityEnum(durability: Durability): DurabilityEnum {
  return TO_ENUM[durability];
}

/**
 * What a write that asks for `requested` gets: UNSPECIFIED means the service's default (`logged` with
 * the write-ahead log on, `accepted` with it off). An unknown value is INVALID_ARGUMENT naming `field`.
 */
export function requestedDurability(requested: DurabilityEnum, defaultDurability: Durability, field = "durability"): Durability {
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
      throw invalidArgument([{ field, description: `unknown durability ${String(requested)}` }]);
  }
}
