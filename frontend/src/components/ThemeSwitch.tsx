// Auto (the system's preference), light or dark; kept in localStorage and applied by
// public/theme.js before the app loads.

import { useState } from "react";

type Theme = "auto" | "light" | "dark";
const KEY = "netcheck.theme";

function saved(): Theme {
  try {
    const t = localStorage.getItem(KEY);
    return t === "light" || t === "dark" ? t : "auto";
  } catch {
    return "auto";
  }
}

export function ThemeSwitch() {
  const [theme, setTheme] = useState<Theme>(saved);
  function choose(t: Theme) {
    setTheme(t);
    document.documentElement.dataset.theme = t;
    try {
      if (t === "auto") localStorage.removeItem(KEY);
      else localStorage.setItem(KEY, t);
    } catch {
      /* private mode: the choice lasts for this page */
    }
  }
  return (
    <label className="theme-switch">
      Theme
      <select name="theme" value={theme} onChange={(e) => choose(e.target.value as Theme)}>
        <option value="auto">auto</option>
        <option value="light">light</option>
        <option value="dark">dark</option>
      </select>
    </label>
  );
}
