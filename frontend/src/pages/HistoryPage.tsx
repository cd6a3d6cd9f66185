import { useCallback, useEffect, useState } from "react";
import { Link } from "react-router";
import { api, must, type CheckSummary } from "../api/client";

export function HistoryPage() {
  const [checks, setChecks] = useState<CheckSummary[]>([]);
  const [next, setNext] = useState<string | null | undefined>(undefined);
  const [error, setError] = useState<string | null>(null);

  const load = useCallback(async (before?: string) => {
    try {
      const page = await must(api.GET("/api/v1/checks", { params: { query: { limit: 25, before } } }));
      setChecks((prev) => (before ? [...prev, ...page.checks] : page.checks));
      setNext(page.next_before ?? null);
    } catch {
      setError("History could not be loaded.");
    }
  }, []);

  useEffect(() => {
    void load();
  }, [load]);

  if (error) return <p className="error-text card">{error}</p>;
  return (
    <section className="card">
      <h2>History</h2>
      {checks.length === 0 && next !== undefined && <p className="empty">No checks yet. <Link to="/">Run one</Link>.</p>}
      {checks.length > 0 && (
        <table className="list">
          <thead>
            <tr><th>When</th><th>Type</th><th>Target</th><th>OK</th><th>Status</th></tr>
          </thead>
          <tbody>
            {checks.map((c) => (
              <tr key={c.id}>
                <td>{new Date(c.created_at).toLocaleString()}</td>
                <td><span className="badge">{c.type.toUpperCase()}</span></td>
                <td><Link to={`/checks/${c.id}`}>{c.target}</Link></td>
                <td>{c.ok}/{c.agents}</td>
                <td>{c.status === "finished" ? "finished" : "running"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {next && <button className="secondary" onClick={() => void load(next)}>Older</button>}
    </section>
  );
}
