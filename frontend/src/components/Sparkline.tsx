// A small latency line for tables: one value per point (gaps where a point has none), with
// failing points marked under the line. Too small for axes; the monitor page has the chart.

export type SparkPoint = { value: number | null; bad: boolean };

export function Sparkline({ points, label, width = 120, height = 24 }: { points: SparkPoint[]; label: string; width?: number; height?: number }) {
  if (points.length === 0) return <span className="muted">—</span>;
  const values = points.map((p) => p.value ?? 0);
  const max = Math.max(1, ...values);
  const step = points.length > 1 ? width / (points.length - 1) : 0;
  const y = (v: number) => (height - 3 - ((height - 6) * v) / max).toFixed(1);
  // A new segment starts after each gap, so a missing hour is not drawn as a fast one.
  let path = "";
  let pen = false;
  points.forEach((p, i) => {
    if (p.value === null) {
      pen = false;
      return;
    }
    path += `${pen ? "L" : "M"}${(i * step).toFixed(1)},${y(p.value)} `;
    pen = true;
  });
  return (
    <svg width={width} height={height} className="sparkline" role="img" aria-label={label}>
      <path d={path.trim()} />
      {points.map((p, i) => (p.bad ? <circle key={i} cx={i * step} cy={height - 2} r={2} className="bad" /> : null))}
    </svg>
  );
}
