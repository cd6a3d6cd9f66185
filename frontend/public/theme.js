// Applies the saved theme (auto, light or dark) before the app renders, so a dark page does
// not flash white. A file rather than an inline script: the Content-Security-Policy forbids those.
try {
  const t = localStorage.getItem("netcheck.theme");
  document.documentElement.dataset.theme = t === "light" || t === "dark" ? t : "auto";
} catch {
  document.documentElement.dataset.theme = "auto";
}
