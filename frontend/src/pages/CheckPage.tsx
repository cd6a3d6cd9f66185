import { useEffect, useState, type FormEvent } from "react";
import { useNavigate } from "react-router";
import { ApiError } from "../api/auth";
import { api, must, type Agent, type Schemas } from "../api/client";
import { useSession } from "../session";
import { AgentPicker, EVERYONE, selectionBody, type Selection } from "../components/AgentPicker";
import { CheckOptions, DEFAULTS, buildOptions, type Kind, type Values } from "../components/CheckOptions";

const KINDS: { kind: Kind; label: string; placeholder: string }[] = [
  { kind: "ping", label: "PING", placeholder: "example.com or 192.0.2.1" },
  { kind: "http", label: "HTTP", placeholder: "https://example.com/" },
  { kind: "tcp", label: "TCP", placeholder: "example.com" },
  { kind: "dns", label: "DNS", placeholder: "example.com" },
];

/** Client-side checks, so mistakes show before a round trip. */
export function validateTarget(kind: Kind, target: string): string | null {
  const t = target.trim();
  if (!t) return "Enter a target.";
  if (kind === "http") return /^https?:\/\/[^\s/]+/i.test(t) ? null : "Enter a URL starting with http:// or https://.";
  if (/[\s/]/.test(t)) return "Enter a host name or an IP address, without a scheme or path.";
  return null;
}

export function CheckPage() {
  const session = useSession();
  const admin = session?.user.role === "admin";
  const navigate = useNavigate();
  const [kind, setKind] = useState<Kind>("ping");
  const [target, setTarget] = useState("");
  const [values, setValues] = useState<Values>(DEFAULTS);
  const [errorField, setErrorField] = useState<string | undefined>(undefined);
  const [agents, setAgents] = useState<Agent[]>([]);
  const [selection, setSelection] = useState<Selection>(EVERYONE);
  const [touched, setTouched] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    must(api.GET("/api/v1/agents")).then(setAgents).catch(() => setAgents([]));
  }, []);

  const targetError = validateTarget(kind, target);
  const port = Number(values.port);
  const portError = kind === "tcp" && (!Number.isInteger(port) || port < 1 || port > 65535) ? "Port must be 1–65535." : null;

  async function submit(e: FormEvent) {
    e.preventDefault();
    setTouched(true);
    if (targetError || portError) return;
    const options = buildOptions(kind, values);
    setBusy(true);
    setError(null);
    setErrorField(undefined);
    try {
      const created = await must(
        api.POST("/api/v1/checks", {
          // The generated types make every option with a default required; the server fills
          // in what is left out.
          body: { type: kind, target: target.trim(), options: options as unknown as Schemas["CreateCheck"]["options"], ...selectionBody(selection) },
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

  return (
    <form className="card check-form" onSubmit={submit} noValidate>
      <div className="tabs" role="tablist">
        {KINDS.map((k) => (
          <button type="button" role="tab" aria-selected={kind === k.kind} key={k.kind} className={kind === k.kind ? "tab active" : "tab"} onClick={() => setKind(k.kind)}>
            {k.label}
          </button>
        ))}
      </div>
      <div className="row">
        <input
          aria-label="Target"
          name="target"
          className={touched && targetError ? "invalid" : ""}
          placeholder={KINDS.find((k) => k.kind === kind)!.placeholder}
          value={target}
          onChange={(e) => setTarget(e.target.value)}
          onBlur={() => setTouched(true)}
          autoFocus
        />
        <button type="submit" disabled={busy}>{busy ? "Starting…" : "Check"}</button>
      </div>
      {touched && (targetError || portError) && <p className="error-text">{targetError ?? portError}</p>}
      <CheckOptions kind={kind} values={values} onChange={setValues} errorField={errorField} />
      <AgentPicker agents={agents} value={selection} onChange={setSelection} admin={admin} />
      {error && <p className="error-text" role="alert" id="check-error">{error}</p>}
    </form>
  );
}
