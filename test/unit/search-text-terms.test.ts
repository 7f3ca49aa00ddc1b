import { spellToken } from "../../server/backends/search/sql";
import { parseTerms, tokenize } from "../../server/backends/search/text-terms";

describe("search text tokens", () => {
  it("lowercase words, split at anything but letters, digits and marks", () => {
    expect(tokenize("Disk FULL: /var/log (x-ray) don't ÉTÉ")).toEqual(["disk", "full", "var", "log", "x", "ray", "don", "t", "été"]);
    expect(tokenize("ＧＰＴ４")).toEqual(["gpt4"]);
    expect(tokenize("   ")).toEqual([]);
  });

  it("turn CJK runs into overlapping bigrams, apart from the words around them", () => {
    expect(tokenize("機械翻訳の品質")).toEqual(["機械", "械翻", "翻訳", "訳の", "の品", "品質"]);
    expect(tokenize("GPT翻訳 書")).toEqual(["gpt", "翻訳", "書"]);
    expect(tokenize("데이터 연결")).toEqual(["데이", "이터", "연결"]);
  });

  it("cut very long words alike in documents and queries", () => {
    const long = "a".repeat(300);
    expect(tokenize(long)).toEqual(["a".repeat(100)]);
    expect(parseTerms(long)[0]!.tokens).toEqual(tokenize(long));
  });

  it("read a query as terms and quoted phrases; punctuation alone is no term", () => {
    expect(parseTerms(`disk "full  volume" -- ; 翻`).map((t) => [t.literal, t.tokens, t.singleCjk])).toEqual([
      ["disk", ["disk"], false],
      ["full volume", ["full", "volume"], false],
      ["翻", ["翻"], true],
    ]);
    expect(parseTerms("Robert');")[0]!.literal).toBe("Robert");
    expect(parseTerms("*%_ '\"")).toEqual([]);
  });

  it("spell tokens for InnoDB one to one, within its token sizes, clear of its stopwords", () => {
    const bounds = { min: 3, max: 84 };
    expect(spellToken("the", bounds)).toBe("ftthe");
    expect(spellToken("a", bounds)).toBe("fta");
    expect(spellToken("翻訳", bounds)).toBe("ft_007ffb_008a33");
    expect(spellToken("a", { min: 5, max: 84 })).toBe("fta__");
    expect(spellToken("x".repeat(100), bounds)).toHaveLength(84);
    const words = ["ab", "a_", "a b", "a\u00e9", "ae\u0301", "_00006", "ft"];
    const spelled = words.map((w) => spellToken(w, bounds));
    expect(new Set(spelled).size).toBe(words.length);
    for (const s of spelled) expect(s).toMatch(/^ft[a-z0-9_]+$/);
  });
});
