import { useEffect, useState, type FormEvent } from "react";
import { useNavigate, useParams } from "react-router";
import { ApiError } from "../api/auth";
import { api, must, type Agent, type LookupResult } from "../api/client";
import { WorldMap, type Marker } from "../components/WorldMap";
import { useTitle } from "../components/useTitle";

export function LookupPage() {
  const { host: routeHost } = useParams();
  const navigate = useNavigate();
  const [host, setHost] = useState(routeHost ?? "");
  const [result, setResult] = useState<LookupResult | null>(null);
  const [agents, setAgents] = useState<Agent[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  useTitle(routeHost ? `Lookup ${routeHost}` : "Lookup");
  useEffect(() => setHost(routeHost ?? ""), [routeHost]);

  useEffect(() => {
    must(api.GET("/api/v1/agents")).then(setAgents).catch(() => setAgents([]));
  }, []);

  useEffect(() => {
    if (!routeHost) return;
    setBusy(true);
    setError(null);
    must(api.GET("/api/v1/lookup/{host}", { params: { path: { host: routeHost } } }))
      .then(setResult)
      .catch((err) => {
        setResult(null);
        setError(err instanceof ApiError ? err.message : "The server cannot be reached.");
      })
      .finally(() => setBusy(false));
  }, [routeHost]);

  function submit(e: FormEvent) {
    e.preventDefault();
    if (host.trim()) navigate(`/lookup/${encodeURIComponent(host.trim())}`);
  }

  const markers: Marker[] = [
    ...(result?.addresses ?? [])
      .filter((a) => a.geo)
      .map((a) => ({ lat: a.geo!.lat, lon: a.geo!.lon, label: `${a.ip} — ${a.geo!.city ?? ""} ${a.geo!.country ?? ""}`, kind: "address" as const })),
    // Agents placed by hand without coordinates have no point on the map.
    ...agents.flatMap((a) =>
      a.location?.lat != null && a.location.lon != null
        ? [{ lat: a.location.lat, lon: a.location.lon, label: `agent ${a.name}`, kind: "agent" as const }]
        : [],
    ),
  ];
  return (
    <section className="card">
      <h1>{routeHost ? `Where ${routeHost} is` : "Look up a host"}</h1>
      <form className="row" onSubmit={submit} role="search" aria-label="Look up a host">
        <input aria-label="Host" placeholder="example.com or an IP address" value={host} onChange={(e) => setHost(e.target.value)} autoFocus />
        <button type="submit" disabled={busy}>{busy ? "Looking up…" : "Look up"}</button>
      </form>
      {error && <p className="error-text" role="alert">{error}</p>}
      {result && (
        <table tabIndex={0} className="list" data-testid="addresses">
          <thead>
            <tr><th>Address</th><th>Version</th><th>Country</th><th>City</th></tr>
          </thead>
          <tbody>
            {result.addresses.map((a) => (
              <tr key={a.ip}>
                <td><code>{a.ip}</code></td>
                <td>IPv{a.version}</td>
                <td>{a.geo ? `${a.geo.country ?? ""} (${a.geo.country_code ?? "?"})` : <span className="muted">not located (reserved or unknown)</span>}</td>
                <td>{a.geo?.city ?? "—"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {result && result.withheld > 0 && (
        <p className="muted">
          {result.withheld} internal address{result.withheld === 1 ? "" : "es"} not shown: this server does not reveal what its own resolver knows of private networks.
        </p>
      )}
      {!result && !error && <p className="empty">Enter a host to see its addresses and where they are.</p>}
      <WorldMap markers={markers} />
      <p className="legend">
        <span className="marker-key address" aria-hidden="true" /> address <span className="marker-key agent" aria-hidden="true" /> agent
      </p>
    </section>
  );
}
