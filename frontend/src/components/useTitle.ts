import { useEffect } from "react";

/** Names the browser tab after the page ("History · netcheck"). */
export function useTitle(title: string | null | undefined) {
  useEffect(() => {
    document.title = title ? `${title} · netcheck` : "netcheck";
  }, [title]);
}
