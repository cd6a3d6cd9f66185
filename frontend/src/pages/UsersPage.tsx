import { useCallback, useEffect, useState, type FormEvent } from "react";
import { ApiError, type User } from "../api/auth";
import { api, must } from "../api/client";

export function UsersPage() {
  const [users, setUsers] = useState<User[]>([]);
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [role, setRole] = useState<"user" | "admin">("user");
  const [error, setError] = useState<string | null>(null);

  const reload = useCallback(() => {
    must(api.GET("/api/v1/users")).then(setUsers).catch(() => setError("Users could not be loaded."));
  }, []);
  useEffect(reload, [reload]);

  const fail = (err: unknown) => setError(err instanceof ApiError ? err.message : "The server cannot be reached.");

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
    try {
      await must(api.PATCH("/api/v1/users/{id}", { params: { path: { id: u.id } }, body: { role: r } }));
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
      <h2>Users</h2>
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
      <table className="list">
        <thead>
          <tr><th>Username</th><th>Role</th><th>Created</th><th /></tr>
        </thead>
        <tbody>
          {users.map((u) => (
            <tr key={u.id}>
              <td>{u.username}</td>
              <td>
                <select aria-label={`Role of ${u.username}`} value={u.role} onChange={(e) => void setUserRole(u, e.target.value as "user" | "admin")}>
                  <option value="user">user</option>
                  <option value="admin">admin</option>
                </select>
              </td>
              <td>{new Date(u.created_at).toLocaleDateString()}</td>
              <td className="actions"><button className="danger" onClick={() => void remove(u)}>Delete</button></td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
