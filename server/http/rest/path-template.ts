/**
 * Path templates of `google.api.http` rules:
 *
 *     Template = "/" [ Segments ] [ ":" Verb ]
 *     Segment  = "*" | "**" | LITERAL | "{" FieldPath [ "=" Segments ] "}"
 *
 * `{field}` is `{field=*}`: one segment. `**` matches the rest of the path and may only come last.
 */

type Segment = { readonly kind: "literal"; readonly value: string } | { readonly kind: "one" } | { readonly kind: "rest" };

/** A variable: the field path it sets and the segments it spans (`end` is exclusive; -1 = to the end). */
interface Variable {
  readonly fieldPath: string;
  readonly start: number;
  readonly end: number;
}

export interface PathTemplate {
  /** The template as written, e.g. `/api/v1/translation/sessions/{session_id}`. */
  readonly source: string;
  /** The template with every variable reduced to `{field}` (the OpenAPI form). */
  readonly openApiPath: string;
  /** Field paths bound by the path, in order. */
  readonly fields: readonly string[];
  /**
   * Orders matches of one request: literal segments beat variables, one-segment variables beat `**`,
   * position by position from the left.
   */
  readonly specificity: readonly number[];
  /** The variables' values when `path` (percent-encoded, no query) matches; undefined otherwise. */
  match(path: string): Map<string, string> | undefined;
}

/** Parses a template, throwing an error that names the template when it is malformed. */
export function parsePathTemplate(source: string): PathTemplate {
  const fail = (why: string): never => {
    throw new Error(`bad path template ${JSON.stringify(source)}: ${why}`);
  };
  if (!source.startsWith("/")) fail("must start with /");
  let body = source.slice(1);
  let verb: string | undefined;
  const lastSlash = body.lastIndexOf("/");
  const colon = body.indexOf(":", lastSlash + 1);
  if (colon >= 0 && !body.slice(lastSlash + 1, colon).includes("{") && body.indexOf("}", colon) < 0) {
    verb = body.slice(colon + 1);
    body = body.slice(0, colon);
    if (verb === "") fail("empty verb");
  }

  const segments: Segment[] = [];
  const variables: Variable[] = [];
  const openApi: string[] = [];
  const pushSegment = (text: string) => {
    if (text === "") fail("empty segment");
    if (segments.at(-1)?.kind === "rest") fail("** must be the last segment");
    if (text === "**") segments.push({ kind: "rest" });
    else if (text === "*") segments.push({ kind: "one" });
    else if (/[{}=*]/.test(text)) fail(`bad segment ${JSON.stringify(text)}`);
    else segments.push({ kind: "literal", value: text });
  };

  let i = 0;
  while (i < body.length) {
    if (body[i] === "{") {
      const close = body.indexOf("}", i);
      if (close < 0) fail("unclosed {");
      const inner = body.slice(i + 1, close);
      const eq = inner.indexOf("=");
      const fieldPath = eq < 0 ? inner : inner.slice(0, eq);
      if (!/^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$/.test(fieldPath)) fail(`bad field path ${JSON.stringify(fieldPath)}`);
      if (variables.some((v) => v.fieldPath === fieldPath)) fail(`${fieldPath} bound twice`);
      const start = segments.length;
      for (const part of (eq < 0 ? "*" : inner.slice(eq + 1)).split("/")) pushSegment(part);
      variables.push({ fieldPath, start, end: segments.at(-1)?.kind === "rest" ? -1 : segments.length });
      openApi.push(`{${fieldPath}}`);
      i = close + 1;
    } else {
      const slash = body.indexOf("/", i);
      const end = slash < 0 ? body.length : slash;
      const text = body.slice(i, end);
      pushSegment(text);
      openApi.push(text);
      i = end;
    }
    if (i < body.length) {
      if (body[i] !== "/") fail(`unexpected ${JSON.stringify(body[i])}`);
      i++;
      if (i === body.length) fail("trailing /");
    }
  }

  const suffix = verb === undefined ? "" : `:${verb}`;
  return {
    source,
    openApiPath: `/${openApi.join("/")}${suffix}`,
    fields: variables.map((v) => v.fieldPath),
    specificity: segments.map((s) => (s.kind === "literal" ? 2 : s.kind === "one" ? 1 : 0)),
    match(path) {
      let rest = path;
      if (verb !== undefined) {
        if (!rest.endsWith(suffix)) return undefined;
        rest = rest.slice(0, -suffix.length);
      }
      // A trailing slash is tolerated ("/sessions/" is "/sessions").
      if (rest.length > 1 && rest.endsWith("/")) rest = rest.slice(0, -1);
      const parts = rest === "/" || rest === "" ? [] : rest.slice(1).split("/");
      const decoded: string[] = [];
      for (const part of parts) {
        try {
          decoded.push(decodeURIComponent(part));
        } catch {
          return undefined;
        }
      }
      const last = segments.at(-1);
      if (last?.kind === "rest" ? decoded.length < segments.length - 1 : decoded.length !== segments.length) return undefined;
      for (const [n, segment] of segments.entries()) {
        if (segment.kind === "literal" && decoded[n] !== segment.value) return undefined;
        if (segment.kind === "one" && decoded[n] === "") return undefined;
      }
      const values = new Map<string, string>();
      for (const v of variables) values.set(v.fieldPath, decoded.slice(v.start, v.end < 0 ? undefined : v.end).join("/"));
      return values;
    },
  };
}

/** Positive when `a` is more specific than `b`. */
export function compareSpecificity(a: PathTemplate, b: PathTemplate): number {
  const n = Math.max(a.specificity.length, b.specificity.length);
  for (let i = 0; i < n; i++) {
    const d = (a.specificity[i] ?? -1) - (b.specificity[i] ?? -1);
    if (d !== 0) return d;
  }
  return 0;
}
