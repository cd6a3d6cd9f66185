// Copies text and says so. Where the clipboard API is missing (plain-http addresses other
// than localhost), it selects the text instead and asks for Ctrl+C.

import { useState, type RefObject } from "react";

export function CopyButton({ text, source, label = "Copy" }: { text: string; source: RefObject<HTMLElement | null>; label?: string }) {
  const [note, setNote] = useState<string | null>(null);
  async function copy() {
    if (navigator.clipboard && window.isSecureContext) {
      try {
        await navigator.clipboard.writeText(text);
        setNote("Copied.");
        return;
      } catch {
        /* denied: fall back to selecting */
      }
    }
    const el = source.current;
    if (el) {
      const range = document.createRange();
      range.selectNodeContents(el);
      const sel = window.getSelection();
      sel?.removeAllRanges();
      sel?.addRange(range);
    }
    setNote("Selected — press Ctrl+C (⌘C) to copy.");
  }
  return (
    <>
      <button type="button" className="secondary" onClick={() => void copy()}>
        {label}
      </button>
      <span className="copied" role="status">{note}</span>
    </>
  );
}
