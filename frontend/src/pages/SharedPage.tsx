// A shared check, shown without login at /s/{token}: read-only, agents by name and place only.

import { settingsLine } from "../components/checkSettings";
import { useEffect, useState } from "react";
import { useParams } from "react-router";
import { errorFrom } from "../api/auth";
import type { Schemas } from "../api/client";
import { ResultList } from "../components/ResultList";
import { DnsComparison, PathComparison, ResultMap, TimingBars, summaryLine } from "../components/ResultPictures";

type SharedCheck = Schemas["SharedCheck"];

export function SharedPage() {
  const { token = "" } = useParams();
  const [check, setCheck] = useState<SharedCheck | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    fetch(`/api/v1/shared/${encodeURIComponent(token)}`)
      .then(async (resp) => {
        if (!resp.ok) throw await errorFrom(resp);
        setCheck(await resp.json());
      })
      .catch((err) =>
        setError(err?.status === 404 ? "This link does not work: it expired, was withdrawn, or was never made." : "The server cannot be reached."),
      );
  }, [token]);

  useEffect(() => {
    document.title = check ? `${check.type.toUpperCase()} ${check.target} — netcheck` : "Shared check — netcheck";
  }, [check]);

  return (
    <div className="shell">
      <header className="topbar">
        <span className="brand">
          <span className="dot" aria-hidden="true" /> netcheck
        </span>
        <a href="/" className="who">Sign in</a>
      </header>
      <main id="main">
        {error && (
          <section className="card">
            <h1>Shared check</h1>
            <p className="error-text">{error}</p>
          </section>
        )}
        {!error && !check && <p className="muted">Loading…</p>}
        {check && (
          <section className="card">
            <p className="shared-banner">
              A shared result, read-only. The link works until {new Date(check.expires_at).toLocaleDateString()}.
            </p>
            <h1>
              <span className="badge">{check.type.toUpperCase()}</span> {check.target}
            </h1>
            <p data-testid="settings">{settingsLine(check.type, check.options as Record<string, unknown>)}</p>
            <p className="muted">
              {check.status === "finished" ? "Finished" : "Was still running when last loaded"} · started {new Date(check.created_at).toLocaleString()} ·{" "}
              {check.results.filter((r) => r.status === "ok").length} of {check.results.length} agents ok
            </p>
            <p className="summary-line" data-testid="summary">{summaryLine(check.results)}</p>
            <ResultMap type={check.type} target={check.target} rows={check.results} lookup={false} />
            {check.type === "http" && <TimingBars rows={check.results} />}
            {check.type === "dns" && <DnsComparison rows={check.results} />}
            {(check.type === "traceroute" || check.type === "mtr") && <PathComparison rows={check.results} />}
            <ResultList rows={check.results} />
          </section>
        )}
      </main>
    </div>
  );
}
