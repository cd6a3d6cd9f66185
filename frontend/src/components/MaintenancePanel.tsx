// The maintenance windows of a monitor (its own and its status pages') or of a status page,
// and a form to plan one — once, or every week (times in UTC).

import { useCallback, useEffect, useState, type FormEvent } from "react";
import { ApiError } from "../api/auth";
import { api, must, type Schemas } from "../api/client";

type Window = Schemas["Maintenance"];
const DAYS: Schemas["Weekday"][] = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];

export function describeWindow(w: Window): string {
  if ("once" in w.schedule) return `${new Date(w.schedule.once.starts_at).toLocaleString()} – ${new Date(w.schedule.once.ends_at).toLocaleString()}`;
  const wk = w.schedule.weekly;
  return `every ${wk.day} at ${wk.start} UTC for ${wk.duration_minutes} min`;
}

/** `datetime-local` input value (local time) → RFC 3339. */
function fromLocal(v: string): string {
  return new Date(v).toISOString();
}

/** What the windows are for: one monitor, or every monitor on a status page. */
export type Covered = { monitor: string } | { page: string };

export function MaintenancePanel({ covers }: { covers: Covered }) {
  const key = "monitor" in covers ? `m:${covers.monitor}` : `p:${covers.page}`;
  const [windows, setWindows] = useState<Window[]>([]);
  const [mode, setMode] = useState<"once" | "weekly">("once");
  const [from, setFrom] = useState("");
  const [until, setUntil] = useState("");
  const [day, setDay] = useState<Schemas["Weekday"]>("sunday");
  const [start, setStart] = useState("02:00");
  const [minutes, setMinutes] = useState("60");
  const [note, setNote] = useState("");
  const [message, setMessage] = useState<string | null>(null);

  const load = useCallback(async () => {
    const all = await must(api.GET("/api/v1/maintenance"));
    const [kind, id] = [key.slice(0, 1), key.slice(2)];
    setWindows(all.filter((w) => (kind === "m" ? w.monitors.includes(id) : w.status_page === id)));
  }, [key]);

  useEffect(() => {
    load().catch(() => setWindows([]));
  }, [load]);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setMessage(null);
    const when =
      mode === "once"
        ? { starts_at: from ? fromLocal(from) : new Date().toISOString(), ends_at: until ? fromLocal(until) : undefined }
        : { weekly: { day, start, duration_minutes: Number(minutes) } };
    try {
      const what = "monitor" in covers ? { monitors: [covers.monitor] } : { status_page: covers.page };
      await must(api.POST("/api/v1/maintenance", { body: { ...what, note: note.trim(), ...when } as Schemas["CreateMaintenance"] }));
      setMessage("Maintenance planned.");
      setNote("");
      await load();
    } catch (err) {
      setMessage(err instanceof ApiError ? err.message : "The server cannot be reached.");
    }
  }

  async function remove(id: string) {
    await must(api.DELETE("/api/v1/maintenance/{id}", { params: { path: { id } } }));
    await load();
  }

  return (
    <>
      <h2>Maintenance</h2>
      <p className="muted">During a window runs go on, but no incident opens and nothing is sent.</p>
      {windows.length === 0 && <p className="empty">No windows.</p>}
      <ul className="results" data-testid="maintenance">
        {windows.map((w) => (
          <li key={w.id} className={`result ${w.active ? "warn" : ""}`}>
            <b>{w.active ? "On now" : "Planned"}</b> · {describeWindow(w)}
            {w.status_page && "monitor" in covers && " · from a status page"}
            {w.note && ` · ${w.note}`}{" "}
            <button type="button" className="link" onClick={() => void remove(w.id)} aria-label={`Delete the window ${describeWindow(w)}`}>
              Delete
            </button>
          </li>
        ))}
      </ul>
      <form className="options" onSubmit={submit} aria-label="Plan maintenance">
        <label>
          Kind
          <select name="maintenance-mode" value={mode} onChange={(e) => setMode(e.target.value as "once" | "weekly")}>
            <option value="once">Once</option>
            <option value="weekly">Every week</option>
          </select>
        </label>
        {mode === "once" ? (
          <>
            <label>From <input type="datetime-local" name="maintenance-from" value={from} onChange={(e) => setFrom(e.target.value)} /></label>
            <label>Until <input type="datetime-local" name="maintenance-until" value={until} onChange={(e) => setUntil(e.target.value)} required /></label>
          </>
        ) : (
          <>
            <label>
              Day
              <select name="maintenance-day" value={day} onChange={(e) => setDay(e.target.value as Schemas["Weekday"])}>
                {DAYS.map((d) => <option key={d} value={d}>{d}</option>)}
              </select>
            </label>
            <label>Start (UTC) <input type="time" name="maintenance-start" value={start} onChange={(e) => setStart(e.target.value)} /></label>
            <label>Minutes <input type="number" min={1} max={10080} name="maintenance-minutes" value={minutes} onChange={(e) => setMinutes(e.target.value)} /></label>
          </>
        )}
        <label className="wide">Note <input name="maintenance-note" value={note} maxLength={500} onChange={(e) => setNote(e.target.value)} placeholder="Database upgrade" /></label>
        <div className="row">
          <button type="submit">Plan maintenance</button>
        </div>
        {message && <p role="status">{message}</p>}
      </form>
    </>
  );
}
