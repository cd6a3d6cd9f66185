// Browser tests: the real netcheck binary (with the embedded UI), real services, a real agent
// process, driven in headless Chromium with playwright-core. Screenshots of every page go to
// target/ui-screenshots/. Prints "N passed, N failed" and exits non-zero on any failure.

import { spawn, execFileSync } from "node:child_process";
import { createServer } from "node:net";
import dgram from "node:dgram";
import { mkdirSync, readFileSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { randomBytes } from "node:crypto";
import { chromium } from "playwright-core";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const bin = join(root, "target", "debug", "netcheck");
const shots = join(root, "target", "ui-screenshots");
rmSync(shots, { recursive: true, force: true });
mkdirSync(shots, { recursive: true });
const TTL = 4; // access-token lifetime for the refresh test, seconds

const freePort = () =>
  new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

/** A DNS server answering A 192.0.2.44 (TTL 60) for any name. */
function dnsServer() {
  const sock = dgram.createSocket("udp4");
  sock.on("message", (q, rinfo) => {
    let i = 12;
    while (q[i] !== 0) i += q[i] + 1;
    const question = q.subarray(12, i + 5);
    const header = Buffer.from([q[0], q[1], 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]);
    const answer = Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 44]);
    sock.send(Buffer.concat([header, question, answer]), rinfo.port, rinfo.address);
  });
  return new Promise((resolve) => sock.bind(0, "127.0.0.1", () => resolve({ port: sock.address().port, close: () => sock.close() })));
}

const suffix = randomBytes(6).toString("hex");
const db = `nc_test_e2e_${suffix}`;
execFileSync("psql", ["-h", "127.0.0.1", "-U", "postgres", "-qc", `CREATE DATABASE ${db}`]);
const port = await freePort();
const base = `http://127.0.0.1:${port}`;
const env = {
  ...process.env,
  NETCHECK__HTTP__LISTEN: `127.0.0.1:${port}`,
  NETCHECK__DATABASE__URL: `postgres://postgres@127.0.0.1:5432/${db}`,
  NETCHECK__REDIS__KEY_PREFIX: `nctest:e2e:${suffix}`,
  NETCHECK__AMQP__VHOST: `nctest-e2e-${suffix}`,
  NETCHECK__AUTH__ACCESS_TOKEN_TTL_SECS: String(TTL),
  NETCHECK__AGENTS__HEARTBEAT_INTERVAL_SECS: "1",
  NETCHECK__CHECKS__ALLOWED_NETWORKS: "127.0.0.0/8",
  NETCHECK__CHECKS__GRACE_MS: "1500",
  NETCHECK_ADMIN_USERNAME: "admin",
  NETCHECK_ADMIN_PASSWORD: "admin-e2e-password",
  RUST_LOG: "warn",
};
const children = [];
const server = spawn(bin, ["server"], { env, cwd: root, stdio: ["ignore", "inherit", "inherit"] });
children.push(server);
const dns = await dnsServer();
let cleaned = false;
const cleanup = () => {
  if (cleaned) return;
  cleaned = true;
  for (const c of children) c.kill("SIGKILL");
  dns.close();
};
process.on("exit", cleanup);

for (let i = 0; ; i++) {
  try {
    if ((await fetch(`${base}/readyz`)).ok) break;
  } catch {
    /* not up yet */
  }
  if (i > 300) throw new Error("server did not become ready");
  await new Promise((r) => setTimeout(r, 100));
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
page.on("dialog", (d) => d.accept());
const jsErrors = [];
page.on("pageerror", (e) => jsErrors.push(String(e)));
page.on("console", (m) => {
  // Failed HTTP requests (an expected 401 before sign-in) are logged by the browser itself.
  if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) jsErrors.push(m.text());
});
page.setDefaultTimeout(20_000);

let passed = 0;
let failed = 0;
// E2E_ONLY=<text>: run only the tests whose name contains it (and the sign-in and agent they need).
const only = process.env.E2E_ONLY;
const needed = ["sign in", "create an agent and see it go online with a real agent process"];
async function test(name, fn) {
  if (only && !name.includes(only) && !needed.includes(name)) return;
  try {
    await fn();
    passed++;
    console.log(`ok - ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAILED - ${name}\n  ${e?.stack ?? e}`);
    await page.screenshot({ path: join(shots, `FAILED-${name.replace(/\W+/g, "-")}.png`) }).catch(() => {});
  }
}
async function nav(name) {
  // On a phone the navigation sits behind the menu button.
  const menu = page.getByRole("button", { name: "Menu" });
  if (await menu.isVisible()) {
    if ((await menu.getAttribute("aria-expanded")) !== "true") await menu.click();
  }
  await page.locator("header nav").getByRole("link", { name, exact: true }).click();
}
const shot = (name) => page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
const assert = (cond, msg) => {
  if (!cond) throw new Error(msg);
};

await test("sign in", async () => {
  await page.goto(base + "/");
  await page.waitForURL(/\/login$/);
  await shot("01-login");
  await page.fill("input[name=username]", "admin");
  await page.fill("input[name=password]", "wrong-password");
  await page.click("button[type=submit]");
  await page.getByRole("alert").filter({ hasText: "wrong username or password" }).waitFor();
  assert((await page.evaluate(() => globalThis.document.activeElement?.getAttribute("role"))) === "alert", "focus moves to the error");
  await shot("02-login-error");
  await page.fill("input[name=password]", "admin-e2e-password");
  await page.click("button[type=submit]");
  await page.getByRole("tab", { name: "PING" }).waitFor();
  await shot("03-check-form");
});

await test("token refresh while idle past the access-token lifetime", async () => {
  const refreshes = [];
  page.on("response", (r) => r.url().endsWith("/api/v1/auth/refresh") && refreshes.push(r.status()));
  await page.waitForTimeout((TTL * 2 + 1) * 1000);
  await nav("History");
  await page.getByRole("heading", { name: "History" }).waitFor();
  // Focus moves to the new page's heading, and the tab says where we are.
  await page.waitForFunction(() => globalThis.document.activeElement?.tagName === "H1");
  assert((await page.title()) === "History · netcheck", await page.title());
  assert(refreshes.length >= 2, `expected silent refreshes, saw ${refreshes.length}`);
  assert(refreshes.every((s) => s === 200), `refreshes answered ${refreshes}`);
  assert(!page.url().includes("/login"), "still signed in");
});

let agentProc;
await test("create an agent and see it go online with a real agent process", async () => {
  await nav("Agents");
  await page.getByText("No agents yet").waitFor();
  await shot("04-agents-empty");
  // Name rules are said in words.
  await page.fill("input[aria-label='Agent name']", "bad name");
  await page.click("text=Create agent");
  await page.getByText("Use letters, digits, dots, dashes and underscores only").waitFor();
  await page.fill("input[aria-label='Agent name']", "e2e-probe");
  await page.fill("input[aria-label='Region']", "test-lab");
  await page.click("text=Create agent");
  const command = await page.locator("[data-testid=token-box] pre").innerText();
  assert(command.startsWith(`netcheck agent --server ${base} --token nca_`), command);
  await page.getByRole("button", { name: "Copy command" }).click();
  await page.locator(".token-box [role=status]").filter({ hasText: /Copied|Selected/ }).waitFor();
  await shot("05-agent-token");
  const token = command.split("--token ")[1].trim();
  agentProc = spawn(bin, ["agent", "--server", base, "--token", token, "--resolver", `127.0.0.1:${dns.port}`], { env: { ...process.env, RUST_LOG: "warn" }, stdio: "ignore" });
  children.push(agentProc);
  await page.locator("tr[data-agent=e2e-probe] [data-testid=agent-status]", { hasText: "online" }).waitFor({ timeout: 30_000 });
  await shot("06-agent-online");
});

async function runCheck(tab, target, setup) {
  await nav("Check");
  await page.getByRole("tab", { name: tab, exact: true }).click();
  await page.fill("input[aria-label=Target]", target);
  if (setup) await setup();
  await page.click("button[type=submit]");
  await page.waitForURL(/\/checks\/[0-9a-f-]+$/);
  await page.getByText(/^Finished ·/).waitFor({ timeout: 30_000 });
  return page.locator("[data-testid=result]").first().innerText();
}

await test("run each check type and see live results", async () => {
  let text = await runCheck("PING", "127.0.0.1");
  assert(/3\/3 replies, loss 0%/.test(text), `ping: ${text}`);
  assert((await page.getByTestId("rtt-chart").locator("rect.rtt").count()) === 3, "an RTT bar per reply");
  await shot("07-result-ping");
  text = await runCheck("TCP", "127.0.0.1", () => page.fill("input[name=port]", String(port)));
  assert(/connected in/.test(text), `tcp: ${text}`);
  assert((await page.getByTestId("settings").innerText()).includes(`port ${port}`), "a TCP result shows its port");
  // Back brings the form back as it was sent; "Edit and run again" does too.
  await page.goBack();
  await page.waitForURL(/type=tcp/);
  assert((await page.locator("input[name=port]").inputValue()) === String(port), "Back restores the port");
  assert((await page.locator("input[aria-label=Target]").inputValue()) === "127.0.0.1", "Back restores the target");
  await page.goForward();
  await page.getByText(/^Finished ·/).waitFor();
  await shot("08-result-tcp");
  text = await runCheck("HTTP", `${base}/healthz`);
  assert(/HTTP 200/.test(text), `http: ${text}`);
  assert(/first byte/.test(text), `http timings: ${text}`);
  assert((await page.getByTestId("summary").innerText()) === "ok 1 of 1", "summary line");
  assert((await page.getByTestId("timing-bar").count()) === 1, "a timing bar per agent");
  await shot("09-result-http");
  text = await runCheck("DNS", "example.com", () => page.fill("input[placeholder=system]", `127.0.0.1:${dns.port}`));
  assert(/NOERROR · 1 answer/.test(text) && text.includes("192.0.2.44"), `dns: ${text}`);
  await shot("10-result-dns");
  text = await runCheck("TCP", "127.0.0.1", () => page.fill("input[name=port]", "1"));
  assert(/Connection refused/.test(text), `refused explained: ${text}`);
  // A trace: one hop to loopback, in a hop table.
  text = await runCheck("TRACEROUTE", "127.0.0.1");
  assert(/reached in 1 hop/.test(text), `traceroute: ${text}`);
  assert((await page.getByTestId("hops").locator("tbody tr").first().innerText()).includes("127.0.0.1"), "the hop table lists the target");
  await shot("11b-result-traceroute");
  text = await runCheck("MTR", "127.0.0.1", () => page.fill("input[name=packets]", "3"));
  assert(/reached in 1 hop/.test(text), `mtr: ${text}`);
  assert(/0 %/.test(await page.getByTestId("hops").innerText()), "mtr shows loss per hop");
  assert((await page.getByTestId("settings").innerText()).includes("3 packets per hop"), "mtr settings shown");
  await shot("11-result-error");
  // Inline validation, before any request.
  await nav("Check");
  // Tabs follow the WAI-ARIA pattern: arrows move the selection; an empty target is no error yet.
  await page.getByRole("tab", { name: "PING" }).focus();
  await page.keyboard.press("ArrowRight");
  assert((await page.getByRole("tab", { name: "HTTP" }).getAttribute("aria-selected")) === "true", "ArrowRight selects HTTP");
  assert((await page.locator(".field-error").count()) === 0, "no error for a field not filled in yet");
  await page.keyboard.press("ArrowLeft");
  assert((await page.getByRole("tab", { name: "PING" }).getAttribute("aria-selected")) === "true", "ArrowLeft selects PING");
  await page.fill("input[aria-label=Target]", "127.0.0.1");
  await page.fill("input[name=count]", "99");
  await page.click("button[type=submit]");
  await page.getByText("Packets must be between 1 and 16.").waitFor();
  assert(new URL(page.url()).pathname === "/", "nothing was sent");
  assert((await page.evaluate(() => globalThis.document.activeElement?.getAttribute("name"))) === "count", "focus on the field to fix");
  assert((await page.locator("input[name=count]").getAttribute("aria-describedby")) === "err-count", "the message is tied to its field");
  await page.getByRole("tab", { name: "HTTP" }).click();
  await page.fill("input[aria-label=Target]", "example.com");
  await page.click("button[type=submit]");
  await page.getByText("Enter a URL starting with http:// or https://.").waitFor();
  // The permalink works on a fresh load.
  await page.goBack();
  await page.reload();
  await page.getByText(/^Finished ·/).waitFor();
  await nav("History");
  await page.locator("table.list tbody tr").nth(6).waitFor();
  assert((await page.locator("table.list tbody tr").count()) === 7, "seven checks in the history");
  const settings = await page.locator("table.list tbody tr [data-testid=settings]").allInnerTexts();
  assert(settings.includes("port 1") && settings.includes(`port ${port}`), `history tells the ports apart: ${settings}`);
  await shot("12-history");
});

await test("the check form has a field for every option and expectation in the API", async () => {
  const doc = await (await fetch(`${base}/api/openapi.json`)).json();
  const props = (name) => Object.keys(doc.components.schemas[name].properties);
  await nav("Check");
  const missing = [];
  for (const [tab, type, expect] of [["PING", "Ping", "PingExpect"], ["TCP", "Tcp", "TcpExpect"], ["HTTP", "Http", "HttpExpect"], ["DNS", "Dns", "DnsExpect"], ["TRACEROUTE", "Traceroute", "TraceExpect"], ["MTR", "Mtr", "TraceExpect"]]) {
    await page.getByRole("tab", { name: tab, exact: true }).click();
    const names = new Set(await page.locator("form.check-form [name]").evaluateAll((els) => els.map((e) => e.getAttribute("name"))));
    const wanted = [...props(`${type}Options`).filter((p) => p !== "expect"), ...props(expect).map((p) => `expect.${p}`)];
    for (const w of wanted) if (!names.has(w)) missing.push(`${tab} ${w}`);
  }
  assert(missing.length === 0, `options without a form field: ${missing.join(", ")}`);
  // An expectation goes out with the check, and its verdict comes back.
  await page.getByRole("tab", { name: "HTTP" }).click();
  await page.fill("input[aria-label=Target]", `${base}/healthz`);
  await page.getByText("Expectations").click();
  await page.fill("input[name='expect.status']", "2xx");
  await page.fill("input[name='expect.body_regex']", "^nope$");
  await page.click("button[type=submit]");
  await page.waitForURL(/\/checks\/[0-9a-f-]+$/);
  await page.getByText(/^Finished ·/).waitFor({ timeout: 30_000 });
  const verdicts = await page.getByRole("list", { name: "expectations" }).innerText();
  assert(/status/.test(verdicts) && /body_regex/.test(verdicts) && /does not match/.test(verdicts), verdicts);
  await shot("09b-expectations");
  // A refused option marks its field.
  await nav("Check");
  await page.getByRole("tab", { name: "HTTP" }).click();
  await page.fill("input[aria-label=Target]", `${base}/healthz`);
  await page.getByText("Expectations").click();
  await page.fill("input[name='expect.body_regex']", "(unclosed");
  await page.click("button[type=submit]");
  await page.getByRole("alert").filter({ hasText: "invalid regular expression" }).waitFor();
  assert((await page.locator("input[name='expect.body_regex']").getAttribute("aria-invalid")) === "true", "field marked");
});

await test("lookup shows addresses with locations and map markers", async () => {
  await nav("Lookup");
  await page.getByText("Enter a host to see").waitFor();
  await page.fill("input[aria-label=Host]", "1.1.1.1");
  await page.getByRole("button", { name: "Look up" }).click();
  await page.locator("[data-testid=addresses] tbody tr").first().waitFor();
  const row = await page.locator("[data-testid=addresses] tbody tr").first().innerText();
  assert(row.includes("1.1.1.1") && row.includes("IPv4"), row);
  assert((await page.locator("[data-testid=marker-address]").count()) === 1, "one address marker");
  assert(await page.getByText("IP Geolocation by DB-IP").isVisible(), "attribution shown");
  await shot("13-lookup");
});

/** Waits for a real agent process to stop with exit code 3 (its token was revoked). */
function revoked(proc) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error("agent did not exit")), 20_000);
    proc.on("exit", (code) => (clearTimeout(t), code === 3 ? resolve() : reject(new Error(`agent exit code ${code}`))));
    if (proc.exitCode !== null) proc.emit("exit", proc.exitCode);
  });
}

/** Opens an agent's editor, fills `fields` (input name → value) and saves. */
async function editAgent(name, fields) {
  await page.locator(`tr[data-agent=${name}] button`, { hasText: "Edit" }).click();
  const form = page.getByRole("form", { name: `Edit ${name}` });
  for (const [field, value] of Object.entries(fields)) await form.locator(`input[name=${field}]`).fill(value);
  await form.getByRole("button", { name: "Save" }).click();
  return form;
}

await test("agents get places and labels, checks run from chosen places, results group by country", async () => {
  await nav("Agents");
  let form = await editAgent("e2e-probe", { labels: "dc1, edge", country_code: "de", city: "Berlin", lat: "52.52", lon: "13.40", asn: "3320", network: "Deutsche Telekom AG" });
  await form.waitFor({ state: "detached" });
  const row = page.locator("tr[data-agent=e2e-probe]");
  await row.locator("[data-testid=agent-place]", { hasText: "Berlin, DE" }).waitFor();
  assert((await row.locator("[data-testid=agent-network]").innerText()) === "AS3320 Deutsche Telekom AG", "network shown");
  assert((await row.innerText()).includes("edge"), "labels shown");
  assert(await page.getByText("ip-location-db ASN data").isVisible(), "ASN attribution shown");
  // The server's refusal shows next to the form, and marks the field.
  form = await editAgent("e2e-probe", { country_code: "ZZ" });
  await form.getByRole("alert").filter({ hasText: "not an ISO 3166 country code" }).waitFor();
  assert((await form.locator("input[name=country_code]").getAttribute("aria-invalid")) === "true", "field marked invalid");
  await shot("17-agent-edit-error");
  await form.getByRole("button", { name: "Cancel" }).click();

  // A second real agent, in another country, also labelled dc1.
  await page.fill("input[aria-label='Agent name']", "e2e-probe-2");
  await page.fill("input[aria-label='Region']", "");
  await page.click("text=Create agent");
  const command = await page.locator("[data-testid=token-box] pre").innerText();
  const second = spawn(bin, ["agent", "--server", base, "--token", command.split("--token ")[1].trim()], { env: { ...process.env, RUST_LOG: "warn" }, stdio: "ignore" });
  children.push(second);
  await page.locator("tr[data-agent=e2e-probe-2] [data-testid=agent-status]", { hasText: "online" }).waitFor({ timeout: 30_000 });
  await page.getByRole("button", { name: "Done" }).click();
  form = await editAgent("e2e-probe-2", { labels: "dc1", country_code: "US", city: "New York" });
  await form.waitFor({ state: "detached" });
  await page.locator("tr[data-agent=e2e-probe-2] [data-testid=agent-place]", { hasText: "New York, US" }).waitFor();
  await shot("18-agents-places");

  // The picker offers the places with their online agents and previews who runs the check.
  await nav("Check");
  await page.getByRole("tab", { name: "TCP" }).click();
  await page.fill("input[aria-label=Target]", "127.0.0.1");
  await page.fill("input[name=port]", String(port));
  await page.getByRole("radio", { name: "By place, network or label" }).click();
  const add = page.locator("select[aria-label='Add a place']");
  const offered = await add.locator("option").allInnerTexts();
  for (const o of ["Germany (DE) — 1 online", "United States (US) — 1 online", "Label dc1 — 2 online", "AS3320 Deutsche Telekom AG — 1 online"])
    assert(offered.includes(o), `offered ${o}: ${offered.join(" | ")}`);
  await add.selectOption("country:DE");
  await page.click("text=Add place");
  await add.selectOption("label:dc1");
  await page.click("text=Add place");
  const preview = page.getByTestId("place-preview");
  assert((await preview.locator("li[data-place='country:DE']").innerText()).includes("1 of e2e-probe"), await preview.innerText());
  assert((await preview.locator("li[data-place='label:dc1']").innerText()).includes("1 of e2e-probe-2"), "the label takes the agent DE left");
  await page.getByText("Run from (up to 2 agents from 2 places)").waitFor();
  await shot("19-place-picker");
  await page.click("button[type=submit]");
  await page.waitForURL(/\/checks\/[0-9a-f-]+$/);
  await page.getByText(/^Finished ·/).waitFor({ timeout: 30_000 });
  assert((await page.locator("[data-testid=result]").count()) === 2, "both places ran it");
  const groups = await page.locator("section.country-group").evaluateAll((els) => els.map((e) => e.dataset.country));
  assert(groups.join(",") === "DE,US", `grouped by country: ${groups}`);
  await page.getByRole("heading", { name: /Germany\s*1 of 1 ok/ }).waitFor();
  assert((await page.getByTestId("summary").innerText()) === "ok 2 of 2", "summary line");
  // The Berlin agent has coordinates: it is on the map, green.
  await page.locator("[data-testid=marker-agent][data-status=ok]").first().waitFor();
  await shot("20-results-by-country");

  // DNS answers compared across the two agents.
  await nav("Check");
  await page.getByRole("tab", { name: "DNS" }).click();
  await page.fill("input[aria-label=Target]", "example.com");
  await page.fill("input[placeholder=system]", `127.0.0.1:${dns.port}`);
  await page.getByRole("radio", { name: "All online agents" }).click();
  await page.click("button[type=submit]");
  await page.waitForURL(/\/checks\/[0-9a-f-]+$/);
  await page.getByText(/^Finished ·/).waitFor({ timeout: 30_000 });
  await page.getByTestId("dns-compare").getByText("Every agent got the same answer").waitFor();

  // One place with a limit: only that country's agent runs it.
  await nav("Check");
  await page.getByRole("tab", { name: "TCP" }).click();
  await page.fill("input[aria-label=Target]", "127.0.0.1");
  await page.fill("input[name=port]", String(port));
  await page.getByRole("radio", { name: "By place, network or label" }).click();
  await add.selectOption("country:US");
  await page.click("text=Add place");
  await page.click("button[type=submit]");
  await page.waitForURL(/\/checks\/[0-9a-f-]+$/);
  await page.getByText(/^Finished ·/).waitFor({ timeout: 30_000 });
  const only = await page.locator("[data-testid=result]").allInnerTexts();
  assert(only.length === 1 && only[0].includes("e2e-probe-2"), `only the US agent: ${only}`);

  // A traceroute from both agents: their paths side by side.
  await runCheck("TRACEROUTE", "127.0.0.1");
  await page.getByTestId("path-compare").getByText("The paths agree where they overlap.").waitFor();
  const heads = await page.getByTestId("path-compare").locator("th").allInnerTexts();
  assert(heads.includes("e2e-probe") && heads.includes("e2e-probe-2"), `a column per agent: ${heads}`);
  await shot("13c-path-compare");
  // Hops on this machine are private addresses, which have no place. Give e2e-probe's first
  // hop one (as the server does for public routers) and its path is drawn: Berlin → Paris.
  const traceId = page.url().split("/").pop();
  execFileSync("psql", ["-h", "127.0.0.1", "-U", "postgres", "-d", db, "-qc",
    `UPDATE check_results SET data = jsonb_set(data, '{hops,0,geo}', '{"country_code":"FR","city":"Paris","lat":48.86,"lon":2.35}') WHERE check_id = '${traceId}' AND agent_name = 'e2e-probe'`]);
  await page.reload();
  await page.getByTestId("route").first().waitFor();
  assert((await page.getByTestId("route").count()) === 1, "one path: the agent with a place, through the hop with one");
  assert(/2 places on the way/.test(await page.getByTestId("route").first().locator("title").textContent()), "Berlin and Paris");
  // The router itself is marked where it is, named by its TTL, address and place.
  assert((await page.getByTestId("marker-hop").count()) === 1, "one placed router");
  const router = await page.getByTestId("marker-hop").locator("title").textContent();
  assert(/^hop 1 · 127\.0\.0\.1 · Paris FR$/.test(router), `router marker: ${router}`);
  await shot("13d-trace-route");

  await nav("Agents");
  await page.locator("tr[data-agent=e2e-probe-2] button", { hasText: "Delete" }).click();
  await revoked(second);
});

await test("history filters live in the URL, Run again repeats a check, and a share link opens without login", async () => {
  // A 4xx answer is a failure now, explained in words.
  const text = await runCheck("HTTP", `${base}/api/v1/no-such-path`);
  assert(/error status \(4xx or 5xx\)/.test(text), `http 404: ${text}`);

  await nav("History");
  await page.locator("select[name=type]").selectOption("tcp");
  await page.locator("select[name=status]").selectOption("ok");
  await page.getByRole("button", { name: "Filter", exact: true }).click();
  await page.waitForURL(/type=tcp/);
  assert(/status=ok/.test(page.url()), page.url());
  // Runs in the page, where `globalThis` is the window.
  const onlyTcp = () =>
    page.waitForFunction(() => {
      const cells = [...globalThis.document.querySelectorAll("[data-testid=history] tbody td:nth-child(2)")];
      return cells.length > 0 && cells.every((td) => td.textContent === "TCP");
    });
  await onlyTcp();
  const types = await page.locator("[data-testid=history] tbody td:nth-child(2)").allInnerTexts();
  assert(types.length > 0 && types.every((t) => t === "TCP"), `only TCP: ${types}`);
  const oks = await page.locator("[data-testid=history] tbody td:nth-child(4)").allInnerTexts();
  assert(oks.every((t) => t.split("/")[0] === t.split("/")[1]), `only checks ok everywhere: ${oks}`);
  // The filters survive a reload.
  await page.reload();
  await onlyTcp();
  assert((await page.locator("select[name=type]").inputValue()) === "tcp", "type kept");
  await shot("21-history-filtered");
  await page.fill("input[name=target]", "no-such-target");
  await page.getByRole("button", { name: "Filter", exact: true }).click();
  await page.getByText("No checks match these filters.").waitFor();
  await page.getByRole("button", { name: "Clear filters" }).click();
  await page.waitForURL((u) => !u.search);

  // Run again: same type, target and options, on the same agents.
  const first = page.locator("[data-testid=history] tbody tr").first();
  const target = await first.locator("td:nth-child(3) a").innerText();
  await first.getByRole("button", { name: "Run again" }).click();
  await page.waitForURL(/\/checks\/[0-9a-f-]+$/);
  await page.getByText(/^Finished ·/).waitFor({ timeout: 30_000 });
  assert((await page.locator("h1").innerText()).includes(target), "the same target ran again");

  // Share, open in a fresh browser without a session, then withdraw.
  await page.getByRole("button", { name: "Share" }).click();
  const url = await page.getByTestId("share-url").inputValue();
  assert(url.startsWith(`${base}/s/`), url);
  await shot("22-shared-link");
  const stranger = await browser.newContext();
  const view = await stranger.newPage();
  await view.goto(url);
  await view.getByText("A shared result, read-only.").waitFor();
  const shared = await view.locator("[data-testid=result]").allInnerTexts();
  assert(shared.length > 0 && shared.every((t) => t.includes("e2e-probe")), `results by agent name: ${shared}`);
  assert((await view.getByText("Sign out").count()) === 0, "no session in the stranger's browser");
  await view.screenshot({ path: join(shots, "23-shared-view.png"), fullPage: true });
  await page.getByRole("button", { name: "Stop sharing" }).click();
  await page.getByText("The link no longer works.").waitFor();
  await view.reload();
  await view.getByText("This link does not work").waitFor();
  await stranger.close();
});

await test("a monitor goes down, shows its incident, pauses, and is listed by state", async () => {
  await nav("Monitors");
  await page.getByText("No monitors yet.").waitFor();
  await page.getByRole("button", { name: "New monitor" }).click();
  const form = page.getByRole("form", { name: "New monitor" });
  await form.locator("input[name=name]").fill("e2e-mon");
  await form.locator("select[name=type]").selectOption("tcp");
  await form.locator("input[name=target]").fill("127.0.0.1");
  await form.locator("input[name=port]").fill("1");
  await form.locator("input[name=interval_secs]").fill("10");
  await form.locator("input[name=for_runs]").fill("1");
  await form.getByRole("button", { name: "Create monitor" }).click();
  await page.waitForURL(/\/monitors\/[0-9a-f-]+$/);
  await page.getByTestId("monitor-state").filter({ hasText: "down" }).waitFor({ timeout: 30_000 });
  await page.getByTestId("incidents").getByText("Open", { exact: true }).waitFor();
  assert((await page.getByTestId("uptime").innerText()) === "0.0 %", "uptime over the failing runs");
  // Only failing runs: nothing to chart, and it says so.
  await page.getByText("Nothing to chart yet").waitFor();
  await shot("24-monitor-down");
  // Edit: the form comes back filled in; a changed interval and port are saved.
  await page.getByRole("button", { name: "Edit" }).click();
  const edit = page.getByRole("form", { name: "Edit e2e-mon" });
  assert((await edit.locator("input[name=port]").inputValue()) === "1", "the port is restored");
  assert((await edit.locator("select[name=type]").inputValue()) === "tcp", "the type is restored");
  await edit.locator("input[name=interval_secs]").fill("20");
  await edit.getByRole("button", { name: "Save monitor" }).click();
  await page.getByText("every 20 s").waitFor();
  await page.getByRole("button", { name: "Pause" }).click();
  await page.getByTestId("monitor-state").filter({ hasText: "paused" }).waitFor();
  await nav("Monitors");
  await page.locator("select[name=state]").selectOption("paused");
  await page.waitForURL(/state=paused/);
  await page.locator("tr[data-monitor=e2e-mon]").waitFor();
  const listed = page.locator("tr[data-monitor=e2e-mon]");
  assert((await listed.getByTestId("uptime-24h").innerText()) === "0.0 %", "uptime in the list");
  await listed.locator("svg.sparkline").waitFor();
  await page.locator("select[name=state]").selectOption("down");
  await page.getByText("No monitors match.").waitFor();
  await shot("25-monitors");
  await page.locator("select[name=state]").selectOption("");
  await page.locator("tr[data-monitor=e2e-mon]").getByRole("link", { name: "e2e-mon" }).click();
  await page.getByRole("button", { name: "Delete" }).click();
  await page.waitForURL(/\/monitors$/);
  await page.getByText("No monitors yet.").waitFor();

  // "Monitor this" on a result: the same check, the same agents, every minute.
  // The oldest TCP check that was ok: it ran on e2e-probe alone, which is still here.
  await page.goto(`${base}/history?type=tcp&status=ok`);
  const row = page.locator("[data-testid=history] tbody tr").last();
  await row.waitFor();
  const target = await row.locator("td:nth-child(3) a").innerText();
  await row.getByRole("link").click();
  await page.getByRole("button", { name: "Monitor this" }).click();
  await page.waitForURL(/\/monitors\/[0-9a-f-]+$/);
  assert((await page.locator("h1").innerText()).includes(target), "named after the check");
  // Its first run answers ok: the latency chart is uPlot's, with a legend naming the agent.
  await page.locator(".latency-chart .uplot canvas").waitFor({ timeout: 30_000 });
  await page.locator(".latency-chart .u-legend").getByText("e2e-probe", { exact: true }).first().waitFor();
  await shot("25b-monitor-chart");
  await page.getByRole("button", { name: "Delete" }).click();
  await page.waitForURL(/\/monitors$/);
  await page.getByText("No monitors yet.").waitFor();
});

await test("a status page made in the editor shows a monitor down, where, and its recovery, without login", async () => {
  // Access tokens live TTL seconds here: a fresh one for each call.
  const auth = async () => {
    const login = await (await fetch(`${base}/api/v1/auth/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username: "admin", password: "admin-e2e-password" }) })).json();
    return { authorization: `Bearer ${login.access_token}`, "content-type": "application/json" };
  };
  const mon = await (await fetch(`${base}/api/v1/monitors`, {
    method: "POST",
    headers: await auth(),
    body: JSON.stringify({ name: "shop-api", check: { type: "tcp", target: "127.0.0.1", options: { port: 1, timeout_ms: 500 } }, interval_secs: 3600, alert: { min_failing_agents: 1, for_runs: 1 } }),
  })).json();
  await nav("Status pages");
  await page.getByText("No status pages yet.").waitFor();
  await page.getByRole("button", { name: "New status page" }).click();
  const form = page.getByRole("form", { name: "New status page" });
  await form.locator("input[name=slug]").fill("e2e-shop");
  await form.locator("input[name=title]").fill("Shop status");
  await form.locator("select[name=add-0]").selectOption({ label: "shop-api" });
  await form.locator("input[name=display-0-0]").fill("Shop API");
  await form.getByTestId("preview").getByText("Shop API").waitFor();
  await form.getByRole("button", { name: "Create page" }).click();
  await page.getByTestId("status-pages").getByText("/status/e2e-shop").waitFor();
  await shot("26-status-pages");
  // Anyone, signed in or not, reads the page.
  const ctx = await browser.newContext({ viewport: { width: 390, height: 844 } });
  const anon = await ctx.newPage();
  await anon.goto(`${base}/status/e2e-shop`);
  // The page refreshes itself every 30 s (and the server renders it at most every 5 s); a
  // reader in a hurry reloads.
  const until = async (headline) => {
    for (let i = 0; i < 60; i++) {
      const now = await anon.getByTestId("overall").innerText();
      if (now.includes(headline)) return;
      await anon.waitForTimeout(500);
      await anon.reload();
    }
    throw new Error(`never "${headline}": ${await anon.locator("main").innerText()}`);
  };
  await until("Major outage");
  const row = anon.getByTestId("status-monitor").filter({ hasText: "Shop API" });
  await row.getByTestId("status-state").filter({ hasText: "Down" }).waitFor();
  assert((await row.getByTestId("bar").count()) === 90, "90 daily bars");
  assert((await row.getByTestId("places").innerText()).includes("down"), "the places that see it down");
  await anon.getByTestId("incidents").getByText("ongoing").waitFor();
  assert(!(await anon.content()).includes("e2e-probe"), "no agent names on a public page");
  await anon.screenshot({ path: join(shots, "27-status-public-down.png"), fullPage: true });
  // Recovery: the monitor checks a port that answers (the server's own) and runs at once.
  const patched = await fetch(`${base}/api/v1/monitors/${mon.monitor.id}`, { method: "PATCH", headers: await auth(), body: JSON.stringify({ check: { type: "tcp", target: "127.0.0.1", options: { port } } }) });
  assert(patched.ok, `PATCH answered ${patched.status}`);
  execFileSync("psql", ["-h", "127.0.0.1", "-U", "postgres", "-d", db, "-qc", `UPDATE monitors SET next_run_at = now() WHERE id = '${mon.monitor.id}'`]);
  await until("All systems operational");
  await anon.getByRole("region", { name: "Past incidents (30 days)" }).getByText("resolved").waitFor();
  await anon.screenshot({ path: join(shots, "28-status-public-up.png"), fullPage: true });
  // Planned work on the whole page, from the editor: the page says so.
  await page.getByRole("button", { name: "Maintenance" }).click();
  const plan = page.getByRole("form", { name: "Plan maintenance" });
  const inAnHour = new Date(Date.now() + 3600_000).toLocaleString("sv").slice(0, 16).replace(" ", "T");
  await plan.locator("input[name=maintenance-until]").fill(inAnHour);
  await plan.locator("input[name=maintenance-note]").fill("Payment provider upgrade");
  await plan.getByRole("button", { name: "Plan maintenance" }).click();
  await page.getByTestId("maintenance").getByText("On now").waitFor();
  await until("Under maintenance");
  await anon.getByText("Payment provider upgrade").first().waitFor();
  assert((await row.getByTestId("status-state").textContent()) === "Maintenance", "the monitor reads maintenance");
  await ctx.close();
  const headers = await auth();
  const pages = await (await fetch(`${base}/api/v1/status-pages`, { headers })).json();
  for (const p of pages) await fetch(`${base}/api/v1/status-pages/${p.id}`, { method: "DELETE", headers });
  await fetch(`${base}/api/v1/monitors/${mon.monitor.id}`, { method: "DELETE", headers });
});

await test("users page", async () => {
  await nav("Users");
  await page.fill("input[aria-label='New username']", "viewer");
  await page.fill("input[aria-label='New password']", "viewer-password");
  await page.click("text=Add user");
  await page.locator("table.list td", { hasText: "viewer" }).waitFor();
  assert((await page.locator("tr[data-user=admin]").innerText()).includes("(you)"), "your own row is marked");
  await page.locator("tr[data-user=viewer] select").selectOption("admin");
  await page.getByRole("status").filter({ hasText: "viewer is now an administrator." }).waitFor();
  await page.locator("tr[data-user=viewer] select").selectOption("user");
  await page.getByRole("status").filter({ hasText: "viewer is now a normal user." }).waitFor();
  await shot("14-users");
});

await test("API keys: made once, listed, and revoked by an administrator", async () => {
  await nav("API keys");
  await page.fill("input[name=key-name]", "e2e-script");
  await page.click("text=Create key");
  const secret = (await page.getByTestId("new-api-key").textContent()).trim();
  assert(/^nck_/.test(secret), `key shown once: ${secret}`);
  const asKey = () => fetch(`${base}/api/v1/auth/me`, { headers: { authorization: `Bearer ${secret}` } });
  assert((await asKey()).ok, "the new key works");
  await page.locator("tr[data-key=e2e-script]").waitFor();
  await shot("14b-api-keys");
  await nav("Users");
  await page.locator("tr[data-user=admin] button", { hasText: "API keys" }).click();
  await page.locator("li[data-key=e2e-script] button", { hasText: "Revoke" }).click();
  await page.getByText("admin has no API keys.").waitFor();
  await shot("14c-user-keys-revoked");
  assert((await asKey()).status === 401, "the revoked key no longer works");
});

await test("every page passes axe in both themes, at desktop and phone size, without sideways scrolling", async () => {
  const axe = readFileSync(join(root, "frontend", "node_modules", "axe-core", "axe.min.js"), "utf8");
  const login = await (await fetch(`${base}/api/v1/auth/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username: "admin", password: "admin-e2e-password" }) })).json();
  const get = async (path) => (await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${login.access_token}` } })).json();
  const checkId = (await get("/api/v1/checks?limit=1")).checks[0].id;
  const share = await (await fetch(`${base}/api/v1/checks/${checkId}/share`, { method: "POST", headers: { authorization: `Bearer ${login.access_token}`, "content-type": "application/json" }, body: "{}" })).json();
  const mon = await (await fetch(`${base}/api/v1/monitors`, {
    method: "POST",
    headers: { authorization: `Bearer ${login.access_token}`, "content-type": "application/json" },
    body: JSON.stringify({ name: "axe-mon", check: { type: "tcp", target: "127.0.0.1", options: { port: 1 } }, interval_secs: 3600, notify: [{ slack: "http://127.0.0.1:9/hook" }] }),
  })).json();
  await fetch(`${base}/api/v1/status-pages`, {
    method: "POST",
    headers: { authorization: `Bearer ${login.access_token}`, "content-type": "application/json" },
    body: JSON.stringify({ slug: "axe-page", title: "Axe status", groups: [{ name: "Core", monitors: [{ id: mon.monitor.id }] }] }),
  });
  const pages = [
    ["check", "/"], ["result", `/checks/${checkId}`], ["history", "/history"], ["monitors", "/monitors"], ["monitor", `/monitors/${mon.monitor.id}`],
    ["lookup", "/lookup/127.0.0.1"], ["agents", "/admin/agents"], ["users", "/admin/users"], ["api-keys", "/settings/api-keys"],
    ["shared", new URL(share.url).pathname], ["status-pages", "/status-pages"], ["status", "/status/axe-page"],
    ["not-found", "/no/such/page"], ["login", "/login"],
  ];
  const problems = [];
  for (const theme of ["light", "dark"]) {
    for (const [size, viewport] of [["desktop", { width: 1280, height: 860 }], ["phone", { width: 390, height: 844 }]]) {
      // axe is injected past the CSP (which rightly forbids it) in a context of its own.
      const ctx = await browser.newContext({ viewport, bypassCSP: true, colorScheme: theme });
      await ctx.addInitScript((t) => globalThis.localStorage.setItem("netcheck.theme", t), theme);
      const p = await ctx.newPage();
      await p.goto(`${base}/login`);
      await p.fill("input[name=username]", "admin");
      await p.fill("input[name=password]", "admin-e2e-password");
      await p.click("button[type=submit]");
      await p.getByRole("tab", { name: "PING" }).waitFor();
      for (const [name, path] of pages) {
        if (name === "login") {
          await p.getByRole("button", { name: "Menu" }).isVisible().then((v) => (v ? p.getByRole("button", { name: "Menu" }).click() : null));
          await p.getByRole("button", { name: "Sign out" }).click();
          await p.waitForURL(/\/login$/);
        } else {
          await p.goto(base + path);
        }
        await p.locator("h1").first().waitFor();
        await p.waitForLoadState("networkidle").catch(() => {});
        assert((await p.evaluate(() => globalThis.document.documentElement.dataset.theme)) === theme, `${name}: theme ${theme} applied`);
        await p.evaluate(axe);
        const found = await p.evaluate(async () => {
          const r = await globalThis.axe.run(globalThis.document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"] } });
          return r.violations.filter((v) => v.impact === "serious" || v.impact === "critical").map((v) => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(" | ")}`);
        });
        for (const f of found) problems.push(`${theme}/${size}/${name}: ${f}`);
        const [scroll, width, wide] = await p.evaluate(() => {
          const w = globalThis.innerWidth;
          // The outermost elements that stick out, to say what to fix.
          const out = [...globalThis.document.querySelectorAll("body *")]
            .filter((e) => e.getBoundingClientRect().right > w + 1 && !(e.parentElement && e.parentElement.getBoundingClientRect().right > w + 1))
            .slice(0, 3)
            .map((e) => `${e.tagName.toLowerCase()}.${[...e.classList].join(".")} (${Math.round(e.getBoundingClientRect().right)})`);
          return [globalThis.document.documentElement.scrollWidth, w, out];
        });
        if (scroll > width) problems.push(`${theme}/${size}/${name}: scrolls sideways (${scroll} > ${width}): ${wide.join(", ")}`);
        if (size === "phone" && name !== "login" && name !== "shared" && name !== "status") {
          const header = await p.locator("header.topbar").boundingBox();
          if (header.height > 64) problems.push(`${theme}/${size}/${name}: header ${header.height}px tall`);
        }
        await p.screenshot({ path: join(shots, `theme-${theme}-${size}-${name}.png`), fullPage: true });
      }
      await ctx.close();
    }
  }
  await fetch(`${base}/api/v1/monitors/${mon.monitor.id}`, { method: "DELETE", headers: { authorization: `Bearer ${login.access_token}` } });
  assert(problems.length === 0, `\n${problems.join("\n")}`);
});

await test("a reload of a lookup URL with dots renders the lookup", async () => {
  await page.goto(`${base}/lookup/8.8.8.8`);
  await page.getByRole("heading", { name: "Where 8.8.8.8 is" }).waitFor();
  await page.locator("[data-testid=addresses]").getByText("8.8.8.8").waitFor();
  assert((await page.title()) === "Lookup 8.8.8.8 · netcheck", await page.title());
});

await test("the system's dark preference applies until a theme is chosen, and a skip link leads to the content", async () => {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 860 }, colorScheme: "dark" });
  const p = await ctx.newPage();
  await p.goto(`${base}/login`);
  await p.locator("h1").waitFor();
  const bg = () => p.evaluate(() => globalThis.getComputedStyle(globalThis.document.documentElement).backgroundColor);
  assert((await bg()) === "rgb(11, 18, 32)", `auto follows the system: ${await bg()}`);
  await p.locator("select[name=theme]").selectOption("light");
  await p.reload();
  await p.locator("h1").waitFor();
  assert((await bg()) === "rgb(244, 246, 249)", `the choice survives a reload: ${await bg()}`);
  await p.fill("input[name=username]", "admin");
  await p.fill("input[name=password]", "admin-e2e-password");
  await p.click("button[type=submit]");
  await p.getByRole("tab", { name: "PING" }).waitFor();
  await p.goto(`${base}/history`);
  await p.locator("h1").waitFor();
  await p.keyboard.press("Tab");
  const skip = p.getByRole("link", { name: "Skip to content" });
  assert(await skip.evaluate((e) => e === globalThis.document.activeElement), "the first Tab reaches the skip link");
  assert((await skip.boundingBox()).y >= 0, "and it is visible when focused");
  await p.keyboard.press("Enter");
  assert((await p.evaluate(() => globalThis.document.activeElement?.id)) === "main", "Enter moves to the content");
  await ctx.close();
});

await test("delete an agent and see it go away", async () => {
  await nav("Agents");
  await page.locator("tr[data-agent=e2e-probe] button", { hasText: "Delete" }).click();
  await page.getByText("No agents yet").waitFor();
  // The real agent process stops: its token was revoked.
  await revoked(agentProc);
  await shot("15-agent-deleted");
});

await test("narrow screens and sign-out", async () => {
  await page.setViewportSize({ width: 390, height: 800 });
  await nav("Check");
  await shot("16-mobile");
  await page.getByRole("button", { name: "Menu" }).click();
  await shot("16b-mobile-menu");
  await page.click("text=Sign out");
  await page.waitForURL(/\/login$/);
});

await test("no errors in the browser console", async () => {
  assert(jsErrors.length === 0, jsErrors.join("\n"));
});

await browser.close();
cleanup();
execFileSync("psql", ["-h", "127.0.0.1", "-U", "postgres", "-qc", `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`]);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
