// Pictures of a check's results: a one-line summary, a map of the agents coloured by status
// with the target, HTTP timing bars, ping RTT charts, and DNS answers compared across agents.

import { useEffect, useState } from "react";
import { api, must, type Schemas } from "../api/client";
import { countryName } from "./AgentPicker";
import type { ResultLike } from "../api/client";
import { statusClass } from "./results";
import { WorldMap, type Marker, type Route } from "./WorldMap";

/** Why a result is not ok, in a few words: `timeout`, `http 403`, `refused`. */
function reason(r: ResultLike): string {
  if (r.status === "timeout" || r.status === "offline" || r.status === "pending") return r.status;
  if (r.error?.code === "http_status" && r.type === "http" && r.status_code) return `http ${r.status_code}`;
  if (r.error?.code === "expectation_failed") return (r.type && r.assertions?.find((a) => !a.ok)?.name) || "expectation";
  return r.error?.code ?? r.status;
}

/** "ok 7 of 9 · failing: DE (timeout), BR (http 403)". */
export function summaryLine(rows: ResultLike[]): string {
  const done = rows.filter((r) => r.status !== "pending");
  const ok = rows.filter((r) => r.status === "ok").length;
  const failing = done.filter((r) => r.status !== "ok").map((r) => `${r.agent.location?.country_code ?? r.agent.name} (${reason(r)})`);
  const pending = rows.length - done.length;
  return [`ok ${ok} of ${rows.length}`, failing.length ? `failing: ${failing.join(", ")}` : null, pending ? `${pending} waiting` : null]
    .filter(Boolean)
    .join(" · ");
}

/** The host a check's target names (the URL's host for HTTP). */
function targetHost(type: string, target: string): string {
  if (type !== "http") return target;
  try {
    return new URL(target).hostname.replace(/^\[|\]$/g, "");
  } catch {
    return target;
  }
}

type Hop = Schemas["TraceHop"] | Schemas["MtrHop"];

/** A trace's hops (none for other results). */
function hopsOf(r: ResultLike): Hop[] {
  return r.type === "traceroute" || r.type === "mtr" ? r.hops : [];
}

/** Each trace's way: its agent, then every hop with a known place, then the target. */
export function traceRoutes(rows: ResultLike[], target?: Marker): Route[] {
  return rows.flatMap((r) => {
    if (r.type !== "traceroute" && r.type !== "mtr") return [];
    const hops: Hop[] = r.hops;
    const l = r.agent.location as { lat?: number | null; lon?: number | null } | null | undefined;
    const points: [number, number][] = [];
    if (l?.lat != null && l.lon != null) points.push([l.lon, l.lat]);
    for (const h of hops) if (h.geo?.lat != null && h.geo.lon != null) points.push([h.geo.lon, h.geo.lat]);
    if (target && r.reached) points.push([target.lon, target.lat]);
    return points.length >= 2 ? [{ points, label: `${r.agent.name}: ${points.length} places on the way`, status: statusClass(r.status) }] : [];
  });
}

type HopLike = { ttl: number; address?: string | null };

/** A marker for every router with a known place, once per address however many agents' paths
 * pass it: "hop 4 · 72.14.1.1 · AS15169 Google LLC · Frankfurt DE". */
export function hopMarkers(rows: ResultLike[]): Marker[] {
  const seen = new Map<string, Marker>();
  for (const r of rows) {
    for (const h of hopsOf(r)) {
      const g = h.geo;
      if (!h.address || g?.lat == null || g.lon == null || seen.has(h.address)) continue;
      const network = h.asn ? `AS${h.asn}${h.network ? ` ${h.network}` : ""}` : h.network;
      const place = [g.city, g.country_code].filter(Boolean).join(" ");
      const label = [`hop ${h.ttl}`, h.address, network, place].filter(Boolean).join(" · ");
      seen.set(h.address, { lat: g.lat, lon: g.lon, label, kind: "hop" });
    }
  }
  return [...seen.values()];
}

/** Where agents' paths part: the first TTL at which two agents that both heard an answer
 * heard different addresses (`null` while they agree or only one answered). */
export function divergence(paths: HopLike[][]): number | null {
  const longest = Math.max(0, ...paths.map((p) => p.length));
  for (let i = 0; i < longest; i++) {
    const seen = new Set(paths.map((p) => p[i]?.address).filter((a): a is string => !!a));
    if (seen.size > 1) return i + 1;
  }
  return null;
}

/** Agents' paths side by side, TTL by TTL, from the point where they part. */
export function PathComparison({ rows }: { rows: ResultLike[] }) {
  const traced = rows.filter((r) => hopsOf(r).length > 0);
  if (traced.length < 2) return null;
  const paths = traced.map(hopsOf);
  const at = divergence(paths);
  const longest = Math.max(...paths.map((p) => p.length));
  return (
    <div className="table-scroll" tabIndex={0}>
      <table className="mini path-compare" data-testid="path-compare">
        <caption>{at === null ? "The paths agree where they overlap." : `The paths part at hop ${at}.`}</caption>
        <thead>
          <tr><th>TTL</th>{traced.map((r) => <th key={r.agent.id ?? r.agent.name}>{r.agent.name}</th>)}</tr>
        </thead>
        <tbody>
          {Array.from({ length: longest }, (_, i) => (
            <tr key={i} className={at !== null && i + 1 >= at ? "differs" : undefined}>
              <td>{i + 1}</td>
              {paths.map((p, j) => (
                <td key={j}>{p[i] ? (p[i].address ? <code>{p[i].address}</code> : "*") : ""}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function ResultMap({ type, target, rows, lookup = true }: { type: string; target: string; rows: ResultLike[]; lookup?: boolean }) {
  const [where, setWhere] = useState<Marker[]>([]);
  useEffect(() => {
    if (!lookup) return;
    must(api.GET("/api/v1/lookup/{host}", { params: { path: { host: targetHost(type, target) } } }))
      .then((l) =>
        setWhere(
          l.addresses.flatMap((a) => (a.geo ? [{ lat: a.geo.lat, lon: a.geo.lon, label: `target ${a.ip} — ${a.geo.city ?? ""} ${a.geo.country_code ?? ""}`, kind: "address" as const }] : [])),
        ),
      )
      .catch(() => setWhere([]));
  }, [type, target, lookup]);
  const agents: Marker[] = rows.flatMap((r) => {
    const l = r.agent.location as { lat?: number | null; lon?: number | null; city?: string | null; country_code?: string | null } | null | undefined;
    return l?.lat != null && l.lon != null
      ? [{ lat: l.lat, lon: l.lon, label: `${r.agent.name} — ${r.status}${l.city ? `, ${l.city}` : ""}`, kind: "agent" as const, status: statusClass(r.status) }]
      : [];
  });
  const routes = traceRoutes(rows, where[0]);
  const hops = hopMarkers(rows);
  if (agents.length === 0 && where.length === 0) return null;
  return (
    <figure className="result-map">
      <WorldMap
        markers={[...hops, ...agents, ...where]}
        routes={routes}
        label={`Map: ${agents.length} agents by status${where.length ? " and the target" : ""}${routes.length ? `, ${routes.length} paths through the hops with a known place` : ""}`}
      />
      <figcaption className="legend">
        <span className="marker-key agent ok" /> ok <span className="marker-key agent bad" /> failed <span className="marker-key agent warn" /> timeout{" "}
        <span className="marker-key address" /> target
        {hops.length > 0 && (
          <>
            {" "}
            <span className="marker-key hop" /> router
          </>
        )}
      </figcaption>
    </figure>
  );
}

const PHASES = ["dns", "connect", "tls", "first_byte", "download"] as const;

/** HTTP timings of every agent as stacked bars on one scale. */
export function TimingBars({ rows }: { rows: ResultLike[] }) {
  const timed = rows.flatMap((r) => (r.type === "http" && r.timings_ms?.total ? [{ agent: r.agent, timings_ms: r.timings_ms }] : []));
  if (timed.length === 0) return null;
  const max = Math.max(...timed.map((r) => r.timings_ms.total ?? 0));
  return (
    <figure className="timing-bars" aria-label="HTTP timings per agent">
      <figcaption className="legend">
        {PHASES.map((p) => (
          <span key={p}>
            <span className={`swatch ${p}`} /> {p.replace("_", " ")}
          </span>
        ))}
      </figcaption>
      {timed.map((r) => (
        <div key={r.agent.id ?? r.agent.name} className="bar-row" data-testid="timing-bar">
          <span className="bar-label">{r.agent.name}</span>
          <span className="bar" role="img" aria-label={`${r.agent.name}: ${PHASES.map((p) => `${p} ${r.timings_ms?.[p]?.toFixed(1) ?? 0} ms`).join(", ")}`}>
            {PHASES.map((p) => {
              const v = r.timings_ms?.[p] ?? 0;
              return v > 0 ? <span key={p} className={`seg ${p}`} style={{ width: `${(100 * v) / max}%` }} title={`${p} ${v.toFixed(2)} ms`} /> : null;
            })}
          </span>
          <span className="bar-total">{(r.timings_ms.total ?? 0).toFixed(1)} ms</span>
        </div>
      ))}
    </figure>
  );
}

/** Each ping reply's RTT as a small bar chart (missing replies leave a gap). */
export function RttChart({ r }: { r: Schemas["PingResult"] }) {
  if (!r.sent) return null;
  const max = Math.max(1, ...r.replies.map((p) => p.rtt_ms));
  const w = 8;
  return (
    <svg className="rtt-chart" width={r.sent * (w + 2)} height={24} role="img" aria-label={`RTTs: ${r.replies.map((p) => `${p.rtt_ms.toFixed(2)} ms`).join(", ") || "no replies"}`} data-testid="rtt-chart">
      {Array.from({ length: r.sent }, (_, seq) => {
        const p = r.replies.find((x) => x.seq === seq);
        const h = p ? Math.max(2, (22 * p.rtt_ms) / max) : 0;
        return p ? <rect key={seq} x={seq * (w + 2)} y={24 - h} width={w} height={h} className="rtt" /> : <rect key={seq} x={seq * (w + 2)} y={22} width={w} height={2} className="lost" />;
      })}
    </svg>
  );
}

/** The answer set of a DNS result, as one comparable string. */
function answerSet(r: ResultLike): string {
  return (r.type === "dns" ? r.answers : [])
    .map((a) => `${a.type} ${a.value}`)
    .sort()
    .join(" | ");
}

/** Which agents got a different DNS answer than most: their names. */
export function differentAnswers(rows: ResultLike[]): Set<string> {
  const answered = rows.filter((r) => r.status !== "pending" && r.type === "dns");
  const counts = new Map<string, number>();
  for (const r of answered) counts.set(answerSet(r), (counts.get(answerSet(r)) ?? 0) + 1);
  const common = [...counts.entries()].sort((a, b) => b[1] - a[1])[0]?.[0];
  return new Set(counts.size > 1 ? answered.filter((r) => answerSet(r) !== common).map((r) => r.agent.name) : []);
}

export function DnsComparison({ rows }: { rows: ResultLike[] }) {
  const answered = rows.filter((r) => r.status !== "pending" && r.type === "dns");
  if (answered.length < 2) return null;
  const odd = differentAnswers(answered);
  return (
    <table className="list dns-compare" data-testid="dns-compare">
      <caption>{odd.size ? `${odd.size} agent${odd.size === 1 ? "" : "s"} got a different answer` : "Every agent got the same answer"}</caption>
      <thead>
        <tr><th>Agent</th><th>Country</th><th>rcode</th><th>Answers</th></tr>
      </thead>
      <tbody>
        {answered.map((r) => (
          <tr key={r.agent.name} className={odd.has(r.agent.name) ? "differs" : ""} data-differs={odd.has(r.agent.name) || undefined}>
            <td>{r.agent.name}</td>
            <td>{countryName(r.agent.location?.country_code)}</td>
            <td>{(r.type === "dns" && r.rcode) || "—"}</td>
            <td><code>{answerSet(r) || "none"}</code>{odd.has(r.agent.name) && <span className="sr-only"> (differs)</span>}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
