import { toBinary, type DescFile, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, type ConnectRouter } from "@connectrpc/connect";
import * as v1 from "../../gen/grpc/reflection/v1/reflection_pb.js";
import * as v1alpha from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";

type ReflectionRequest = v1.ServerReflectionRequest | v1alpha.ServerReflectionRequest;
type ReflectionResponse = MessageInitShape<typeof v1.ServerReflectionResponseSchema>;
type AlphaResponses = AsyncIterable<MessageInitShape<typeof v1alpha.ServerReflectionResponseSchema>>;

/** The descriptor index reflection answers from: every file the served services need, by name and by symbol. */
export interface ReflectionIndex {
  readonly services: readonly string[];
  fileByName(name: string): DescFile | undefined;
  fileBySymbol(symbol: string): DescFile | undefined;
  /** The file declaring extension `number` of message `extendee`. */
  fileByExtension(extendee: string, number: number): DescFile | undefined;
  extensionNumbers(extendee: string): number[] | undefined;
}

/** Indexes the given files and, transitively, everything they import (well-known types included). */
export function createReflectionIndex(roots: readonly DescFile[], services: readonly string[]): ReflectionIndex {
  const files = new Map<string, DescFile>();
  const symbols = new Map<string, DescFile>();
  const extensions = new Map<string, Map<number, DescFile>>();
  const messages = new Set<string>();

  const addMessage = (file: DescFile, message: DescMessage) => {
    symbols.set(message.typeName, file);
    messages.add(message.typeName);
    for (const nested of message.nestedMessages) addMessage(file, nested);
    for (const e of message.nestedEnums) symbols.set(e.typeName, file);
    for (const ext of message.nestedExtensions) addExtension(file, ext.extendee.typeName, ext.number, ext.typeName);
  };
  const addExtension = (file: DescFile, extendee: string, number: number, typeName: string) => {
    symbols.set(typeName, file);
    let byNumber = extensions.get(extendee);
    if (!byNumber) extensions.set(extendee, (byNumber = new Map()));
    byNumber.set(number, file);
  };
  const addFile = (file: DescFile) => {
    if (files.has(file.name + ".proto")) return;
    files.set(file.name + ".proto", file);
    for (const dep of file.dependencies) addFile(dep);
    for (const message of file.messages) addMessage(file, message);
    for (const e of file.enums) symbols.set(e.typeName, file);
    for (const ext of file.extensions) addExtension(file, ext.extendee.typeName, ext.number, ext.typeName);
    for (const service of file.services) {
      symbols.set(service.typeName, file);
      for (const method of service.methods) symbols.set(`${service.typeName}.${method.name}`, file);
    }
  };
  roots.forEach(addFile);

  return {
    services: [...services].sort(),
    fileByName: (name) => files.get(name),
    fileBySymbol: (symbol) => symbols.get(symbol.replace(/^\./, "")),
    fileByExtension: (extendee, number) => extensions.get(extendee)?.get(number),
    extensionNumbers: (extendee) =>
      messages.has(extendee) ? [...(extensions.get(extendee)?.keys() ?? [])].sort((a, b) => a - b) : undefined,
  };
}

/**
 * gRPC server reflection, v1 and v1alpha (same messages, two packages), so `grpcurl` and
 * `buf curl --reflect` work with no .proto files. Each file is sent with the imports the client
 * has not yet received on the stream.
 */
export function registerReflection(router: ConnectRouter, index: ReflectionIndex): void {
  router.service(v1.ServerReflection, { serverReflectionInfo: (requests) => answer(index, requests) });
  // v1alpha's messages are v1's under another package name: the same answers, typed for it.
  router.service(v1alpha.ServerReflection, {
    serverReflectionInfo: (requests) => answer(index, requests) as AlphaResponses,
  });
}

async function* answer(index: ReflectionIndex, requests: AsyncIterable<ReflectionRequest>): AsyncIterable<ReflectionResponse> {
  const sent = new Set<string>();
  for await (const request of requests) {
    yield {
      validHost: request.host,
      originalRequest: { host: request.host, messageRequest: plainCase(request.messageRequest) },
      messageResponse: respond(index, request, sent),
    };
  }
}

/** The request's oneof without message type names, so either version's request can be echoed in v1 form. */
function plainCase(m: ReflectionRequest["messageRequest"]): v1.ServerReflectionRequest["messageRequest"] | undefined {
  if (m.case === "fileContainingExtension") {
    const { containingType, extensionNumber } = m.value;
    return { case: m.case, value: { $typeName: "grpc.reflection.v1.ExtensionRequest", containingType, extensionNumber } };
  }
  return m.case === undefined ? undefined : { case: m.case, value: m.value };
}

function respond(index: ReflectionIndex, request: ReflectionRequest, sent: Set<string>): ReflectionResponse["messageResponse"] {
  const notFound = (what: string) =>
    ({ case: "errorResponse", value: { errorCode: Code.NotFound, errorMessage: `${what} not found` } }) as const;
  const files = (file: DescFile | undefined, what: string) =>
    file ? ({ case: "fileDescriptorResponse", value: { fileDescriptorProto: withImports(file, sent) } } as const) : notFound(what);

  const m = request.messageRequest;
  switch (m.case) {
    case "listServices":
      return { case: "listServicesResponse", value: { service: index.services.map((name) => ({ name })) } } as const;
    case "fileByFilename":
      return files(index.fileByName(m.value), `file ${m.value}`);
    case "fileContainingSymbol":
      return files(index.fileBySymbol(m.value), `symbol ${m.value}`);
    case "fileContainingExtension":
      return files(
        index.fileByExtension(m.value.containingType, m.value.extensionNumber),
        `extension ${m.value.extensionNumber} of ${m.value.containingType}`,
      );
    case "allExtensionNumbersOfType": {
      const numbers = index.extensionNumbers(m.value);
      return numbers
        ? ({ case: "allExtensionNumbersResponse", value: { baseTypeName: m.value, extensionNumber: numbers } } as const)
        : notFound(`type ${m.value}`);
    }
    default:
      return { case: "errorResponse", value: { errorCode: Code.InvalidArgument, errorMessage: "empty reflection request" } } as const;
  }
}

/** The file first, then each import (transitively) not yet sent on this stream. */
function withImports(file: DescFile, sent: Set<string>): Uint8Array[] {
  const out: Uint8Array[] = [toBinary(FileDescriptorProtoSchema, file.proto)];
  sent.add(file.name);
  const visit = (f: DescFile) => {
    for (const dep of f.dependencies) {
      if (sent.has(dep.name)) continue;
      sent.add(dep.name);
      out.push(toBinary(FileDescriptorProtoSchema, dep.proto));
      visit(dep);
    }
  };
  visit(file);
  return out;
}
