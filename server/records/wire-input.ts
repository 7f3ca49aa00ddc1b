import { clone, create, createFileRegistry, type DescFile, type DescMethod } from "@bufbuild/protobuf";
import { DescriptorProtoSchema, FieldDescriptorProto_Type, FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";

/**
 * A twin of a write RPC for protobuf binary requests: the same method, whose request message reads the
 * records of `listField` as their wire bytes (`repeated bytes` has the wire format of a repeated
 * message field), so protobuf-es builds no message per record and records/wire-records.ts decodes them
 * straight into patches. The twin's request message keeps the original's full name, fields and numbers;
 * it lives in a registry of its own and is never published (reflection, REST and JSON see the contract).
 */
export function wireInputMethod(method: DescMethod, listField: string): DescMethod {
  const input = method.input;
  const message = clone(DescriptorProtoSchema, input.proto);
  const list = message.field.find((f) => f.name === listField);
  if (!list || list.type !== FieldDescriptorProto_Type.MESSAGE) throw new Error(`${input.typeName} has no message list ${listField}`);
  list.type = FieldDescriptorProto_Type.BYTES;
  list.typeName = "";
  const original = input.file.proto;
  const file = create(FileDescriptorProtoSchema, {
    name: `${original.name}#${input.name}.wire`,
    package: original.package,
    dependency: original.dependency,
    syntax: original.syntax,
    edition: original.edition,
    messageType: [message],
  });
  const registry = createFileRegistry(file, (name) => findFile(input.file, name));
  const twin = registry.getMessage(input.typeName);
  if (!twin) throw new Error(`no twin of ${input.typeName}`);
  return { ...method, input: twin };
}

/** `name` among the files `file` imports, directly or not. */
function findFile(file: DescFile, name: string, seen = new Set<DescFile>()): DescFile | undefined {
  for (const dep of file.dependencies) {
    if (seen.has(dep)) continue;
    seen.add(dep);
    if (dep.proto.name === name) return dep;
    const found = findFile(dep, name, seen);
    if (found) return found;
  }
  return undefined;
}
