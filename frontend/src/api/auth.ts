// Session handling: the access token lives only in memory; the refresh token is an HttpOnly
// cookie the browser sends to /api/v1/auth. Tokens are refreshed shortly before they expire
// and once more on a 401, with at most one refresh in flight.

import type { components } from "./schema";

export type User = components["schemas"]["User"];
type TokenResponse = components["schemas"]["TokenResponse"];

export interface Session {
  accessToken: string;
  expiresAt: number;
  user: User;
}

export class ApiError extends Error {
  status: number;
  code: string;
  field?: string;
  constructor(status: number, code: string, message: string, field?: string) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

/** Reads the API's `{error: {code, message, details}}` body. */
export async function errorFrom(resp: Response): Promise<ApiError> {
  try {
    const body = await resp.json();
    const e = body?.error;
    return new ApiError(resp.status, e?.code ?? "error", e?.message ?? resp.statusText, e?.details?.field);
  } catch {
    return new ApiError(resp.status, "error", `${resp.status} ${resp.statusText}`);
  }
}

type Listener = (s: Session | null) => void;

export class Auth {
  private session: Session | null = null;
  private inflight: Promise<Session | null> | null = null;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private listeners = new Set<Listener>();
  private fetchImpl: typeof fetch;
  private now: () => number;

  constructor(fetchImpl: typeof fetch = (...a) => fetch(...a), now: () => number = () => Date.now()) {
    this.fetchImpl = fetchImpl;
    this.now = now;
  }

  get current(): Session | null {
    return this.session;
  }

  subscribe(l: Listener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  private set(s: Session | null) {
    this.session = s;
    clearTimeout(this.timer);
    if (s) {
      // Refresh a minute before expiry (or at 80 % of a shorter lifetime).
      const ttl = s.expiresAt - this.now();
      const lead = Math.min(60_000, ttl * 0.2);
      this.timer = setTimeout(() => void this.refresh(), Math.max(0, ttl - lead));
    }
    this.listeners.forEach((l) => l(s));
  }

  private accept(body: TokenResponse): Session {
    const s = { accessToken: body.access_token, expiresAt: this.now() + body.expires_in * 1000, user: body.user };
    this.set(s);
    return s;
  }

  async login(username: string, password: string): Promise<Session> {
    const resp = await this.fetchImpl("/api/v1/auth/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      credentials: "same-origin",
      body: JSON.stringify({ username, password }),
    });
    if (!resp.ok) throw await errorFrom(resp);
    return this.accept(await resp.json());
  }

  /** Exchanges the refresh cookie for a new session; concurrent callers share one request. */
  refresh(): Promise<Session | null> {
    if (!this.inflight) {
      this.inflight = (async () => {
        try {
          const resp = await this.fetchImpl("/api/v1/auth/refresh", { method: "POST", credentials: "same-origin" });
          if (!resp.ok) {
            this.set(null);
            return null;
          }
          return this.accept(await resp.json());
        } catch {
          return this.session;
        } finally {
          this.inflight = null;
        }
      })();
    }
    return this.inflight;
  }

  async logout(): Promise<void> {
    try {
      await this.fetchImpl("/api/v1/auth/logout", { method: "POST", credentials: "same-origin" });
    } finally {
      this.set(null);
    }
  }

  /** fetch with the bearer token; on 401 refreshes once and retries. */
  async fetch(input: Request): Promise<Response> {
    const retry = input.clone();
    const send = (req: Request, token?: string) => {
      const headers = new Headers(req.headers);
      if (token) headers.set("Authorization", `Bearer ${token}`);
      return this.fetchImpl(new Request(req, { headers, credentials: "same-origin" }));
    };
    let token = this.session?.accessToken;
    if (this.session && this.session.expiresAt - this.now() < 5_000) {
      token = (await this.refresh())?.accessToken;
    }
    const resp = await send(input, token);
    if (resp.status !== 401) return resp;
    const fresh = await this.refresh();
    if (!fresh) return resp;
    return send(retry, fresh.accessToken);
  }
}

export const auth = new Auth();
