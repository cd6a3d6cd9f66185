// A check's settings in a few words ("port 8080", "3 packets", "MX via 1.1.1.1"), shown
// wherever a check appears so two checks of one target can be told apart.

type Options = Record<string, unknown> | null | undefined;

const EXPECT: Record<string, (v: unknown) => string> = {
  status: (v) => `status ${(v as unknown[]).join(", ")}`,
  body_contains: (v) => `body contains “${v}”`,
  body_regex: (v) => `body matches /${v}/`,
  header: (v) => `headers ${Object.keys(v as object).join(", ")}`,
  body_not_regex: (v) => `body does not match /${v}/`,
  header_not: (v) => `headers ${Object.keys(v as object).join(", ")} do not match`,
  tls: (v) => (v ? "over TLS" : "in clear"),
  versions: (v) => `${(v as unknown[]).join(" or ")}`,
  cert_min_days: (v) => `certificate ≥ ${v} days`,
  max_total_ms: (v) => `total ≤ ${v} ms`,
  max_connect_ms: (v) => `connect ≤ ${v} ms`,
  max_loss_pct: (v) => `loss ≤ ${v} %`,
  max_avg_rtt_ms: (v) => `average RTT ≤ ${v} ms`,
  rcode: (v) => `rcode ${v}`,
  answer_contains: (v) => `answer contains “${v}”`,
  min_answers: (v) => `≥ ${v} answers`,
  reached: (v) => (v ? "the target answers" : "the target does not answer"),
};

export function checkSettings(type: string, options: Options): string[] {
  const o = options ?? {};
  const out: string[] = [];
  switch (type) {
    case "ping":
      if (o.count !== undefined) out.push(`${o.count} packet${o.count === 1 ? "" : "s"}`);
      break;
    case "tcp":
      if (o.port !== undefined) out.push(`port ${o.port}`);
      break;
    case "http":
      out.push(String(o.method ?? "GET"));
      if (typeof o.body === "string") out.push(`${o.body.length}-byte body`);
      if (o.version === "http2") out.push("HTTP/2 only");
      if (o.version === "http1.1") out.push("HTTP/1.1 only");
      if (o.follow_redirects) out.push("follows redirects");
      if (o.verify_tls === false) out.push("certificate not verified");
      break;
    case "traceroute":
    case "mtr":
      out.push(`${String(o.protocol ?? "icmp").toUpperCase()}${o.port ? ` port ${o.port}` : ""}`);
      if (o.max_hops !== undefined) out.push(`max ${o.max_hops} hops`);
      if (o.packets !== undefined) out.push(`${o.packets} packets per hop`);
      if (o.interval_ms !== undefined) out.push(`${Number(o.interval_ms) / 1000} s apart`);
      break;
    case "dns":
      out.push(`${o.record_type ?? "A"} via ${o.resolver ? String(o.resolver) : "the system resolver"}`);
      if (o.protocol === "tcp") out.push("over TCP");
      break;
  }
  if (o.ip_version === 4 || o.ip_version === 6) out.push(`IPv${o.ip_version}`);
  const expect = (o.expect ?? {}) as Record<string, unknown>;
  const wants = Object.entries(expect)
    .filter(([, v]) => v !== null && v !== undefined)
    .map(([k, v]) => (EXPECT[k] ? EXPECT[k](v) : `${k} ${JSON.stringify(v)}`));
  if (wants.length) out.push(`expects ${wants.join(", ")}`);
  return out;
}

/** The settings as one line ("port 8080 · IPv6"). */
export function settingsLine(type: string, options: Options): string {
  return checkSettings(type, options).join(" · ");
}
