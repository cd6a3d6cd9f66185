// The results of a check, grouped by the agents' country (countries by name, unplaced agents
// last). Used by the result page and by shared links.

import type { ResultLike } from "../api/client";
import { countryName } from "./AgentPicker";
import { Details, Summary, statusClass } from "./results";

function byCountry<R extends ResultLike>(rows: R[]): { code: string; rows: R[] }[] {
  const groups = new Map<string, R[]>();
  for (const r of rows) {
    const code = r.agent.location?.country_code?.toUpperCase() ?? "";
    groups.set(code, [...(groups.get(code) ?? []), r]);
  }
  return [...groups.entries()]
    .map(([code, rows]) => ({ code, rows }))
    .sort((a, b) => ((a.code === "") !== (b.code === "") ? (a.code === "" ? 1 : -1) : countryName(a.code).localeCompare(countryName(b.code))));
}

export function ResultList({ rows }: { rows: ResultLike[] }) {
  const sorted = [...rows].sort((a, b) => a.agent.name.localeCompare(b.agent.name));
  return (
    <>
      {byCountry(sorted).map((g, _, all) => (
        <section key={g.code} className="country-group" data-country={g.code || "unknown"} aria-label={countryName(g.code)}>
          {(all.length > 1 || g.code) && (
            <h3 className="group-head">
              {countryName(g.code)}
              <span className="muted">
                {g.rows.filter((r) => r.status === "ok").length} of {g.rows.length} ok
              </span>
            </h3>
          )}
          <ul className="results">
            {g.rows.map((r) => (
              <li key={r.agent.id ?? r.agent.name} className={`result ${statusClass(r.status)}`} data-testid="result">
                <div className="result-head">
                  <span className={`pill ${statusClass(r.status)}`}>{r.status}</span>
                  <b>{r.agent.name}</b>
                  {r.agent.region && <span className="muted">{r.agent.region}</span>}
                  {r.agent.location?.city && <span className="muted">{r.agent.location.city}</span>}
                  <Summary r={r} />
                </div>
                {r.status !== "pending" && <Details r={r} />}
              </li>
            ))}
          </ul>
        </section>
      ))}
    </>
  );
}
