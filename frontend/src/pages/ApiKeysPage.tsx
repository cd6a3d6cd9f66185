import { useCallback, useEffect, useState, type FormEvent } from "react";
import { ApiError } from "../api/auth";
import { api, must, type Schemas } from "../api/client";

type ApiKey = Schemas["ApiKey"];
type Scope = Schemas["ApiScope"];

const SCOPES: { scope: Scope; label: string; adminOnly?: boolean }[] = [
  { scope: "read", label: "read: see checks, results, monitors, agents" },
  { scope: "checks", label: "checks: run and share checks" },
  { scope: "monitors", label: "monitors: create, change, delete monitors" },
  { scope: "probe", label: "probe: Prometheus scrapes of /probe" },
  { scope: "admin", label: "admin: an administrator's other powers", adminOnly: true },
];

const when = (iso?: string | null) => (iso ? new Date(iso).toLocaleDateString() : "—");

/** The signed-in user's API keys: create one (its secret is shown once), list and revoke. */
export function ApiKeysPage({ isAdmin = false }: { isAdmin?: boolean }) {
  const [keys, setKeys] = useState<ApiKey[]>([]);
  const [scopes, setScopes] = useState<Scope[]>(["read", "checks", "monitors"]);
  const [name, setName] = useState("");
  const [days, setDays] = useState(90);
  const [created, setCreated] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);

  const reload = useCallback(() => {
    must(api.GET("/api/v1/auth/api-keys")).then(setKeys).catch(() => setError("Your API keys could not be loaded."));
  }, []);
  useEffect(reload, [reload]);
  useEffect(() => {
    document.title = "API keys · netcheck";
  }, []);

  const fail = (err: unknown) => setError(err instanceof ApiError ? err.message : "The server cannot be reached.");

  async function create(e: FormEvent) {
    e.preventDefault();
    setError(null);
    try {
      const key = await must(api.POST("/api/v1/auth/api-keys", { body: { name: name.trim(), expires_in_days: days, scopes } }));
      setCreated(key.key);
      setName("");
      reload();
    } catch (err) {
      fail(err);
    }
  }

  async function revoke(k: ApiKey) {
    if (!window.confirm(`Revoke the key "${k.name}"? Scripts using it stop working at once.`)) return;
    try {
      await must(api.DELETE("/api/v1/auth/api-keys/{id}", { params: { path: { id: k.id } } }));
      reload();
    } catch (err) {
      fail(err);
    }
  }

  return (
    <section className="card">
      <h1>API keys</h1>
      <p className="hint">
        For scripts and the <code>netcheck</code> command: send it as <code>Authorization: Bearer …</code>. A key expires
        after the days you choose (at most a year) and ends when your password changes. It does only what its scopes
        allow, and never manages users, passwords, agents or keys: those need you signed in.
      </p>
      <form className="row" onSubmit={create}>
        <label>
          Name
          <input name="key-name" value={name} maxLength={64} onChange={(e) => setName(e.target.value)} required />
        </label>
        <label>
          Valid for (days)
          <input name="key-days" type="number" min={1} max={365} value={days} onChange={(e) => setDays(Number(e.target.value))} required />
        </label>
        <fieldset className="scopes">
          <legend>Scopes</legend>
          {SCOPES.filter((s) => isAdmin || !s.adminOnly).map((s) => (
            <label key={s.scope} className="check">
              <input
                type="checkbox"
                name={`scope-${s.scope}`}
                checked={scopes.includes(s.scope)}
                onChange={(e) => setScopes(e.target.checked ? [...scopes, s.scope] : scopes.filter((x) => x !== s.scope))}
              />
              {s.label}
            </label>
          ))}
        </fieldset>
        <button type="submit" disabled={scopes.length === 0}>
          Create key
        </button>
      </form>
      {error && <p className="error-text" role="alert">{error}</p>}
      {created && (
        <div className="token-box" role="status">
          <p>Your new key. Copy it now: it is not shown again.</p>
          <code data-testid="new-api-key">{created}</code>
        </div>
      )}
      {keys.length === 0 ? (
        <p className="empty">No API keys yet.</p>
      ) : (
        <table tabIndex={0} className="list">
          <thead>
            <tr>
              <th>Name</th>
              <th>Key</th>
              <th>Scopes</th>
              <th>Created</th>
              <th>Expires</th>
              <th>Last used</th>
              <th>
                <span className="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {keys.map((k) => (
              <tr key={k.id} data-key={k.name}>
                <td>{k.name}</td>
                <td>
                  <code>nck_{k.key_id}_…</code>
                </td>
                <td>{k.scopes.join(", ")}</td>
                <td>{when(k.created_at)}</td>
                <td>{when(k.expires_at)}</td>
                <td>{when(k.last_used_at)}</td>
                <td className="actions">
                  <button className="danger" onClick={() => void revoke(k)}>
                    Revoke
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
