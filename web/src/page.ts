// The page the browser test drives: one scenario per transport, each step
// shown on the page and returned to the test.
import { Code, ConnectError } from "@connectrpc/connect";
import { KeyChangeKind, VerifyCode } from "../../gen/ts/latchkey/v1/auth_pb.js";
import { latchkeyClients } from "./client.js";

export type Step = { step: string; ok: boolean; detail: string };

async function scenario(baseUrl: string, apiKey: string, transport: "connect" | "grpc-web"): Promise<Step[]> {
  const steps: Step[] = [];
  const list = document.getElementById("steps")!;
  const record = (step: string, ok: boolean, detail: string) => {
    steps.push({ step, ok, detail });
    const li = document.createElement("li");
    li.textContent = `${transport} ${step}: ${ok ? "ok" : "FAILED"} (${detail})`;
    list.append(li);
  };
  const grpcWeb = transport === "grpc-web";
  const { keys, auth } = latchkeyClients(baseUrl, apiKey, grpcWeb);
  try {
    const issued = await keys.issue({
      metadata: { name: `browser ${transport}` },
      spec: { permissions: ["invoices:read"] },
    });
    const id = issued.apiKey?.metadata?.id ?? "";
    const token = issued.apiKey?.spec?.token ?? "";
    record("issue", id.startsWith("key_") && token !== "", id);

    const page = await keys.list({ pageSize: 500 });
    const listed = page.apiKeys.some((k) => k.metadata?.id === id);
    const tokensShown = page.apiKeys.some((k) => (k.spec?.token ?? "") !== "");
    record("list", listed && !tokensShown, `${page.apiKeys.length} keys, no token shown: ${!tokensShown}`);

    const verified = await auth.verify({ token, permissions: ["invoices:read"] });
    record("verify", verified.valid && verified.code === VerifyCode.VALID, VerifyCode[verified.code]);

    const rotated = await keys.rotate({ id });
    const next = rotated.apiKey?.spec?.token ?? "";
    const [fresh, old] = await Promise.all([auth.verify({ token: next }), auth.verify({ token })]);
    record("rotate", next !== "" && next !== token && fresh.valid && !old.valid,
      `new: ${VerifyCode[fresh.code]}, old: ${VerifyCode[old.code]}`);

    // A change stream (server streaming) opened before the revocation
    // sees it; the stream opens with a heartbeat.
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), 5000);
    const changes = auth.watchKeyChanges({}, { signal: abort.signal })[Symbol.asyncIterator]();
    const opened = await changes.next();
    const heartbeat = !opened.done && opened.value.event.case === "heartbeat";

    await keys.revoke({ id });
    const revoked = await auth.verify({ token: next });
    record("revoke", !revoked.valid && revoked.code === VerifyCode.REVOKED, VerifyCode[revoked.code]);

    let seen = "";
    while (!seen) {
      const got = await changes.next();
      if (got.done) break;
      const event = got.value.event;
      if (event.case === "change" && event.value.apiKeyId === id && event.value.kind === KeyChangeKind.KEY_REVOKED) {
        seen = `${KeyChangeKind[event.value.kind]} at sequence ${event.value.sequence}`;
      }
    }
    clearTimeout(timer);
    abort.abort();
    record("watch", heartbeat && seen !== "", seen || "no revocation on the stream");
  } catch (e) {
    const err = ConnectError.from(e);
    record("unexpected error", false, `${Code[err.code]}: ${err.rawMessage}`);
  }
  try {
    await latchkeyClients(baseUrl, "lk_live_not_a_key", grpcWeb).auth.whoAmI({});
    record("refused call", false, "WhoAmI with a bad key succeeded");
  } catch (e) {
    const err = ConnectError.from(e);
    record("refused call", err.code === Code.Unauthenticated, Code[err.code]);
  }
  return steps;
}

declare global {
  interface Window {
    latchkeyScenario: typeof scenario;
  }
}
window.latchkeyScenario = scenario;
