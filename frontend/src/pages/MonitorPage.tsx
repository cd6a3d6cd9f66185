// One monitor: its state and rule, uptime and latency per agent over 24 hours, incidents,
// notification deliveries (last status, next retry), maintenance windows, and its controls.

import { useCallback, useEffect, useState } from "react";
import { Link, useLocation, useNavigate, useParams } from "react-router";
import { ApiError } from "../api/auth";
import { api, must, type Schemas } from "../api/client";
import { LatencyChart } from "../components/LatencyChart";
import { Sparkline } from "../components/Sparkline";
import { useTitle } from "../components/useTitle";
import { settingsLine } from "../components/checkSettings";
import { describeChannel } from "../components/channels";
import { MaintenancePanel } from "../components/MaintenancePanel";
import { MonitorForm, percent, StatePill } from "./MonitorsPage";

type Series = Schemas["AgentSeries"][];

/** A chart needs at least one ok answer with a time to draw. */
function chartable(series: Series): boolean {
  return series.some((s) => s.points.some((p) => p.status === "ok" && p.value_ms != null));
}

export function MonitorPage() {
  const { id = "" } = useParams();
  const location = useLocation();
  const navigate = useNavigate();
  const [secret, setSecret] = useState<string | null>((location.state as { secret?: string } | null)?.secret ?? null);
  const [monitor, setMonitor] = useState<Schemas["Monitor"] | null>(null);
  const [incidents, setIncidents] = useState<Schemas["Incident"][]>([]);
  const [deliveries, setDeliveries] = useState<Schemas["Delivery"][]>([]);
  const [series, setSeries] = useState<Series>([]);
  const [error, setError] = useState<string | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const [editing, setEditing] = useState(false);
  useTitle(monitor ? `Monitor ${monitor.name}` : "Monitor");

  const load = useCallback(async () => {
    try {
      const path = { params: { path: { id } } };
      setMonitor(await must(api.GET("/api/v1/monitors/{id}", path)));
      setIncidents(await must(api.GET("/api/v1/monitors/{id}/incidents", path)));
      setDeliveries(await must(api.GET("/api/v1/monitors/{id}/deliveries", path)));
      setSeries(await must(api.GET("/api/v1/monitors/{id}/series", path)));
    } catch (err) {
      setError(err instanceof ApiError ? err.message : "The monitor could not be loaded.");
    }
  }, [id]);

  useEffect(() => {
    void load();
    const t = setInterval(() => void load(), 3000);
    return () => clearInterval(t);
  }, [load]);

  async function act(what: () => Promise<unknown>, done: string) {
    setNote(null);
    try {
      await what();
      setNote(done);
      await load();
    } catch (err) {
      setNote(err instanceof ApiError ? err.message : "The server cannot be reached.");
    }
  }

  if (error)
    return (
      <section className="card">
        <h1>Monitor</h1>
        <p className="error-text" role="alert">{error}</p>
      </section>
    );
  if (!monitor) return <p className="muted">Loading…</p>;
  const path = { params: { path: { id } } };
  if (editing)
    return (
      <MonitorForm
        initial={monitor}
        onSaved={(m) => {
          setEditing(false);
          setMonitor(m);
          setNote("Saved.");
        }}
        onCancel={() => setEditing(false)}
      />
    );
  return (
    <section className="card">
      {secret && (
        <div className="token-box" data-testid="webhook-secret">
          <p>Webhook signing secret — shown only now. Verify <code>X-Netcheck-Signature</code> (HMAC-SHA256 of the body) with it:</p>
          <code>{secret}</code>
          <button type="button" className="link" onClick={() => setSecret(null)}>Done</button>
        </div>
      )}
      <h1>
        <StatePill state={monitor.state} /> {monitor.name}
      </h1>
      <p className="muted">
        <span className="badge">{monitor.check.type.toUpperCase()}</span> {monitor.check.target} · {settingsLine(monitor.check.type, monitor.check.options as Record<string, unknown>)} · every {monitor.interval_secs} s · down when at least{" "}
        {monitor.alert.min_failing_agents} agent(s) fail in {monitor.alert.for_runs} run(s) in a row
      </p>
      <p>
        Uptime 24 h: <b data-testid="uptime">{monitor.stats?.uptime_24h == null ? "no runs yet" : percent(monitor.stats.uptime_24h)}</b> · 7 d:{" "}
        <b>{percent(monitor.stats?.uptime_7d)}</b> · last run{" "}
        {monitor.last_check_id ? <Link to={`/checks/${monitor.last_check_id}`}>{new Date(monitor.last_run_at!).toLocaleString()}</Link> : "not yet"} · next{" "}
        {monitor.paused ? "paused" : new Date(monitor.next_run_at).toLocaleString()} · <Link to={`/history?monitor=${monitor.id}`}>all runs</Link>
      </p>
      {monitor.delayed_since && (
        <p className="shared-banner" role="status" data-testid="delayed">
          Runs are delayed since {new Date(monitor.delayed_since).toLocaleString()}: netcheck is past its capacity, and the next run starts once the backlog has drained.
        </p>
      )}
      <div className="row">
        <button type="button" className="secondary" onClick={() => setEditing(true)}>
          Edit
        </button>
        <button type="button" className="secondary" onClick={() => void act(() => must(api.PATCH("/api/v1/monitors/{id}", { ...path, body: { paused: !monitor.paused } })), monitor.paused ? "Resumed." : "Paused.")}>
          {monitor.paused ? "Resume" : "Pause"}
        </button>
        {monitor.notify.length > 0 && (
          <button type="button" className="secondary" onClick={() => void act(() => must(api.POST("/api/v1/monitors/{id}/test", path)), "Test event queued.")}>
            Send test event
          </button>
        )}
        {monitor.notify.length > 0 && (
          <button type="button" className="secondary" onClick={() => void act(async () => setSecret((await must(api.POST("/api/v1/monitors/{id}/secret", path))).webhook_secret), "New secret made.")}>
            New secret
          </button>
        )}
        <button
          type="button"
          className="danger"
          onClick={() => {
            if (window.confirm(`Delete monitor ${monitor.name}? Its runs stay in the history.`))
              void must(api.DELETE("/api/v1/monitors/{id}", path)).then(() => navigate("/monitors"));
          }}
        >
          Delete
        </button>
        {note && <span role="status" className="muted">{note}</span>}
      </div>

      <h2>Latency, last 24 hours</h2>
      {series.length === 0 ? (
        <p className="empty">No runs yet.</p>
      ) : chartable(series) ? (
        <LatencyChart series={series} />
      ) : (
        <p className="empty">Nothing to chart yet: no run has had an ok answer.</p>
      )}
      {series.length > 0 && (
        <table tabIndex={0} className="list" data-testid="agent-runs">
          <thead>
            <tr><th>Agent</th><th>Runs</th><th>Recent</th></tr>
          </thead>
          <tbody>
            {series.map((s) => (
              <tr key={s.agent.id}>
                <td>{s.agent.name}</td>
                <td>{s.points.filter((p) => p.status === "ok").length} of {s.points.length} ok</td>
                <td>
                  <Sparkline
                    points={s.points.slice(-60).map((p) => ({ value: p.value_ms ?? null, bad: p.status !== "ok" }))}
                    label={`${s.agent.name}: last ${Math.min(60, s.points.length)} runs`}
                  />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}

      <h2>Incidents</h2>
      {incidents.length === 0 && <p className="empty">None.</p>}
      <ul className="results" data-testid="incidents">
        {incidents.map((i) => (
          <li key={i.id} className={`result ${i.resolved_at ? "ok" : "bad"}`}>
            <b>{i.resolved_at ? "Resolved" : "Open"}</b> · from {new Date(i.started_at).toLocaleString()}
            {i.resolved_at && ` to ${new Date(i.resolved_at).toLocaleString()}`} · failing: {i.failing_agents.map((a) => `${a.name} (${a.error_code ?? "?"})`).join(", ")} ·{" "}
            <Link to={`/checks/${i.first_check_id}`}>the run that opened it</Link>
          </li>
        ))}
      </ul>

      {monitor.notify.length > 0 && (
        <>
          <h2>Notifications</h2>
          <ul className="muted" data-testid="channels">
            {monitor.notify.map((n, i) => (
              <li key={i}>
                {describeChannel(n)}{" "}
                <button type="button" className="link" aria-label={`Send test to ${describeChannel(n)}`} onClick={() => void act(() => must(api.POST("/api/v1/monitors/{id}/test", { params: { path: { id: monitor.id }, query: { channel: i } } })), "Test queued.")}>
                  Send test
                </button>
              </li>
            ))}
          </ul>
          {deliveries.length === 0 && <p className="empty">Nothing sent yet.</p>}
          {deliveries.length > 0 && (
            <table tabIndex={0} className="list" data-testid="deliveries">
              <thead>
                <tr><th>Channel</th><th>Event</th><th>Made</th><th>Attempts</th><th>Last answer</th><th>Delivered / next retry</th></tr>
              </thead>
              <tbody>
                {deliveries.map((d) => (
                  <tr key={d.id}>
                    <td>{d.channel}</td>
                    <td>{d.event}</td>
                    <td>{new Date(d.created_at).toLocaleString()}</td>
                    <td>{d.attempts}</td>
                    <td>{d.last_status ?? d.last_error ?? "—"}</td>
                    <td>{d.delivered_at ? `delivered ${new Date(d.delivered_at).toLocaleString()}` : d.gave_up_at ? "gave up" : `next try ${new Date(d.next_attempt_at!).toLocaleString()}`}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </>
      )}

      <MaintenancePanel covers={{ monitor: monitor.id }} />
    </section>
  );
}
