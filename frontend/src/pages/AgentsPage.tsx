import { Fragment, useCallback, useEffect, useRef, useState, type FormEvent } from "react";
import { ApiError } from "../api/auth";
import { api, must, type Agent } from "../api/client";
import { countryName } from "../components/AgentPicker";
import { CopyButton } from "../components/CopyButton";
import { useTitle } from "../components/useTitle";

/** The API's rule for agent names, in words. */
export function nameProblem(name: string): string | null {
  if (!name.trim()) return "Enter a name.";
  if (name.length > 64) return "A name has at most 64 characters.";
  if (!/^[A-Za-z0-9._-]+$/.test(name)) return "Use letters, digits, dots, dashes and underscores only (no spaces), e.g. fra-1.";
  return null;
}

/** The editable facts of an agent, as text fields. */
interface Draft {
  region: string;
  labels: string;
  country_code: string;
  city: string;
  lat: string;
  lon: string;
  asn: string;
  network: string;
}

function draftOf(a: Agent): Draft {
  const l = a.location?.fixed ? a.location : null;
  const text = (v?: string | number | null) => (v === null || v === undefined ? "" : String(v));
  return {
    region: a.region ?? "",
    labels: a.labels.join(", "),
    country_code: text(l?.country_code),
    city: text(l?.city),
    lat: text(l?.lat),
    lon: text(l?.lon),
    asn: text(l?.asn),
    network: text(l?.network),
  };
}

const num = (v: string) => (v.trim() === "" ? undefined : Number(v));

function EditAgent({ agent, onDone }: { agent: Agent; onDone: (saved: boolean) => void }) {
  const [d, setD] = useState<Draft>(() => draftOf(agent));
  const [error, setError] = useState<{ field?: string; message: string } | null>(null);
  const field = (name: keyof Draft, label: string, props: Record<string, string> = {}) => (
    <label>
      {label}
      <input
        name={name}
        value={d[name]}
        aria-invalid={error?.field?.endsWith(name) || undefined}
        onChange={(e) => setD({ ...d, [name]: e.target.value })}
        {...props}
      />
    </label>
  );
  async function save(location: "keep" | "clear") {
    setError(null);
    const labels = d.labels.split(",").map((l) => l.trim()).filter(Boolean);
    const fixed = d.country_code.trim()
      ? {
          country_code: d.country_code.trim(),
          city: d.city.trim() || undefined,
          lat: num(d.lat),
          lon: num(d.lon),
          asn: num(d.asn),
          network: d.network.trim() || undefined,
        }
      : null;
    try {
      await must(
        api.PATCH("/api/v1/agents/{id}", {
          params: { path: { id: agent.id } },
          body: {
            region: d.region.trim() || undefined,
            labels,
            // Without a country the place is left as it is (unless cleared).
            ...(location === "clear" ? { location: null } : fixed ? { location: fixed } : {}),
          },
        }),
      );
      onDone(true);
    } catch (err) {
      setError(err instanceof ApiError ? { field: err.field, message: err.message } : { message: "The server cannot be reached." });
    }
  }
  return (
    <form
      className="edit-agent"
      aria-label={`Edit ${agent.name}`}
      onSubmit={(e) => {
        e.preventDefault();
        void save("keep");
      }}
    >
      {field("region", "Region")}
      {field("labels", "Labels (comma-separated)", { placeholder: "dc1, edge" })}
      {field("country_code", "Country code", { placeholder: "DE", maxLength: "2" })}
      {field("city", "City")}
      {field("lat", "Latitude", { inputMode: "decimal" })}
      {field("lon", "Longitude", { inputMode: "decimal" })}
      {field("asn", "ASN", { inputMode: "numeric" })}
      {field("network", "Network name")}
      <div className="row">
        <button type="submit">Save</button>
        {agent.location?.fixed && (
          <button type="button" className="secondary" onClick={() => void save("clear")}>Use measured place</button>
        )}
        <button type="button" className="link" onClick={() => onDone(false)}>Cancel</button>
      </div>
      {error && <p className="error-text" role="alert">{error.message}</p>}
      <p className="hint">A place set here replaces the one measured from the agent's address (for agents in private networks).</p>
    </form>
  );
}

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
  const [token, setToken] = useState<{ id: string; name: string; token: string } | null>(null);
  const [nameError, setNameError] = useState<string | null>(null);
  const commandBox = useRef<HTMLPreElement>(null);
  useTitle("Agents");
  const [error, setError] = useState<string | null>(null);
  const [editing, setEditing] = useState<string | null>(null);

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
    const problem = nameProblem(name);
    setNameError(problem);
    if (problem) return;
    try {
      const created = await must(api.POST("/api/v1/agents", { body: { name: name.trim(), region: region.trim() || undefined, labels: [] } }));
      setToken({ id: created.agent.id, name: created.agent.name, token: created.token });
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
      setToken({ id: a.id, name: a.name, token: t.token });
    } catch (err) {
      setError(err instanceof ApiError ? err.message : "Rotation failed.");
    }
  }

  async function remove(a: Agent) {
    if (!window.confirm(`Delete agent ${a.name}? It loses broker access at once.`)) return;
    try {
      await must(api.DELETE("/api/v1/agents/{id}", { params: { path: { id: a.id } } }));
      // Its token is void now: do not leave it on screen.
      setToken((t) => (t?.id === a.id ? null : t));
      reload();
    } catch (err) {
      setError(err instanceof ApiError ? err.message : "Delete failed.");
    }
  }

  const command = token ? `netcheck agent --server ${window.location.origin} --token ${token.token}` : "";
  return (
    <section className="card">
      <h1>Agents</h1>
      <form className="row" onSubmit={create} noValidate aria-label="Create an agent">
        <input
          aria-label="Agent name"
          placeholder="name, e.g. fra-1"
          value={name}
          onChange={(e) => setName(e.target.value)}
          aria-invalid={nameError ? true : undefined}
          aria-describedby={nameError ? "agent-name-error" : "agent-name-hint"}
        />
        <input aria-label="Region" placeholder="region (optional)" value={region} onChange={(e) => setRegion(e.target.value)} />
        <button type="submit">Create agent</button>
      </form>
      {nameError ? (
        <p className="field-error" id="agent-name-error">{nameError}</p>
      ) : (
        <p className="hint" id="agent-name-hint">Letters, digits, dots, dashes and underscores; up to 64 characters.</p>
      )}
      {error && <p className="error-text" role="alert">{error}</p>}
      {token && (
        <div className="token-box" data-testid="token-box">
          <p>
            Token for <b>{token.name}</b> — shown only now. Run on the probe host:
          </p>
          <pre ref={commandBox}>{command}</pre>
          <CopyButton text={command} source={commandBox} label="Copy command" />
          <button type="button" className="link" onClick={() => setToken(null)}>Done</button>
        </div>
      )}
      {agents && agents.length === 0 && <p className="empty">No agents yet. Create one, then start it with the command shown.</p>}
      {agents && agents.length > 0 && (
        <table tabIndex={0} className="list" data-testid="agents">
          <thead>
            <tr><th>Name</th><th>Status</th><th>Last heartbeat</th><th>Version</th><th>Region</th><th>Place</th><th>Network</th><th>Labels</th><th><span className="sr-only">Actions</span></th></tr>
          </thead>
          <tbody>
            {agents.map((a) => (
              <Fragment key={a.id}>
                <tr data-agent={a.name}>
                  <td><b>{a.name}</b><br /><small className="muted">{a.hostname ?? ""}</small></td>
                  <td><span className={`pill ${a.status === "online" ? "ok" : a.status === "offline" ? "bad" : "muted"}`} data-testid="agent-status">{a.status}</span></td>
                  <td>{ago(a.last_seen_at)}</td>
                  <td>{a.version ?? "—"}</td>
                  <td>{a.region ?? "—"}</td>
                  <td data-testid="agent-place">
                    {a.location?.country_code ? (
                      <span title={countryName(a.location.country_code)}>
                        {a.location.city ? `${a.location.city}, ` : ""}{a.location.country_code}
                        {a.location.fixed && <small className="muted"> (set by hand)</small>}
                      </span>
                    ) : (
                      <span className="muted">{a.public_ip ?? "—"}</span>
                    )}
                  </td>
                  <td data-testid="agent-network">{a.location?.asn ? `AS${a.location.asn}${a.location.network ? ` ${a.location.network}` : ""}` : "—"}</td>
                  <td><span className="labels">{a.labels.map((l) => <span key={l} className="label">{l}</span>)}</span></td>
                  <td className="actions">
                    <button className="secondary" aria-expanded={editing === a.id} onClick={() => setEditing(editing === a.id ? null : a.id)}>Edit</button>
                    <button className="secondary" onClick={() => void rotate(a)}>Rotate token</button>
                    <button className="danger" onClick={() => void remove(a)}>Delete</button>
                  </td>
                </tr>
                {editing === a.id && (
                  <tr>
                    <td colSpan={9}>
                      <EditAgent
                        agent={a}
                        onDone={(saved) => {
                          setEditing(null);
                          if (saved) reload();
                        }}
                      />
                    </td>
                  </tr>
                )}
              </Fragment>
            ))}
          </tbody>
        </table>
      )}
      <p className="hint">Places: IP Geolocation by DB-IP (db-ip.com), networks: ip-location-db ASN data — both CC BY 4.0.</p>
    </section>
  );
}
