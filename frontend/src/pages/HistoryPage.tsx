import { settingsLine } from "../components/checkSettings";
import { useTitle } from "../components/useTitle";
import { useCallback, useEffect, useRef, useState, type FormEvent } from "react";
import { Link, useNavigate, useSearchParams } from "react-router";
import { ApiError } from "../api/auth";
import { api, must, specOf, type Agent, type CheckSummary } from "../api/client";
import type { paths } from "../api/schema";

type Query = NonNullable<paths["/api/v1/checks"]["get"]["parameters"]["query"]>;
// `monitor` has no field: it comes from a monitor's "all runs" link and stays until cleared.
const FILTERS = ["type", "target", "status", "agent", "since", "until", "monitor"] as const;

/** `datetime-local` value → RFC 3339 (the browser's time zone), and back. */
const toRfc3339 = (local: string) => (local ? new Date(local).toISOString() : undefined);
function toLocal(rfc3339: string | null): string {
  if (!rfc3339) return "";
  const d = new Date(rfc3339);
  if (Number.isNaN(d.getTime())) return "";
  return new Date(d.getTime() - d.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
}

export function HistoryPage() {
  const [params, setParams] = useSearchParams();
  const navigate = useNavigate();
  useTitle("History");
  const [checks, setChecks] = useState<CheckSummary[]>([]);
  const [next, setNext] = useState<string | null | undefined>(undefined);
  const [error, setError] = useState<string | null>(null);
  const [agents, setAgents] = useState<Agent[]>([]);
  const [draft, setDraft] = useState(() => Object.fromEntries(FILTERS.map((f) => [f, params.get(f) ?? ""])) as Record<(typeof FILTERS)[number], string>);
  const [rerunning, setRerunning] = useState<string | null>(null);

  useEffect(() => {
    must(api.GET("/api/v1/agents")).then(setAgents).catch(() => setAgents([]));
  }, []);

  const query = useCallback((): Query => {
    const q: Record<string, string> = {};
    for (const f of FILTERS) {
      const v = params.get(f);
      if (v) q[f] = v;
    }
    return q as Query;
  }, [params]);

  // Only the latest load may fill the list: an earlier one (other filters) that answers late
  // would put rows the filters exclude back on the page.
  const latest = useRef(0);
  const load = useCallback(
    async (before?: string) => {
      const seq = ++latest.current;
      try {
        setError(null);
        if (!before) {
          // New filters: no stale rows while the page loads.
          setChecks([]);
          setNext(undefined);
        }
        const page = await must(api.GET("/api/v1/checks", { params: { query: { ...query(), limit: 25, before } } }));
        if (seq !== latest.current) return;
        setChecks((prev) => (before ? [...prev, ...page.checks] : page.checks));
        setNext(page.next_before ?? null);
      } catch (err) {
        if (seq !== latest.current) return;
        setError(err instanceof ApiError ? err.message : "History could not be loaded.");
      }
    },
    [query],
  );

  useEffect(() => {
    void load();
  }, [load]);

  function apply(e: FormEvent) {
    e.preventDefault();
    const next = new URLSearchParams();
    for (const f of FILTERS) {
      const v = f === "since" || f === "until" ? toRfc3339(draft[f]) : draft[f].trim();
      if (v) next.set(f, v);
    }
    setParams(next);
  }

  function clear() {
    setDraft(Object.fromEntries(FILTERS.map((f) => [f, ""])) as typeof draft);
    setParams(new URLSearchParams());
  }

  /** The same check again: same type, target and options, on the same agents. */
  async function runAgain(c: CheckSummary) {
    setRerunning(c.id);
    try {
      const full = await must(api.GET("/api/v1/checks/{id}", { params: { path: { id: c.id } } }));
      const created = await must(
        api.POST("/api/v1/checks", {
          body: { ...specOf(full), target: full.target, same_agents_as: full.id },
        }),
      );
      navigate(`/checks/${created.id}`);
    } catch (err) {
      setError(err instanceof ApiError ? err.message : "The check could not be started again.");
    } finally {
      setRerunning(null);
    }
  }

  const set = (f: (typeof FILTERS)[number]) => (e: { target: { value: string } }) => setDraft({ ...draft, [f]: e.target.value });
  const filtered = FILTERS.some((f) => params.get(f));
  return (
    <section className="card">
      <h1>History</h1>
      <form className="filters" onSubmit={apply} aria-label="Filter the history">
        <label>
          Type
          <select name="type" value={draft.type} onChange={set("type")}>
            <option value="">any</option>
            <option value="ping">PING</option>
            <option value="http">HTTP</option>
            <option value="tcp">TCP</option>
            <option value="dns">DNS</option>
          </select>
        </label>
        <label>
          Target contains
          <input name="target" value={draft.target} onChange={set("target")} placeholder="example.com" />
        </label>
        <label>
          Outcome
          <select name="status" value={draft.status} onChange={set("status")}>
            <option value="">any</option>
            <option value="ok">ok everywhere</option>
            <option value="failed">failed somewhere</option>
          </select>
        </label>
        <label>
          Agent
          <select name="agent" value={draft.agent} onChange={set("agent")}>
            <option value="">any</option>
            {agents.map((a) => (
              <option key={a.id} value={a.name}>{a.name}</option>
            ))}
          </select>
        </label>
        <label>
          From
          <input name="since" type="datetime-local" value={draft.since.includes("T") && draft.since.length === 16 ? draft.since : toLocal(draft.since)} onChange={set("since")} />
        </label>
        <label>
          Until
          <input name="until" type="datetime-local" value={draft.until.includes("T") && draft.until.length === 16 ? draft.until : toLocal(draft.until)} onChange={set("until")} />
        </label>
        <button type="submit">Filter</button>
        {filtered && (
          <button type="button" className="link" onClick={clear}>
            Clear filters
          </button>
        )}
      </form>
      {error && <p className="error-text" role="alert">{error}</p>}
      {checks.length === 0 && next !== undefined && (
        <p className="empty">{filtered ? "No checks match these filters." : <>No checks yet. <Link to="/">Run one</Link>.</>}</p>
      )}
      {checks.length > 0 && (
        <table tabIndex={0} className="list" data-testid="history">
          <thead>
            <tr><th>When</th><th>Type</th><th>Target</th><th>OK</th><th>Status</th><th><span className="sr-only">Actions</span></th></tr>
          </thead>
          <tbody>
            {checks.map((c) => (
              <tr key={c.id} data-check={c.id}>
                <td>{new Date(c.created_at).toLocaleString()}</td>
                <td><span className="badge">{c.type.toUpperCase()}</span></td>
                <td>
                  <Link to={`/checks/${c.id}`}>{c.target}</Link>
                  <br />
                  <small className="muted" data-testid="settings">{settingsLine(c.type, c.options as Record<string, unknown>)}</small>
                </td>
                <td>{c.ok}/{c.agents}</td>
                <td>{c.status === "finished" ? "finished" : "running"}</td>
                <td className="actions">
                  <button type="button" className="secondary" disabled={rerunning !== null} onClick={() => void runAgain(c)}>
                    {rerunning === c.id ? "Starting…" : "Run again"}
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {next && <button className="secondary" onClick={() => void load(next)}>Older</button>}
    </section>
  );
}
