// How long a page takes to show its content in headless Chromium, as a user opening it
// sees it: navigation start until `selector` is visible (app load, token refresh, API call,
// render). Used by `cargo bench --bench monitors`.
//
// node tests/pageload.mjs BASE USER PASSWORD PATH SELECTOR [RUNS]
// Prints one line: "page load PATH: median N ms, max N ms over RUNS loads (first N ms)".

import { chromium } from "playwright-core";

const [base, user, password, path, selector, runsArg] = process.argv.slice(2);
const runs = Number(runsArg ?? 10);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  await page.goto(`${base}/login`);
  await page.fill("input[name=username]", user);
  await page.fill("input[name=password]", password);
  await page.click("button[type=submit]");
  await page.getByRole("tab", { name: "PING" }).waitFor({ timeout: 30_000 });
  const times = [];
  for (let i = 0; i < runs + 1; i++) {
    const t0 = performance.now();
    await page.goto(`${base}${path}`, { waitUntil: "commit" });
    await page.locator(selector).first().waitFor({ timeout: 30_000 });
    times.push(performance.now() - t0);
  }
  // The first load fills the browser's cache; the rest are what a returning user sees.
  const [first, ...rest] = times;
  rest.sort((a, b) => a - b);
  const median = rest[Math.floor(rest.length / 2)];
  console.log(`page load ${path}: median ${median.toFixed(0)} ms, max ${rest.at(-1).toFixed(0)} ms over ${rest.length} loads (first ${first.toFixed(0)} ms)`);
} finally {
  await browser.close();
}
