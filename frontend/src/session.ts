import { useSyncExternalStore } from "react";
import { auth, type Session } from "./api/auth";

/** The current session, re-rendering on sign-in, refresh and sign-out. */
export function useSession(): Session | null {
  return useSyncExternalStore(
    (cb) => auth.subscribe(cb),
    () => auth.current,
  );
}
