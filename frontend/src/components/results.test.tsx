import { describe, expect, it } from "vitest";
import { render } from "@testing-library/react";
import { Details, Summary, explain, statusClass } from "./results";
import type { ResultView } from "../api/client";

const agent = { id: "a1", name: "fra-1", region: "eu", location: null };

describe("result rendering", () => {
  it("summarises ping with loss and RTT", () => {
    const r: ResultView = { agent, status: "ok", type: "ping", sent: 4, received: 3, loss_pct: 25, rtt_ms: { min: 1.234, avg: 2.5, max: 12.25, mdev: 0.5 }, replies: [] };
    const { container } = render(<Summary r={r} />);
    expect(container.textContent).toBe("3/4 replies, loss 25% · rtt min 1.23 ms avg 2.50 ms max 12.3 ms");
  });

  it("summarises HTTP with status, version, total and certificate days", () => {
    const r: ResultView = {
      agent, status: "ok", type: "http", status_code: 200, http_version: "HTTP/2", headers: {},
      timings_ms: { dns: 1, connect: 2, tls: 3, first_byte: 4, total: 5.5 },
      tls: { version: "TLSv1.3", cipher: "TLS13_AES_128_GCM_SHA256", issuer: "CN=ca", subject: "CN=x", not_after: "2030-01-01T00:00:00Z", days_left: 12 },
    };
    expect(render(<Summary r={r} />).container.textContent).toBe("HTTP 200 · HTTP/2 · total 5.50 ms · cert 12 days left");
    const details = render(<Details r={r} />).container.textContent!;
    expect(details).toContain("first byte 4.00 ms");
    expect(details).toContain("12 days left");
  });

  it("lists DNS answers and explains errors in words", () => {
    const r: ResultView = {
      agent, status: "failed", type: "dns", rcode: "NXDOMAIN", answers: [], resolver: "192.0.2.53:53",
      error: { code: "dns_rcode", message: "the resolver answered NXDOMAIN" },
    };
    expect(render(<Summary r={r} />).container.textContent).toBe("NXDOMAIN · 0 answers");
    expect(render(<Details r={r} />).container.textContent).toContain("The resolver answered with an error code.");
    expect(explain("refused", "x:1 refused")).toMatch(/^Connection refused/);
    expect(explain("something_new", "raw message")).toBe("raw message");
  });

  it("marks statuses", () => {
    expect(statusClass("ok")).toBe("ok");
    expect(statusClass("failed")).toBe("bad");
    expect(statusClass("timeout")).toBe("warn");
    expect(render(<Summary r={{ agent, status: "pending" }} />).container.textContent).toBe("waiting…");
  });

  it("gives the reason for a result without data", () => {
    const r: ResultView = { agent, status: "timeout", error: { code: "agent_timeout", message: "the agent did not answer in time" } };
    expect(render(<Summary r={r} />).container.textContent).toBe("the agent did not answer in time");
    expect(render(<Details r={r} />).container.textContent).toContain("The agent did not answer in time.");
  });
});
