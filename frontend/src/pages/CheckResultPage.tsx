import { useEffect, useState } from "react";
import { Link, useParams } from "react-router";
import { ApiError } from "../api/auth";
import { api, followCheck, must, type CheckView, type ResultView } from "../api/client";
import { Details, Summary, statusClass } from "../components/results";
import { countryName } from "../components/AgentPicker";

/** Results grouped by the agents' country, countries by name, unplaced agents last. */
function byCountry(rows: ResultView[]): { code: string; rows: ResultView[] }[] {
  const groups = new Map<string, ResultView[]>();
  for (const r of rows) {
    const code = r.agent.location?.country_code?.toUpperCase() ?? "";
    groups.set(code, [...(groups.get(code) ?? []), r]);
  }
  return [...groups.entries()]
    .map(([code, rows]) => ({ code, rows }))
    .sort((a, b) => (a.code === "") !== (b.code === "") ? (a.code === "" ? 1 : -1) : countryName(a.code).localeCompare(countryName(b.code)));
}

export function CheckResultPage() {
  const { id = "" } = useParams();
  const [check, setCheck] = useState<CheckView | null>(null);
  const [results, setResults] = useState<Record<string, ResultView>>({});
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    const abort = new AbortController();
    setResults({});
    setError(null);
    const load = () => must(api.GET("/api/v1/checks/{id}", { params: { path: { id } } }));
    load()
      .then(async (c) => {
        setCheck(c);
        setResults(Object.fromEntries(c.results.map((r) => [r.agent.id, r as ResultView])));
        if (c.status !== "finished") {
          await followCheck(id, (r) => setResults((prev) => ({ ...prev, [r.agent.id]: r })), abort.signal);
          setCheck(await load());
        }
      })
      .catch((err) => {
        if (!abort.signal.aborted) setError(err instanceof ApiError ? err.message : "The server cannot be reached.");
      });
    return () => abort.abort();
  }, [id]);

  if (error) return <p className="error-text card">{error}</p>;
  if (!check) return <p className="muted">Loading…</p>;
  const rows = Object.values(results).sort((a, b) => a.agent.name.localeCompare(b.agent.name));
  const done = rows.filter((r) => r.status !== "pending").length;
  return (
    <section className="card">
      <h2>
        <span className="badge">{check.type.toUpperCase()}</span> {check.target}
      </h2>
      <p className="muted">
        {check.status === "finished" ? "Finished" : `Running… ${done}/${rows.length} agents answered`} · started{" "}
        {new Date(check.created_at).toLocaleString()} · <Link to={`/checks/${check.id}`}>permalink</Link>
      </p>
      {rows.length === 0 && <p className="empty">No agent took part.</p>}
      {byCountry(rows).map((g, _, all) => (
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
              <li key={r.agent.id} className={`result ${statusClass(r.status)}`} data-testid="result">
                <div className="result-head">
                  <span className={`pill ${statusClass(r.status)}`}>{r.status}</span>
                  <b>{r.agent.name}</b>
                  {r.agent.region && <span className="muted">{r.agent.region}</span>}
                  {r.agent.location?.city && <span className="muted">{r.agent.location.city}</span>}
                  <Summary type={check.type} r={r} />
                </div>
                {r.status !== "pending" && <Details type={check.type} r={r} />}
              </li>
            ))}
          </ul>
        </section>
      ))}
    </section>
  );
}
