// Drives the console in headless Chromium against a running `latchkey
// serve`, through the UI alone: sign in with the operator key, issue a key
// and copy its token, check with an API call that it verifies, rotate with
// a grace period, revoke; axe-core on every page (no serious or critical
// violation), a screenshot of every page, the keys page with 50 keys timed
// in the browser, and the issue-and-revoke flow once more with the keyboard
// alone. Then the scenarios of test/scenarios/, in the order listed below.
// The console must run under its own Content-Security-Policy with no
// violation, and keep no credential in storage or in the address.
//
//   LATCHKEY_URL=http://127.0.0.1:8080 LATCHKEY_KEY=lk_... [OIDC_ISSUER=...] node test/console.mjs
//
// A scenario is a module whose default export is an async function of the
// harness `t` below. It starts with t.page signed in as the operator (on
// any page) and leaves it so; other people sign in on pages of their own
// (t.newPage), each in a fresh browser context.
import { mkdir, readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";
import people from "./scenarios/people.mjs";
import accounts from "./scenarios/accounts.mjs";
import grants from "./scenarios/grants.mjs";
import restricted from "./scenarios/restricted.mjs";
import auditLog from "./scenarios/audit.mjs";

const scenarios = [["people", people], ["accounts", accounts], ["grants", grants], ["restricted", restricted], ["audit log", auditLog]];

const base = process.env.LATCHKEY_URL;
const operatorKey = process.env.LATCHKEY_KEY;
const oidcIssuer = process.env.OIDC_ISSUER;
const shots = process.env.SCREENSHOTS ?? new URL("../screenshots/", import.meta.url).pathname;
if (!base || !operatorKey) {
  console.error("console test: set LATCHKEY_URL and LATCHKEY_KEY");
  process.exit(2);
}
await mkdir(shots, { recursive: true });
const axeSource = await readFile(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

const failures = [];
const fail = (msg) => {
  failures.push(msg);
  console.error(`FAILED: ${msg}`);
};
const started = Date.now();
const step = (msg) => console.log(`console test: [${((Date.now() - started) / 1000).toFixed(1)} s] ${msg}`);

// api calls the Connect endpoint directly, as a service would.
async function api(method, body, key = operatorKey) {
  const res = await fetch(`${base}/latchkey.v1.${method}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${key}` },
    body: JSON.stringify(body),
  });
  const json = await res.json();
  if (!res.ok) throw new Error(`${method}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}
const verify = (token) => api("AuthService/Verify", { token });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"], // playwright gives it a fresh --user-data-dir
});
// newPage opens a page in a browser context of its own (its own memory,
// storage and cookies: another person at another computer), watched for
// CSP violations and errors like every page of the test.
async function newPage(who = "") {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: "en-GB", timezoneId: "UTC" });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: base });
  const p = await context.newPage();
  const tag = who ? ` (${who})` : "";
  p.on("console", (m) => {
    if (m.type() === "error") {
      if (/Content Security Policy/i.test(m.text())) fail(`CSP violation${tag}: ${m.text()}`);
      else console.error(`browser console${tag}: ${m.text()}`);
    }
  });
  p.on("pageerror", (e) => fail(`page error${tag}: ${e.message}`));
  p.on("crash", () => fail(`the page crashed${tag}`));
  p.on("framenavigated", (f) => f === p.mainFrame() && step(`navigated to ${f.url()}${tag}`));
  return p;
}
const page = await newPage();

// audit runs axe-core on what the page shows now and takes its screenshot.
async function audit(name, mask = [], page = t.page) {
  await page.evaluate(`${axeSource}\n;0`);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  for (const v of bad) fail(`axe on ${name}: ${v.impact} ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join("; ")})`);
  const minor = result.violations.length - bad.length;
  step(`axe on ${name}: ${bad.length} serious or critical, ${minor} minor or moderate`);
  await page.screenshot({ path: `${shots}/${name}.png`, mask, maskColor: "#888" });
}

// noCredentialKept fails if a token is anywhere but the page's memory.
async function noCredentialKept(where, tokens, page = t.page) {
  const kept = await page.evaluate(() => ({
    local: JSON.stringify({ ...localStorage }),
    session: JSON.stringify({ ...sessionStorage }),
    url: location.href,
    cookie: document.cookie,
  }));
  for (const t of tokens.filter(Boolean)) {
    for (const [k, v] of Object.entries(kept)) if (v.includes(t)) fail(`${where}: a credential is in ${k}`);
  }
  if (kept.local !== "{}" || kept.session !== "{}") fail(`${where}: storage is not empty: ${kept.local} ${kept.session}`);
}

async function signIn(key, page = t.page) {
  await page.getByLabel("API key").fill(key);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  await page.getByRole("heading", { name: "Keys", level: 1 }).waitFor();
}

async function readToken(dialog, page = t.page) {
  await dialog.getByRole("button", { name: "Copy token" }).click();
  await dialog.getByText("Copied to the clipboard.").waitFor();
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  const shown = await dialog.getByLabel(/^Token of/).inputValue();
  if (copied !== shown) fail(`the clipboard holds ${copied.slice(0, 16)}…, the dialog shows ${shown.slice(0, 16)}…`);
  return copied;
}

// signInWithProvider signs a person in through the OpenID Provider: the
// console's button, the provider's own login form, and back. It resolves
// when the console shows its first page.
async function signInWithProvider(page, username, password) {
  if (!oidcIssuer) throw new Error("OIDC_ISSUER is not set: .ci/console starts the provider");
  await page.goto(`${base}/`);
  await page.getByRole("button", { name: /^Sign in with / }).click();
  await page.waitForURL((u) => u.href.startsWith(oidcIssuer));
  await page.getByLabel("Username:").fill(username);
  await page.getByLabel("Password:").fill(password);
  await page.getByRole("button", { name: "Login" }).click();
  await page.waitForURL((u) => u.href.startsWith(base) && !u.search.includes("code="));
  await page.getByRole("button", { name: "Sign out" }).waitFor();
}

// tabTo presses Tab until the element of that role and text has focus.
async function tabTo(name, role = "button", max = 60, page = t.page) {
  for (let i = 0; i < max; i++) {
    await page.keyboard.press("Tab");
    const focused = await page.evaluate(() => ({ role: document.activeElement?.tagName.toLowerCase(), text: document.activeElement?.textContent?.trim() }));
    if (focused.text === name && (role === "any" || focused.role === role || (role === "link" && focused.role === "a"))) return;
  }
  throw new Error(`keyboard: could not Tab to ${role} “${name}”`);
}

// The harness the scenarios get.
const t = { base, operatorKey, oidcIssuer, browser, page, newPage, api, verify, audit, step, fail, signIn, signInWithProvider, readToken, noCredentialKept, tabTo };

try {
  // Sign-in.
  await page.goto(`${base}/`);
  await page.getByLabel("API key").waitFor();
  await audit("signin");
  await page.getByLabel("API key").fill("lk_live_not_a_real_key");
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  const refused = await page.getByRole("alert").textContent();
  if (!/not accepted/.test(refused) || /unauthenticated/i.test(refused)) fail(`a bad key showed: ${refused}`);
  await audit("signin-refused");
  await signIn(operatorKey);
  await noCredentialKept("after sign-in", [operatorKey]);
  await audit("keys");
  step("signed in with the operator key");

  // The empty state, through a filter.
  await page.getByLabel("State").selectOption({ label: "Revoked" });
  await page.getByText("No key matches these filters.").waitFor();
  await audit("keys-empty");
  await page.getByLabel("State").selectOption({ label: "Active" });

  // Issue.
  await page.getByRole("button", { name: "Issue a key" }).click();
  let dialog = page.getByRole("dialog", { name: "Issue a key" });
  await dialog.getByLabel("Name").fill("console-ci");
  await dialog.getByLabel("Description (optional)").fill("Issued by the console test");
  await dialog.getByLabel("Labels (optional)").fill("team=ci, made-by=console");
  await dialog.getByRole("checkbox", { name: /api_keys:read/ }).check();
  await audit("issue");
  await dialog.getByRole("button", { name: "Issue key" }).click();
  dialog = page.getByRole("dialog", { name: "Key issued" });
  await dialog.waitFor();
  await audit("issue-token", [dialog.getByLabel(/^Token of/)]);
  const token = await readToken(dialog);
  const v1 = await verify(token);
  if (!v1.valid) fail(`the issued token does not verify: ${JSON.stringify(v1)}`);
  step(`issued ${v1.apiKey?.metadata?.id}; its token, read from the clipboard, verifies`);
  await noCredentialKept("with a token shown", [operatorKey, token]);
  await dialog.getByRole("button", { name: /close/ }).click();
  if ((await page.locator("dialog").count()) !== 0 || (await page.content()).includes(token)) {
    fail("the token is still in the page after its dialog closed");
  }

  // The key's page.
  await page.getByRole("link", { name: "console-ci" }).click();
  await page.getByRole("heading", { name: "console-ci", level: 1 }).waitFor();
  await page.getByText("made-by=console").waitFor();
  await audit("key");

  // Rotate with grace.
  await page.getByRole("button", { name: "Rotate" }).click();
  dialog = page.getByRole("dialog", { name: /^Rotate/ });
  await dialog.getByRole("radio", { name: "1 hour" }).check();
  await audit("rotate");
  await dialog.getByRole("button", { name: "Rotate key" }).click();
  dialog = page.getByRole("dialog", { name: "Key rotated" });
  await dialog.waitFor();
  const rotated = await readToken(dialog);
  const [vNew, vOld] = [await verify(rotated), await verify(token)];
  if (rotated === token || !vNew.valid || !vOld.valid) {
    fail(`after rotation with an hour's grace: new valid=${vNew.valid}, old valid=${vOld.valid}`);
  }
  step("rotated with an hour's grace: the new token and the old one both verify");
  await dialog.getByRole("button", { name: /close/ }).click();
  await page.getByText("Previous token works until").waitFor();

  // Revoke.
  await page.getByRole("button", { name: "Revoke" }).click();
  dialog = page.getByRole("dialog", { name: /^Revoke/ });
  await audit("revoke");
  await dialog.getByRole("button", { name: "Revoke key" }).click();
  await page.locator("p.state", { hasText: "Revoked" }).waitFor();
  const [rNew, rOld] = [await verify(rotated), await verify(token)];
  if (rNew.valid || rOld.valid || rNew.code !== "VERIFY_CODE_REVOKED") {
    fail(`after revoke: new ${rNew.valid} ${rNew.code}, old ${rOld.valid} ${rOld.code}`);
  }
  step("revoked: neither token verifies");
  await audit("key-revoked");

  // The system key has no Revoke.
  await page.getByRole("link", { name: "← All keys" }).click();
  await page.locator("table.keys tbody tr", { hasText: "system" }).getByRole("link").click();
  await page.getByRole("button", { name: "Rotate" }).waitFor();
  if ((await page.getByRole("button", { name: "Revoke" }).count()) !== 0) fail("the system key offers Revoke");
  await audit("key-system");

  // A page that is not there.
  await page.evaluate(() => {
    history.pushState(null, "", "/no-such-page");
    window.dispatchEvent(new Event("popstate"));
  });
  await page.getByRole("heading", { name: "Page not found" }).waitFor();
  await audit("not-found");
  await page.getByRole("link", { name: "Go to the keys" }).click();
  await page.getByRole("heading", { name: "Keys", level: 1 }).waitFor();

  // Workspaces: the empty state, create, rename, archive.
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Workspaces" }).click();
  await page.getByText("There are no workspaces yet.").waitFor();
  await audit("workspaces-empty");
  await page.getByRole("button", { name: "Create a workspace" }).click();
  dialog = page.getByRole("dialog", { name: "Create a workspace" });
  await dialog.getByLabel("Name").fill("payments");
  await dialog.getByLabel("Description (optional)").fill("The payment services");
  await audit("workspace-create");
  await dialog.getByRole("button", { name: "Create workspace" }).click();
  await page.getByRole("rowheader", { name: "payments" }).waitFor();
  await page.getByRole("button", { name: "Rename payments" }).click();
  dialog = page.getByRole("dialog", { name: /^Rename/ });
  await dialog.getByLabel("Name").fill("payments-eu");
  await dialog.getByRole("button", { name: "Save" }).click();
  await page.getByRole("rowheader", { name: "payments-eu" }).waitFor();
  await audit("workspaces");
  await page.getByRole("button", { name: "Archive payments-eu" }).click();
  dialog = page.getByRole("dialog", { name: /^Archive/ });
  await audit("workspace-archive");
  await dialog.getByRole("button", { name: "Archive workspace" }).click();
  await page.getByText("There are no workspaces yet.").waitFor();
  await page.getByLabel("Status").selectOption({ label: "Archived" });
  await page.getByRole("rowheader", { name: "payments-eu" }).waitFor();
  const archived = await api("WorkspaceService/ListWorkspaces", { status: "WORKSPACE_STATUS_ARCHIVED" });
  if (archived.workspaces?.[0]?.metadata?.name !== "payments-eu") fail(`the API lists as archived: ${JSON.stringify(archived)}`);
  else step("workspaces: created, renamed and archived through the UI; the API agrees");
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Keys" }).click();
  await page.getByRole("heading", { name: "Keys", level: 1 }).waitFor();

  // 50 keys, issued through the API; the keys page timed from the sign-in
  // (cold: sign-out empties the query cache) to 50 rows on screen.
  await Promise.all(Array.from({ length: 50 }, (_, i) =>
    api("ApiKeyService/Issue", { metadata: { name: `load-${String(i).padStart(2, "0")}`, labels: { load: "yes" } }, spec: { permissions: ["api_keys:read"] } })));
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByLabel("API key").waitFor();
  if ((await page.getByLabel("API key").inputValue()) !== "") fail("the sign-in form still holds the key after sign-out");
  await page.getByLabel("API key").fill(operatorKey);
  const ms = await page.evaluate(() => new Promise((resolve) => {
    const t0 = performance.now();
    document.querySelector("form button[type=submit]").click();
    const check = () => document.querySelectorAll("table.keys tbody tr").length >= 50
      ? resolve(performance.now() - t0) : performance.now() - t0 > 10000 ? resolve(NaN) : requestAnimationFrame(check);
    check();
  }));
  const rows = await page.locator("table.keys tbody tr").count();
  if (Number.isNaN(ms)) fail(`the keys page showed ${rows} rows, not 50, within 10 s of signing in`);
  step(`keys page with ${rows} rows on screen ${ms.toFixed(0)} ms after signing in (WhoAmI, List, render; budget 1000 ms)`);
  // And after a client-side navigation from another page.
  await page.locator("table.keys tbody tr").first().getByRole("link").click();
  await page.getByRole("button", { name: "Rotate" }).waitFor();
  const navMs = await page.evaluate(() => new Promise((resolve) => {
    const t0 = performance.now();
    document.querySelector('nav a[href="/keys"]').click();
    const check = () => document.querySelectorAll("table.keys tbody tr").length >= 50
      ? resolve(performance.now() - t0) : performance.now() - t0 > 10000 ? resolve(NaN) : requestAnimationFrame(check);
    check();
  }));
  if (Number.isNaN(navMs)) fail("the keys page did not show 50 rows within 10 s of navigating to it");
  step(`keys page with 50 rows ${navMs.toFixed(0)} ms after navigating to it from a key's page`);
  await audit("keys-50");
  const next = page.getByRole("button", { name: "Next page" });
  if (await next.isEnabled()) {
    await next.click();
    await page.getByText(/page 2/).waitFor();
    step("paging: the second page of keys shows");
  } else fail("with 53 keys, there is no next page");

  // The keyboard alone: issue a key and revoke it.
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByLabel("API key").waitFor();
  await page.keyboard.type(operatorKey); // the field has focus on arrival
  await page.keyboard.press("Enter");
  await page.getByRole("heading", { name: "Keys", level: 1 }).waitFor();
  await tabTo("Issue a key");
  await page.keyboard.press("Enter");
  await page.getByRole("dialog", { name: "Issue a key" }).waitFor();
  await page.keyboard.type("keyboard-only"); // Name has focus
  await tabTo("Issue key");
  await page.keyboard.press("Enter");
  dialog = page.getByRole("dialog", { name: "Key issued" });
  await dialog.waitFor();
  const kbToken = await dialog.getByLabel(/^Token of/).inputValue();
  await page.keyboard.press("Enter"); // "I have copied it, close" has focus
  await dialog.waitFor({ state: "detached" });
  if (!(await verify(kbToken)).valid) fail("the key issued with the keyboard does not verify");
  await tabTo("keyboard-only", "link");
  await page.keyboard.press("Enter");
  await page.getByRole("heading", { name: "keyboard-only", level: 1 }).waitFor();
  await tabTo("Revoke");
  await page.keyboard.press("Enter");
  await page.getByRole("dialog", { name: /^Revoke/ }).waitFor();
  await page.keyboard.press("Escape"); // cancel, focus back on Revoke
  await page.getByRole("dialog").waitFor({ state: "detached" });
  if ((await page.evaluate(() => document.activeElement?.textContent)) !== "Revoke") fail("focus did not return to Revoke after Escape");
  await page.keyboard.press("Enter");
  await page.getByRole("dialog", { name: /^Revoke/ }).waitFor();
  await page.keyboard.press("Tab"); // Cancel has focus; Tab to Revoke key
  await page.keyboard.press("Enter");
  await page.locator("p.state", { hasText: "Revoked" }).waitFor();
  const kbv = await verify(kbToken);
  if (kbv.valid) fail("the key revoked with the keyboard still verifies");
  else step("keyboard alone: issued a key, cancelled with Escape, revoked it");

  for (const [name, scenario] of scenarios) {
    step(`scenario: ${name}`);
    await scenario(t);
  }

  // Sign-out forgets the credential.
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByLabel("API key").waitFor();
  await noCredentialKept("after sign-out", [operatorKey, token, rotated, kbToken]);
} catch (err) {
  fail(err.stack ?? String(err));
  // Masked like every screenshot: a failure may come with a token shown.
  await t.page.screenshot({ path: `${shots}/failure.png`, mask: [t.page.getByLabel(/^Token of/)], maskColor: "#888" }).catch(() => {});
} finally {
  await browser.close();
}
if (failures.length) {
  console.error(`console test: ${failures.length} failure(s)`);
  process.exit(1);
}
console.log("console test: every step passed in the browser");
