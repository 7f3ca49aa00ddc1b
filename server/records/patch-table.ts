import type { PatchTable } from "../core/patch.js";
import type { EntitySpec } from "./fields.js";

/** How the write path maps an entity's patches onto its table. */
export function patchTable(spec: EntitySpec): PatchTable {
  const defaults = new Map(spec.fields.map((f) => [f.name, f.insertDefault]));
  return {
    name: spec.table,
    keyColumns: spec.keys.map((k) => k.name),
    fieldColumns: spec.fields.map((f) => f.name),
    insertRequired: spec.fields.filter((f) => f.insertDefault === "stamp").map((f) => f.name),
    insertDefault: (column, patch) => {
      const value = defaults.get(column);
      return value === "stamp" ? patch.stamp : (value ?? null);
    },
  };
}
