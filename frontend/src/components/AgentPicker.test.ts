import { describe, expect, it } from "vitest";
import type { Agent } from "../api/client";
import { EVERYONE, placeOptions, preview, selectionBody } from "./AgentPicker";

function agent(name: string, country: string | null, labels: string[], status: Agent["status"] = "online", asn: number | null = null): Agent {
  return {
    id: `id-${name}`,
    name,
    region: null,
    labels,
    status,
    created_at: "2026-12-01T00:00:00Z",
    capabilities: [],
    location: country ? { country_code: country, city: null, lat: null, lon: null, asn, network: null, fixed: true } : null,
  } as Agent;
}

const fleet = [agent("ber", "DE", ["dc1"], "online", 3320), agent("muc", "DE", []), agent("nyc", "US", ["dc1"]), agent("off", "FR", ["dc1"], "offline")];

describe("the agent picker", () => {
  it("offers only the places of online agents, with their counts", () => {
    const online = fleet.filter((a) => a.status === "online");
    const opts = placeOptions(online).map((o) => `${o.key}:${o.value}=${o.count}`);
    expect(opts).toEqual(["country:DE=2", "country:US=1", "asn:3320=1", "label:dc1=2"]);
  });

  it("previews each place's agents without counting one twice", () => {
    const online = fleet.filter((a) => a.status === "online");
    const sel = { ...EVERYONE, mode: "places" as const, places: [{ key: "country" as const, value: "DE", limit: 1 }, { key: "label" as const, value: "dc1", limit: 2 }] };
    const view = preview(online, sel);
    // DE takes one of its two; dc1 then has the agents DE did not take.
    expect(view.rows.map((r) => r.names)).toEqual([["ber", "muc"], ["nyc"]]);
    expect(view.rows.map((r) => r.take)).toEqual([1, 1]);
    expect(view.total).toBe(2);
    expect(preview(online, { ...sel, limit: 1 }).total).toBe(1);
  });

  it("sends only the chosen way of selecting", () => {
    expect(selectionBody(EVERYONE)).toEqual({ limit: undefined });
    expect(selectionBody({ ...EVERYONE, mode: "agents", agents: ["a"], places: [{ key: "asn", value: "3320", limit: 2 }] })).toEqual({ agents: ["a"], limit: undefined });
    expect(selectionBody({ ...EVERYONE, mode: "places", places: [{ key: "asn", value: "3320", limit: 2 }], limit: 5 })).toEqual({ locations: [{ asn: 3320, limit: 2 }], limit: 5 });
  });
});
