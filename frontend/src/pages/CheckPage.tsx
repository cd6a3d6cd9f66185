import { useEffect, useRef, useState, type FormEvent, type KeyboardEvent } from "react";
import { useNavigate, useSearchParams } from "react-router";
import { ApiError } from "../api/auth";
import { api, formSpec, must, type Agent } from "../api/client";
import { useSession } from "../session";
import { AgentPicker, EVERYONE, selectionBody, type PlaceKey, type Selection } from "../components/AgentPicker";
import { CheckOptions, FIELDS, buildOptions, defaultsFor, optionErrors, optionsToValues, type Kind, type Values } from "../components/CheckOptions";
import { useTitle } from "../components/useTitle";

const KINDS: { kind: Kind; label: string; placeholder: string }[] = [
  { kind: "ping", label: "PING", placeholder: "example.com or 192.0.2.1" },
  { kind: "http", label: "HTTP", placeholder: "https://example.com/" },
  { kind: "tcp", label: "TCP", placeholder: "example.com" },
  { kind: "dns", label: "DNS", placeholder: "example.com" },
  { kind: "traceroute", label: "TRACEROUTE", placeholder: "example.com or 192.0.2.1" },
  { kind: "mtr", label: "MTR", placeholder: "example.com or 192.0.2.1" },
];

/** Client-side checks, so mistakes show before a round trip. */
export function validateTarget(kind: Kind, target: string): string | null {
  const t = target.trim();
  if (!t) return "Enter a target.";
  if (kind === "http") return /^https?:\/\/[^\s/]+/i.test(t) ? null : "Enter a URL starting with http:// or https://.";
  if (/[\s/]/.test(t)) return "Enter a host name or an IP address, without a scheme or path.";
  return null;
}

const isKind = (k: string | null): k is Kind => KINDS.some((x) => x.kind === k);

/** The form as a query string (`/?type=tcp&target=…&port=8080&agent=…`), so Back, a
 * bookmark and "Edit and run again" bring it back. Only values that differ from the
 * defaults are written. */
export function formQuery(kind: string, target: string, values: Values, sel: Selection = EVERYONE): string {
  const q = new URLSearchParams();
  q.set("type", kind);
  if (target) q.set("target", target);
  if (!isKind(kind)) return q.toString();
  const defaults = defaultsFor(kind);
  for (const f of FIELDS[kind]) {
    const v = values[f.name];
    if (v === undefined || v === "" || v === defaults[f.name]) continue;
    q.set(f.name, String(v));
  }
  if (sel.mode === "agents") for (const a of sel.agents) q.append("agent", a);
  if (sel.mode === "places") for (const p of sel.places) q.append("from", `${p.key}:${p.value}:${p.limit}`);
  if (sel.limit) q.set("limit", String(sel.limit));
  return q.toString();
}

/** The query string that reopens the form with an existing check's settings and agents. */
export function editQuery(type: string, target: string, options: Record<string, unknown>, agentNames: string[]): string {
  const values = isKind(type) ? optionsToValues(type, options) : {};
  return formQuery(type, target, values, agentNames.length ? { ...EVERYONE, mode: "agents", agents: agentNames } : EVERYONE);
}

/** The form's state from the query string (the inverse of {@link formQuery}). */
export function formFromQuery(q: URLSearchParams): { kind: Kind; target: string; values: Values; selection: Selection } {
  const type = q.get("type");
  const kind: Kind = isKind(type) ? type : "ping";
  const values: Values = { ...defaultsFor(kind) };
  for (const f of FIELDS[kind]) {
    const v = q.get(f.name);
    if (v === null) continue;
    values[f.name] = f.kind === "checkbox" ? v === "true" : v;
  }
  const agents = q.getAll("agent");
  const places = q
    .getAll("from")
    .map((s) => s.split(":"))
    .filter((p) => p.length >= 2 && ["country", "region", "asn", "label"].includes(p[0]))
    .map(([key, value, limit]) => ({ key: key as PlaceKey, value, limit: Number(limit) || 1 }));
  const limit = Number(q.get("limit")) || null;
  const selection: Selection = agents.length ? { mode: "agents", places: [], agents, limit } : places.length ? { mode: "places", places, agents: [], limit } : { ...EVERYONE, limit };
  return { kind, target: q.get("target") ?? "", values, selection };
}

export function CheckPage() {
  const session = useSession();
  const admin = session?.user.role === "admin";
  const navigate = useNavigate();
  const [params, setParams] = useSearchParams();
  const [initial] = useState(() => formFromQuery(params));
  const [kind, setKind] = useState<Kind>(initial.kind);
  const [target, setTarget] = useState(initial.target);
  const [values, setValues] = useState<Values>(initial.values);
  const [errorField, setErrorField] = useState<string | undefined>(undefined);
  const [agents, setAgents] = useState<Agent[]>([]);
  const [selection, setSelection] = useState<Selection>(initial.selection);
  const [touched, setTouched] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const tabs = useRef<(HTMLButtonElement | null)[]>([]);
  const errorBox = useRef<HTMLParagraphElement>(null);
  useTitle("Check");

  useEffect(() => {
    must(api.GET("/api/v1/agents")).then(setAgents).catch(() => setAgents([]));
  }, []);

  // The URL follows the form (replacing the entry, so Back leaves the page, not each keystroke).
  const query = formQuery(kind, target.trim(), values, selection);
  useEffect(() => {
    if (params.toString() !== query) setParams(new URLSearchParams(query), { replace: true });
  }, [query, params, setParams]);

  useEffect(() => {
    if (error) errorBox.current?.focus();
  }, [error]);

  const targetError = validateTarget(kind, target);
  const fieldErrors = optionErrors(kind, values);
  const firstFieldError = Object.keys(fieldErrors)[0];

  async function submit(e: FormEvent) {
    e.preventDefault();
    setTouched(true);
    if (targetError || firstFieldError) {
      // Focus the first field that needs fixing, where its message is.
      const name = targetError ? "target" : firstFieldError;
      document.querySelector<HTMLElement>(`.check-form [name="${name}"]`)?.focus();
      return;
    }
    const options = buildOptions(kind, values);
    setBusy(true);
    setError(null);
    setErrorField(undefined);
    try {
      const created = await must(
        api.POST("/api/v1/checks", {
          body: { ...formSpec(kind, options), target: target.trim(), ...selectionBody(selection) },
        }),
      );
      navigate(`/checks/${created.id}`);
    } catch (err) {
      setError(err instanceof ApiError ? err.message : "The server cannot be reached.");
      setErrorField(err instanceof ApiError ? err.field : undefined);
    } finally {
      setBusy(false);
    }
  }

  // Options that mean different things per kind (protocol, port) start from the new kind's
  // defaults; the rest (timeouts, IP version, the target) carry over.
  function switchKind(k: Kind) {
    const d = defaultsFor(k);
    setValues((v) => ({ ...v, protocol: d.protocol, port: k === "tcp" || k === "traceroute" || k === "mtr" ? d.port : v.port }));
    setKind(k);
  }

  // WAI-ARIA tabs: arrows move between them (and select), Home/End jump to the ends.
  function onTabKey(e: KeyboardEvent<HTMLButtonElement>, i: number) {
    const n = KINDS.length;
    const to = e.key === "ArrowRight" ? (i + 1) % n : e.key === "ArrowLeft" ? (i - 1 + n) % n : e.key === "Home" ? 0 : e.key === "End" ? n - 1 : -1;
    if (to < 0) return;
    e.preventDefault();
    switchKind(KINDS[to].kind);
    tabs.current[to]?.focus();
  }

  const showTargetError = touched && targetError;
  return (
    <form className="card check-form" onSubmit={submit} noValidate aria-labelledby="check-title">
      <h1 id="check-title">Check a host from many places</h1>
      <div className="tabs" role="tablist" aria-label="Check type">
        {KINDS.map((k, i) => (
          <button
            type="button"
            role="tab"
            id={`tab-${k.kind}`}
            aria-selected={kind === k.kind}
            aria-controls="check-panel"
            tabIndex={kind === k.kind ? 0 : -1}
            key={k.kind}
            ref={(el) => {
              tabs.current[i] = el;
            }}
            className={kind === k.kind ? "tab active" : "tab"}
            onClick={() => switchKind(k.kind)}
            onKeyDown={(e) => onTabKey(e, i)}
          >
            {k.label}
          </button>
        ))}
      </div>
      <div role="tabpanel" id="check-panel" aria-labelledby={`tab-${kind}`}>
        <div className="row">
          <input
            aria-label="Target"
            name="target"
            className={showTargetError ? "invalid" : ""}
            aria-invalid={showTargetError ? true : errorField === "target" || undefined}
            aria-describedby={showTargetError ? "target-error" : errorField === "target" ? "check-error" : undefined}
            placeholder={KINDS.find((k) => k.kind === kind)!.placeholder}
            value={target}
            onChange={(e) => setTarget(e.target.value)}
            // Leaving an empty field (to pick a tab, say) is not a mistake yet.
            onBlur={() => target.trim() && setTouched(true)}
            autoFocus
          />
          <button type="submit" disabled={busy}>{busy ? "Starting…" : "Check"}</button>
        </div>
        {showTargetError && <p className="field-error" id="target-error">{targetError}</p>}
        {error && (
          <p className="error-text" role="alert" id="check-error" tabIndex={-1} ref={errorBox}>
            {error}
          </p>
        )}
        <CheckOptions kind={kind} values={values} onChange={setValues} errorField={errorField} errors={touched ? fieldErrors : {}} />
        <AgentPicker agents={agents} value={selection} onChange={setSelection} admin={admin} />
      </div>
    </form>
  );
}
