// The notification channels of a monitor: add, change or remove rows of any kind.

import { KINDS, type ChannelKind, type ChannelRow } from "./channels";

export function ChannelsEditor({ rows, onChange, invalidField }: { rows: ChannelRow[]; onChange: (rows: ChannelRow[]) => void; invalidField?: string | null }) {
  const set = (i: number, change: Partial<ChannelRow>) => onChange(rows.map((r, j) => (j === i ? { ...r, ...change } : r)));
  return (
    <fieldset className="wide channels">
      <legend>Notifications</legend>
      {rows.length === 0 && <p className="muted">No channels: state changes show here only.</p>}
      {rows.map((r, i) => {
        const spec = KINDS[r.kind];
        const invalid = invalidField?.startsWith(`notify[${i}]`) ? true : undefined;
        return (
          <div className="row channel-row" key={i} data-testid="channel-row">
            <label>
              Channel {i + 1}
              <select name={`channel-kind-${i}`} value={r.kind} onChange={(e) => set(i, { kind: e.target.value as ChannelKind })}>
                {(Object.keys(KINDS) as ChannelKind[]).map((k) => (
                  <option key={k} value={k}>{KINDS[k].label}</option>
                ))}
              </select>
            </label>
            <label className="grow">
              {spec.field}
              <input name={`channel-value-${i}`} value={r.value} placeholder={spec.placeholder} aria-invalid={invalid} onChange={(e) => set(i, { value: e.target.value })} />
            </label>
            {r.kind === "telegram" && (
              <label>
                Chat id
                <input name={`channel-chat-${i}`} value={r.chat} placeholder="-1001234567890" aria-invalid={invalid} onChange={(e) => set(i, { chat: e.target.value })} />
              </label>
            )}
            <button type="button" className="secondary" aria-label={`Remove channel ${i + 1}`} onClick={() => onChange(rows.filter((_, j) => j !== i))}>
              Remove
            </button>
          </div>
        );
      })}
      {rows.length < 10 && (
        <button type="button" className="secondary" onClick={() => onChange([...rows, { kind: "webhook", value: "", chat: "" }])}>
          Add channel
        </button>
      )}
    </fieldset>
  );
}
