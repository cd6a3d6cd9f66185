import { useCallback, useEffect, useState, type FormEvent } from "react";
import { ApiError } from "../api/auth";
import { api, must, type Agent } from "../api/client";

function ago(ts?: string | null): string {
  if (!ts) return "never";
  const s = Math.max(0, Math.round((Date.now() - new Date(ts).getTime()) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.round(s / 60)}m ago`;
  return new Date(ts).toLocaleString();
}

export function AgentsPage() {
  const [agents, setAgents] = useState<Agent[] | null>(null);
  const [name, setName] = useState("");
  const [region, setRegion] = useState("");
  const [token, setToken] = useState<{ name: string; token: string } | null>(null);
  const [error, setError] = useState<string | null>(null);

  const reload = useCallback(() => {
    must(api.GET("/api/v1/agents"))
      .then(setAgents)
      .catch(() => setError("Agents could not be loaded."));
  }, []);

  useEffect(() => {
    reload();
    const t = setInterval(reload, 3000);
    return () => clearInterval(t);
  }, [reload]);

  async function create(e: FormEvent) {
    e.preventDefault();
    setError(null);
    try {
      const created = await must(api.POST("/api/v1/agents", { body: { name: name.trim(), region: region.trim() || undefined, labels: [] } }));
      setToken({ name: created.agent.name, token: created.token });
      setName("");
      setRegion("");
      reload();
    } catch (err) {
      setError(err instanceof ApiError ? err.message : "The server cannot be reached.");
    }
  }

  async function rotate(a: Agent) {
    if (!window.confirm(`Issue a new token for ${a.name}? Its current token and session stop working.`)) return;
    try {
      const t = await must(api.POST("/api/v1/agents/{id}/token", { params: { path: { id: a.id } } }));
      setToken({ name: a.name, token: t.token });
    } catch (err) {
      setError(err instanceof ApiError ? err.message : "Rotation failed.");
    }
  }

  async function remove(a: Agent) {
    if (!window.confirm(`Delete agent ${a.name}? It loses broker access at once.`)) return;
    try {
      await must(api.DELETE("/api/v1/agents/{id}", { params: { path: { id: a.id } } }));
      reload();
    } catch (err) {
      setError(err instanceof ApiError ? err.message : "Delete failed.");
    }
  }

  const command = token ? `netcheck agent --server ${window.location.origin} --token ${token.token}` : "";
  return (
    <section className="card">
      <h2>Agents</h2>
      <form className="row" onSubmit={create}>
        <input aria-label="Agent name" placeholder="name, e.g. fra-1" value={name} onChange={(e) => setName(e.target.value)} required pattern="[A-Za-z0-9._\-]{1,64}" />
        <input aria-label="Region" placeholder="region (optional)" value={region} onChange={(e) => setRegion(e.target.value)} />
        <button type="submit">Create agent</button>
      </form>
      {error && <p className="error-text" role="alert">{error}</p>}
      {token && (
        <div className="token-box" data-testid="token-box">
          <p>
            Token for <b>{token.name}</b> — shown only now. Run on the probe host:
          </p>
          <pre>{command}</pre>
          <button type="button" className="secondary" onClick={() => void navigator.clipboard?.writeText(command)}>Copy command</button>
          <button type="button" className="link" onClick={() => setToken(null)}>Done</button>
        </div>
      )}
      {agents && agents.length === 0 && <p className="empty">No agents yet. Create one, then start it with the command shown.</p>}
      {agents && agents.length > 0 && (
        <table className="list" data-testid="agents">
          <thead>
            <tr><th>Name</th><th>Status</th><th>Last heartbeat</th><th>Version</th><th>Region</th><th>Location</th><th /></tr>
          </thead>
          <tbody>
            {agents.map((a) => (
              <tr key={a.id} data-agent={a.name}>
                <td><b>{a.name}</b><br /><small className="muted">{a.hostname ?? ""}</small></td>
                <td><span className={`pill ${a.status === "online" ? "ok" : a.status === "offline" ? "bad" : "muted"}`} data-testid="agent-status">{a.status}</span></td>
                <td>{ago(a.last_seen_at)}</td>
                <td>{a.version ?? "—"}</td>
                <td>{a.region ?? "—"}</td>
                <td>{a.location ? `${a.location.city ?? ""} ${a.location.country_code ?? ""}` : <span className="muted">{a.public_ip ?? "—"}</span>}</td>
                <td className="actions">
                  <button className="secondary" onClick={() => void rotate(a)}>Rotate token</button>
                  <button className="danger" onClick={() => void remove(a)}>Delete</button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
