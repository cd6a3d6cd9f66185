import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Auth } from "./auth";

const user = { id: "u1", username: "alice", role: "admin", created_at: "2026-01-01T00:00:00Z" };
const tokenBody = (token: string, expiresIn = 900) =>
  new Response(JSON.stringify({ access_token: token, token_type: "Bearer", expires_in: expiresIn, user }), { status: 200 });

function fakeServer() {
  let n = 0;
  const calls: string[] = [];
  const impl = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const req = input instanceof Request ? input : new Request(new URL(String(input), "http://x"), init);
    const path = new URL(req.url, "http://x").pathname;
    calls.push(`${req.method} ${path} ${req.headers.get("authorization") ?? ""}`.trim());
    if (path === "/api/v1/auth/login") return tokenBody(`t${++n}`);
    if (path === "/api/v1/auth/refresh") {
      await new Promise((r) => setTimeout(r, 5));
      return tokenBody(`t${++n}`);
    }
    if (path === "/api/v1/data") {
      return req.headers.get("authorization") === `Bearer t${n}` ? new Response("ok") : new Response("", { status: 401 });
    }
    return new Response("", { status: 404 });
  });
  return { impl: impl as unknown as typeof fetch, calls };
}

describe("Auth", () => {
  beforeEach(() => vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] }));
  afterEach(() => vi.useRealTimers());

  it("keeps one refresh in flight for concurrent callers", async () => {
    const { impl, calls } = fakeServer();
    const auth = new Auth(impl);
    await auth.login("alice", "pw");
    const all = Promise.all([auth.refresh(), auth.refresh(), auth.refresh()]);
    await vi.advanceTimersByTimeAsync(10);
    const sessions = await all;
    expect(calls.filter((c) => c.includes("/refresh"))).toHaveLength(1);
    expect(new Set(sessions.map((s) => s?.accessToken))).toEqual(new Set(["t2"]));
  });

  it("refreshes silently before the access token expires", async () => {
    const { impl, calls } = fakeServer();
    const auth = new Auth(impl);
    await auth.login("alice", "pw");
    expect(auth.current?.accessToken).toBe("t1");
    await vi.advanceTimersByTimeAsync(839_000);
    expect(calls.some((c) => c.includes("/refresh"))).toBe(false);
    await vi.advanceTimersByTimeAsync(2_000); // 60 s before the 900 s expiry
    expect(calls.filter((c) => c.includes("/refresh"))).toHaveLength(1);
    expect(auth.current?.accessToken).toBe("t2");
  });

  it("retries a request once after a 401 with a fresh token", async () => {
    const { impl, calls } = fakeServer();
    const auth = new Auth(impl);
    await auth.login("alice", "pw");
    // The server moved on (e.g. another tab refreshed): t1 is no longer accepted.
    const first = auth.refresh();
    await vi.advanceTimersByTimeAsync(10);
    await first;
    (auth as unknown as { session: { accessToken: string } }).session.accessToken = "stale";
    const p = auth.fetch(new Request("http://x/api/v1/data"));
    await vi.advanceTimersByTimeAsync(10);
    const resp = await p;
    expect(resp.status).toBe(200);
    expect(calls.filter((c) => c.startsWith("GET /api/v1/data"))).toEqual(["GET /api/v1/data Bearer stale", "GET /api/v1/data Bearer t3"]);
  });

  it("signs out when the refresh cookie is rejected", async () => {
    const impl = vi.fn(async () => new Response("", { status: 401 })) as unknown as typeof fetch;
    const auth = new Auth(impl);
    const seen: unknown[] = [];
    auth.subscribe((s) => seen.push(s));
    expect(await auth.refresh()).toBeNull();
    expect(auth.current).toBeNull();
    expect(seen).toEqual([null]);
  });
});
