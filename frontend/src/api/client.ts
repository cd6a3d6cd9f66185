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
/** One agent's result: the common fields and, once it answered, its type's own (`type` tells which). */
export type ResultView = Schemas["CheckResultView"];
/** A result's own fields by check type, or none yet (no `type`). */
export type ResultData = Schemas["ResultData"] | { type?: null };
/** A result as the pictures need it, from a check or a shared link (whose agents have no ids). */
export type ResultLike = ResultData &
  Omit<Schemas["SharedResult"], "agent"> & {
    agent: { id?: string; name: string; region?: string | null; location?: { country_code?: string | null; city?: string | null } | null };
  };
/** A check's `type` and its `options` (`options` follows `type`). */
export type CheckSpec = Schemas["CheckSpec"];

/** The spec alone, e.g. to run a stored check again. */
export function specOf(c: CheckSpec): CheckSpec {
  return { type: c.type, options: c.options } as CheckSpec;
}

/**
 * The spec a form built: only what the user set. The generated types make every option with a
 * default required; the server fills in what is left out.
 */
export function formSpec(type: Schemas["CheckType"], options: Record<string, unknown>): CheckSpec {
  return { type, options } as unknown as CheckSpec;
}

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
