// How one agent's result reads: the facts that matter for each check type, and errors in words.

import type { ResultLike, Schemas } from "../api/client";
import { RttChart } from "./ResultPictures";

const ms = (v?: number | null) => (v === null || v === undefined ? "—" : `${v < 10 ? v.toFixed(2) : v.toFixed(1)} ms`);

type ProbeErrorCode = Schemas["ProbeErrorCode"];

/** Every probe error code in words: a code added to the API fails the type-check here. */
const ERROR_WORDS: Record<ProbeErrorCode, string> = {
  timeout: "No answer in time.",
  refused: "Connection refused — nothing listens on that port.",
  unreachable: "The host or network is unreachable from this agent.",
  connect_failed: "The connection could not be made.",
  dns: "The name could not be resolved.",
  dns_rcode: "The resolver answered with an error code.",
  tls: "The TLS handshake failed (untrusted or invalid certificate?).",
  http: "The HTTP exchange failed.",
  http_status: "The server answered with an error status (4xx or 5xx).",
  too_many_redirects: "Too many redirects.",
  bad_redirect: "The redirect could not be followed.",
  invalid_target: "The target is not something this check type can probe.",
  invalid_request: "The request could not be built from the options.",
  target_refused: "The target is in a range this agent may not reach.",
  trace_failed: "The trace could not run on this agent.",
  not_reached: "The target did not answer; the hops show how far the probes got.",
  icmp_unavailable: "This agent cannot send ICMP (it needs root or CAP_NET_RAW).",
  expectation_failed: "An expectation was not met.",
  expectation_unevaluable: "An expectation could not be evaluated in the check's time.",
  result_too_large: "The answer was too large to report.",
  unsupported: "This agent cannot run this probe.",
  agent_offline: "The agent was offline when the check was created.",
  agent_timeout: "The agent did not answer in time.",
  agent_busy: "The agent was past its capacity and could not start the check in time, so it did not run it.",
  unknown: "The agent reported an error this server does not know.",
};

export function explain(code: string, message: string): string {
  const words = (ERROR_WORDS as Record<string, string>)[code];
  return words ? `${words} (${message})` : message;
}

export function statusClass(status: string): string {
  return { ok: "ok", failed: "bad", timeout: "warn", offline: "muted", pending: "muted" }[status] ?? "muted";
}

/** The result's verdicts on the check's expectations (none before it answered). */
function assertionsOf(r: ResultLike) {
  return r.type ? (r.assertions ?? []) : [];
}

export function Summary({ r }: { r: ResultLike }) {
  if (r.status === "pending") return <span className="muted">waiting…</span>;
  switch (r.type) {
    case "ping":
      // Nothing was sent (the name did not resolve, say): the reason, not "0/0 replies".
      if (!r.sent && r.error) return <span>{r.error.message}</span>;
      return r.rtt_ms ? (
        <span>
          {r.received}/{r.sent} replies, loss {r.loss_pct.toFixed(0)}% · rtt min {ms(r.rtt_ms.min)} avg{" "}
          {ms(r.rtt_ms.avg)} max {ms(r.rtt_ms.max)}
        </span>
      ) : (
        <span>
          {r.received}/{r.sent} replies, loss {r.loss_pct.toFixed(0)}%
        </span>
      );
    case "tcp":
      return r.connected ? <span>connected in {ms(r.connect_ms)}</span> : <span>not connected</span>;
    case "http":
      return r.status_code ? (
        <span>
          HTTP {r.status_code} · {r.http_version} · total {ms(r.timings_ms?.total)}
          {r.tls ? ` · cert ${r.tls.days_left} days left` : ""}
        </span>
      ) : (
        <span>no response</span>
      );
    case "traceroute":
    case "mtr": {
      const hops: Hop[] = r.hops;
      const last = [...hops].reverse().find((h) => h.address);
      return (
        <span>
          {r.reached ? `reached in ${hops.length} hop${hops.length === 1 ? "" : "s"}` : `not reached${last ? ` · last answer from ${last.address} at hop ${last.ttl}` : ""}`}
        </span>
      );
    }
    case "dns":
      return (
        <span>
          {r.rcode ?? "no answer"} · {r.answers.length} answer{r.answers.length === 1 ? "" : "s"}
        </span>
      );
    default:
      // No data (no answer in time, offline, refused before it ran): the error says why.
      return r.error ? <span>{r.error.message}</span> : null;
  }
}

export function Details({ r }: { r: ResultLike }) {
  const assertions = assertionsOf(r);
  const resolved = r.type && "resolved_address" in r ? r.resolved_address : null;
  return (
    <div className="details">
      {r.error && <p className="error-text">{explain(r.error.code, r.error.message)}</p>}
      {assertions.length > 0 && (
        <ul className="assertions" aria-label="expectations">
          {assertions.map((a, i) => (
            <li key={i} className={a.ok ? "ok" : "bad"}>
              <span aria-hidden="true">{a.ok ? "✓" : "✗"}</span>
              <span className="sr-only">{a.ok ? "met:" : "not met:"}</span> <b>{a.name}</b> {a.detail}
            </li>
          ))}
        </ul>
      )}
      {resolved && (
        <p>
          Address <code>{resolved}</code>
        </p>
      )}
      {r.type === "ping" && <RttChart r={r} />}
      {(r.type === "traceroute" || r.type === "mtr") && r.hops.length > 0 && <HopTable hops={r.hops} />}
      {r.type === "ping" && r.replies.length > 0 && (
        <table className="mini">
          <thead>
            <tr><th>seq</th><th>rtt</th><th>ttl</th></tr>
          </thead>
          <tbody>
            {r.replies.map((p) => (
              <tr key={p.seq}><td>{p.seq}</td><td>{ms(p.rtt_ms)}</td><td>{p.ttl ?? "—"}</td></tr>
            ))}
          </tbody>
        </table>
      )}
      {r.type === "http" && r.timings_ms && <HttpDetails r={r} />}
      {r.type === "dns" && <DnsDetails r={r} />}
    </div>
  );
}

function HttpDetails({ r }: { r: Schemas["HttpResult"] }) {
  return (
    <>
      <div className="timings" aria-label="timing breakdown">
        {(["dns", "connect", "tls", "first_byte", "download", "total"] as const).map((k) => (
          <span key={k}>
            {k.replace("_", " ")} <b>{ms(r.timings_ms?.[k])}</b>
          </span>
        ))}
      </div>
      {r.tls && (
        <p>
          {r.tls.version} · {r.tls.cipher}
          <br />
          Subject <code>{r.tls.subject}</code>, issuer <code>{r.tls.issuer}</code>
          <br />
          Expires {new Date(r.tls.not_after).toUTCString()} ({r.tls.days_left} days left)
        </p>
      )}
      {r.redirect_to && (
        <p>
          Redirects to <code>{r.redirect_to}</code>
        </p>
      )}
      {r.headers && Object.keys(r.headers).length > 0 && (
        <details>
          <summary>{Object.keys(r.headers).length} response headers, {r.body_bytes ?? 0} body bytes</summary>
          <table className="mini">
            <tbody>
              {Object.entries(r.headers).map(([k, v]) => (
                <tr key={k}><td>{k}</td><td><code>{v}</code></td></tr>
              ))}
            </tbody>
          </table>
        </details>
      )}
    </>
  );
}

function DnsDetails({ r }: { r: Schemas["DnsResult"] }) {
  return (
    <>
      {r.answers.length > 0 && (
        <table className="mini">
          <thead>
            <tr><th>name</th><th>type</th><th>ttl</th><th>value</th></tr>
          </thead>
          <tbody>
            {r.answers.map((a, i) => (
              <tr key={i}><td>{a.name}</td><td>{a.type}</td><td>{a.ttl}</td><td><code>{a.value}</code></td></tr>
            ))}
          </tbody>
        </table>
      )}
      {r.truncated && <p className="muted">More answers came; the first 100 are shown.</p>}
      {!!r.withheld && (
        <p className="muted">
          {r.withheld} answer{r.withheld === 1 ? "" : "s"} withheld: internal addresses of the agent&apos;s own resolver are not shown.
        </p>
      )}
      {r.resolver && <p className="muted">via resolver {r.resolver}</p>}
    </>
  );
}

type Hop = Schemas["TraceHop"] | Schemas["MtrHop"];

/** A trace hop by hop: silent TTLs as `*`, the network where known, RTTs (traceroute) or
 * loss and statistics (mtr). */
function HopTable({ hops }: { hops: Schemas["TraceHop"][] | Schemas["MtrHop"][] }) {
  const rows: Hop[] = hops;
  const mtr = rows.some((h) => "loss_pct" in h);
  const limited = rows.some((h) => h.rate_limited);
  return (
    <>
    <table className="mini hops" data-testid="hops">
      <thead>
        <tr>
          <th>TTL</th><th>Address</th><th>Network</th>
          {mtr ? (<><th>Loss</th><th>Sent</th><th>Avg</th><th>Best</th><th>Worst</th><th>StDev</th></>) : <th>Round trips</th>}
        </tr>
      </thead>
      <tbody>
        {rows.map((h) => (
          <tr key={h.ttl} className={h.address ? undefined : "silent"}>
            <td>{h.ttl}</td>
            <td>{h.address ? <code>{h.address}</code> : <span aria-label="no answer">*</span>}</td>
            <td>{h.asn ? `AS${h.asn}${h.network ? ` ${h.network}` : ""}` : "—"}</td>
            {"loss_pct" in h ? (
              <>
                <td>
                  {`${h.loss_pct.toFixed(0)} %`}
                  {h.rate_limited && <RateLimitMark />}
                </td>
                <td>{h.sent}</td>
                <td>{ms(h.rtt_ms?.avg)}</td>
                <td>{ms(h.rtt_ms?.min)}</td>
                <td>{ms(h.rtt_ms?.max)}</td>
                <td>{ms(h.rtt_ms?.stdev)}</td>
              </>
            ) : (
              <td>
                {h.rtt_ms.length ? h.rtt_ms.map((v) => ms(v)).join("  ") : "* * *"}
                {h.rate_limited && <RateLimitMark />}
              </td>
            )}
          </tr>
        ))}
      </tbody>
    </table>
    {limited && (
      <p className="muted" data-testid="rate-limit-note">
        † Answers missing here coincide with this agent probing the router faster than routers
        usually answer (a burst of about 6, then 1 a second): it may be the router&apos;s ICMP
        rate limit rather than loss.
      </p>
    )}
    </>
  );
}

function RateLimitMark() {
  return (
    <span title="may be the router's ICMP rate limit" aria-label="(may be the router's rate limit)">
      {" "}†
    </span>
  );
}
