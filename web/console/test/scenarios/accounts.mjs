// Scenario accounts: the operator creates an account through the UI, reads
// its system key's token once, suspends and restores it; a person with
// profiles in two accounts switches between them; an account's owner
// (holding `*`) reaches no account but their own.
export default async function (t) {
  const { page } = t;
  const ownerEmail = "alice@example.com";
  const me = await t.api("AuthService/WhoAmI", {});
  const operatorName = me.account?.metadata?.name;

  // Alice has a USER profile in the operator account (people.mjs leaves
  // one; made here when it did not), and it must be active for her to
  // act there.
  const users = await t.api("ProfileService/ListProfiles", { type: "PROFILE_TYPE_USER", pageSize: 500 });
  let alice = users.profiles?.find((p) => p.spec?.email === ownerEmail);
  if (!alice) {
    alice = (await t.api("ProfileService/CreateProfile", {
      metadata: { name: "Alice" },
      spec: { email: ownerEmail, permissions: ["api_keys:read", "workspaces:read"] },
    })).profile;
    t.step("accounts: made Alice's USER profile in the operator account");
  } else if (alice.info?.state === "PROFILE_STATE_SUSPENDED") {
    await t.api("ProfileService/RestoreProfile", { id: alice.metadata.id });
    t.step("accounts: restored Alice's profile in the operator account, which an earlier scenario left suspended");
  }

  // The Accounts page.
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Accounts" }).click();
  await page.getByRole("heading", { name: "Accounts", level: 1 }).waitFor();
  const opRow = page.locator("table.keys tbody tr", { has: page.locator("th .tag", { hasText: "operator" }) });
  await opRow.waitFor();
  if ((await opRow.getByRole("button").count()) !== 0) t.fail("the operator account offers Suspend");
  await t.audit("accounts");

  // Create "acme" with Alice as its owner.
  await page.getByRole("button", { name: "Create an account" }).click();
  let dialog = page.getByRole("dialog", { name: "Create an account" });
  await dialog.getByLabel("Name").fill("acme");
  await dialog.getByLabel("Most active keys (optional)").fill("100");
  await dialog.getByLabel("Owner's email (optional)").fill(ownerEmail);
  await t.audit("account-create");
  await dialog.getByRole("button", { name: "Create account" }).click();
  dialog = page.getByRole("dialog", { name: "Account created" });
  await dialog.waitFor();
  await t.audit("account-token", [dialog.getByLabel(/^Token of/)]);
  const token = await t.readToken(dialog);
  const v = await t.verify(token);
  if (!v.valid) t.fail(`the new account's system key does not verify: ${JSON.stringify(v)}`);
  const acmeId = v.apiKey?.metadata?.accountId;
  await t.noCredentialKept("with an account's system key shown", [t.operatorKey, token]);
  await dialog.getByRole("button", { name: /close/ }).click();
  await dialog.waitFor({ state: "detached" });
  if ((await page.content()).includes(token)) t.fail("the system key's token is still in the page after its dialog closed");
  const acmeRow = page.locator("table.keys tbody tr", { has: page.getByRole("rowheader", { name: "acme", exact: true }) });
  await acmeRow.waitFor();
  await acmeRow.getByText("100").waitFor();
  const listed = (await t.api("AccountService/ListAccounts", { pageSize: 500 })).accounts ?? [];
  const acme = listed.find((a) => a.metadata?.id === acmeId);
  if (!acme || acme.metadata?.name !== "acme" || acme.spec?.maxActiveKeys !== "100" || acme.state !== "ACCOUNT_STATE_ACTIVE") {
    t.fail(`the API lists the new account as ${JSON.stringify(acme)}`);
  }
  t.step(`accounts: created acme (${acmeId}) through the UI; its system key's token, read once from the dialog, verifies`);

  // The acme system key holds `*` within acme, and nothing over accounts.
  const acmeKeys = (await t.api("ApiKeyService/List", { pageSize: 500 }, token)).apiKeys ?? [];
  for (const [method, body] of [["AccountService/ListAccounts", {}], ["AccountService/SuspendAccount", { id: me.account.metadata.id, reason: "attack" }]]) {
    const got = await t.api(method, body, token).then(() => "allowed", (e) => e.message);
    if (!/40[03]/.test(got)) t.fail(`acme's system key calling ${method}: ${got}`);
  }

  // Alice signs in through the OpenID Provider: two accounts, a switcher.
  const p = await t.newPage("alice");
  const asked = [];
  p.on("request", (r) => r.url().includes("AccountService") && asked.push(r.url()));
  await t.signInWithProvider(p, "alice", "alice-password");
  const switcher = p.getByRole("form", { name: "Switch account" });
  await switcher.waitFor();
  const options = await switcher.getByLabel("Account").locator("option").allTextContents();
  if (!options.includes(operatorName) || !options.includes("acme")) t.fail(`the switcher offers ${JSON.stringify(options)}`);
  await p.getByText(`in ${operatorName}`).waitFor();
  await t.audit("account-switcher", [], p);
  await switcher.getByLabel("Account").selectOption({ label: "acme" });
  // While the switch waits for acme's answer (held here), the page still
  // shows the operator account: what Alice does there must land there, not
  // in acme, where she would hold a key she never saw.
  let release;
  const held = new Promise((r) => (release = r));
  await p.route("**/latchkey.v1.AuthService/WhoAmI", async (route) => {
    await held;
    await route.continue().catch(() => {});
  });
  await switcher.getByRole("button", { name: "Switch" }).click();
  await p.getByRole("button", { name: "Issue a key" }).click();
  const during = p.getByRole("dialog", { name: "Issue a key" });
  await during.getByLabel("Name").fill("issued-during-a-switch");
  await during.getByRole("checkbox", { name: /api_keys:read/ }).check();
  const issuedTo = p.waitForRequest((r) => r.url().includes("ApiKeyService/Issue"));
  await during.getByRole("button", { name: "Issue key" }).click();
  const sentTo = (await issuedTo).headers()["latchkey-account"];
  await p.getByRole("dialog", { name: "Key issued" }).waitFor();
  release();
  await p.unroute("**/latchkey.v1.AuthService/WhoAmI");
  const inOperator = ((await t.api("ApiKeyService/List", { pageSize: 500 })).apiKeys ?? []).some((k) => k.metadata.name === "issued-during-a-switch");
  const inAcme = ((await t.api("ApiKeyService/List", { pageSize: 500 }, token)).apiKeys ?? []).some((k) => k.metadata.name === "issued-during-a-switch");
  if (!inOperator || inAcme || sentTo === acmeId) {
    t.fail(`a key issued from the operator account's page during a switch to acme went to ${inAcme ? "acme" : inOperator ? "the operator account" : "nowhere"} (header ${sentTo})`);
  } else t.step("accounts: a key issued while a switch waited landed in the account the page showed");
  await p.getByText("in acme", { exact: true }).waitFor();
  await p.getByRole("heading", { name: "Keys", level: 1 }).waitFor();
  await p.locator("table.keys tbody tr").first().waitFor();
  const shown = await p.locator("table.keys tbody tr th a").evaluateAll((as) => as.map((a) => a.getAttribute("href")));
  const want = acmeKeys.map((k) => `/keys/${k.metadata.id}`);
  if (shown.length !== want.length || !want.every((h) => shown.includes(h))) {
    t.fail(`Alice in acme sees keys ${JSON.stringify(shown)}, acme has ${JSON.stringify(want)}`);
  }
  const operatorKeys = (await t.api("ApiKeyService/List", { pageSize: 500 })).apiKeys ?? [];
  if (operatorKeys.some((k) => shown.includes(`/keys/${k.metadata.id}`))) t.fail("Alice in acme sees a key of the operator account");
  await p.locator("table.keys tbody tr", { hasText: "system" }).waitFor();
  t.step(`accounts: Alice switched to acme and sees its ${shown.length} key(s), the system key among them, and none of the operator account's`);

  // An owner of acme (`*` there) reaches no account but acme.
  if ((await p.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Accounts" }).count()) !== 0) {
    t.fail("Alice in acme is offered the Accounts page");
  }
  await p.evaluate(() => {
    history.pushState(null, "", "/accounts");
    window.dispatchEvent(new Event("popstate"));
  });
  await p.getByRole("heading", { name: "Accounts", level: 1 }).waitFor();
  const refusal = await p.getByRole("alert").textContent();
  if (!/operator account/.test(refusal) || /permission_denied/i.test(refusal)) t.fail(`Alice at /accounts is told: ${refusal}`);
  if ((await p.locator("main table").count()) !== 0) t.fail("Alice at /accounts sees a table of accounts");
  if (asked.length) t.fail(`Alice's console asked for accounts: ${asked.join(", ")}`);
  await t.audit("accounts-refused", [], p);
  t.step("accounts: Alice in acme has no Accounts link, and /accounts refuses her in plain words");

  // Back to the operator account.
  await switcher.getByLabel("Account").selectOption({ label: operatorName });
  await switcher.getByRole("button", { name: "Switch" }).click();
  await p.getByText(`in ${operatorName}`, { exact: true }).waitFor();
  if ((await p.getByText("in acme", { exact: true }).count()) !== 0) t.fail("after switching back, the header still names acme");
  await t.noCredentialKept("Alice, after switching accounts", [token], p);
  t.step("accounts: Alice switched back to the operator account");

  // Suspend acme, with a reason.
  const reason = "Invoice unpaid (console test)";
  await acmeRow.getByRole("button", { name: "Suspend acme" }).click();
  dialog = page.getByRole("dialog", { name: /^Suspend/ });
  await dialog.getByRole("button", { name: "Suspend account" }).click();
  await dialog.getByRole("alert").getByText(/Give a reason/).waitFor(); // no reason: refused before any call
  await dialog.getByLabel("Reason").fill(reason);
  await t.audit("account-suspend");
  await dialog.getByRole("button", { name: "Suspend account" }).click();
  await dialog.waitFor({ state: "detached" });
  await acmeRow.getByText("Suspended").waitFor();
  await acmeRow.getByText(reason, { exact: false }).waitFor();
  const vs = await t.verify(token);
  if (vs.valid || vs.code !== "VERIFY_CODE_ACCOUNT_SUSPENDED") t.fail(`acme suspended: its system key verifies as ${vs.valid} ${vs.code}`);
  const got = (await t.api("AccountService/GetAccount", { id: acmeId })).account;
  if (got.state !== "ACCOUNT_STATE_SUSPENDED" || got.suspendReason !== reason) t.fail(`the API has acme as ${JSON.stringify(got)}`);
  t.step("accounts: acme suspended through the UI; its system key verifies as VERIFY_CODE_ACCOUNT_SUSPENDED");
  await t.audit("accounts-suspended");

  // Restore it.
  await acmeRow.getByRole("button", { name: "Restore acme" }).click();
  dialog = page.getByRole("dialog", { name: /^Restore/ });
  await dialog.getByLabel("Reason").fill("Invoice paid");
  await dialog.getByRole("button", { name: "Restore account" }).click();
  await dialog.waitFor({ state: "detached" });
  await acmeRow.getByRole("button", { name: "Suspend acme" }).waitFor();
  const vr = await t.verify(token);
  if (!vr.valid) t.fail(`acme restored: its system key verifies as ${vr.code}`);
  t.step("accounts: acme restored; its system key verifies again");

  // acme's own audit log has its creation, suspension and restoration.
  const events = (await t.api("AuditService/ListAuditEvents", { pageSize: 50 }, token)).auditEvents ?? [];
  const actions = events.map((e) => e.action);
  for (const a of ["account.create", "profile.create", "account.suspend", "account.restore"]) {
    if (!actions.includes(a)) t.fail(`acme's audit log lacks ${a}: ${JSON.stringify(actions)}`);
  }
  if (events.find((e) => e.action === "account.suspend")?.reason !== reason) t.fail("acme's audit log lacks the suspension's reason");

  await p.context().close();
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Keys" }).click();
  await page.getByRole("heading", { name: "Keys", level: 1 }).waitFor();
}
