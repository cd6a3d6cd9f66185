// A world map drawn offline from Natural Earth data (world-atlas), with markers.

import { geoNaturalEarth1, geoPath } from "d3-geo";
import { feature } from "topojson-client";
import type { FeatureCollection } from "geojson";
import type { GeometryCollection, Topology } from "topojson-specification";
import world from "world-atlas/countries-110m.json";

export interface Marker {
  lat: number;
  lon: number;
  label: string;
  kind: "address" | "agent" | "hop";
  /** Colours an agent by its result (`ok`, `bad`, `warn`, `muted`). */
  status?: string;
}

/** A trace's way over the map: the agent, the hops with a known place, the target. */
export interface Route {
  points: [number, number][];
  label: string;
  status?: string;
}

const WIDTH = 960;
const HEIGHT = 500;
const topology = world as unknown as Topology<{ countries: GeometryCollection }>;
const countries = feature(topology, topology.objects.countries) as FeatureCollection;
const projection = geoNaturalEarth1().fitSize([WIDTH, HEIGHT], countries);
const path = geoPath(projection);
const outlines = countries.features.map((f, i) => <path key={i} d={path(f) ?? undefined} className="land" />);

export function WorldMap({ markers, routes = [], label = "World map" }: { markers: Marker[]; routes?: Route[]; label?: string }) {
  return (
    <svg viewBox={`0 0 ${WIDTH} ${HEIGHT}`} className="worldmap" role="img" aria-label={label}>
      <rect width={WIDTH} height={HEIGHT} className="sea" />
      {outlines}
      {routes.map((r, i) => (
        // Great-circle segments, as packets (roughly) travel.
        <path key={`r${i}`} d={path({ type: "LineString", coordinates: r.points }) ?? undefined} className={`route ${r.status ?? ""}`} data-testid="route">
          <title>{r.label}</title>
        </path>
      ))}
      {markers.map((m, i) => {
        const p = projection([m.lon, m.lat]);
        if (!p) return null;
        return (
          <g key={i} transform={`translate(${p[0]},${p[1]})`} className={`marker ${m.kind} ${m.status ?? ""}`} data-testid={`marker-${m.kind}`} data-status={m.status}>
            <circle r={m.kind === "hop" ? 3.5 : m.kind === "agent" ? 6 : 7} />
            <title>{m.label}</title>
          </g>
        );
      })}
    </svg>
  );
}
