// Where a check runs from: every online agent, places (country, region, network, label) with a
// limit each, or agents picked by name — with a preview of who will run it.

import { useState } from "react";
import type { Agent, Schemas } from "../api/client";

export type PlaceKey = "country" | "region" | "asn" | "label";
export interface Place {
  key: PlaceKey;
  value: string;
  limit: number;
}
export interface Selection {
  mode: "all" | "places" | "agents";
  places: Place[];
  agents: string[];
  /** Global cap; null = none. */
  limit: number | null;
}
export const EVERYONE: Selection = { mode: "all", places: [], agents: [], limit: null };

type Body = Pick<Schemas["CreateCheck"], "agents" | "locations" | "limit">;

/** The request fields for a selection (only the chosen way, as the API demands). */
export function selectionBody(s: Selection): Body {
  const limit = s.limit ?? undefined;
  if (s.mode === "agents" && s.agents.length) return { agents: s.agents, limit };
  if (s.mode === "places" && s.places.length)
    return {
      locations: s.places.map((p) => ({ [p.key]: p.key === "asn" ? Number(p.value) : p.value, limit: p.limit })),
      limit,
    };
  return { limit };
}

/** The picker's state for a selection the API gave back (a monitor's, to edit it). A place
 * entry naming a city is shown by its country, the nearest the picker offers. */
export function selectionFromBody(b: Body): Selection {
  const limit = b.limit ?? null;
  if (b.agents?.length) return { mode: "agents", places: [], agents: b.agents, limit };
  if (b.locations?.length) {
    const places: Place[] = b.locations.map((l) => {
      const key: PlaceKey = l.label ? "label" : l.asn != null ? "asn" : l.region ? "region" : "country";
      const value = key === "asn" ? String(l.asn) : String((key === "label" ? l.label : key === "region" ? l.region : l.country) ?? "");
      return { key, value, limit: l.limit ?? 1 };
    });
    return { mode: "places", places, agents: [], limit };
  }
  return { ...EVERYONE, limit };
}

const regionNames = typeof Intl.DisplayNames === "function" ? new Intl.DisplayNames(["en"], { type: "region" }) : null;
export function countryName(code?: string | null): string {
  if (!code) return "Unknown place";
  try {
    return regionNames?.of(code.toUpperCase()) ?? code;
  } catch {
    return code;
  }
}

function matches(a: Agent, p: Place): boolean {
  const loc = a.location;
  switch (p.key) {
    case "country":
      return loc?.country_code?.toUpperCase() === p.value.toUpperCase();
    case "region":
      return (a.region ?? "").toLowerCase() === p.value.toLowerCase();
    case "asn":
      return loc?.asn === Number(p.value);
    case "label":
      return a.labels.includes(p.value);
  }
}

function describe(p: Pick<Place, "key" | "value">, agents: Agent[]): string {
  switch (p.key) {
    case "country":
      return `${countryName(p.value)} (${p.value})`;
    case "region":
      return `Region ${p.value}`;
    case "asn": {
      const net = agents.find((a) => a.location?.asn === Number(p.value))?.location?.network;
      return `AS${p.value}${net ? ` ${net}` : ""}`;
    }
    case "label":
      return `Label ${p.value}`;
  }
}

/** The places online agents are in, with how many online agents each holds. */
export function placeOptions(online: Agent[]): { key: PlaceKey; value: string; count: number }[] {
  const counts = new Map<string, { key: PlaceKey; value: string; count: number }>();
  const add = (key: PlaceKey, value: string | number | null | undefined) => {
    if (value === null || value === undefined || value === "") return;
    const id = `${key}:${value}`;
    const entry = counts.get(id) ?? { key, value: String(value), count: 0 };
    entry.count++;
    counts.set(id, entry);
  };
  for (const a of online) {
    add("country", a.location?.country_code?.toUpperCase());
    add("region", a.region);
    add("asn", a.location?.asn);
    for (const l of a.labels) add("label", l);
  }
  const order: PlaceKey[] = ["country", "region", "asn", "label"];
  return [...counts.values()].sort((x, y) => order.indexOf(x.key) - order.indexOf(y.key) || y.count - x.count || x.value.localeCompare(y.value));
}

/** Who may run the check: per place, the online agents it matches and how many it takes. */
export function preview(online: Agent[], s: Selection): { rows: { place: Place; names: string[]; take: number }[]; total: number } {
  const taken = new Set<string>();
  const rows = s.places.map((place) => {
    const fresh = online.filter((a) => matches(a, place) && !taken.has(a.id));
    const take = Math.min(place.limit, fresh.length);
    // Which ones the server picks rotates; count the first `take` as used so overlapping
    // places are not counted twice.
    fresh.slice(0, take).forEach((a) => taken.add(a.id));
    return { place, names: fresh.map((a) => a.name), take };
  });
  const sum = rows.reduce((n, r) => n + r.take, 0);
  return { rows, total: s.limit ? Math.min(s.limit, sum) : sum };
}

const LABELS: Record<PlaceKey, string> = { country: "Countries", region: "Regions", asn: "Networks", label: "Labels" };

export function AgentPicker({ agents, value, onChange, admin }: { agents: Agent[]; value: Selection; onChange: (s: Selection) => void; admin: boolean }) {
  const online = agents.filter((a) => a.status === "online");
  const options = placeOptions(online);
  const [adding, setAdding] = useState("");
  const set = (patch: Partial<Selection>) => onChange({ ...value, ...patch });
  const add = () => {
    const opt = options.find((o) => `${o.key}:${o.value}` === adding);
    if (!opt || value.places.some((p) => p.key === opt.key && p.value === opt.value)) return;
    set({ places: [...value.places, { key: opt.key, value: opt.value, limit: 1 }] });
    setAdding("");
  };
  const view = preview(online, value);
  const summary =
    value.mode === "places" && value.places.length
      ? `up to ${view.total} agent${view.total === 1 ? "" : "s"} from ${value.places.length} place${value.places.length === 1 ? "" : "s"}`
      : value.mode === "agents" && value.agents.length
        ? `${value.agents.length} chosen`
        : value.limit
          ? `${Math.min(value.limit, online.length)} of ${online.length} online, spread over countries`
          : `all ${online.length} online`;

  return (
    <fieldset className="agents-pick" data-testid="agent-picker">
      <legend>Run from ({summary})</legend>
      {agents.length === 0 && <span className="muted">{admin ? "No agents yet — add one under Agents." : "No agents yet — ask an administrator to add one."}</span>}
      <div className="modes" role="radiogroup" aria-label="How to choose agents">
        {(
          [
            ["all", "All online agents"],
            ["places", "By place, network or label"],
            ["agents", "Pick agents"],
          ] as const
        ).map(([mode, label]) => (
          <label key={mode} className="inline">
            <input type="radio" name="pick-mode" checked={value.mode === mode} onChange={() => set({ mode })} /> {label}
          </label>
        ))}
        <label className="inline">
          At most
          <input
            type="number"
            aria-label="At most this many agents"
            min={1}
            max={500}
            placeholder="all"
            value={value.limit ?? ""}
            onChange={(e) => set({ limit: e.target.value === "" ? null : Math.max(1, Math.min(500, Number(e.target.value))) })}
          />
          agents
        </label>
      </div>

      {value.mode === "places" && (
        <div className="places">
          <div className="row">
            <select aria-label="Add a place" value={adding} onChange={(e) => setAdding(e.target.value)}>
              <option value="">Choose a country, region, network or label…</option>
              {(["country", "region", "asn", "label"] as const).map((key) => {
                const group = options.filter((o) => o.key === key);
                return group.length ? (
                  <optgroup key={key} label={LABELS[key]}>
                    {group.map((o) => (
                      <option key={`${o.key}:${o.value}`} value={`${o.key}:${o.value}`}>
                        {describe(o, agents)} — {o.count} online
                      </option>
                    ))}
                  </optgroup>
                ) : null;
              })}
            </select>
            <button type="button" className="secondary" onClick={add} disabled={!adding}>Add place</button>
          </div>
          {value.places.length === 0 && <p className="hint">Add places to run from; each takes up to its number of agents, spread over cities and networks.</p>}
          <ul className="place-list" data-testid="place-preview">
            {view.rows.map(({ place, names, take }, i) => (
              <li key={`${place.key}:${place.value}`} data-place={`${place.key}:${place.value}`}>
                <b>{describe(place, agents)}</b>
                <label className="inline">
                  up to
                  <input
                    type="number"
                    min={1}
                    max={500}
                    aria-label={`Agents from ${describe(place, agents)}`}
                    value={place.limit}
                    onChange={(e) => set({ places: value.places.map((p, j) => (j === i ? { ...p, limit: Math.max(1, Math.min(500, Number(e.target.value) || 1)) } : p)) })}
                  />
                </label>
                <span className={take ? "muted" : "error-text"}>
                  {take ? `${take} of ${names.join(", ")}` : "no online agent left here"}
                </span>
                <button type="button" className="link" aria-label={`Remove ${describe(place, agents)}`} onClick={() => set({ places: value.places.filter((_, j) => j !== i) })}>
                  remove
                </button>
              </li>
            ))}
          </ul>
        </div>
      )}

      {value.mode === "agents" && (
        <div className="chips">
          {agents.map((a) => (
            <label key={a.id} className={`chip ${a.status}`}>
              <input
                type="checkbox"
                checked={value.agents.includes(a.id)}
                onChange={(e) => set({ agents: e.target.checked ? [...value.agents, a.id] : value.agents.filter((c) => c !== a.id) })}
              />
              {a.name} <small>{a.status}{a.location?.country_code ? ` · ${a.location.country_code}` : ""}</small>
            </label>
          ))}
        </div>
      )}
    </fieldset>
  );
}
