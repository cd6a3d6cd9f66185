// A public status page at /status/{slug}: no login. Overall state, each monitor's 90 daily
// bars and the places that see it up or down now, incidents and maintenance.

import { useEffect, useState } from "react";
import { useParams } from "react-router";
import { errorFrom } from "../api/auth";
import type { Schemas } from "../api/client";

type Page = Schemas["PublicPage"];
type State = Schemas["StatusState"];

const HEADLINE: Record<State, string> = {
  up: "All systems operational",
  degraded: "Partial outage",
  down: "Major outage",
  maintenance: "Under maintenance",
  unknown: "No data yet",
};
const STATE_WORD: Record<State, string> = { up: "Up", degraded: "Degraded", down: "Down", maintenance: "Maintenance", unknown: "No data" };
const STATE_CLASS: Record<State, string> = { up: "ok", degraded: "warn", down: "bad", maintenance: "info", unknown: "muted" };

function place(p: { country_code?: string | null; city?: string | null }): string {
  return [p.city, p.country_code].filter(Boolean).join(" ") || "Unknown place";
}

export function pct(v?: number | null): string {
  return v === null || v === undefined ? "—" : `${v === 100 ? "100" : v.toFixed(2)}%`;
}

/** The bar's colour class from the day's uptime. */
export function barClass(day: Schemas["StatusDay"]): string {
  if (day.uptime === null || day.uptime === undefined) return "none";
  if (day.uptime >= 99.9) return "ok";
  if (day.uptime >= 95) return "warn";
  return "bad";
}

function Bars({ m }: { m: Schemas["PublicMonitor"] }) {
  const days = m.days;
  const bad = days.filter((d) => d.uptime !== null && d.uptime !== undefined && d.uptime < 99.9).length;
  return (
    <div className="status-bars" role="img" aria-label={`${m.display_name}: 90 days, ${bad} with downtime, uptime ${pct(m.uptime["90d"])}`}>
      {days.map((d) => (
        <span key={d.date} className={`bar ${barClass(d)}`} title={`${d.date}: ${d.uptime === null || d.uptime === undefined ? "no runs" : `${pct(d.uptime)} uptime`}${d.incidents ? `, ${d.incidents} incident${d.incidents > 1 ? "s" : ""}` : ""}`} data-testid="bar" />
      ))}
    </div>
  );
}

function MonitorRow({ m }: { m: Schemas["PublicMonitor"] }) {
  return (
    <li className="status-monitor" data-testid="status-monitor">
      <div className="result-head">
        <b>{m.display_name}</b>
        {m.target && <span className="muted">{m.target}</span>}
        <span className={`pill ${STATE_CLASS[m.state]}`} data-testid="status-state">{STATE_WORD[m.state]}</span>
        <span className="muted">
          24 h {pct(m.uptime["24h"])} · 7 d {pct(m.uptime["7d"])} · 30 d {pct(m.uptime["30d"])} · 90 d {pct(m.uptime["90d"])}
        </span>
      </div>
      <Bars m={m} />
      <div className="bar-legend muted" aria-hidden="true"><span>90 days ago</span><span>today</span></div>
      {m.places.length > 0 && (
        <ul className="places" aria-label={`Where ${m.display_name} is checked from`} data-testid="places">
          {m.places.map((p) => (
            <li key={place(p)} className={p.state === "down" ? "bad" : "ok"}>
              {place(p)}: {p.state === "down" ? "down" : "up"}
            </li>
          ))}
        </ul>
      )}
    </li>
  );
}

export function StatusPublicPage() {
  const { slug = "" } = useParams();
  const [page, setPage] = useState<Page | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    const load = () =>
      fetch(`/api/v1/status/${encodeURIComponent(slug)}`)
        .then(async (resp) => {
          if (!resp.ok) throw await errorFrom(resp);
          setPage(await resp.json());
          setError(null);
        })
        .catch((err) => setError(err?.status === 404 ? "There is no status page here." : "The server cannot be reached."));
    void load();
    const t = setInterval(() => void load(), 30_000);
    return () => clearInterval(t);
  }, [slug]);

  useEffect(() => {
    document.title = page ? `${page.title} — status` : "Status";
  }, [page]);

  const open = page?.incidents.filter((i) => !i.resolved_at) ?? [];
  const past = page?.incidents.filter((i) => i.resolved_at) ?? [];
  return (
    <div className="shell">
      <header className="topbar">
        <span className="brand">
          <span className="dot" aria-hidden="true" /> {page?.title ?? "Status"}
        </span>
      </header>
      <main id="main">
        {error && (
          <section className="card">
            <h1>Status</h1>
            <p className="error-text">{error}</p>
          </section>
        )}
        {!error && !page && <p className="muted">Loading…</p>}
        {page && (
          <>
            <section className="card">
              <h1>{page.title}</h1>
              {page.description && <p>{page.description}</p>}
              <p className={`status-headline ${STATE_CLASS[page.state]}`} data-testid="overall" role="status">
                {HEADLINE[page.state]}
              </p>
              <p className="muted">Updated {new Date(page.updated_at).toLocaleString()}</p>
            </section>
            {page.maintenance.length > 0 && (
              <section className="card" aria-labelledby="maint-h">
                <h2 id="maint-h">Maintenance</h2>
                <ul className="results">
                  {page.maintenance.map((w, i) => (
                    <li key={i} className="result warn">
                      {new Date(w.starts_at) <= new Date() ? "Now" : "Planned"}: {new Date(w.starts_at).toLocaleString()} – {new Date(w.ends_at).toLocaleString()}
                      {w.note && ` · ${w.note}`} · {w.monitors.join(", ")}
                    </li>
                  ))}
                </ul>
              </section>
            )}
            {open.length > 0 && (
              <section className="card" aria-labelledby="open-h">
                <h2 id="open-h">Ongoing incidents</h2>
                <Incidents list={open} />
              </section>
            )}
            {page.groups.map((g) => (
              <section className="card" key={g.name} aria-label={g.name}>
                <h2>{g.name}</h2>
                <ul className="status-list">
                  {g.monitors.map((m) => <MonitorRow key={m.display_name} m={m} />)}
                </ul>
              </section>
            ))}
            <section className="card" aria-labelledby="past-h">
              <h2 id="past-h">Past incidents (30 days)</h2>
              {past.length === 0 ? <p className="empty">None.</p> : <Incidents list={past} />}
            </section>
          </>
        )}
      </main>
      <footer>Status by netcheck</footer>
    </div>
  );
}

function Incidents({ list }: { list: Schemas["PublicIncident"][] }) {
  return (
    <ul className="results" data-testid="incidents">
      {list.map((i) => (
        <li key={i.id} className={`result ${i.resolved_at ? "ok" : "bad"}`}>
          <b>{i.monitor}</b> · {i.resolved_at ? "resolved" : "ongoing"} · from {new Date(i.started_at).toLocaleString()}
          {i.resolved_at && ` to ${new Date(i.resolved_at).toLocaleString()}`}
          {i.places.length > 0 && ` · failing from ${i.places.map(place).join(", ")}`}
        </li>
      ))}
    </ul>
  );
}
