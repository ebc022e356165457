// Scenario grants: a key's workspaces on its page (grant one through the
// UI, check by Verify that the key reaches it, withdraw it, check it no
// longer does), editing a key (name, description, labels, permissions; a
// change made elsewhere meanwhile is refused and said in plain words), and
// live updates: with the key's page or the list open, a key revoked or
// renamed through the API shows at once, without a reload.
const rawCode = /\[[a-z_]+\]|\b(permission_denied|unauthenticated|not_found|failed_precondition|invalid_argument|already_exists|resource_exhausted|deadline_exceeded|aborted)\b/;

export default async function (t) {
  const page = t.page;
  const noRawCode = async (where) => {
    const text = await page.locator("body").innerText();
    if (rawCode.test(text)) t.fail(`grants: ${where} shows a raw code: ${text.match(rawCode)[0]}`);
  };
  const [alpha, beta] = await Promise.all(["grants-alpha", "grants-beta"].map(async (name) =>
    (await t.api("WorkspaceService/CreateWorkspace", { metadata: { name }, spec: { description: "Made by the grants scenario" } })).workspace));
  const issued = (await t.api("ApiKeyService/Issue", { metadata: { name: "grants-key" }, spec: { permissions: ["api_keys:read"] } })).apiKey;
  const id = issued.metadata.id;
  const token = issued.spec.token;
  const reaches = async (ws) => (await t.api("AuthService/Verify", { token, workspaceId: ws.metadata.id }));

  // Every change stream the page opens.
  const streams = [];
  const onRequest = (r) => r.url().includes("/latchkey.v1.AuthService/WatchKeyChanges") && streams.push(r.url());
  page.on("request", onRequest);

  // The key's page, from the list (Workspaces first, so the list starts
  // afresh: active keys, first page).
  const nav = page.getByRole("navigation", { name: "Main" });
  await nav.getByRole("link", { name: "Workspaces" }).click();
  await page.getByRole("heading", { name: "Workspaces", level: 1 }).waitFor();
  await nav.getByRole("link", { name: "Keys" }).click();
  await page.getByRole("link", { name: "grants-key", exact: true }).click();
  await page.getByRole("heading", { name: "grants-key", level: 1 }).waitFor();
  const section = page.getByRole("region", { name: "Workspaces granted" });
  await section.getByText("This key is granted no workspace").waitFor();
  await t.audit("key-workspaces");

  // Grant: the select offers the account's active workspaces (the operator
  // holds workspaces:manage), not an archived one.
  const select = section.getByLabel("Workspace to grant");
  await select.locator("option", { hasText: "grants-beta" }).waitFor({ state: "attached" });
  const offered = await select.locator("option").allTextContents();
  if (!offered.includes("grants-alpha") || !offered.includes("grants-beta")) t.fail(`grants: the select offers ${offered.join(", ")}`);
  if (offered.includes("payments-eu")) t.fail("grants: the select offers an archived workspace");
  await select.selectOption({ label: "grants-alpha" });
  await section.getByRole("button", { name: "Grant workspace" }).click();
  await section.getByRole("rowheader", { name: "grants-alpha" }).waitFor();
  await section.getByText("Granted “grants-alpha”.").waitFor();
  if ((await select.locator("option", { hasText: "grants-alpha" }).count()) !== 0) t.fail("grants: the select still offers the workspace just granted");
  await t.audit("key-grant");
  const [va, vb] = [await reaches(alpha), await reaches(beta)];
  if (!va.valid) t.fail(`grants: after the grant, Verify with the workspace says ${va.code}`);
  if (vb.valid || vb.code !== "VERIFY_CODE_WORKSPACE_DENIED") t.fail(`grants: a workspace not granted answers ${vb.code}`);
  const listed = await t.api("ApiKeyService/ListGrantedWorkspaces", { id });
  if (listed.workspaces?.length !== 1 || listed.workspaces[0].metadata.id !== alpha.metadata.id) t.fail(`grants: the API lists ${JSON.stringify(listed)}`);
  t.step("grants: granted a workspace through the UI; Verify admits the key there and nowhere else");

  // Withdraw, with confirmation; focus lands on the section afterwards.
  await section.getByRole("button", { name: "Withdraw grants-alpha" }).click();
  const withdraw = page.getByRole("dialog", { name: /^Withdraw “grants-alpha”/ });
  await withdraw.waitFor();
  await t.audit("key-withdraw");
  await withdraw.getByRole("button", { name: "Withdraw workspace" }).click();
  await withdraw.waitFor({ state: "detached" });
  await section.getByText("This key is granted no workspace").waitFor();
  await section.getByText("Withdrew “grants-alpha”.").waitFor();
  // The page moves focus in the frame after the list changes: wait for it.
  const onHeading = await page.waitForFunction(() => document.activeElement?.textContent?.trim() === "Workspaces granted", null, { timeout: 5000 })
    .then(() => true, () => false);
  if (!onHeading) t.fail(`grants: after withdrawing, focus is on “${await page.evaluate(() => document.activeElement?.textContent?.trim())}”`);
  const vw = await reaches(alpha);
  if (vw.valid || vw.code !== "VERIFY_CODE_WORKSPACE_DENIED") t.fail(`grants: after the withdrawal Verify says ${vw.valid} ${vw.code}`);
  t.step("grants: withdrew it through the UI; Verify answers VERIFY_CODE_WORKSPACE_DENIED");

  // Edit: rename, description, labels, one more permission.
  await page.getByRole("button", { name: "Edit", exact: true }).click();
  let edit = page.getByRole("dialog", { name: /^Edit/ });
  await edit.getByLabel("Name").fill("grants-key-renamed");
  await edit.getByLabel("Description (optional)").fill("Renamed by the grants scenario");
  await edit.getByLabel("Labels (optional)").fill("team=grants, tier=gold");
  await edit.getByRole("checkbox", { name: /workspaces:read/ }).check();
  await t.audit("key-edit");
  await edit.getByRole("button", { name: "Save changes" }).click();
  await edit.waitFor({ state: "detached" });
  await page.getByRole("heading", { name: "grants-key-renamed", level: 1 }).waitFor();
  await page.getByText("tier=gold").waitFor();
  let got = (await t.api("ApiKeyService/Get", { id })).apiKey;
  const perms = [...(got.spec.permissions ?? [])].sort().join(",");
  if (got.metadata.name !== "grants-key-renamed" || got.spec.description !== "Renamed by the grants scenario" ||
    got.metadata.labels?.team !== "grants" || got.metadata.labels?.tier !== "gold" || perms !== "api_keys:read,workspaces:read") {
    t.fail(`grants: after the edit the API has ${JSON.stringify({ metadata: got.metadata, spec: got.spec })}`);
  } else t.step("grants: edited name, description, labels and permissions through the UI; the API agrees");

  // Someone else changes the key while the dialog is open: the save is
  // refused, in plain words, and nothing of it is written.
  await page.getByRole("button", { name: "Edit", exact: true }).click();
  edit = page.getByRole("dialog", { name: /^Edit/ });
  await edit.getByLabel("Description (optional)").fill("Mine");
  await t.api("ApiKeyService/Update", { id, spec: { description: "Theirs" }, updateMask: "spec.description" });
  await edit.getByRole("button", { name: "Save changes" }).click();
  await edit.getByText("Someone else changed this key while you were editing it.").waitFor();
  await noRawCode("the edit conflict");
  await t.audit("key-edit-conflict");
  got = (await t.api("ApiKeyService/Get", { id })).apiKey;
  if (got.spec.description !== "Theirs") t.fail(`grants: the conflicting save wrote ${got.spec.description}`);
  await edit.getByRole("button", { name: "Start again from their version" }).click();
  if ((await edit.getByLabel("Description (optional)").inputValue()) !== "Theirs") t.fail("grants: starting again did not show their version");
  await edit.getByLabel("Description (optional)").fill("Mine, after theirs");
  await edit.getByRole("button", { name: "Save changes" }).click();
  await edit.waitFor({ state: "detached" });
  got = (await t.api("ApiKeyService/Get", { id })).apiKey;
  if (got.spec.description !== "Mine, after theirs") t.fail(`grants: after starting again the API has ${got.spec.description}`);
  else t.step("grants: a change made elsewhere meanwhile refused the save, plainly; starting again from it saved");

  // Live: the key revoked through the API shows as revoked on its page
  // without a reload, and the page stops offering changes.
  await page.evaluate(() => (window.__sameDocument = true));
  await page.locator("p.state", { hasText: "Active" }).waitFor();
  await t.api("ApiKeyService/Revoke", { id });
  await page.locator("p.state", { hasText: "Revoked" }).waitFor({ timeout: 5000 }).catch(() =>
    t.fail("grants: the key revoked through the API did not show as revoked within 5 s"));
  if (!(await page.evaluate(() => window.__sameDocument === true))) t.fail("grants: the page was reloaded");
  for (const name of ["Edit", "Rotate", "Revoke"]) {
    if ((await page.getByRole("button", { name, exact: true }).count()) !== 0) t.fail(`grants: a revoked key offers ${name}`);
  }
  if ((await section.getByLabel("Workspace to grant").count()) !== 0) t.fail("grants: a revoked key offers a grant");
  await t.audit("key-live-revoked");
  t.step("grants: the key revoked elsewhere showed as revoked at once, without a reload");

  // Live in the list: a key renamed and then revoked through the API.
  const other = (await t.api("ApiKeyService/Issue", { metadata: { name: "grants-live" }, spec: { permissions: ["api_keys:read"] } })).apiKey;
  await page.getByRole("link", { name: "← All keys" }).click();
  await page.getByRole("link", { name: "grants-live", exact: true }).waitFor();
  await t.api("ApiKeyService/Update", { id: other.metadata.id, metadata: { name: "grants-live-renamed" }, updateMask: "metadata.name" });
  await page.getByRole("link", { name: "grants-live-renamed", exact: true }).waitFor({ timeout: 5000 }).catch(() =>
    t.fail("grants: the key renamed through the API was not renamed in the list within 5 s"));
  await t.api("ApiKeyService/Revoke", { id: other.metadata.id });
  await page.getByRole("link", { name: "grants-live-renamed", exact: true }).waitFor({ state: "detached", timeout: 5000 }).catch(() =>
    t.fail("grants: the key revoked through the API stayed in the list of active keys"));
  if (!(await page.evaluate(() => window.__sameDocument === true))) t.fail("grants: the page was reloaded");
  if (streams.length === 0) t.fail("grants: the operator's pages opened no change stream");
  t.step(`grants: the list followed a rename and a revocation made elsewhere; ${streams.length} change stream(s) opened`);
  await noRawCode("the keys list");
  page.off("request", onRequest);
}
