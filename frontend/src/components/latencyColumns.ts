// Series of a monitor as the latency chart takes them (kept apart from uPlot, which needs a
// browser to load).

import type { Schemas } from "../api/client";

/** uPlot's aligned columns: run times (seconds) and each agent's value per run (or null). */
export function columns(series: Schemas["AgentSeries"][]): [number[], ...(number | null)[][]] {
  const times = [...new Set(series.flatMap((s) => s.points.map((p) => Date.parse(p.at) / 1000)))].sort((a, b) => a - b);
  const index = new Map(times.map((t, i) => [t, i]));
  const lines = series.map((s) => {
    const ys: (number | null)[] = new Array(times.length).fill(null);
    for (const p of s.points) if (p.status === "ok" && p.value_ms !== null && p.value_ms !== undefined) ys[index.get(Date.parse(p.at) / 1000)!] = p.value_ms;
    return ys;
  });
  return [times, ...lines];
}
