import { useId, useLayoutEffect, useRef, useState } from "react";
import { skipToken, useMutation, useQuery } from "@connectrpc/connect-query";
import { useQueryClient } from "@tanstack/react-query";
import {
  grantWorkspace,
  listGrantedWorkspaces,
  revokeWorkspace,
} from "../../../gen/ts/latchkey/v1/api_key-ApiKeyService_connectquery.js";
import { listWorkspaces } from "../../../gen/ts/latchkey/v1/workspace-WorkspaceService_connectquery.js";
import { listProfileWorkspaces } from "../../../gen/ts/latchkey/v1/profile-ProfileService_connectquery.js";
import { ApiKeyState, type ApiKey } from "../../../gen/ts/latchkey/v1/api_key_pb.js";
import { WorkspaceStatus, type Workspace } from "../../../gen/ts/latchkey/v1/workspace_pb.js";
import type { Session } from "./App.js";
import { ConfirmActions, Dialog } from "./dialogs.js";
import { plainError } from "./errors.js";
import { callerPermissions, holds, permissionsWithinReach } from "./permissions.js";
import { Pager } from "./Pager.js";
import { ListState } from "./ListState.js";

const PAGE_SIZE = 20;
const ALL = 500; // the most one page holds

// What the caller itself reaches: every active workspace of the account
// with workspaces:manage, else the active workspaces it is granted (the
// calling key's grants, or a person's profile's). `known` is false when
// the console cannot list them (a person without profiles:read).
export type CallerWorkspaces = {
  all: boolean;
  known: boolean;
  pending: boolean;
  error: unknown;
  workspaces: Workspace[];
  ids: Set<string>;
};

export function useCallerWorkspaces(session: Session): CallerWorkspaces {
  const held = callerPermissions(session);
  const all = holds(held, "workspaces:manage");
  const keyId = session.who.apiKey?.metadata?.id;
  const profileId = session.who.profile?.metadata?.id;
  const viaProfile = !all && !keyId && !!profileId && holds(held, "profiles:read");
  // Asked afresh on every mount: a workspace made or granted elsewhere a
  // moment ago is offered (the change stream does not carry new workspaces).
  const fresh = { staleTime: 0 };
  const every = useQuery(listWorkspaces, all ? { pageSize: ALL } : skipToken, fresh);
  const byKey = useQuery(listGrantedWorkspaces, !all && keyId ? { id: keyId, pageSize: ALL } : skipToken, fresh);
  const byProfile = useQuery(listProfileWorkspaces, viaProfile ? { id: profileId!, pageSize: ALL } : skipToken, fresh);
  const q = all ? every : keyId ? byKey : byProfile;
  const known = all || !!keyId || viaProfile;
  const workspaces = (q.data?.workspaces ?? []).filter((w) => w.status !== WorkspaceStatus.ARCHIVED);
  return {
    all,
    known,
    pending: known && q.isPending,
    error: known ? q.error : null,
    workspaces,
    ids: new Set(workspaces.map((w) => w.metadata?.id ?? "")),
  };
}

// Reach says whether the caller may change a key (edit, rotate, revoke,
// grant, withdraw) as the server decides it: api_keys:manage, and the key's
// permissions and active workspaces all within the caller's own. When it
// may not, `why` says so in plain words; null while the grants load.
export type Reach = { may: boolean | null; why: string };

export function useKeyReach(session: Session, k: ApiKey, caller: CallerWorkspaces): Reach & { granted: Workspace[] } {
  const canManage = holds(callerPermissions(session), "api_keys:manage");
  const id = k.metadata?.id ?? "";
  const revoked = k.info?.state === ApiKeyState.REVOKED;
  // Every grant of the key, for its reach and for what is left to grant.
  const grants = useQuery(listGrantedWorkspaces, canManage && !revoked ? { id, pageSize: ALL } : skipToken);
  const granted = grants.data?.workspaces ?? [];
  if (!canManage) return { may: false, why: "You may look at this key but not change it.", granted };
  if (revoked) return { may: false, why: "This key is revoked: it cannot be changed any more.", granted };
  if (!permissionsWithinReach(session, k.spec?.permissions ?? [])) {
    return {
      may: false,
      why: k.spec?.system
        ? "This is the account's system key: only someone holding every permission can change it."
        : "This key holds permissions you do not hold yourself, so you cannot change it.",
      granted,
    };
  }
  if (caller.all) return { may: true, why: "", granted };
  if (grants.isPending || caller.pending) return { may: null, why: "", granted };
  const beyond = granted.some((w) => w.status !== WorkspaceStatus.ARCHIVED && !caller.ids.has(w.metadata?.id ?? ""));
  if (beyond && caller.known) {
    return { may: false, why: "This key reaches workspaces you are not granted yourself, so you cannot change it.", granted };
  }
  return { may: true, why: "", granted };
}

// KeyWorkspaces is the key page's section of granted workspaces: a page of
// them, and, for a caller who may change the key, granting one and
// withdrawing one.
export function KeyWorkspaces({
  apiKey,
  changeable,
  caller,
  granted,
}: {
  apiKey: ApiKey;
  changeable: boolean;
  caller: CallerWorkspaces;
  granted: Workspace[];
}) {
  const id = apiKey.metadata?.id ?? "";
  const [pages, setPages] = useState<string[]>([""]);
  const [withdrawing, setWithdrawing] = useState<Workspace | null>(null);
  const [said, setSaid] = useState("");
  const heading = useRef<HTMLHeadingElement>(null);
  // After a withdrawal the row that opened the dialog goes: focus moves to
  // the section, in the commit that removes the dialog (after the dialog
  // gave focus back to its opener, and no longer while the modal dialog
  // makes the page inert, where focus() does nothing).
  const [refocus, setRefocus] = useState(0);
  useLayoutEffect(() => {
    if (refocus) heading.current?.focus();
  }, [refocus]);
  const q = useQuery(listGrantedWorkspaces, { id, pageSize: PAGE_SIZE, pageToken: pages[pages.length - 1] });
  const rows = q.data?.workspaces ?? [];
  // A caller without workspaces:manage may withdraw only what it is granted.
  const mayWithdraw = (w: Workspace) => changeable && (caller.all || caller.ids.has(w.metadata?.id ?? ""));
  const anyWithdraw = rows.some(mayWithdraw);
  return (
    <section aria-labelledby="h-workspaces" className="grants" aria-busy={q.isFetching}>
      <h2 id="h-workspaces" ref={heading} tabIndex={-1}>
        Workspaces granted
      </h2>
      {changeable && <GrantForm apiKey={apiKey} caller={caller} granted={granted} onGranted={setSaid} />}
      <p role="status" className="hint">
        {said}
      </p>
      <ListState
        q={q}
        loading="Loading the workspaces of this key…"
        failed="The workspaces of this key could not be loaded."
        empty={
          rows.length === 0 ? (
            <>
              {pages.length > 1 ? "There are no more workspaces." : "This key is granted no workspace."}
            </>
          ) : null
        }
      >
        <table className="keys">
          <caption>
            Workspaces this key reaches{pages.length > 1 ? `, page ${pages.length}` : ""}
          </caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Status</th>
              <th scope="col">Description</th>
              {anyWithdraw && <th scope="col">Actions</th>}
            </tr>
          </thead>
          <tbody>
            {rows.map((w) => (
              <tr key={w.metadata?.id}>
                <th scope="row">{w.metadata?.name}</th>
                <td>{w.status === WorkspaceStatus.ARCHIVED ? "Archived: admits nothing" : "Active"}</td>
                <td>{w.spec?.description || "None"}</td>
                {anyWithdraw && (
                  <td className="row-actions">
                    {mayWithdraw(w) && (
                      <button type="button" onClick={() => setWithdrawing(w)} aria-label={`Withdraw ${w.metadata?.name}`}>
                        Withdraw
                      </button>
                    )}
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      </ListState>
      {(pages.length > 1 || q.data?.nextPageToken) && (
        <Pager label="Pages of workspaces granted" pages={pages} setPages={setPages} next={q.data?.nextPageToken} />
      )}
      {withdrawing && (
        <WithdrawDialog
          apiKey={apiKey}
          ws={withdrawing}
          onClose={() => setWithdrawing(null)}
          onDone={() => {
            setWithdrawing(null);
            setSaid(`Withdrew “${withdrawing.metadata?.name}”.`);
            setRefocus((n) => n + 1);
          }}
        />
      )}
    </section>
  );
}

function GrantForm({
  apiKey,
  caller,
  granted,
  onGranted,
}: {
  apiKey: ApiKey;
  caller: CallerWorkspaces;
  granted: Workspace[];
  onGranted: (msg: string) => void;
}) {
  const qc = useQueryClient();
  const ids = { ws: useId(), err: useId(), hint: useId() };
  const [choice, setChoice] = useState("");
  const mutation = useMutation(grantWorkspace, {
    onSuccess: async (_, sent) => {
      await qc.invalidateQueries();
      const name = caller.workspaces.find((w) => w.metadata?.id === sent.workspaceId)?.metadata?.name ?? "the workspace";
      setChoice("");
      onGranted(`Granted “${name}”.`);
    },
  });
  const has = new Set(granted.map((w) => w.metadata?.id));
  const options = caller.workspaces.filter((w) => !has.has(w.metadata?.id));
  const hint = caller.all
    ? "Any active workspace of the account."
    : "You can grant only the workspaces you are granted yourself.";
  if (!caller.known) {
    return (
      <p className="hint">
        You can grant only the workspaces you are granted yourself, and the console cannot list them for you (that needs
        the permission to see people and profiles).
      </p>
    );
  }
  if (caller.pending) return <p role="status">Loading the workspaces you can grant…</p>;
  if (caller.error) {
    return (
      <p role="alert" className="error">
        The workspaces you can grant could not be loaded. {plainError(caller.error)}
      </p>
    );
  }
  if (options.length === 0) {
    return <p className="hint">There is no other workspace you could grant to this key. {hint}</p>;
  }
  const error = mutation.isError ? plainError(mutation.error) : null;
  return (
    <form
      className="filters"
      aria-label="Grant a workspace"
      onSubmit={(e) => {
        e.preventDefault();
        if (choice) mutation.mutate({ id: apiKey.metadata?.id ?? "", workspaceId: choice });
      }}
    >
      <div>
        <label htmlFor={ids.ws}>Workspace to grant</label>
        <select
          id={ids.ws}
          value={choice}
          onChange={(e) => setChoice(e.target.value)}
          aria-describedby={error ? `${ids.hint} ${ids.err}` : ids.hint}
        >
          <option value="">Choose a workspace</option>
          {options.map((w) => (
            <option key={w.metadata?.id} value={w.metadata?.id}>
              {w.metadata?.name}
            </option>
          ))}
        </select>
      </div>
      <button type="submit" disabled={!choice || mutation.isPending}>
        {mutation.isPending ? "Granting…" : "Grant workspace"}
      </button>
      <p id={ids.hint} className="hint">
        {hint}
      </p>
      {error && (
        <p id={ids.err} role="alert" className="error">
          {error}
        </p>
      )}
    </form>
  );
}

function WithdrawDialog({ apiKey, ws, onClose, onDone }: { apiKey: ApiKey; ws: Workspace; onClose: () => void; onDone: () => void }) {
  const qc = useQueryClient();
  const mutation = useMutation(revokeWorkspace, {
    onSuccess: async () => {
      await qc.invalidateQueries();
      onDone();
    },
  });
  return (
    <Dialog title={`Withdraw “${ws.metadata?.name}” from “${apiKey.metadata?.name}”?`} onClose={onClose}>
      <p>
        The key stops reaching this workspace from the moment you confirm. You can grant it again later.
      </p>
      {mutation.isError && (
        <p role="alert" className="error">
          {plainError(mutation.error)}
        </p>
      )}
      <ConfirmActions
        onCancel={onClose}
        onConfirm={() => mutation.mutate({ id: apiKey.metadata?.id ?? "", workspaceId: ws.metadata?.id ?? "" })}
        pending={mutation.isPending}
        label="Withdraw workspace"
        busyLabel="Withdrawing…"
      />
    </Dialog>
  );
}
