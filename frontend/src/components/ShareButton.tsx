// Makes a link that shows a check without login, copies it, and can take it back.

import { useState } from "react";
import { ApiError } from "../api/auth";
import { api, must } from "../api/client";

async function copy(text: string): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // No clipboard API (plain-http addresses): the link stays selected in its field.
    return false;
  }
}

export function ShareButton({ checkId }: { checkId: string }) {
  const [link, setLink] = useState<{ url: string; expires_at: string } | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function share() {
    setBusy(true);
    setNote(null);
    try {
      const made = await must(api.POST("/api/v1/checks/{id}/share", { params: { path: { id: checkId } }, body: { expires_in_days: 30 } }));
      setLink(made);
      setNote((await copy(made.url)) ? "Link copied." : "Copy the link below.");
    } catch (err) {
      setNote(err instanceof ApiError ? err.message : "The server cannot be reached.");
    } finally {
      setBusy(false);
    }
  }

  async function unshare() {
    setBusy(true);
    try {
      await must(api.DELETE("/api/v1/checks/{id}/share", { params: { path: { id: checkId } } }));
      setLink(null);
      setNote("The link no longer works.");
    } catch (err) {
      setNote(err instanceof ApiError ? err.message : "The server cannot be reached.");
    } finally {
      setBusy(false);
    }
  }

  return (
    <div className="share-box">
      {!link && (
        <button type="button" className="secondary" onClick={() => void share()} disabled={busy}>
          Share
        </button>
      )}
      {link && (
        <>
          <input aria-label="Share link" readOnly value={link.url} onFocus={(e) => e.target.select()} data-testid="share-url" />
          <button type="button" className="secondary" onClick={() => void copy(link.url).then((ok) => setNote(ok ? "Link copied." : "Select the link and copy it."))}>
            Copy
          </button>
          <button type="button" className="danger" onClick={() => void unshare()} disabled={busy}>
            Stop sharing
          </button>
          <span className="muted">works until {new Date(link.expires_at).toLocaleDateString()}</span>
        </>
      )}
      {note && (
        <span role="status" className="muted">
          {note}
        </span>
      )}
    </div>
  );
}
