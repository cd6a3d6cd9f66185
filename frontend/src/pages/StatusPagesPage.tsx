// Status pages: the list, and an editor — pick monitors, group them, name and reorder them,
// preview the draft, then open the public page at /status/{slug}; plan maintenance for a
// whole page.

import { useCallback, useEffect, useState, type FormEvent } from "react";
import { ApiError } from "../api/auth";
import { api, must, type Schemas } from "../api/client";
import { MaintenancePanel } from "../components/MaintenancePanel";
import { useTitle } from "../components/useTitle";
import { StatePill } from "./MonitorsPage";

type Page = Schemas["StatusPage"];
type Monitor = Schemas["Monitor"];
type Group = Schemas["StatusGroup"];

/** Moves item `i` of `list` by `by` places (kept inside the list). */
export function move<T>(list: T[], i: number, by: number): T[] {
  const j = Math.min(Math.max(i + by, 0), list.length - 1);
  if (i === j) return list;
  const out = [...list];
  const [item] = out.splice(i, 1);
  out.splice(j, 0, item);
  return out;
}

function Editor({ initial, monitors, onSaved, onCancel }: { initial?: Page; monitors: Monitor[]; onSaved: () => void; onCancel: () => void }) {
  const [slug, setSlug] = useState(initial?.slug ?? "");
  const [title, setTitle] = useState(initial?.title ?? "");
  const [description, setDescription] = useState(initial?.description ?? "");
  const [isPublic, setPublic] = useState(initial?.public ?? true);
  const [showTargets, setShowTargets] = useState(initial?.show_targets ?? false);
  const [groups, setGroups] = useState<Group[]>(initial?.groups ?? [{ name: "Services", monitors: [] }]);
  const [error, setError] = useState<ApiError | null>(null);
  const byId = new Map(monitors.map((m) => [m.id, m]));
  const used = new Set(groups.flatMap((g) => g.monitors.map((m) => m.id)));
  const setGroup = (i: number, g: Group) => setGroups(groups.map((x, j) => (j === i ? g : x)));
  const heading = initial ? `Edit ${initial.title}` : "New status page";

  async function submit(e: FormEvent) {
    e.preventDefault();
    setError(null);
    const body = { slug: slug.trim(), title: title.trim(), description: description.trim() || null, public: isPublic, show_targets: showTargets, groups };
    try {
      if (initial) await must(api.PATCH("/api/v1/status-pages/{id}", { params: { path: { id: initial.id } }, body }));
      else await must(api.POST("/api/v1/status-pages", { body: { ...body, description: body.description ?? undefined } }));
      onSaved();
    } catch (err) {
      setError(err instanceof ApiError ? err : new ApiError(0, "error", "The server cannot be reached."));
    }
  }

  const invalid = (field: string) => (error?.field === field ? true : undefined);
  return (
    <form className="card check-form" onSubmit={submit} noValidate aria-label={heading}>
      <h2>{heading}</h2>
      <div className="options">
        <label>Address /status/<input name="slug" value={slug} onChange={(e) => setSlug(e.target.value.toLowerCase())} aria-invalid={invalid("slug")} placeholder="acme" pattern="[a-z0-9-]{3,40}" /></label>
        <label>Title <input name="title" value={title} onChange={(e) => setTitle(e.target.value)} aria-invalid={invalid("title")} placeholder="Acme status" /></label>
        <label className="wide">Description <input name="description" value={description} onChange={(e) => setDescription(e.target.value)} /></label>
        <label className="check"><input type="checkbox" name="public" checked={isPublic} onChange={(e) => setPublic(e.target.checked)} /> Public (readable without login)</label>
        <label className="check"><input type="checkbox" name="show_targets" checked={showTargets} onChange={(e) => setShowTargets(e.target.checked)} /> Show targets</label>
      </div>
      {groups.map((g, gi) => (
        <fieldset className="group-editor" key={gi}>
          <legend>Group {gi + 1}</legend>
          <div className="row">
            <label className="grow">Name <input name={`group-${gi}`} value={g.name} onChange={(e) => setGroup(gi, { ...g, name: e.target.value })} aria-invalid={invalid(`groups[${gi}].name`)} /></label>
            <button type="button" className="secondary" onClick={() => setGroups(move(groups, gi, -1))} disabled={gi === 0} aria-label={`Move group ${g.name} up`}>↑</button>
            <button type="button" className="secondary" onClick={() => setGroups(move(groups, gi, 1))} disabled={gi === groups.length - 1} aria-label={`Move group ${g.name} down`}>↓</button>
            <button type="button" className="secondary" onClick={() => setGroups(groups.filter((_, j) => j !== gi))}>Remove group</button>
          </div>
          <ul className="status-list">
            {g.monitors.map((m, mi) => {
              const name = byId.get(m.id)?.name ?? m.id;
              return (
                <li className="row" key={m.id} data-testid="page-monitor">
                  <span className="grow">{name}</span>
                  <label>Shown as <input name={`display-${gi}-${mi}`} value={m.display_name ?? ""} placeholder={name} onChange={(e) => setGroup(gi, { ...g, monitors: g.monitors.map((x, j) => (j === mi ? { ...x, display_name: e.target.value || undefined } : x)) })} /></label>
                  <button type="button" className="secondary" onClick={() => setGroup(gi, { ...g, monitors: move(g.monitors, mi, -1) })} disabled={mi === 0} aria-label={`Move ${name} up`}>↑</button>
                  <button type="button" className="secondary" onClick={() => setGroup(gi, { ...g, monitors: move(g.monitors, mi, 1) })} disabled={mi === g.monitors.length - 1} aria-label={`Move ${name} down`}>↓</button>
                  <button type="button" className="secondary" onClick={() => setGroup(gi, { ...g, monitors: g.monitors.filter((_, j) => j !== mi) })} aria-label={`Remove ${name}`}>Remove</button>
                </li>
              );
            })}
          </ul>
          <label>
            Add a monitor
            <select name={`add-${gi}`} value="" onChange={(e) => e.target.value && setGroup(gi, { ...g, monitors: [...g.monitors, { id: e.target.value }] })}>
              <option value="">Choose…</option>
              {monitors.filter((m) => !used.has(m.id)).map((m) => <option key={m.id} value={m.id}>{m.name}</option>)}
            </select>
          </label>
        </fieldset>
      ))}
      <button type="button" className="secondary" onClick={() => setGroups([...groups, { name: `Group ${groups.length + 1}`, monitors: [] }])}>Add group</button>
      <section aria-label="Preview" className="card" data-testid="preview">
        <h3>Preview: {title || "(no title)"}</h3>
        {groups.map((g, gi) => (
          <div key={gi}>
            <b>{g.name}</b>
            <ul>
              {g.monitors.map((m) => <li key={m.id}>{m.display_name || byId.get(m.id)?.name} <StatePill state={byId.get(m.id)?.state ?? "pending"} /></li>)}
            </ul>
          </div>
        ))}
      </section>
      {error && <p className="error-text" role="alert">{error.message}</p>}
      <div className="row">
        <button type="submit">{initial ? "Save page" : "Create page"}</button>
        <button type="button" className="secondary" onClick={onCancel}>Cancel</button>
      </div>
    </form>
  );
}

export function StatusPagesPage() {
  const [pages, setPages] = useState<Page[] | null>(null);
  const [monitors, setMonitors] = useState<Monitor[]>([]);
  const [editing, setEditing] = useState<Page | "new" | null>(null);
  const [planning, setPlanning] = useState<Page | null>(null);
  const [error, setError] = useState<string | null>(null);
  useTitle("Status pages");

  const load = useCallback(async () => {
    try {
      setPages(await must(api.GET("/api/v1/status-pages")));
      setMonitors((await must(api.GET("/api/v1/monitors", { params: { query: { limit: 200 } } }))).monitors);
    } catch (err) {
      setError(err instanceof ApiError ? err.message : "The server cannot be reached.");
    }
  }, []);
  useEffect(() => void load(), [load]);

  async function remove(p: Page) {
    if (!window.confirm(`Delete the status page ${p.title}? Its maintenance windows go with it.`)) return;
    await must(api.DELETE("/api/v1/status-pages/{id}", { params: { path: { id: p.id } } }));
    await load();
  }

  return (
    <section className="card">
      <h1>Status pages</h1>
      <p className="muted">Public pages show your monitors' state, 90 days of uptime and the places that see them down — without agent names or addresses.</p>
      {error && <p className="error-text">{error}</p>}
      {editing ? (
        <Editor initial={editing === "new" ? undefined : editing} monitors={monitors} onCancel={() => setEditing(null)} onSaved={() => { setEditing(null); void load(); }} />
      ) : (
        <button type="button" onClick={() => setEditing("new")}>New status page</button>
      )}
      {pages && pages.length === 0 && <p className="empty">No status pages yet.</p>}
      {pages && pages.length > 0 && (
        <table tabIndex={0} className="list" data-testid="status-pages">
          <thead>
            <tr><th>Title</th><th>Address</th><th>Monitors</th><th>Visibility</th><th><span className="sr-only">Actions</span></th></tr>
          </thead>
          <tbody>
            {pages.map((p) => (
              <tr key={p.id}>
                <td>{p.title}</td>
                <td><a href={`/status/${p.slug}`} target="_blank" rel="noreferrer">/status/{p.slug}</a></td>
                <td>{p.groups.reduce((n, g) => n + g.monitors.length, 0)}</td>
                <td>{p.public ? "public" : "private"}</td>
                <td className="row">
                  <button type="button" className="secondary" onClick={() => setEditing(p)}>Edit</button>
                  <button type="button" className="secondary" onClick={() => setPlanning(planning?.id === p.id ? null : p)} aria-expanded={planning?.id === p.id}>Maintenance</button>
                  <button type="button" className="secondary" onClick={() => void remove(p)}>Delete</button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {planning && (
        <section aria-label={`Maintenance of ${planning.title}`} data-testid="page-maintenance">
          <MaintenancePanel covers={{ page: planning.id }} />
        </section>
      )}
    </section>
  );
}
