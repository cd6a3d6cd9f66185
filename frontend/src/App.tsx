import { useEffect, useRef, useState } from "react";
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
import { StatusPagesPage } from "./pages/StatusPagesPage";
import { StatusPublicPage } from "./pages/StatusPublicPage";
import { ThemeSwitch } from "./components/ThemeSwitch";
import { useTitle } from "./components/useTitle";

/** After a client-side navigation, focus goes to the new page's heading (or its main region),
 * as a screen reader user expects from a page load; the first render keeps the browser's. */
function useFocusOnNavigation(pathname: string) {
  const first = useRef(true);
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    // The page may render its heading after its data arrives: try for a moment.
    let tries = 0;
    const t = setInterval(() => {
      // Someone already moved on (typing, picking a tab): leave their focus alone.
      const active = document.activeElement;
      if (active && active !== document.body && !active.closest("header")) {
        clearInterval(t);
        return;
      }
      const heading = document.querySelector<HTMLElement>("main h1");
      if (heading || ++tries > 20) {
        clearInterval(t);
        const target = heading ?? document.querySelector<HTMLElement>("main");
        if (target) {
          if (!target.hasAttribute("tabindex")) target.setAttribute("tabindex", "-1");
          target.focus();
        }
      }
    }, 50);
    return () => clearInterval(t);
  }, [pathname]);
}

export function App() {
  const session = useSession();
  const [restoring, setRestoring] = useState(true);
  const location = useLocation();
  const [menuOpen, setMenuOpen] = useState(false);
  useFocusOnNavigation(location.pathname);
  useEffect(() => setMenuOpen(false), [location.pathname]);

  useEffect(() => {
    // A reload keeps the session through the refresh cookie.
    auth.refresh().finally(() => setRestoring(false));
  }, []);

  // Shared results and status pages are for people without an account: no sign-in.
  if (location.pathname.startsWith("/s/"))
    return (
      <Routes>
        <Route path="/s/:token" element={<SharedPage />} />
      </Routes>
    );
  if (location.pathname.startsWith("/status/"))
    return (
      <Routes>
        <Route path="/status/:slug" element={<StatusPublicPage />} />
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
      <a className="skip-link" href="#main">Skip to content</a>
      <header className="topbar">
        <span className="brand">
          <span className="dot" aria-hidden="true" /> netcheck
        </span>
        <button type="button" className="menu-button" aria-expanded={menuOpen} aria-controls="menu" onClick={() => setMenuOpen(!menuOpen)}>
          Menu
        </button>
        <div id="menu" className={menuOpen ? "menu open" : "menu"}>
          <nav aria-label="Main">
            <NavLink to="/" end>Check</NavLink>
            <NavLink to="/history">History</NavLink>
            <NavLink to="/monitors">Monitors</NavLink>
            <NavLink to="/status-pages">Status pages</NavLink>
            <NavLink to="/lookup">Lookup</NavLink>
            {admin && <NavLink to="/admin/agents">Agents</NavLink>}
            {admin && <NavLink to="/admin/users">Users</NavLink>}
            <NavLink to="/settings/api-keys">API keys</NavLink>
          </nav>
          <span className="who">
            <ThemeSwitch />
            <span>{session.user.username}</span>
            <button className="link" onClick={() => void auth.logout()}>Sign out</button>
          </span>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        <Routes>
          <Route path="/" element={<CheckPage />} />
          <Route path="/checks/:id" element={<CheckResultPage />} />
          <Route path="/history" element={<HistoryPage />} />
          <Route path="/monitors" element={<MonitorsPage />} />
          <Route path="/monitors/:id" element={<MonitorPage />} />
          <Route path="/status-pages" element={<StatusPagesPage />} />
          <Route path="/lookup" element={<LookupPage />} />
          <Route path="/lookup/:host" element={<LookupPage />} />
          {admin && <Route path="/admin/agents" element={<AgentsPage />} />}
          {admin && <Route path="/admin/users" element={<UsersPage />} />}
          <Route path="/settings/api-keys" element={<ApiKeysPage isAdmin={admin} />} />
          <Route path="/login" element={<Navigate to="/" replace />} />
          <Route path="*" element={<NotFound />} />
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

function NotFound() {
  useTitle("Not found");
  return (
    <section className="card">
      <h1>Nothing here</h1>
      <p className="empty">
        This address is not a page of netcheck. <NavLink to="/">Run a check</NavLink>.
      </p>
    </section>
  );
}
