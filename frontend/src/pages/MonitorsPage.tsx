// Monitors: the list (paged and filtered on the server, so it stays fast with thousands) and
// a form to create one with the same options and agent picker as a check.

import { useCallback, useEffect, useState, type FormEvent } from "react";
import { Link, useNavigate, useSearchParams } from "react-router";
import { ApiError } from "../api/auth";
import { api, must, type Agent, type Schemas } from "../api/client";
import { AgentPicker, EVERYONE, selectionBody, selectionFromBody, type Selection } from "../components/AgentPicker";
import { CheckOptions, DEFAULTS, buildOptions, optionsToValues, type Kind, type Values } from "../components/CheckOptions";
import { ChannelsEditor } from "../components/ChannelsEditor";
import { channelToRow, rowToChannel, type ChannelRow } from "../components/channels";
import { Sparkline } from "../components/Sparkline";
import { useTitle } from "../components/useTitle";
import { validateTarget } from "./CheckPage";

type Monitor = Schemas["Monitor"];
const STATE_CLASS: Record<Schemas["MonitorState"], string> = { up: "ok", down: "bad", pending: "muted", paused: "warn", maintenance: "info" };

export function StatePill({ state }: { state: string }) {
  return <span className={`pill ${STATE_CLASS[state as Schemas["MonitorState"]] ?? "muted"}`} data-testid="monitor-state">{state}</span>;
}

function when(ts?: string | null): string {
  return ts ? new Date(ts).toLocaleString() : "—";
}

export function percent(v?: number | null): string {
  return v === null || v === undefined ? "—" : `${v.toFixed(v === 100 ? 0 : 1)} %`;
}

/** The last 24 hours as a sparkline: hourly mean latency, failing hours marked. */
function HoursLine({ monitor }: { monitor: Monitor }) {
  const hours = monitor.stats?.hours ?? [];
  if (hours.length === 0) return <span className="muted">no runs</span>;
  const slow = Math.max(...hours.map((h) => h.value_ms ?? 0));
  const failing = hours.reduce((n, h) => n + h.failing_runs, 0);
  return (
    <Sparkline
      points={hours.map((h) => ({ value: h.value_ms ?? null, bad: h.failing_runs > 0 }))}
      label={`${hours.length} hours, slowest hourly mean ${slow.toFixed(1)} ms, ${failing} failing runs`}
    />
  );
}

/** Creates a monitor, or edits `initial` (saved with PATCH; the secret stays). */
export function MonitorForm({ initial, onSaved, onCancel }: { initial?: Monitor; onSaved: (m: Monitor, secret?: string) => void; onCancel?: () => void }) {
  const [name, setName] = useState(initial?.name ?? "");
  const [kind, setKind] = useState<Kind>((initial?.check.type as Kind) ?? "http");
  const [target, setTarget] = useState(initial?.check.target ?? "");
  const [values, setValues] = useState<Values>(() => (initial ? optionsToValues(initial.check.type as Kind, initial.check.options as Record<string, unknown>) : DEFAULTS));
  const [interval, setIntervalSecs] = useState(String(initial?.interval_secs ?? 60));
  const [minFailing, setMinFailing] = useState(String(initial?.alert.min_failing_agents ?? 1));
  const [forRuns, setForRuns] = useState(String(initial?.alert.for_runs ?? 2));
  const [channels, setChannels] = useState<ChannelRow[]>(() => (initial?.notify ?? []).map(channelToRow));
  const [agents, setAgents] = useState<Agent[]>([]);
  const [selection, setSelection] = useState<Selection>(() => (initial ? selectionFromBody(initial) : EVERYONE));
  const [error, setError] = useState<ApiError | null>(null);
  const title = initial ? `Edit ${initial.name}` : "New monitor";

  useEffect(() => {
    must(api.GET("/api/v1/agents")).then(setAgents).catch(() => setAgents([]));
  }, []);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setError(null);
    const targetError = validateTarget(kind, target);
    if (targetError) return setError(new ApiError(422, "invalid_field", targetError, "check.target"));
    const body = {
      name: name.trim(),
      check: { type: kind, target: target.trim(), options: buildOptions(kind, values) as unknown as Schemas["MonitorCheck"]["options"] },
      interval_secs: Number(interval),
      alert: { min_failing_agents: Number(minFailing), for_runs: Number(forRuns) },
      notify: channels.map(rowToChannel).filter((c) => c !== null),
      ...selectionBody(selection),
    };
    try {
      if (initial) {
        // Fields left out of a PATCH are kept, so "every online agent" has to be said.
        const everyone = !body.agents && !body.locations && !body.limit;
        const patch = { ...body, all_agents: everyone || undefined } as Schemas["UpdateMonitor"];
        const saved = await must(api.PATCH("/api/v1/monitors/{id}", { params: { path: { id: initial.id } }, body: patch }));
        onSaved(saved);
      } else {
        const created = await must(api.POST("/api/v1/monitors", { body: body as Schemas["CreateMonitor"] }));
        onSaved(created.monitor, created.webhook_secret);
      }
    } catch (err) {
      setError(err instanceof ApiError ? err : new ApiError(0, "error", "The server cannot be reached."));
    }
  }

  const invalid = (field: string) => (error?.field === field ? true : undefined);
  return (
    <form className="card check-form" onSubmit={submit} noValidate aria-label={title}>
      <h2>{title}</h2>
      <div className="options">
        <label>Name <input name="name" value={name} onChange={(e) => setName(e.target.value)} aria-invalid={invalid("name")} /></label>
        <label>Type
          <select name="type" value={kind} onChange={(e) => setKind(e.target.value as Kind)}>
            <option value="http">HTTP</option><option value="ping">PING</option><option value="tcp">TCP</option><option value="dns">DNS</option><option value="traceroute">TRACEROUTE</option><option value="mtr">MTR</option>
          </select>
        </label>
        <label className="wide">Target <input name="target" value={target} onChange={(e) => setTarget(e.target.value)} aria-invalid={invalid("check.target")} placeholder={kind === "http" ? "https://example.com/" : "example.com"} /></label>
        <label>Every (seconds) <input name="interval_secs" type="number" min={10} max={86400} value={interval} onChange={(e) => setIntervalSecs(e.target.value)} aria-invalid={invalid("interval_secs")} /></label>
        <label>Alert when at least <input name="min_failing_agents" type="number" min={1} value={minFailing} onChange={(e) => setMinFailing(e.target.value)} /></label>
        <label>agents fail in … runs <input name="for_runs" type="number" min={1} max={100} value={forRuns} onChange={(e) => setForRuns(e.target.value)} /></label>
        <ChannelsEditor rows={channels} onChange={setChannels} invalidField={error?.field} />
      </div>
      <CheckOptions kind={kind} values={values} onChange={setValues} errorField={error?.field?.replace(/^check\./, "")} />
      <AgentPicker agents={agents} value={selection} onChange={setSelection} admin={false} />
      {error && <p className="error-text" role="alert">{error.message}</p>}
      <div className="row">
        <button type="submit">{initial ? "Save monitor" : "Create monitor"}</button>
        {onCancel && <button type="button" className="secondary" onClick={onCancel}>Cancel</button>}
      </div>
    </form>
  );
}

export function MonitorsPage() {
  const [params, setParams] = useSearchParams();
  const navigate = useNavigate();
  const [page, setPage] = useState<Schemas["MonitorPage"] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [creating, setCreating] = useState(false);
  const state = params.get("state") ?? "";
  const q = params.get("q") ?? "";
  const after = params.get("after") ?? undefined;
  useTitle("Monitors");

  const load = useCallback(() => {
    must(api.GET("/api/v1/monitors", { params: { query: { limit: 50, after, state: (state || undefined) as Schemas["MonitorState"] | undefined, q: q || undefined } } }))
      .then(setPage)
      .catch((err) => setError(err instanceof ApiError ? err.message : "Monitors could not be loaded."));
  }, [after, state, q]);

  useEffect(() => {
    load();
    const t = setInterval(load, 5000);
    return () => clearInterval(t);
  }, [load]);

  const set = (key: string, value: string) => {
    const next = new URLSearchParams(params);
    // A new filter starts from the first page.
    if (key !== "after") next.delete("after");
    if (value) next.set(key, value);
    else next.delete(key);
    setParams(next);
  };

  return (
    <>
      {creating ? (
        <MonitorForm
          onSaved={(m, secret) => {
            setCreating(false);
            // The secret is shown once, on the monitor's page.
            navigate(`/monitors/${m.id}`, { state: m.notify.length ? { secret } : null });
          }}
          onCancel={() => setCreating(false)}
        />
      ) : null}
      <section className="card">
        <h1>Monitors</h1>
        <div className="filters">
          <label>State
            <select name="state" value={state} onChange={(e) => set("state", e.target.value)}>
              <option value="">any</option><option value="down">down</option><option value="up">up</option><option value="pending">pending</option><option value="paused">paused</option>
            </select>
          </label>
          <label>Name or target <input name="q" defaultValue={q} onKeyDown={(e) => e.key === "Enter" && set("q", e.currentTarget.value)} onBlur={(e) => set("q", e.target.value)} /></label>
          {!creating && <button type="button" onClick={() => setCreating(true)}>New monitor</button>}
        </div>
        {error && <p className="error-text" role="alert">{error}</p>}
        {page && page.monitors.length === 0 && <p className="empty">{state || q ? "No monitors match." : "No monitors yet. A monitor runs a check again and again and tells you when it fails."}</p>}
        {page && page.monitors.length > 0 && (
          <table tabIndex={0} className="list" data-testid="monitors">
            <caption className="sr-only">{page.total} monitors</caption>
            <thead>
              <tr><th>State</th><th>Name</th><th>Check</th><th>Every</th><th>Uptime 24 h</th><th>7 d</th><th>Latency 24 h</th><th>Last run</th><th>Next run</th></tr>
            </thead>
            <tbody>
              {page.monitors.map((m: Monitor) => (
                <tr key={m.id} data-monitor={m.name}>
                  <td><StatePill state={m.state} /></td>
                  <td><Link to={`/monitors/${m.id}`}>{m.name}</Link></td>
                  <td><span className="badge">{m.check.type.toUpperCase()}</span> {m.check.target}</td>
                  <td>{m.interval_secs} s</td>
                  <td data-testid="uptime-24h">{percent(m.stats?.uptime_24h)}</td>
                  <td>{percent(m.stats?.uptime_7d)}</td>
                  <td><HoursLine monitor={m} /></td>
                  <td>{m.last_check_id ? <Link to={`/checks/${m.last_check_id}`}>{when(m.last_run_at)}</Link> : "—"}</td>
                  <td>{m.paused ? "paused" : when(m.next_run_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        {page && (
          <p className="muted">
            {page.total} monitor{page.total === 1 ? "" : "s"}
            {page.next_after && (
              <>
                {" "}· <button type="button" className="link" onClick={() => set("after", page.next_after!)}>Next page</button>
              </>
            )}
          </p>
        )}
      </section>
    </>
  );
}
