// A monitor's latency over time, one line per agent, drawn by uPlot (time and ms axes,
// legend, cursor readout). Runs an agent failed leave a gap in its line.

import { useEffect, useRef } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import type { Schemas } from "../api/client";
import { columns } from "./latencyColumns";

const COLORS = ["#2563eb", "#d946ef", "#0d9488", "#ea580c", "#7c3aed", "#65a30d", "#db2777", "#0891b2"];

export function LatencyChart({ series, height = 220 }: { series: Schemas["AgentSeries"][]; height?: number }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const names = series.map((s) => s.agent.name).join("\n");

  // The chart is rebuilt when the set of agents changes and only fed new data otherwise,
  // so a refresh every few seconds keeps the reader's cursor and zoom.
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const opts: uPlot.Options = {
      width: el.clientWidth || 600,
      height,
      // One run is one instant: give it a minute either side instead of uPlot's guess.
      scales: { x: { time: true, range: (_u, min, max) => (min === max ? [min - 60, max + 60] : [min, max]) } },
      axes: [{ stroke: "currentColor", grid: { stroke: "rgba(128,128,128,0.2)" } }, { label: "ms", stroke: "currentColor", grid: { stroke: "rgba(128,128,128,0.2)" } }],
      series: [
        {},
        ...names.split("\n").filter(Boolean).map((name, i) => ({
          label: name,
          stroke: COLORS[i % COLORS.length],
          width: 1.5,
          spanGaps: false,
          value: (_u: uPlot, v: number | null) => (v === null ? "—" : `${v.toFixed(1)} ms`),
        })),
      ],
    };
    const u = new uPlot(opts, [[]], el);
    plot.current = u;
    const resize = new ResizeObserver(() => u.setSize({ width: el.clientWidth, height }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      u.destroy();
      plot.current = null;
    };
  }, [names, height]);

  useEffect(() => {
    plot.current?.setData(columns(series) as uPlot.AlignedData);
  }, [series, names]);

  return <div ref={box} className="latency-chart" role="img" aria-label={`Latency per agent over time: ${series.map((s) => s.agent.name).join(", ")}`} />;
}
