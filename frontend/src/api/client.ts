// The typed API client (types generated from the server's OpenAPI document) and the live
// event stream of a check.

import createClient from "openapi-fetch";
import type { components, paths } from "./schema";
import { ApiError, auth, errorFrom } from "./auth";

export const api = createClient<paths>({ baseUrl: window.location.origin, fetch: (req: Request) => auth.fetch(req) });

export type Schemas = components["schemas"];
export type Agent = Schemas["Agent"];
export type CheckView = Schemas["CheckView"];
export type CheckSummary = Schemas["CheckSummary"];
export type LookupResult = Schemas["Lookup"];
export type ResultView = Schemas["CheckResultView"] &
  Partial<Schemas["PingResult"]> &
  Partial<Schemas["TcpResult"]> &
  Partial<Omit<Schemas["HttpResult"], "resolved_address">> &
  Partial<Schemas["DnsResult"]> &
  Partial<Omit<Schemas["TracerouteResult"], "hops" | "resolved_address" | "assertions">> & {
    /** traceroute hops carry `rtt_ms: number[]`, mtr hops loss and statistics. */
    hops?: (Partial<Omit<Schemas["TraceHop"], "rtt_ms">> & Partial<Omit<Schemas["MtrHop"], "rtt_ms">> & { ttl: number; address?: string | null; rtt_ms?: number[] | Schemas["HopRtt"] | null })[];
  };

/** Throws the API error of a failed openapi-fetch call, returns the data otherwise. */
export async function must<T>(p: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response } = await p;
  if (error !== undefined || !response.ok) {
    const e = (error as { error?: { code?: string; message?: string; details?: { field?: string } } })?.error;
    if (e) throw new ApiError(response.status, e.code ?? "error", e.message ?? response.statusText, e.details?.field);
    throw await errorFrom(response);
  }
  return data as T;
}

/** Parses Server-Sent Events from a fetch body. */
export async function* sseFrames(body: ReadableStream<Uint8Array>): AsyncGenerator<{ event: string; data: string }> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += decoder.decode(value, { stream: true });
    let end;
    while ((end = buf.indexOf("\n\n")) >= 0) {
      const frame = buf.slice(0, end);
      buf = buf.slice(end + 2);
      let event = "message";
      const data: string[] = [];
      for (const line of frame.split("\n")) {
        if (line.startsWith("event: ")) event = line.slice(7);
        else if (line.startsWith("data: ")) data.push(line.slice(6));
      }
      if (data.length) yield { event, data: data.join("\n") };
    }
  }
}

/** Follows a check's live results until `finished` (or `signal` aborts). */
export async function followCheck(
  id: string,
  onResult: (r: ResultView) => void,
  signal: AbortSignal,
): Promise<void> {
  const resp = await auth.fetch(new Request(`/api/v1/checks/${id}/events`, { signal }));
  if (!resp.ok || !resp.body) throw await errorFrom(resp);
  for await (const f of sseFrames(resp.body)) {
    if (f.event === "result") onResult(JSON.parse(f.data));
    if (f.event === "finished") return;
  }
}
