// Every option of every check type, and its expectations, as form fields. Each control's
// `name` is the option's path in the API (`timeout_ms`, `expect.body_regex`), so the
// browser suite can compare the form with the OpenAPI schema.

import LIMITS from "../api/limits.json";

export type Kind = "ping" | "http" | "tcp" | "dns" | "traceroute" | "mtr";

interface Field {
  name: string;
  label: string;
  kind: "number" | "text" | "select" | "checkbox" | "lines" | "list";
  choices?: { value: string; label: string }[];
  placeholder?: string;
  /** Shown at once (the rest sit under "More options" or "Expectations"). */
  main?: boolean;
  /** The API's range for a number (checked before any request). */
  min?: number;
  max?: number;
}

const IP: Field = { name: "ip_version", label: "IP version", kind: "select", choices: [{ value: "", label: "any" }, { value: "4", label: "IPv4" }, { value: "6", label: "IPv6" }], main: true };
const TRACE_PROTOCOLS = [
  { value: "icmp", label: "ICMP echo" },
  { value: "udp", label: "UDP" },
  { value: "tcp", label: "TCP SYN" },
];
const REACHED = [
  { value: "", label: "no expectation" },
  { value: "true", label: "yes" },
  { value: "false", label: "no (it must not)" },
];
const RECORDS = ["A", "AAAA", "CNAME", "MX", "NS", "TXT", "SOA", "PTR", "SRV", "CAA"];

const OWN_FIELDS: Record<Kind, Field[]> = {
  ping: [
    { name: "count", label: "Packets", kind: "number", main: true },
    IP,
    { name: "interval_ms", label: "Interval (ms)", kind: "number" },
    { name: "timeout_ms", label: "Timeout per reply (ms)", kind: "number" },
    { name: "expect.max_loss_pct", label: "Most loss (%)", kind: "number" },
    { name: "expect.max_avg_rtt_ms", label: "Slowest average RTT (ms)", kind: "number" },
  ],
  tcp: [
    { name: "port", label: "Port", kind: "number", main: true },
    IP,
    { name: "timeout_ms", label: "Timeout (ms)", kind: "number" },
    { name: "expect.max_connect_ms", label: "Slowest connect (ms)", kind: "number" },
  ],
  http: [
    { name: "method", label: "Method", kind: "select", choices: ["GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"].map((m) => ({ value: m, label: m })), main: true },
    { name: "follow_redirects", label: "Follow redirects", kind: "checkbox", main: true },
    IP,
    { name: "version", label: "HTTP version", kind: "select", choices: [{ value: "", label: "any" }, { value: "http1.1", label: "HTTP/1.1" }, { value: "http2", label: "HTTP/2" }] },
    { name: "headers", label: "Request headers (one `Name: value` per line)", kind: "lines", placeholder: "Accept-Language: de" },
    { name: "body", label: "Request body", kind: "text", placeholder: "{\"ping\": true}" },
    { name: "timeout_ms", label: "Timeout (ms)", kind: "number" },
    { name: "verify_tls", label: "Verify the certificate", kind: "checkbox" },
    { name: "expect.status", label: "Accepted statuses (comma-separated)", kind: "list", placeholder: "2xx, 301" },
    { name: "expect.body_contains", label: "Body contains", kind: "text" },
    { name: "expect.body_regex", label: "Body matches (regex)", kind: "text" },
    { name: "expect.header", label: "Headers match (one `name=regex` per line)", kind: "lines", placeholder: "content-type=^text/html" },
    { name: "expect.body_not_regex", label: "Body must not match (regex)", kind: "text" },
    { name: "expect.header_not", label: "Headers must not match (one `name=regex` per line)", kind: "lines", placeholder: "server=^Apache" },
    { name: "expect.tls", label: "Answer over TLS", kind: "select", choices: [{ value: "", label: "either" }, { value: "true", label: "must" }, { value: "false", label: "must not" }] },
    { name: "expect.versions", label: "Accepted HTTP versions (comma-separated)", kind: "list", placeholder: "HTTP/1.1, HTTP/2.0" },
    { name: "expect.cert_min_days", label: "Certificate valid at least (days)", kind: "number" },
    { name: "expect.max_total_ms", label: "Slowest total (ms)", kind: "number" },
  ],
  traceroute: [
    { name: "protocol", label: "Protocol", kind: "select", choices: TRACE_PROTOCOLS, main: true },
    { name: "port", label: "Port (udp, tcp)", kind: "number", main: true, placeholder: "33434 / 80" },
    IP,
    { name: "max_hops", label: "Most hops", kind: "number" },
    { name: "timeout_ms", label: "Timeout per round (ms)", kind: "number" },
    { name: "expect.reached", label: "Target must answer", kind: "select", choices: REACHED },
  ],
  mtr: [
    { name: "protocol", label: "Protocol", kind: "select", choices: TRACE_PROTOCOLS, main: true },
    { name: "port", label: "Port (udp, tcp)", kind: "number", main: true, placeholder: "33434 / 80" },
    { name: "packets", label: "Packets per hop", kind: "number", main: true },
    { name: "interval_ms", label: "Between rounds (ms)", kind: "number" },
    IP,
    { name: "max_hops", label: "Most hops", kind: "number" },
    { name: "timeout_ms", label: "Timeout per round (ms)", kind: "number" },
    { name: "expect.reached", label: "Target must answer", kind: "select", choices: REACHED },
  ],
  dns: [
    { name: "record_type", label: "Record", kind: "select", choices: RECORDS.map((r) => ({ value: r, label: r })), main: true },
    { name: "resolver", label: "Resolver", kind: "text", placeholder: "system", main: true },
    { name: "protocol", label: "Protocol", kind: "select", choices: [{ value: "udp", label: "UDP" }, { value: "tcp", label: "TCP" }] },
    { name: "timeout_ms", label: "Timeout (ms)", kind: "number" },
    { name: "expect.rcode", label: "Response code", kind: "select", choices: ["", "NOERROR", "NXDOMAIN", "SERVFAIL", "REFUSED"].map((r) => ({ value: r, label: r || "any" })) },
    { name: "expect.answer_contains", label: "An answer contains", kind: "text" },
    { name: "expect.min_answers", label: "At least this many answers", kind: "number" },
  ],
};

/** Each option's range and default, from the server's OpenAPI document (`build-ui.sh`). */
type Limits = Record<string, Record<string, { minimum: number; maximum: number; default?: number | null }>>;
const API_LIMITS = LIMITS as Limits;

/** The API schemas of a kind's options and expectations. */
const SCHEMAS: Record<Kind, [string, string]> = {
  ping: ["PingOptions", "PingExpect"],
  tcp: ["TcpOptions", "TcpExpect"],
  http: ["HttpOptions", "HttpExpect"],
  dns: ["DnsOptions", "DnsExpect"],
  traceroute: ["TracerouteOptions", "TraceExpect"],
  mtr: ["MtrOptions", "TraceExpect"],
};

/** A field with the API's range, and its default as the placeholder. */
function withLimits(kind: Kind, f: Field): Field {
  const [options, expect] = SCHEMAS[kind];
  const [schema, prop] = f.name.startsWith("expect.") ? [expect, f.name.slice("expect.".length)] : [options, f.name];
  const l = API_LIMITS[schema]?.[prop];
  if (!l) return f;
  const placeholder = f.placeholder ?? (l.default != null ? String(l.default) : undefined);
  return { ...f, min: l.minimum, max: l.maximum, placeholder };
}

export const FIELDS = Object.fromEntries(
  (Object.entries(OWN_FIELDS) as [Kind, Field[]][]).map(([kind, fields]) => [kind, fields.map((f) => withLimits(kind, f))]),
) as Record<Kind, Field[]>;

export type Values = Record<string, string | boolean>;

export const DEFAULTS: Values = { count: String(API_LIMITS.PingOptions.count.default), port: "443", method: "GET", follow_redirects: false, verify_tls: true, record_type: "A", protocol: "udp" };

/** The defaults of one kind: `protocol` means udp/tcp for DNS but icmp/udp/tcp for traces,
 * and a trace's port is optional. */
export function defaultsFor(kind: Kind): Values {
  return kind === "traceroute" || kind === "mtr" ? { ...DEFAULTS, protocol: "icmp", port: "" } : DEFAULTS;
}

/** `Name: value` / `name=regex` lines → an object. */
function pairs(text: string, sep: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const i = line.indexOf(sep);
    if (i > 0) out[line.slice(0, i).trim()] = line.slice(i + 1).trim();
  }
  return out;
}

/** The request's `options` for `kind`: what was filled in, typed; the server fills in the rest. */
export function buildOptions(kind: Kind, values: Values): Record<string, unknown> {
  const options: Record<string, unknown> = {};
  const expect: Record<string, unknown> = {};
  for (const f of FIELDS[kind]) {
    const v = values[f.name];
    if (v === undefined || v === "") continue;
    let typed: unknown;
    switch (f.kind) {
      case "number":
        typed = Number(v);
        break;
      case "checkbox":
        typed = Boolean(v);
        break;
      case "lines":
        typed = pairs(String(v), f.name === "headers" ? ":" : "=");
        if (Object.keys(typed as object).length === 0) continue;
        break;
      case "list":
        typed = String(v).split(",").map((s) => s.trim()).filter(Boolean);
        break;
      default:
        typed = f.name === "ip_version" ? Number(v) : f.name === "expect.reached" || f.name === "expect.tls" ? v === "true" : String(v).trim();
    }
    if (f.name.startsWith("expect.")) expect[f.name.slice(7)] = typed;
    else options[f.name] = typed;
  }
  if (Object.keys(expect).length) options.expect = expect;
  return options;
}

/** What is wrong with the filled-in options, by field name, in the API's own ranges. */
export function optionErrors(kind: Kind, values: Values): Record<string, string> {
  const errors: Record<string, string> = {};
  for (const f of FIELDS[kind]) {
    const v = values[f.name];
    if (f.kind !== "number" || v === undefined || v === "") continue;
    const n = Number(v);
    const whole = !f.name.startsWith("expect.max_") && !f.name.endsWith("_pct");
    if (!Number.isFinite(n) || (whole && !Number.isInteger(n))) errors[f.name] = `${f.label} must be a ${whole ? "whole " : ""}number.`;
    else if ((f.min !== undefined && n < f.min) || (f.max !== undefined && n > f.max)) errors[f.name] = `${f.label} must be between ${f.min} and ${f.max}.`;
  }
  if (kind === "tcp" && (values.port === undefined || values.port === "")) errors.port = "Enter a port (1–65535).";
  return errors;
}

/** The form's values for options the API gave back (a monitor's, to edit it): the inverse of
 * {@link buildOptions}, with the defaults for what is not set. */
export function optionsToValues(kind: Kind, options: Record<string, unknown> | null | undefined): Values {
  const values: Values = { ...defaultsFor(kind) };
  const expect = (options?.expect ?? {}) as Record<string, unknown>;
  for (const f of FIELDS[kind]) {
    const v = f.name.startsWith("expect.") ? expect[f.name.slice(7)] : options?.[f.name];
    if (v === undefined || v === null) continue;
    switch (f.kind) {
      case "checkbox":
        values[f.name] = Boolean(v);
        break;
      case "lines":
        values[f.name] = Object.entries(v as Record<string, string>)
          .map(([k, x]) => `${k}${f.name === "headers" ? ": " : "="}${x}`)
          .join("\n");
        break;
      case "list":
        values[f.name] = (v as unknown[]).map(String).join(", ");
        break;
      default:
        values[f.name] = String(v);
    }
  }
  return values;
}

function Control({ f, values, set, invalid, describedBy, error }: { f: Field; values: Values; set: (name: string, v: string | boolean) => void; invalid: boolean; describedBy?: string; error?: string }) {
  const errorId = `err-${f.name.replace(/\W/g, "-")}`;
  const common = {
    name: f.name,
    "aria-invalid": invalid || !!error || undefined,
    "aria-describedby": error ? errorId : invalid ? describedBy : undefined,
  };
  const value = values[f.name] ?? "";
  const message = error ? <span className="field-error" id={errorId}>{error}</span> : null;
  switch (f.kind) {
    case "checkbox":
      return (
        <label className="inline">
          <input type="checkbox" {...common} checked={Boolean(value)} onChange={(e) => set(f.name, e.target.checked)} /> {f.label}
        </label>
      );
    case "select":
      return (
        <label>
          {f.label}
          <select {...common} value={String(value)} onChange={(e) => set(f.name, e.target.value)}>
            {f.choices!.map((c) => (
              <option key={c.value} value={c.value}>{c.label}</option>
            ))}
          </select>
        </label>
      );
    case "lines":
      return (
        <label className="wide">
          {f.label}
          <textarea {...common} rows={2} placeholder={f.placeholder} value={String(value)} onChange={(e) => set(f.name, e.target.value)} />
          {message}
        </label>
      );
    default:
      return (
        <label>
          {f.label}
          <input
            {...common}
            type={f.kind === "number" ? "number" : "text"}
            inputMode={f.kind === "number" ? "decimal" : undefined}
            min={f.min}
            max={f.max}
            placeholder={f.placeholder}
            value={String(value)}
            onChange={(e) => set(f.name, e.target.value)}
          />
          {message}
        </label>
      );
  }
}

/** The option fields of `kind`; `errorField` (an API `details.field`) marks the one refused,
 * `errors` (from {@link optionErrors}) are shown under their fields. */
export function CheckOptions({ kind, values, onChange, errorField, errors = {} }: { kind: Kind; values: Values; onChange: (v: Values) => void; errorField?: string; errors?: Record<string, string> }) {
  const set = (name: string, v: string | boolean) => onChange({ ...values, [name]: v });
  const field = errorField?.replace(/^options\./, "").replace(/\[\d+\]$/, "");
  const render = (f: Field) => (
    <Control key={f.name} f={f} values={values} set={set} invalid={field === f.name || (!!field && field.startsWith(`${f.name}.`))} describedBy="check-error" error={errors[f.name]} />
  );
  const fields = FIELDS[kind];
  const more = fields.filter((f) => !f.main && !f.name.startsWith("expect."));
  const expect = fields.filter((f) => f.name.startsWith("expect."));
  const open = (list: Field[]) =>
    list.some((f) => values[f.name] !== undefined && values[f.name] !== "" && values[f.name] !== DEFAULTS[f.name]) || list.some((f) => f.name === field || errors[f.name]);
  return (
    <>
      <div className="options">{fields.filter((f) => f.main).map(render)}</div>
      {more.length > 0 && (
        <details className="more-options" open={open(more)}>
          <summary>More options</summary>
          <div className="options">{more.map(render)}</div>
        </details>
      )}
      <details className="more-options" open={open(expect)}>
        <summary>Expectations</summary>
        <p className="hint">{kind === "http" ? "Without accepted statuses, 2xx and 3xx are ok and 4xx/5xx fail." : "A result that misses one is failed."}</p>
        <div className="options">{expect.map(render)}</div>
      </details>
    </>
  );
}
