import { useEffect, useRef, useState, type FormEvent } from "react";
import { useLocation, useNavigate } from "react-router";
import { ApiError, auth } from "../api/auth";
import { ThemeSwitch } from "../components/ThemeSwitch";
import { useTitle } from "../components/useTitle";

export function LoginPage() {
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const navigate = useNavigate();
  const from = (useLocation().state as { from?: string } | null)?.from ?? "/";
  const alert = useRef<HTMLParagraphElement>(null);
  useTitle("Sign in");
  // A failed sign-in moves focus to the reason, so it is read out and not lost.
  useEffect(() => {
    if (error) alert.current?.focus();
  }, [error]);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await auth.login(username, password);
      navigate(from === "/login" ? "/" : from, { replace: true });
    } catch (err) {
      setError(err instanceof ApiError && err.status === 429 ? "Too many attempts; wait a moment." : err instanceof ApiError ? err.message : "The server cannot be reached.");
    } finally {
      setBusy(false);
    }
  }

  return (
    <main className="login" id="main">
      <form onSubmit={submit} className="card" aria-labelledby="login-title">
        <h1 id="login-title"><span className="dot" aria-hidden="true" /> netcheck</h1>
        <p className="muted">Is it down for everyone, or just me?</p>
        <label>
          Username
          <input name="username" autoComplete="username" value={username} onChange={(e) => setUsername(e.target.value)} autoFocus required />
        </label>
        <label>
          Password
          <input name="password" type="password" autoComplete="current-password" value={password} onChange={(e) => setPassword(e.target.value)} required />
        </label>
        {error && <p className="error-text" role="alert" tabIndex={-1} ref={alert}>{error}</p>}
        <button type="submit" disabled={busy}>{busy ? "Signing in…" : "Sign in"}</button>
        <ThemeSwitch />
      </form>
    </main>
  );
}
