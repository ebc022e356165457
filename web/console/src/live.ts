// Live updates: while the keys list or a key's page is shown, a caller
// holding api_keys:verify watches AuthService.WatchKeyChanges and the
// queries a change touches are refetched, so a key revoked or changed
// elsewhere shows at once. One stream at most, shared by the pages that
// use it; it closes when none does. Callers without the permission open
// none (the server would refuse it).
import { useEffect } from "react";
import { useQueryClient, type QueryClient } from "@tanstack/react-query";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectQueryKey } from "@connectrpc/connect-query";
import { AuthService, type KeyChange } from "../../../gen/ts/latchkey/v1/auth_pb.js";
import { ApiKeyService } from "../../../gen/ts/latchkey/v1/api_key_pb.js";
import { get, list, listGrantedWorkspaces } from "../../../gen/ts/latchkey/v1/api_key-ApiKeyService_connectquery.js";
import { WorkspaceService } from "../../../gen/ts/latchkey/v1/workspace_pb.js";
import type { Session } from "./App.js";
import { transport } from "./session.js";
import { callerPermissions, holds } from "./permissions.js";

// The server sends a heartbeat every 15 s when nothing happens: a stream
// silent for longer than this is taken for dead and opened again.
const SILENCE_MS = 40_000;
const FIRST_DELAY_MS = 1_000;
const MAX_DELAY_MS = 30_000;

type Watch = { who: string; users: number; stop: () => void };
let current: Watch | null = null;
// The last sequence each watcher saw (a change's or a heartbeat's), so that
// a stream opened again, after an error or after a visit to another page,
// resumes there and misses nothing. Not a secret.
const resumeAt = new Map<string, bigint>();

// useKeyChanges keeps the change stream open while the calling page is
// shown, for callers that may watch.
export function useKeyChanges(session: Session) {
  const qc = useQueryClient();
  const may = holds(callerPermissions(session), "api_keys:verify");
  const who = session.who.apiKey?.metadata?.id ?? session.who.profile?.metadata?.id ?? "";
  const account = session.who.account?.metadata?.id ?? "";
  useEffect(() => {
    if (!may || !who) return;
    if (current && current.who !== who) {
      current.stop();
      current = null;
    }
    const w = (current ??= open(qc, who, account));
    w.users++;
    return () => {
      w.users--;
      // Going from the list to a key's page unmounts one user as it mounts
      // the next: close only when nobody took the stream over.
      setTimeout(() => {
        if (w.users === 0 && current === w) {
          w.stop();
          current = null;
        }
      }, 0);
    };
  }, [qc, may, who, account]);
}

function open(qc: QueryClient, who: string, account: string): Watch {
  const stopped = new AbortController();
  const client = createClient(AuthService, transport);
  void (async () => {
    let delay = FIRST_DELAY_MS;
    while (!stopped.signal.aborted) {
      const attempt = new AbortController();
      const abort = () => attempt.abort();
      stopped.signal.addEventListener("abort", abort);
      let silence = setTimeout(abort, SILENCE_MS);
      try {
        const after = resumeAt.get(who);
        const stream = client.watchKeyChanges(after === undefined ? {} : { afterSequence: after }, { signal: attempt.signal });
        for await (const res of stream) {
          clearTimeout(silence);
          silence = setTimeout(abort, SILENCE_MS);
          delay = FIRST_DELAY_MS;
          const e = res.event;
          if (e.case === "change") {
            changed(qc, account, e.value);
            resumeAt.set(who, e.value.sequence);
          } else if (e.case === "heartbeat") {
            resumeAt.set(who, e.value.sequence);
          } else if (e.case === "resetCache") {
            // Changes were missed: everything shown may be stale.
            refetchAll(qc);
            resumeAt.set(who, e.value.sequence);
          }
        }
        // The server ended the stream: open it again.
      } catch (err) {
        if (stopped.signal.aborted) break;
        const code = ConnectError.from(err).code;
        // The caller's own key was revoked or lost api_keys:verify: asking
        // again would be refused the same way.
        if (code === Code.Unauthenticated || code === Code.PermissionDenied) break;
        if (code === Code.InvalidArgument) {
          // The position is unknown to the server (a new database): start
          // from now, and refetch what was read before.
          resumeAt.delete(who);
          refetchAll(qc);
        }
      } finally {
        clearTimeout(silence);
        stopped.signal.removeEventListener("abort", abort);
      }
      await pause(delay * (0.75 + Math.random() / 2), stopped.signal);
      delay = Math.min(delay * 2, MAX_DELAY_MS);
    }
  })();
  return { who, users: 0, stop: () => stopped.abort() };
}

// changed refetches the queries that show the changed key. The operator's
// stream carries every account's changes; the console shows one account.
function changed(qc: QueryClient, account: string, c: KeyChange) {
  if (c.accountId !== account) return;
  if (!c.apiKeyId) {
    // A workspace archived, an account suspended or restored: any key may
    // show differently.
    refetchAll(qc);
    return;
  }
  const id = c.apiKeyId;
  void qc.invalidateQueries({ queryKey: createConnectQueryKey({ schema: get, input: { id }, cardinality: undefined }) });
  void qc.invalidateQueries({ queryKey: createConnectQueryKey({ schema: listGrantedWorkspaces, input: { id }, cardinality: undefined }) });
  void qc.invalidateQueries({ queryKey: createConnectQueryKey({ schema: list, cardinality: undefined }) });
}

function refetchAll(qc: QueryClient) {
  void qc.invalidateQueries({ queryKey: createConnectQueryKey({ schema: ApiKeyService, cardinality: undefined }) });
  void qc.invalidateQueries({ queryKey: createConnectQueryKey({ schema: WorkspaceService, cardinality: undefined }) });
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    signal.addEventListener("abort", done);
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });
}
