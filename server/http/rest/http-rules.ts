import { getOption, hasOption, type DescField, type DescMethod, type DescService } from "@bufbuild/protobuf";
import { http } from "../../../gen/google/api/annotations_pb.js";
import type { HttpRule } from "../../../gen/google/api/http_pb.js";
import { compareSpecificity, parsePathTemplate, type PathTemplate } from "./path-template.js";
import { resolveFieldPath } from "./rest-json.js";

export type HttpVerb = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

/** One REST binding of an RPC, read from its `google.api.http` option. */
export interface RestRoute {
  readonly verb: HttpVerb;
  readonly template: PathTemplate;
  readonly method: DescMethod;
  /** `"*"`: the body is the whole request; a field name: the body is that field; undefined: no body. */
  readonly body: string | undefined;
  /** The response field sent as the body; undefined: the whole response. */
  readonly responseBody: DescField | undefined;
}

/**
 * Every REST binding (primary and additional) of the given services, most specific first. Throws at
 * start-up, naming the RPC, when a rule points at a field that does not exist or cannot be bound.
 */
export function readHttpRules(services: readonly DescService[]): RestRoute[] {
  const routes: RestRoute[] = [];
  for (const service of services) {
    for (const method of service.methods) {
      if (!hasOption(method, http)) continue;
      const rule = getOption(method, http);
      for (const binding of [rule, ...rule.additionalBindings]) routes.push(toRoute(method, binding));
    }
  }
  return routes.sort((a, b) => compareSpecificity(b.template, a.template));
}

function toRoute(method: DescMethod, rule: HttpRule): RestRoute {
  const where = `${method.parent.typeName}.${method.name}`;
  const fail = (why: string): never => {
    throw new Error(`google.api.http of ${where}: ${why}`);
  };
  const { pattern } = rule;
  let verb: HttpVerb;
  let path: string;
  switch (pattern.case) {
    case "get":
    case "post":
    case "put":
    case "patch":
    case "delete":
      verb = pattern.case.toUpperCase() as HttpVerb;
      path = pattern.value;
      break;
    default:
      return fail(`unsupported pattern ${pattern.case ?? "(none)"}`);
  }
  let template: PathTemplate;
  try {
    template = parsePathTemplate(path);
  } catch (err) {
    return fail((err as Error).message);
  }
  for (const fieldPath of template.fields) {
    const field = resolveFieldPath(method.input, fieldPath);
    if (!field || (field.fieldKind !== "scalar" && field.fieldKind !== "enum")) fail(`path variable ${fieldPath} is not a singular scalar field`);
  }
  if (method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming") fail("only unary and server-streaming RPCs can have a REST path");
  let body: string | undefined;
  if (rule.body === "*") body = "*";
  else if (rule.body !== "") {
    if (!method.input.fields.some((f) => f.name === rule.body)) fail(`body field ${rule.body} does not exist`);
    body = rule.body;
  }
  if (body !== undefined && verb === "GET") fail("a GET cannot have a body");
  let responseBody: DescField | undefined;
  if (rule.responseBody !== "") {
    responseBody = method.output.fields.find((f) => f.name === rule.responseBody) ?? fail(`response_body field ${rule.responseBody} does not exist`);
  }
  return { verb, template, method, body, responseBody };
}
