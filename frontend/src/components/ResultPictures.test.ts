import { describe, expect, it } from "vitest";
import { differentAnswers, summaryLine } from "./ResultPictures";
import type { ResultLike } from "./ResultList";

const at = (name: string, country: string | null, status: string, extra: Partial<ResultLike> = {}): ResultLike =>
  ({ agent: { name, location: country ? { country_code: country } : null }, status, error: null, ...extra }) as ResultLike;

describe("result pictures", () => {
  it("summarises who failed and why", () => {
    const rows = [
      at("a", "DE", "ok"),
      at("b", "DE", "timeout"),
      at("c", "BR", "failed", { error: { code: "http_status", message: "" }, status_code: 403 }),
      at("d", null, "failed", { error: { code: "expectation_failed", message: "" }, assertions: [{ name: "body_regex", ok: false, detail: "" }] }),
      at("e", "US", "pending"),
    ];
    expect(summaryLine(rows)).toBe("ok 1 of 5 · failing: DE (timeout), BR (http 403), d (body_regex) · 1 waiting");
    expect(summaryLine([at("a", "DE", "ok")])).toBe("ok 1 of 1");
  });

  it("finds the agents whose DNS answers differ from most", () => {
    const a = (v: string) => ({ answers: [{ name: "x.", type: "A", ttl: 60, value: v }] });
    const rows = [at("a", "DE", "ok", a("1.1.1.1")), at("b", "US", "ok", a("1.1.1.1")), at("c", "CN", "ok", a("10.0.0.1"))];
    expect([...differentAnswers(rows)]).toEqual(["c"]);
    expect(differentAnswers(rows.slice(0, 2)).size).toBe(0);
  });
});
