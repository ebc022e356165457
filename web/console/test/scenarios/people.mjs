// Scenario people: the People page through the UI. The operator sees the
// empty state and adds alice@example.com with three permissions; Alice
// signs in through the real OpenID Provider in a browser of her own, sees
// her email in the header, keeps no credential anywhere but memory, and is
// offered nothing she cannot do (the server refuses it too). The operator
// suspends her: her next action is refused in plain words and her session
// forgotten. Restored, she signs in again and issues a key. Bob, whom the
// provider knows and Latchkey does not, is refused in plain words. Alice is
// left ACTIVE with her three permissions (the accounts scenario uses her).
const ALICE = "alice@example.com";
const ALICE_PERMISSIONS = ["api_keys:read", "api_keys:manage", "workspaces:read"];
// A Connect code, or the shape of a raw error, must never reach a person.
const RAW = /permission_denied|permissiondenied|unauthenticated|failed_precondition|\[\w+\]|connecterror/i;

export default async function (t) {
  const op = t.page;
  const nav = (page) => page.getByRole("navigation", { name: "Main" });
  const go = (page, path) =>
    page.evaluate((to) => {
      history.pushState(null, "", to);
      window.dispatchEvent(new Event("popstate"));
    }, path);
  // The bearer credentials a page sends (a person's ID token), to check
  // that none is kept where it should not be.
  const watchTokens = (page) => {
    const tokens = new Set();
    page.on("request", async (r) => {
      const a = (await r.allHeaders().catch(() => ({}))).authorization;
      if (a?.startsWith("Bearer ")) tokens.add(a.slice(7));
    });
    return tokens;
  };
  const aliceProfile = async () => {
    const res = await t.api("ProfileService/ListProfiles", { type: "PROFILE_TYPE_USER", pageSize: 500 });
    return (res.profiles ?? []).find((p) => p.spec?.email === ALICE);
  };
  const sameSet = (a = [], b = []) => a.length === b.length && a.every((x) => b.includes(x));

  // The empty state.
  await nav(op).getByRole("link", { name: "People" }).click();
  await op.getByRole("heading", { name: "People", level: 1 }).waitFor();
  await op.getByText("There are no people in this account yet.").waitFor();
  await t.audit("people-empty");

  // Add Alice through the UI.
  await op.getByRole("button", { name: "Add a person" }).click();
  let dialog = op.getByRole("dialog", { name: "Add a person" });
  await dialog.getByRole("button", { name: "Add person" }).click();
  const bad = await dialog.getByRole("alert").textContent();
  if (!/email address/.test(bad)) t.fail(`adding a person without an email showed: ${bad}`);
  await dialog.getByRole("button", { name: "Cancel" }).click();
  await dialog.waitFor({ state: "detached" });
  await op.getByRole("button", { name: "Add a person" }).click();
  await dialog.getByLabel("Email").fill(ALICE);
  await dialog.getByLabel("Name (optional)").fill("Alice");
  for (const perm of ALICE_PERMISSIONS) await dialog.getByRole("checkbox", { name: new RegExp(`^${perm} `) }).check();
  await t.audit("people-create");
  await dialog.getByRole("button", { name: "Add person" }).click();
  await dialog.waitFor({ state: "detached" });
  const row = op.locator("table.keys tbody tr", { hasText: ALICE });
  await row.waitFor();
  if (!(await row.textContent()).includes("not signed in yet")) t.fail(`Alice's row before her first sign-in: ${await row.textContent()}`);
  await t.audit("people");
  let alice = await aliceProfile();
  if (!alice || alice.spec?.name !== "Alice" || !sameSet(alice.spec?.permissions, ALICE_PERMISSIONS) || alice.info?.state !== "PROFILE_STATE_ACTIVE") {
    t.fail(`the API shows Alice as ${JSON.stringify(alice)}`);
  } else t.step(`people: added ${ALICE} through the UI; the API shows her active with ${ALICE_PERMISSIONS.join(", ")}`);

  // Alice signs in through the real OpenID Provider, in her own browser.
  const ap = await t.newPage("alice");
  const aliceTokens = watchTokens(ap);
  await t.signInWithProvider(ap, "alice", "alice-password");
  await ap.getByRole("heading", { name: "Keys", level: 1 }).waitFor();
  const header = await ap.locator("header.top").textContent();
  if (!header.includes(ALICE)) t.fail(`Alice's header does not name her: ${header}`);
  await t.audit("signed-in-person", [], ap);
  if (aliceTokens.size === 0) t.fail("Alice's page sent no bearer credential");
  if (/[?&#](code|state|id_token)=/.test(ap.url())) t.fail(`the address keeps the flow's parameters: ${ap.url()}`);
  await t.noCredentialKept("Alice signed in", [...aliceTokens], ap);
  alice = await aliceProfile();
  if (alice?.info?.identity?.subject !== "sub-alice") t.fail(`Alice's first sign-in bound no identity: ${JSON.stringify(alice?.info)}`);
  t.step("Alice signed in through the provider: her email in the header, no credential in storage or the address");

  // She is offered nothing she cannot do, and the server agrees.
  if ((await nav(ap).getByRole("link", { name: "People" }).count()) !== 0) t.fail("Alice, without profiles:read, sees People");
  await nav(ap).getByRole("link", { name: "Workspaces" }).click();
  await ap.getByRole("heading", { name: "Workspaces", level: 1 }).waitFor();
  if ((await ap.getByRole("button", { name: "Create a workspace" }).count()) !== 0) t.fail("Alice, without workspaces:manage, may create a workspace");
  await go(ap, "/people");
  await ap.getByRole("heading", { name: "People", level: 1 }).waitFor();
  const denied = await ap.getByRole("alert").textContent();
  if (!/not allowed/.test(denied) || RAW.test(denied)) t.fail(`Alice on the People page saw: ${denied}`);
  if ((await ap.getByRole("button", { name: "Add a person" }).count()) !== 0) t.fail("Alice, without profiles:manage, is offered Add a person");
  // A missing permission is not a refused session: she is still signed in.
  await ap.waitForTimeout(300);
  if ((await ap.getByRole("button", { name: "Sign out" }).count()) !== 1) t.fail("a missing permission signed Alice out");
  const aliceToken = [...aliceTokens].at(-1);
  try {
    await t.api("ProfileService/CreateProfile", { metadata: { name: "mallory" }, spec: { email: "mallory@example.com", permissions: ["*"] } }, aliceToken);
    t.fail("the server let Alice, without profiles:manage, create a profile");
  } catch (err) {
    if (!/permission_denied/.test(err.message)) t.fail(`Alice's CreateProfile failed otherwise: ${err.message}`);
  }
  await nav(ap).getByRole("link", { name: "Keys" }).click();
  await ap.getByRole("heading", { name: "Keys", level: 1 }).waitFor();
  t.step("Alice sees no People link nor Add a person, and the server refuses her CreateProfile too");

  // The operator suspends Alice through the UI.
  await op.getByRole("button", { name: `Suspend ${ALICE}` }).click();
  dialog = op.getByRole("dialog", { name: `Suspend ${ALICE}?` });
  await t.audit("people-suspend");
  await dialog.getByRole("button", { name: "Suspend person" }).click();
  await dialog.waitFor({ state: "detached" });
  await row.getByText("Suspended").waitFor();
  alice = await aliceProfile();
  if (alice?.info?.state !== "PROFILE_STATE_SUSPENDED") t.fail(`after Suspend the API shows Alice ${alice?.info?.state}`);
  else t.step("the operator suspended Alice through the UI; the API agrees");

  // Her next action is refused in plain words, and her session forgotten.
  await ap.getByRole("button", { name: "Issue a key" }).click();
  dialog = ap.getByRole("dialog", { name: "Issue a key" });
  await dialog.getByLabel("Name").fill("alice-while-suspended");
  await dialog.getByRole("button", { name: "Issue key" }).click();
  await ap.getByRole("heading", { name: "Latchkey refused your session", level: 1 }).waitFor();
  const why = await ap.getByRole("alert").textContent();
  if (!/suspended/.test(why) || RAW.test(why)) t.fail(`Alice's refusal reads: ${why}`);
  await t.audit("session-refused", [], ap);
  await t.noCredentialKept("Alice refused", [...aliceTokens], ap);
  if ((await ap.content()).includes(aliceToken)) t.fail("Alice's ID token is in the refused page");
  const issued = await t.api("ApiKeyService/List", { pageSize: 500 });
  if ((issued.apiKeys ?? []).some((k) => k.metadata?.name === "alice-while-suspended")) t.fail("a suspended Alice issued a key");
  t.step(`Alice, suspended, was refused at her next action: “${why.trim()}”`);

  // Restored, she signs in again and works.
  await op.getByRole("button", { name: `Restore ${ALICE}` }).click();
  dialog = op.getByRole("dialog", { name: `Restore ${ALICE}?` });
  await dialog.getByRole("button", { name: "Restore person" }).click();
  await dialog.waitFor({ state: "detached" });
  await op.getByRole("button", { name: `Suspend ${ALICE}` }).waitFor();
  alice = await aliceProfile();
  if (alice?.info?.state !== "PROFILE_STATE_ACTIVE") t.fail(`after Restore the API shows Alice ${alice?.info?.state}`);
  await ap.getByRole("button", { name: "Sign in again" }).click();
  await ap.getByRole("button", { name: /^Sign in with / }).waitFor();
  await t.signInWithProvider(ap, "alice", "alice-password");
  await ap.getByRole("button", { name: "Issue a key" }).click();
  dialog = ap.getByRole("dialog", { name: "Issue a key" });
  await dialog.getByLabel("Name").fill("alice-restored");
  await dialog.getByRole("checkbox", { name: /^api_keys:read / }).check();
  if ((await dialog.getByRole("checkbox", { name: /^profiles:manage / }).count()) !== 0) t.fail("Alice is offered profiles:manage, which she does not hold");
  await dialog.getByRole("button", { name: "Issue key" }).click();
  dialog = ap.getByRole("dialog", { name: "Key issued" });
  await dialog.waitFor();
  const aliceKey = await t.readToken(dialog, ap);
  const v = await t.verify(aliceKey);
  if (!v.valid) t.fail(`the key Alice issued once restored does not verify: ${JSON.stringify(v)}`);
  await dialog.getByRole("button", { name: /close/ }).click();
  await t.api("ApiKeyService/Revoke", { id: v.apiKey.metadata.id });
  t.step("the operator restored Alice through the UI; she signed in again and issued a key that verifies");

  // Sign-out forgets her ID token and the flow's state.
  await ap.getByRole("button", { name: "Sign out" }).click();
  await ap.getByRole("button", { name: /^Sign in with / }).waitFor();
  await t.noCredentialKept("Alice signed out", [...aliceTokens, aliceKey], ap);
  if ((await ap.content()).includes(aliceToken)) t.fail("Alice's ID token is in the page after sign-out");
  await ap.context().close();

  // Bob: the provider knows him, Latchkey has no profile for him.
  const bp = await t.newPage("bob");
  const bobTokens = watchTokens(bp);
  await bp.goto(`${t.base}/`);
  await bp.getByRole("button", { name: /^Sign in with / }).click();
  await bp.waitForURL((u) => u.href.startsWith(t.oidcIssuer));
  await bp.getByLabel("Username:").fill("bob");
  await bp.getByLabel("Password:").fill("bob-password");
  await bp.getByRole("button", { name: "Login" }).click();
  await bp.waitForURL((u) => u.href.startsWith(t.base) && !u.search.includes("code="));
  const bobWhy = await bp.getByRole("alert").textContent();
  if (!/did not let you in/.test(bobWhy) || !/no profile/i.test(bobWhy) || RAW.test(bobWhy)) t.fail(`Bob's refusal reads: ${bobWhy}`);
  if ((await bp.getByRole("button", { name: "Sign out" }).count()) !== 0) t.fail("Bob, who has no profile, is signed in");
  if (bobTokens.size === 0) t.fail("Bob's page sent no bearer credential");
  await t.noCredentialKept("Bob refused", [...bobTokens], bp);
  await bp.context().close();
  t.step(`Bob, without a profile, was refused at sign-in: “${bobWhy.trim()}”`);

  // A key revoked while it is signed in: the next call is refused
  // (Unauthenticated), said in plain words, and the key forgotten.
  const kp = await t.newPage("revoked key");
  const issuedKey = await t.api("ApiKeyService/Issue", { metadata: { name: "people-revoked-while-signed-in" }, spec: { permissions: ["api_keys:read"] } });
  await kp.goto(`${t.base}/`);
  await t.signIn(issuedKey.apiKey.spec.token, kp);
  await t.api("ApiKeyService/Revoke", { id: issuedKey.apiKey.metadata.id });
  await kp.getByLabel("State").selectOption({ label: "Revoked" });
  await kp.getByRole("heading", { name: "Latchkey refused your session", level: 1 }).waitFor();
  const keyWhy = await kp.getByRole("alert").textContent();
  if (!/no longer accepted/.test(keyWhy) || RAW.test(keyWhy)) t.fail(`a revoked key's session refusal reads: ${keyWhy}`);
  await t.noCredentialKept("revoked key refused", [issuedKey.apiKey.spec.token], kp);
  await kp.getByRole("button", { name: "Sign in again" }).click();
  await kp.getByLabel("API key").waitFor();
  await kp.context().close();
  t.step(`a key revoked while signed in is refused at its next call: “${keyWhy.trim()}”`);

  // Leave Alice active with her permissions, and the operator on Keys.
  alice = await aliceProfile();
  if (alice?.info?.state !== "PROFILE_STATE_ACTIVE" || !sameSet(alice.spec?.permissions, ALICE_PERMISSIONS)) {
    t.fail(`Alice is left as ${JSON.stringify(alice)}`);
  }
  await nav(op).getByRole("link", { name: "Keys" }).click();
  await op.getByRole("heading", { name: "Keys", level: 1 }).waitFor();
}
