import { useEffect, useState } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { ApiError } from "../api/auth";
import { api, followCheck, must, type CheckView, type ResultView, type Schemas } from "../api/client";
import { ResultList } from "../components/ResultList";
import { ShareButton } from "../components/ShareButton";
import { DnsComparison, PathComparison, ResultMap, TimingBars, summaryLine } from "../components/ResultPictures";
import { settingsLine } from "../components/checkSettings";
import { editQuery } from "./CheckPage";
import { useTitle } from "../components/useTitle";

/** Makes a monitor of this check: same type, target, options and agents, every minute. */
function MonitorThis({ check }: { check: CheckView }) {
  const navigate = useNavigate();
  const [error, setError] = useState<string | null>(null);
  async function create() {
    try {
      const created = await must(
        api.POST("/api/v1/monitors", {
          body: {
            name: `${check.type.toUpperCase()} ${check.target}`.slice(0, 128),
            check: { type: check.type as Schemas["CheckType"], target: check.target, options: check.options },
            agents: check.results.map((r) => r.agent.id),
            interval_secs: 60,
          } as Schemas["CreateMonitor"],
        }),
      );
      navigate(`/monitors/${created.monitor.id}`);
    } catch (err) {
      setError(err instanceof ApiError ? err.message : "The server cannot be reached.");
    }
  }
  return (
    <>
      <button type="button" className="secondary" onClick={() => void create()}>
        Monitor this
      </button>
      {error && <span role="alert" className="error-text">{error}</span>}
    </>
  );
}

export function CheckResultPage() {
  const { id = "" } = useParams();
  const [check, setCheck] = useState<CheckView | null>(null);
  const [results, setResults] = useState<Record<string, ResultView>>({});
  const [error, setError] = useState<string | null>(null);
  useTitle(check ? `${check.type.toUpperCase()} ${check.target}` : "Check");

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

  if (error)
    return (
      <section className="card">
        <h1>Check</h1>
        <p className="error-text" role="alert">{error}</p>
      </section>
    );
  if (!check) return <p className="muted">Loading…</p>;
  const rows = Object.values(results);
  const done = rows.filter((r) => r.status !== "pending").length;
  return (
    <section className="card">
      <h1>
        <span className="badge">{check.type.toUpperCase()}</span> {check.target}
      </h1>
      <p data-testid="settings">{settingsLine(check.type, check.options as Record<string, unknown>)}</p>
      <p className="muted">
        {check.status === "finished" ? "Finished" : `Running… ${done}/${rows.length} agents answered`} · started{" "}
        {new Date(check.created_at).toLocaleString()} · <Link to={`/checks/${check.id}`}>permalink</Link>
      </p>
      <p className="summary-line" data-testid="summary" aria-live="polite">
        {summaryLine(rows)}
      </p>
      <div className="row">
        <ShareButton checkId={check.id} />
        <MonitorThis check={check} />
        <Link className="button secondary" to={`/?${editQuery(check.type, check.target, check.options as Record<string, unknown>, check.results.map((r) => r.agent.name))}`}>
          Edit and run again
        </Link>
      </div>
      <ResultMap type={check.type} target={check.target} rows={rows} />
      {check.type === "http" && <TimingBars rows={rows} />}
      {check.type === "dns" && <DnsComparison rows={rows} />}
      {(check.type === "traceroute" || check.type === "mtr") && <PathComparison rows={rows} />}
      {rows.length === 0 && <p className="empty">No agent took part.</p>}
      <div aria-live="polite" aria-relevant="additions text">
        <ResultList rows={rows} />
      </div>
    </section>
  );
}
