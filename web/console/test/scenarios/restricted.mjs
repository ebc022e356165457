// Scenario restricted: the console as an attacker with a legitimate but
// limited key sees it. The operator issues a key with api_keys:read,
// api_keys:manage and workspaces:read, granted one workspace, and it signs
// in on a page of its own. The console must offer it only what the server
// would let it do: in the Issue dialog only permissions it holds and the
// workspace it is granted; on the system key's page and on keys beyond its
// reach no Edit, Rotate or Revoke (and the server refuses them anyway, with
// nothing changed); in the grant select only its own workspace; no page it
// cannot read; no change stream (it lacks api_keys:verify); never a raw
// Connect code.
const rawCode = /\[[a-z_]+\]|\b(permission_denied|unauthenticated|not_found|failed_precondition|invalid_argument|already_exists|resource_exhausted|deadline_exceeded|aborted)\b/;
const LIMITED = ["api_keys:read", "api_keys:manage", "workspaces:read"];

export default async function (t) {
  const issue = async (name, permissions, workspaces = []) =>
    (await t.api("ApiKeyService/Issue", { metadata: { name }, spec: { permissions }, initialWorkspaceIds: workspaces.map((w) => w.metadata.id) })).apiKey;
  const [mine, theirs] = await Promise.all(["restricted-mine", "restricted-other"].map(async (name) =>
    (await t.api("WorkspaceService/CreateWorkspace", { metadata: { name } })).workspace));
  const limited = await issue("restricted-limited", LIMITED, [mine]);
  const within = await issue("restricted-within", ["api_keys:read"]);
  const beyondWs = await issue("restricted-beyond-ws", ["api_keys:read"], [theirs]);
  const beyondPerm = await issue("restricted-beyond-perm", ["audit:read"]);
  const system = (await t.api("AuthService/WhoAmI", {})).apiKey;
  if (!system?.spec?.system) throw new Error("restricted: the operator's key is not its account's system key");

  const p = await t.newPage("limited");
  const streams = [];
  p.on("request", (r) => r.url().includes("/latchkey.v1.AuthService/WatchKeyChanges") && streams.push(r.url()));
  const noRawCode = async (where) => {
    const text = await p.locator("body").innerText();
    if (rawCode.test(text)) t.fail(`restricted: ${where} shows a raw code: ${text.match(rawCode)[0]}`);
  };
  // go navigates in the page, as a link does (a reload would sign out).
  const go = (path) => p.evaluate((to) => {
    history.pushState(null, "", to);
    window.dispatchEvent(new Event("popstate"));
  }, path);
  const openKey = async (k) => {
    await go(`/keys/${k.metadata.id}`);
    await p.getByRole("heading", { name: k.metadata.name, level: 1 }).waitFor();
  };
  const offersNoChange = async (what) => {
    for (const name of ["Edit", "Rotate", "Revoke"]) {
      if ((await p.getByRole("button", { name, exact: true }).count()) !== 0) t.fail(`restricted: ${what} offers ${name}`);
    }
    if ((await p.getByLabel("Workspace to grant").count()) !== 0) t.fail(`restricted: ${what} offers a grant`);
    if ((await p.getByRole("button", { name: /^Withdraw/ }).count()) !== 0) t.fail(`restricted: ${what} offers a withdrawal`);
  };

  await p.goto(`${t.base}/`);
  await t.signIn(limited.spec.token, p);
  await t.noCredentialKept("restricted, signed in", [limited.spec.token], p);
  await p.locator("table.keys tbody tr").first().waitFor();
  await t.audit("restricted-keys", [], p);

  // Pages it cannot read are not offered, and reached by address they
  // refuse in plain words (or do not exist).
  const navLinks = (await p.getByRole("navigation", { name: "Main" }).getByRole("link").allTextContents()).map((s) => s.trim());
  for (const name of ["People", "Audit", "Accounts"]) {
    if (navLinks.some((l) => l.startsWith(name))) t.fail(`restricted: the nav offers ${name} to a key that cannot read it`);
  }
  for (const path of ["/people", "/audit", "/accounts"]) {
    await go(path);
    await p.getByRole("heading", { level: 1 }).first().waitFor();
    await p.waitForFunction(() => !/Loading/.test(document.querySelector("main")?.innerText ?? ""), null, { timeout: 5000 }).catch(() => {});
    const text = await p.locator("main").innerText();
    if (!/not allowed|cannot|permission|not found|no page/i.test(text)) t.fail(`restricted: ${path} shows no refusal: ${text.slice(0, 200)}`);
    if ((await p.locator("main table").count()) !== 0) t.fail(`restricted: ${path} shows a table`);
    await noRawCode(path);
  }
  await go("/keys");
  await p.getByRole("heading", { name: "Keys", level: 1 }).waitFor();

  // Workspaces: it may read them, not make or change them.
  await p.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Workspaces" }).click();
  await p.getByRole("rowheader", { name: "restricted-mine" }).waitFor();
  for (const name of ["Create a workspace", /^Rename/, /^Archive/]) {
    if ((await p.getByRole("button", { name }).count()) !== 0) t.fail(`restricted: the workspaces page offers ${name}`);
  }
  await p.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Keys" }).click();
  await p.getByRole("heading", { name: "Keys", level: 1 }).waitFor();

  // Issue: only what it holds, only the workspace it is granted.
  await p.getByRole("button", { name: "Issue a key" }).click();
  let dialog = p.getByRole("dialog", { name: "Issue a key" });
  await dialog.locator('input[name="workspace"]').first().waitFor();
  const perms = await dialog.locator('input[name="permission"]').evaluateAll((els) => els.map((e) => e.value));
  if (perms.slice().sort().join(",") !== LIMITED.slice().sort().join(",")) t.fail(`restricted: the Issue dialog offers ${perms.join(", ")}`);
  for (const bad of ["*", "profiles:read", "profiles:manage", "accounts:manage", "workspaces:manage", "api_keys:verify", "audit:read"]) {
    if (perms.includes(bad)) t.fail(`restricted: the Issue dialog offers ${bad}`);
  }
  if ((await dialog.getByLabel(/^Other permissions/).count()) !== 0) t.fail("restricted: the Issue dialog offers free-form permissions");
  const wsOffered = await dialog.locator('input[name="workspace"]').evaluateAll((els) => els.map((e) => e.value));
  if (wsOffered.join(",") !== mine.metadata.id) t.fail(`restricted: the Issue dialog offers the workspaces ${wsOffered.join(", ")}`);
  await t.audit("restricted-issue", [], p);
  // What it offers works.
  await dialog.getByLabel("Name").fill("restricted-issued");
  await dialog.getByRole("checkbox", { name: /api_keys:read/ }).check();
  await dialog.getByRole("checkbox", { name: "restricted-mine" }).check();
  await dialog.getByRole("button", { name: "Issue key" }).click();
  dialog = p.getByRole("dialog", { name: "Key issued" });
  await dialog.waitFor();
  const issuedToken = await t.readToken(dialog, p);
  const vi = await t.api("AuthService/Verify", { token: issuedToken, workspaceId: mine.metadata.id });
  if (!vi.valid || vi.permissions?.join(",") !== "api_keys:read") t.fail(`restricted: the key it issued verifies as ${JSON.stringify(vi)}`);
  await dialog.getByRole("button", { name: /close/ }).click();
  await dialog.waitFor({ state: "detached" });
  t.step("restricted: the Issue dialog offered only its own permissions and workspace, and issuing with them worked");

  // The system key: nothing to change, and the server agrees.
  const before = (await t.api("ApiKeyService/Get", { id: system.metadata.id })).apiKey;
  await openKey(system);
  await p.getByText("This is the account's system key").waitFor();
  await offersNoChange("the system key's page");
  await noRawCode("the system key's page");
  await t.audit("restricted-system-key", [], p);
  for (const [method, body] of [
    ["ApiKeyService/Rotate", { id: system.metadata.id, gracePeriod: "3600s" }],
    ["ApiKeyService/Update", { id: system.metadata.id, metadata: { name: "taken" }, updateMask: "metadata.name" }],
    ["ApiKeyService/Revoke", { id: system.metadata.id }],
  ]) {
    const refused = await t.api(method, body, limited.spec.token).then(() => null, (e) => e.message);
    if (!refused || !/permission_denied|failed_precondition/.test(refused)) t.fail(`restricted: ${method} of the system key by the limited key: ${refused ?? "accepted"}`);
  }
  const after = (await t.api("ApiKeyService/Get", { id: system.metadata.id })).apiKey;
  if (after.metadata.etag !== before.metadata.etag || after.info.tokenPrefix !== before.info.tokenPrefix || after.info.state !== before.info.state) {
    t.fail(`restricted: the system key changed: ${JSON.stringify({ before: before.info, after: after.info })}`);
  }
  t.step("restricted: the system key's page offers no change; the server refuses them and the key is unchanged");

  // Keys beyond its reach: a workspace it is not granted, a permission it
  // does not hold.
  await openKey(beyondWs);
  await p.getByText("reaches workspaces you are not granted").waitFor();
  await offersNoChange("a key granted another workspace");
  await openKey(beyondPerm);
  await p.getByText("holds permissions you do not hold").waitFor();
  await offersNoChange("a key with audit:read");
  const refused = await t.api("ApiKeyService/Revoke", { id: beyondWs.metadata.id }, limited.spec.token).then(() => null, (e) => e.message);
  if (!refused?.includes("permission_denied")) t.fail(`restricted: revoking a key beyond its reach: ${refused ?? "accepted"}`);
  await noRawCode("a key beyond its reach");

  // A key within its reach: changes offered; the grant select offers only
  // the workspace it holds, and granting it works.
  await openKey(within);
  await p.getByRole("button", { name: "Edit", exact: true }).waitFor();
  const select = p.getByLabel("Workspace to grant");
  await select.locator("option", { hasText: "restricted-mine" }).waitFor({ state: "attached" });
  const options = (await select.locator("option").evaluateAll((els) => els.map((e) => e.value))).filter(Boolean);
  if (options.join(",") !== mine.metadata.id) t.fail(`restricted: the grant select offers ${options.join(", ")}`);
  await select.selectOption(mine.metadata.id);
  await p.getByRole("button", { name: "Grant workspace" }).click();
  await p.getByRole("region", { name: "Workspaces granted" }).getByRole("rowheader", { name: "restricted-mine" }).waitFor();
  const granted = await t.api("ApiKeyService/ListGrantedWorkspaces", { id: within.metadata.id });
  if (granted.workspaces?.map((w) => w.metadata.id).join(",") !== mine.metadata.id) t.fail(`restricted: after the grant the API lists ${JSON.stringify(granted)}`);
  await noRawCode("a key within its reach");
  t.step("restricted: a key within reach offers changes; the grant select offered only its own workspace, and the grant worked");

  // No change stream without api_keys:verify.
  await go("/keys");
  await p.getByRole("heading", { name: "Keys", level: 1 }).waitFor();
  if (streams.length !== 0) t.fail(`restricted: a key without api_keys:verify opened ${streams.length} change stream(s)`);
  await t.noCredentialKept("restricted, at the end", [limited.spec.token, issuedToken], p);
  await p.context().close();
  t.step("restricted: no raw code, no change stream, no credential kept");
}
