import { useEffect, useState } from "react";
import { NavLink, Navigate, Route, Routes, useLocation } from "react-router";
import { auth } from "./api/auth";
import { useSession } from "./session";
import { LoginPage } from "./pages/LoginPage";
import { CheckPage } from "./pages/CheckPage";
import { CheckResultPage } from "./pages/CheckResultPage";
import { HistoryPage } from "./pages/HistoryPage";
import { LookupPage } from "./pages/LookupPage";
import { AgentsPage } from "./pages/AgentsPage";
import { UsersPage } from "./pages/UsersPage";
import { ApiKeysPage } from "./pages/ApiKeysPage";
import { SharedPage } from "./pages/SharedPage";
import { MonitorsPage } from "./pages/MonitorsPage";
import { MonitorPage } from "./pages/MonitorPage";

export function App() {
  const session = useSession();
  const [restoring, setRestoring] = useState(true);
  const location = useLocation();

  useEffect(() => {
    // A reload keeps the session through the refresh cookie.
    auth.refresh().finally(() => setRestoring(false));
  }, []);

  // Shared results are for people without an account: no sign-in, no session needed.
  if (location.pathname.startsWith("/s/"))
    return (
      <Routes>
        <Route path="/s/:token" element={<SharedPage />} />
      </Routes>
    );
  if (restoring) return <div className="splash">netcheck</div>;
  if (!session) {
    return (
      <Routes>
        <Route path="/login" element={<LoginPage />} />
        <Route path="*" element={<Navigate to="/login" state={{ from: location.pathname }} replace />} />
      </Routes>
    );
  }
  const admin = session.user.role === "admin";
  return (
    <div className="shell">
      <header className="topbar">
        <span className="brand">
          <span className="dot" /> netcheck
        </span>
        <nav>
          <NavLink to="/" end>Check</NavLink>
          <NavLink to="/history">History</NavLink>
          <NavLink to="/monitors">Monitors</NavLink>
          <NavLink to="/lookup">Lookup</NavLink>
          {admin && <NavLink to="/admin/agents">Agents</NavLink>}
          {admin && <NavLink to="/admin/users">Users</NavLink>}
          <NavLink to="/settings/api-keys">API keys</NavLink>
        </nav>
        <span className="who">
          {session.user.username}
          <button className="link" onClick={() => void auth.logout()}>Sign out</button>
        </span>
      </header>
      <main>
        <Routes>
          <Route path="/" element={<CheckPage />} />
          <Route path="/checks/:id" element={<CheckResultPage />} />
          <Route path="/history" element={<HistoryPage />} />
          <Route path="/monitors" element={<MonitorsPage />} />
          <Route path="/monitors/:id" element={<MonitorPage />} />
          <Route path="/lookup" element={<LookupPage />} />
          <Route path="/lookup/:host" element={<LookupPage />} />
          {admin && <Route path="/admin/agents" element={<AgentsPage />} />}
          {admin && <Route path="/admin/users" element={<UsersPage />} />}
          <Route path="/settings/api-keys" element={<ApiKeysPage />} />
          <Route path="/login" element={<Navigate to="/" replace />} />
          <Route path="*" element={<p className="empty">Nothing here. <NavLink to="/">Run a check</NavLink>.</p>} />
        </Routes>
      </main>
      <footer>
        Locations: <a href="https://db-ip.com" target="_blank" rel="noreferrer">IP Geolocation by DB-IP</a>, networks:{" "}
        <a href="https://github.com/sapics/ip-location-db" target="_blank" rel="noreferrer">ip-location-db</a> (CC BY 4.0) ·{" "}
        <a href="/api/docs/">API</a>
      </footer>
    </div>
  );
}
