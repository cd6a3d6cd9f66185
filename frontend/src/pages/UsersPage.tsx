import { useSession } from "../session";
import { useTitle } from "../components/useTitle";
import { Fragment, useCallback, useEffect, useState, type FormEvent } from "react";
import { ApiError, type User } from "../api/auth";
import { api, must, type Schemas } from "../api/client";

/** An administrator's view of one user's API keys, with revoke. */
function KeysOf({ user, onError }: { user: User; onError: (err: unknown) => void }) {
  const [keys, setKeys] = useState<Schemas["ApiKey"][] | null>(null);
  const reload = useCallback(() => {
    must(api.GET("/api/v1/users/{id}/api-keys", { params: { path: { id: user.id } } }))
      .then(setKeys)
      .catch(onError);
  }, [user.id, onError]);
  useEffect(reload, [reload]);

  async function revoke(k: Schemas["ApiKey"]) {
    if (!window.confirm(`Revoke ${user.username}'s key "${k.name}"?`)) return;
    try {
      await must(api.DELETE("/api/v1/users/{id}/api-keys/{key_id}", { params: { path: { id: user.id, key_id: k.id } } }));
      reload();
    } catch (err) {
      onError(err);
    }
  }

  if (keys === null) return <p className="muted">Loading keys…</p>;
  if (keys.length === 0) return <p className="empty">{user.username} has no API keys.</p>;
  return (
    <ul aria-label={`API keys of ${user.username}`}>
      {keys.map((k) => (
        <li key={k.id} data-key={k.name}>
          <b>{k.name}</b> <code>nck_{k.key_id}_…</code> · expires {k.expires_at ? new Date(k.expires_at).toLocaleDateString() : "never"}
          {" · "}last used {k.last_used_at ? new Date(k.last_used_at).toLocaleDateString() : "never"}{" "}
          <button className="danger" onClick={() => void revoke(k)}>
            Revoke
          </button>
        </li>
      ))}
    </ul>
  );
}

export function UsersPage() {
  const [users, setUsers] = useState<User[]>([]);
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [role, setRole] = useState<"user" | "admin">("user");
  const [error, setError] = useState<string | null>(null);
  const [keysOf, setKeysOf] = useState<string | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const me = useSession()?.user.id;
  useTitle("Users");

  const reload = useCallback(() => {
    must(api.GET("/api/v1/users")).then(setUsers).catch(() => setError("Users could not be loaded."));
  }, []);
  useEffect(reload, [reload]);

  const fail = useCallback(
    (err: unknown) => setError(err instanceof ApiError ? err.message : "The server cannot be reached."),
    [],
  );

  async function create(e: FormEvent) {
    e.preventDefault();
    setError(null);
    try {
      await must(api.POST("/api/v1/users", { body: { username: username.trim(), password, role } }));
      setUsername("");
      setPassword("");
      reload();
    } catch (err) {
      fail(err);
    }
  }

  async function setUserRole(u: User, r: "user" | "admin") {
    setNote(null);
    const what = r === "admin" ? `Make ${u.username} an administrator? They can then manage agents and users.` : `Make ${u.username} a normal user? They lose the admin pages.`;
    if (!window.confirm(what)) return;
    try {
      await must(api.PATCH("/api/v1/users/{id}", { params: { path: { id: u.id } }, body: { role: r } }));
      setNote(`${u.username} is now ${r === "admin" ? "an administrator" : "a normal user"}.`);
      reload();
    } catch (err) {
      fail(err);
    }
  }

  async function remove(u: User) {
    if (!window.confirm(`Delete user ${u.username}?`)) return;
    try {
      await must(api.DELETE("/api/v1/users/{id}", { params: { path: { id: u.id } } }));
      reload();
    } catch (err) {
      fail(err);
    }
  }

  return (
    <section className="card">
      <h1>Users</h1>
      <form className="row" onSubmit={create}>
        <input aria-label="New username" placeholder="username" value={username} onChange={(e) => setUsername(e.target.value)} required />
        <input aria-label="New password" placeholder="password (8+ characters)" type="password" minLength={8} value={password} onChange={(e) => setPassword(e.target.value)} required />
        <select aria-label="Role" value={role} onChange={(e) => setRole(e.target.value as "user" | "admin")}>
          <option value="user">user</option>
          <option value="admin">admin</option>
        </select>
        <button type="submit">Add user</button>
      </form>
      {error && <p className="error-text" role="alert">{error}</p>}
      <p className="copied" role="status">{note}</p>
      <table tabIndex={0} className="list">
        <thead>
          <tr><th>Username</th><th>Role</th><th>Created</th><th><span className="sr-only">Actions</span></th></tr>
        </thead>
        <tbody>
          {users.map((u) => (
            <Fragment key={u.id}>
            <tr data-user={u.username} className={u.id === me ? "me" : undefined}>
              <td>
                {u.username}
                {u.id === me && <small className="muted"> (you)</small>}
              </td>
              <td>
                <select aria-label={`Role of ${u.username}`} value={u.role} onChange={(e) => void setUserRole(u, e.target.value as "user" | "admin")}>
                  <option value="user">user</option>
                  <option value="admin">admin</option>
                </select>
              </td>
              <td>{new Date(u.created_at).toLocaleDateString()}</td>
              <td className="actions">
                <button
                  className="link"
                  aria-expanded={keysOf === u.id}
                  onClick={() => setKeysOf(keysOf === u.id ? null : u.id)}
                >
                  API keys
                </button>{" "}
                <button className="danger" onClick={() => void remove(u)}>Delete</button>
              </td>
            </tr>
            {keysOf === u.id && (
              <tr className="keys-of">
                <td colSpan={4}>
                  <KeysOf user={u} onError={fail} />
                </td>
              </tr>
            )}
            </Fragment>
          ))}
        </tbody>
      </table>
    </section>
  );
}
