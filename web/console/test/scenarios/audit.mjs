// Scenario audit log: the operator reads the audit log of the whole test
// through the UI, filtered by target (from a key's page), action, actor and
// time (each by the server), and paged; every view is checked against
// ListAuditEvents. A key
// without audit:read is offered nothing and sends nothing.
export default async function (t) {
  const { page } = t;
  const section = page.locator('section[aria-busy="false"]');
  // load runs what makes the page read the log, and waits for the result.
  const load = async (act) => {
    await Promise.all([page.waitForResponse((r) => r.url().includes("AuditService/ListAuditEvents")), act()]);
    await section.waitFor();
  };
  const rows = () =>
    page.locator("table.audit tbody tr").evaluateAll((trs) =>
      trs.map((tr) => ({
        action: tr.children[2].querySelector("code").textContent,
        words: tr.children[2].firstChild.textContent,
        target: tr.children[3].querySelector("code").textContent,
        link: tr.children[3].querySelector("a")?.getAttribute("href") ?? null,
        reason: tr.children[4].textContent,
        requestId: tr.children[5].querySelector("code")?.textContent ?? "",
      })));
  const next = page.getByRole("button", { name: "Next page" });
  // pageThrough reads every page the UI shows from here, with Next page.
  const pageThrough = async () => {
    const seen = [...(await rows())];
    for (let n = 2; await next.isEnabled(); n++) {
      await load(() => next.click());
      await page.getByRole("table").getByText(new RegExp(`, page ${n}\\b`)).or(page.getByText("There are no more events.")).or(page.getByText("No event matches")).waitFor();
      seen.push(...(await rows()));
      if (n > 200) throw new Error("audit: more than 200 pages");
    }
    return seen;
  };
  const apiAll = async (body = {}) => {
    const out = [];
    let pageToken = "";
    do {
      const r = await t.api("AuditService/ListAuditEvents", { ...body, pageSize: 500, pageToken });
      out.push(...(r.auditEvents ?? []));
      pageToken = r.nextPageToken;
    } while (pageToken);
    return out;
  };
  const same = (what, ui, api) => {
    const a = ui.map((r) => `${r.action} ${r.target} ${r.requestId}`);
    const b = api.map((e) => `${e.action} ${e.target?.id ?? ""} ${e.requestId ?? ""}`);
    if (a.length !== b.length || a.some((x, i) => x !== b[i])) {
      t.fail(`audit, ${what}: the UI shows ${a.length} events, the API ${b.length}; first difference: ${a.find((x, i) => x !== b[i]) ?? b[a.length]}`);
      return false;
    }
    return true;
  };
  const everything = await apiAll();

  // The log, newest first, as the API has it.
  await load(() => page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Audit log" }).click());
  await page.getByRole("heading", { name: "Audit log", level: 1 }).waitFor();
  const first = await t.api("AuditService/ListAuditEvents", { pageSize: 50 });
  same("first page", await rows(), first.auditEvents);
  await t.audit("audit");

  // Paging: 25 a page, and the second page is the API's second page.
  await page.getByLabel("Page size").selectOption({ label: "25 events" });
  await load(() => page.getByRole("button", { name: "Apply filters" }).click());
  const p1 = await t.api("AuditService/ListAuditEvents", { pageSize: 25 });
  same("page 1 of 25", await rows(), p1.auditEvents);
  await load(() => next.click());
  await page.getByText(/, page 2\b/).waitFor();
  const p2 = await t.api("AuditService/ListAuditEvents", { pageSize: 25, pageToken: p1.nextPageToken });
  if (same("page 2 of 25", await rows(), p2.auditEvents)) t.step(`audit: pages of 25 match the API's (${everything.length} events in all)`);
  await page.getByRole("button", { name: "Previous page" }).click();
  await page.getByText(/, page 2\b/).waitFor({ state: "detached" });

  // console-ci, from its key's page: issued, rotated, revoked.
  const ci = (await t.api("ApiKeyService/List", { state: "API_KEY_STATE_REVOKED", pageSize: 500 })).apiKeys?.find((k) => k.metadata.name === "console-ci");
  if (!ci) throw new Error("audit: no revoked key named console-ci");
  const ciId = ci.metadata.id;
  await page.evaluate((id) => {
    history.pushState(null, "", `/keys/${id}`);
    window.dispatchEvent(new Event("popstate"));
  }, ciId);
  await page.getByRole("heading", { name: "console-ci", level: 1 }).waitFor();
  await load(() => page.getByRole("link", { name: "This key's audit log" }).click());
  if ((await page.getByLabel("Target id").inputValue()) !== ciId) t.fail("the key's audit link does not fill the target filter");
  if (!page.url().endsWith(`/audit?target=${ciId}`)) t.fail(`the key's audit log is at ${page.url()}`);
  const ciRows = await rows();
  const ciActions = ciRows.map((r) => r.action).join(",");
  if (ciActions !== "api_key.revoke,api_key.rotate,api_key.issue") t.fail(`console-ci's audit log shows ${ciActions}`);
  if (!ciRows.every((r) => r.link === `/keys/${ciId}`)) t.fail("console-ci's events do not link to its page");
  if (ciRows.map((r) => r.words).join(",") !== "Revoked a key,Rotated a key,Issued a key") t.fail(`console-ci's actions read ${ciRows.map((r) => r.words)}`);
  same("target console-ci", ciRows, await apiAll({ targetId: ciId }));
  await t.audit("audit-filtered");
  t.step("audit: console-ci's key page links to its events: issued, rotated, revoked");

  // Oldest first.
  await page.getByLabel("Order").selectOption({ label: "Oldest first" });
  await load(() => page.getByRole("button", { name: "Apply filters" }).click());
  if ((await rows()).map((r) => r.action).join(",") !== "api_key.issue,api_key.rotate,api_key.revoke") t.fail("console-ci's events, oldest first, are not in order");

  // A time range: from console-ci's issue to a second after its revoke.
  const [revoked, , issued] = await apiAll({ targetId: ciId });
  const sec = (iso) => iso.slice(0, 19); // the browser runs in UTC
  // As a datetime-local field keeps it: without seconds when they are 0.
  const field = (iso) => (sec(iso).endsWith(":00") ? sec(iso).slice(0, 16) : sec(iso));
  const from = Date.parse(`${sec(issued.time)}Z`);
  const to = Date.parse(`${sec(revoked.time)}Z`) + 1000;
  await page.getByRole("button", { name: "Clear filters" }).click();
  await page.getByLabel("From", { exact: true }).fill(field(issued.time));
  await page.getByLabel("To", { exact: true }).fill(field(new Date(to).toISOString()));
  await page.getByLabel("Page size").selectOption({ label: "100 events" });
  await load(() => page.getByRole("button", { name: "Apply filters" }).click());
  // From and To include the seconds they name.
  const inRange = everything.filter((e) => Date.parse(e.time) >= from && Date.parse(e.time) < to + 1000);
  if (same("a time range", await pageThrough(), inRange)) t.step(`audit: a time range shows its ${inRange.length} events`);

  // Each action of the whole test, filtered by action and paged through.
  await page.getByRole("button", { name: "Clear filters" }).click();
  await page.getByLabel("Page size").selectOption({ label: "25 events" });
  const actions = [...new Set(everything.map((e) => e.action))];
  for (const want of ["api_key.issue", "api_key.rotate", "api_key.revoke", "workspace.create", "workspace.update", "workspace.archive"]) {
    if (!actions.includes(want)) t.fail(`the audit log has no ${want}`);
  }
  const counts = [];
  // The server filters: each request of the page names the action.
  const bodies = [];
  const onRequest = (r) => r.url().includes("AuditService/ListAuditEvents") && bodies.push(r.postData() ?? "");
  page.on("request", onRequest);
  for (const action of actions) {
    const option = await page.getByLabel("Action").locator(`option[value="${action}"]`).count();
    if (!option) {
      t.fail(`the Action filter does not offer ${action}`);
      continue;
    }
    await page.getByLabel("Action").selectOption(action);
    await load(() => page.getByRole("button", { name: "Apply filters" }).click());
    await page.getByRole("table").getByText("Matching events").waitFor();
    const ui = await pageThrough();
    if (same(`action ${action}`, ui, everything.filter((e) => e.action === action))) counts.push(`${action} ${ui.length}`);
  }
  page.off("request", onRequest);
  const unfiltered = bodies.filter((b) => !actions.some((a) => b.includes(a)));
  if (unfiltered.length) t.fail(`audit: ${unfiltered.length} of ${bodies.length} requests of the action filter did not name the action`);
  t.step(`audit: each action, filtered by the server and paged through in the UI, matches the API: ${counts.join(", ")}`);
  const issues = everything.filter((e) => e.action === "api_key.issue").length;
  if (issues < 50) t.fail(`only ${issues} api_key.issue events: the load step issues 50`);

  // An actor, by id.
  const actor = everything[0].actor;
  await page.getByRole("button", { name: "Clear filters" }).click();
  await page.getByLabel("Actor id").fill(actor.id);
  await page.getByLabel("Page size").selectOption({ label: "100 events" });
  await load(() => page.getByRole("button", { name: "Apply filters" }).click());
  if (same(`actor ${actor.name}`, await pageThrough(), everything.filter((e) => e.actor?.id === actor.id))) {
    t.step(`audit: the events of ${actor.name} (${actor.id}) match the API`);
  }

  // A filter that matches nothing: the operator account is never suspended.
  await page.getByRole("button", { name: "Clear filters" }).click();
  await page.getByLabel("Action").selectOption("account.suspend");
  await load(() => page.getByRole("button", { name: "Apply filters" }).click());
  await page.getByText("No event matches these filters.").waitFor();
  await t.audit("audit-empty");
  // An actor id that is not a profile's is refused before any call.
  await page.getByLabel("Actor id").fill("key_01J00000000000000000000000");
  await page.getByRole("button", { name: "Apply filters" }).click();
  if (!/actor id/i.test(await page.locator("form.filters").getByRole("alert").textContent())) t.fail("a bad actor id is not refused in plain words");
  await page.getByLabel("Actor id").fill("");
  // A target id that is not one is refused before any call.
  await page.getByLabel("Target id").fill("key_not-an-id");
  await page.getByRole("button", { name: "Apply filters" }).click();
  const refused = await page.locator("form.filters").getByRole("alert").textContent();
  if (!/target id/.test(refused)) t.fail(`a bad target id shows: ${refused}`);
  await page.getByRole("button", { name: "Clear filters" }).click();

  // A key without audit:read: no link, a plain refusal, no call.
  const reader = (await t.api("ApiKeyService/Issue", { metadata: { name: "audit-outsider" }, spec: { permissions: ["api_keys:read"] } })).apiKey;
  const p = await t.newPage("outsider");
  const asked = [];
  p.on("request", (r) => r.url().includes("AuditService") && asked.push(r.url()));
  await p.goto(`${t.base}/`);
  await t.signIn(reader.spec.token, p);
  if ((await p.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Audit log" }).count()) !== 0) {
    t.fail("a key without audit:read is offered the audit log");
  }
  await p.evaluate(() => {
    history.pushState(null, "", "/audit");
    window.dispatchEvent(new Event("popstate"));
  });
  await p.getByRole("heading", { name: "Audit log", level: 1 }).waitFor();
  const told = await p.getByRole("alert").textContent();
  if (!/may not read/.test(told) || (await p.locator("main table").count()) !== 0) t.fail(`a key without audit:read at /audit is shown: ${told}`);
  if (asked.length) t.fail(`the console of a key without audit:read asked for the log: ${asked.join(", ")}`);
  const direct = await t.api("AuditService/ListAuditEvents", {}, reader.spec.token).then(() => "allowed", (e) => e.message);
  if (!/403/.test(direct)) t.fail(`a key without audit:read calling ListAuditEvents: ${direct}`);
  await p.context().close();
  await t.api("ApiKeyService/Revoke", { id: reader.metadata.id });
  t.step("audit: a key without audit:read has no Audit log link; /audit refuses it in plain words and calls nothing");

  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Keys" }).click();
  await page.getByRole("heading", { name: "Keys", level: 1 }).waitFor();
}
