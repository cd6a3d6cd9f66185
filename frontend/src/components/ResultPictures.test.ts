import { describe, expect, it } from "vitest";
import { differentAnswers, divergence, hopMarkers, summaryLine, traceRoutes } from "./ResultPictures";
import type { ResultLike } from "../api/client";

const at = (name: string, country: string | null, status: string, extra: Partial<ResultLike> = {}): ResultLike =>
  ({ agent: { name, location: country ? { country_code: country } : null }, status, error: null, ...extra }) as ResultLike;

describe("result pictures", () => {
  it("summarises who failed and why", () => {
    const rows = [
      at("a", "DE", "ok"),
      at("b", "DE", "timeout"),
      at("c", "BR", "failed", { type: "http", error: { code: "http_status", message: "" }, status_code: 403 } as Partial<ResultLike>),
      at("d", null, "failed", { type: "tcp", error: { code: "expectation_failed", message: "" }, assertions: [{ name: "body_regex", ok: false, detail: "" }] } as Partial<ResultLike>),
      at("e", "US", "pending"),
    ];
    expect(summaryLine(rows)).toBe("ok 1 of 5 · failing: DE (timeout), BR (http 403), d (body_regex) · 1 waiting");
    expect(summaryLine([at("a", "DE", "ok")])).toBe("ok 1 of 1");
  });

  it("finds the agents whose DNS answers differ from most", () => {
    const a = (v: string) => ({ type: "dns" as const, rcode: "NOERROR", answers: [{ name: "x.", type: "A", ttl: 60, value: v }] });
    const rows = [at("a", "DE", "ok", a("1.1.1.1")), at("b", "US", "ok", a("1.1.1.1")), at("c", "CN", "ok", a("10.0.0.1"))];
    expect([...differentAnswers(rows)]).toEqual(["c"]);
    expect(differentAnswers(rows.slice(0, 2)).size).toBe(0);
  });
});

describe("trace pictures", () => {
  const hop = (ttl: number, address: string | null, geo?: { lat: number; lon: number }) => ({ ttl, address, geo: geo ?? null });
  it("finds the hop where agents' paths part", () => {
    const a = [hop(1, "10.0.0.1"), hop(2, "192.0.2.1"), hop(3, "198.51.100.9")];
    const b = [hop(1, "10.0.0.1"), hop(2, null), hop(3, "203.0.113.7")];
    expect(divergence([a, a])).toBeNull();
    expect(divergence([a, b])).toBe(3);
    expect(divergence([a, [hop(1, "10.9.9.9")]])).toBe(1);
  });
  it("draws a route through the hops with a place, to a target that answered", () => {
    const row = (reached: boolean) =>
      ({
        agent: { id: "1", name: "fra", location: { lat: 50, lon: 8 } },
        status: reached ? "ok" : "failed",
        type: "traceroute",
        reached,
        hops: [hop(1, "10.0.0.1"), hop(2, "192.0.2.1", { lat: 52, lon: 13 })],
      }) as never;
    const target = { lat: 40, lon: -74, label: "t", kind: "address" as const };
    expect(traceRoutes([row(true)], target)[0].points).toEqual([[8, 50], [13, 52], [-74, 40]]);
    expect(traceRoutes([row(false)], target)[0].points).toEqual([[8, 50], [13, 52]]);
  });
  it("marks each placed router once, named by its address, network and place", () => {
    const placed = { ttl: 2, address: "192.0.2.1", asn: 15169, network: "Google LLC", geo: { lat: 52, lon: 13, city: "Berlin", country_code: "DE" } };
    const row = (name: string) => ({ agent: { name }, status: "ok", type: "mtr", hops: [hop(1, "10.0.0.1"), placed, hop(3, null)] }) as never;
    const markers = hopMarkers([row("a"), row("b")]);
    expect(markers).toEqual([{ lat: 52, lon: 13, kind: "hop", label: "hop 2 · 192.0.2.1 · AS15169 Google LLC · Berlin DE" }]);
    expect(hopMarkers([at("ping", "DE", "ok")])).toEqual([]);
  });
});
