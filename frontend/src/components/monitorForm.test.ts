import { describe, expect, it } from "vitest";
import { EVERYONE, selectionBody, selectionFromBody, type Selection } from "./AgentPicker";
import { buildOptions, optionsToValues, type Kind } from "./CheckOptions";
import { columns } from "./latencyColumns";

describe("editing a monitor restores its form", () => {
  const cases: [Kind, Record<string, unknown>][] = [
    ["ping", { count: 5, interval_ms: 200, expect: { max_loss_pct: 10 } }],
    ["tcp", { port: 8443, ip_version: 6, timeout_ms: 900 }],
    ["http", { method: "HEAD", follow_redirects: true, verify_tls: false, headers: { "Accept-Language": "de" }, expect: { status: ["2xx", "301"], header: { "content-type": "^text/html" }, body_contains: "ok" } }],
    ["dns", { record_type: "MX", resolver: "127.0.0.1:53", protocol: "tcp", expect: { rcode: "NOERROR", min_answers: 2 } }],
  ];
  for (const [kind, options] of cases)
    it(`${kind} options survive form values and back`, () => {
      const back = buildOptions(kind, optionsToValues(kind, options));
      expect(back).toMatchObject(options);
    });

  it("selections survive the picker and back", () => {
    const selections: Selection[] = [
      { mode: "agents", places: [], agents: ["a", "b"], limit: null },
      { mode: "places", places: [{ key: "country", value: "DE", limit: 2 }, { key: "asn", value: "64500", limit: 1 }, { key: "label", value: "dc1", limit: 3 }], agents: [], limit: 4 },
      { ...EVERYONE, limit: 3 },
      EVERYONE,
    ];
    for (const s of selections) expect(selectionFromBody(selectionBody(s))).toEqual(s);
  });
});

describe("latency chart columns", () => {
  it("aligns agents on run times, with gaps where a run failed or is missing", () => {
    const at = (s: number) => new Date(Date.UTC(2026, 11, 1, 12, 0, s)).toISOString();
    const [xs, a, b] = columns([
      { agent: { id: "1", name: "a" }, points: [{ at: at(0), status: "ok", value_ms: 5 }, { at: at(60), status: "failed", value_ms: null }] },
      { agent: { id: "2", name: "b" }, points: [{ at: at(60), status: "ok", value_ms: 7 }, { at: at(120), status: "ok", value_ms: 8 }] },
    ]);
    expect(xs.map((x) => x - xs[0])).toEqual([0, 60, 120]);
    expect(a).toEqual([5, null, null]);
    expect(b).toEqual([null, 7, 8]);
  });
});
