/**
 * How free text becomes searchable tokens, the same way for documents and queries, so that the
 * MariaDB and OpenSearch indexes match alike: NFKC, lowercase; runs of letters, digits and marks are
 * words (anything else separates them); Chinese, Japanese and Korean runs, written without spaces,
 * become overlapping bigrams ("機械翻訳" → 機械 械翻 翻訳), so that any substring of two or more
 * characters is a phrase of bigrams. SQLite's trigram index matches substrings by itself and uses
 * each term's literal text instead.
 */

const WORD_RUN = /[\p{L}\p{N}\p{M}]+/gu;
const CJK = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}\u3005\u30fc]/u;
const MARK = /\p{M}/u;
const EDGE_PUNCTUATION = /^[^\p{L}\p{N}\p{M}]+|[^\p{L}\p{N}\p{M}]+$/gu;

/** Longest word kept, in characters; longer words are cut (alike in documents and queries). */
export const MAX_WORD_LENGTH = 100;
/** Most terms one query may hold. */
export const MAX_TERMS = 32;

/** The tokens of a text, in order. */
export function tokenize(text: string): string[] {
  const tokens: string[] = [];
  for (const [run] of text.normalize("NFKC").toLowerCase().matchAll(WORD_RUN)) {
    let part: string[] = [];
    let cjk = false;
    const flush = () => {
      if (part.length === 0) return;
      if (!cjk) tokens.push(part.slice(0, MAX_WORD_LENGTH).join(""));
      else if (part.length === 1) tokens.push(part[0]!);
      else for (let i = 0; i + 1 < part.length; i++) tokens.push(part[i]! + part[i + 1]!);
      part = [];
    };
    for (const ch of run) {
      // A combining mark stays with the character before it, whatever its script.
      const isCjk: boolean = part.length > 0 && MARK.test(ch) ? cjk : CJK.test(ch);
      if (part.length > 0 && isCjk !== cjk) flush();
      cjk = isCjk;
      if (cjk || part.length === 0 || !MARK.test(ch)) part.push(ch);
      else part[part.length - 1] += ch;
    }
    flush();
  }
  return tokens;
}

/** One term of a query. */
export interface TextTerm {
  /** The term as typed, without the punctuation around it: what SQLite's trigram index looks for. */
  readonly literal: string;
  /** Its tokens, matched as a phrase (adjacent, in order) by the token indexes. */
  readonly tokens: readonly string[];
  /** A single CJK character: inside bigrams, so token indexes look for it as a substring instead. */
  readonly singleCjk: boolean;
}

/**
 * Splits a query into terms: "double-quoted" phrases and space-separated words. Terms without
 * letters or digits are left out, so a text of punctuation has no terms (and matches nothing).
 */
export function parseTerms(text: string): TextTerm[] {
  const terms: TextTerm[] = [];
  for (const match of text.matchAll(/"([^"]*)"|(\S+)/gu)) {
    const raw = (match[1] ?? match[2] ?? "").split(/\s+/u).filter(Boolean).join(" ");
    const literal = raw.replace(EDGE_PUNCTUATION, "");
    const tokens = tokenize(literal);
    if (tokens.length === 0) continue;
    const only = tokens.length === 1 ? [...tokens[0]!] : [];
    terms.push({ literal, tokens, singleCjk: only.length === 1 && CJK.test(only[0]!) });
  }
  return terms;
}
