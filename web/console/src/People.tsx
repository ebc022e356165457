import { useEffect, useId, useRef, useState } from "react";
import { useMutation, useQuery } from "@connectrpc/connect-query";
import { useQueryClient } from "@tanstack/react-query";
import {
  createProfile,
  grantProfileWorkspace,
  listProfiles,
  listProfileWorkspaces,
  restoreProfile,
  suspendProfile,
} from "../../../gen/ts/latchkey/v1/profile-ProfileService_connectquery.js";
import { listWorkspaces } from "../../../gen/ts/latchkey/v1/workspace-WorkspaceService_connectquery.js";
import { ProfileState, ProfileType, type Profile } from "../../../gen/ts/latchkey/v1/profile_pb.js";
import { WorkspaceStatus, type Workspace } from "../../../gen/ts/latchkey/v1/workspace_pb.js";
import type { Session } from "./App.js";
import { ConfirmActions, Dialog } from "./dialogs.js";
import { plainError } from "./errors.js";
import { isoWhen, when } from "./format.js";
import { callerPermissions, holds, offeredPermissions } from "./permissions.js";
import { Pager } from "./Pager.js";
import { ListState } from "./ListState.js";

const PAGE_SIZE = 50;
const WORKSPACES_SHOWN = 3;
const email = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

// The People page: the account's USER profiles (people who sign in through
// the OpenID Provider), adding one by email, suspending and restoring. The
// actions are offered only to a caller holding profiles:manage, and only on
// people within its reach (holding nothing it does not hold); the server
// decides in the end.
export function PeoplePage({ session }: { session: Session }) {
  const [pages, setPages] = useState<string[]>([""]);
  const [dialog, setDialog] = useState<{ kind: "create" } | { kind: "suspend" | "restore"; profile: Profile } | null>(null);
  const heading = useRef<HTMLHeadingElement>(null);
  const held = callerPermissions(session);
  const canManage = holds(held, "profiles:manage");
  const self = session.who.profile?.metadata?.id;
  const q = useQuery(listProfiles, { pageSize: PAGE_SIZE, pageToken: pages[pages.length - 1], type: ProfileType.USER });
  useEffect(() => {
    heading.current?.focus();
  }, []);
  const rows = q.data?.profiles ?? [];
  return (
    <>
      <div className="title-row">
        <h1 ref={heading} tabIndex={-1}>
          People
        </h1>
        {canManage && (
          <button type="button" className="primary" onClick={() => setDialog({ kind: "create" })}>
            Add a person
          </button>
        )}
      </div>
      <p className="hint">People sign in with your company account; each is matched to a profile here by their verified email.</p>
      <section aria-labelledby="people-caption" aria-busy={q.isFetching}>
        <ListState
          q={q}
          loading="Loading people…"
          failed="The people could not be loaded."
          empty={
            rows.length === 0 ? (
              <>
                {pages.length > 1 ? "There are no more people." : "There are no people in this account yet."}
                {canManage && pages.length === 1 && " Add a person by email: they can sign in once they have a profile."}
              </>
            ) : null
          }
        >
          <table className="keys">
            <caption id="people-caption">People{pages.length > 1 ? `, page ${pages.length}` : ""}</caption>
            <thead>
              <tr>
                <th scope="col">Email</th>
                <th scope="col">Name</th>
                <th scope="col">Permissions</th>
                <th scope="col">State</th>
                <th scope="col">Workspaces</th>
                {canManage && <th scope="col">Actions</th>}
              </tr>
            </thead>
            <tbody>
              {rows.map((p) => {
                const id = p.metadata?.id ?? "";
                const perms = p.spec?.permissions ?? [];
                const suspended = p.info?.state === ProfileState.SUSPENDED;
                const label = p.spec?.email || p.metadata?.name || id;
                return (
                  <tr key={id}>
                    <th scope="row">
                      {p.spec?.email}
                      {id === self && <span className="tag">you</span>}
                    </th>
                    <td>{p.spec?.name || p.metadata?.name || "None"}</td>
                    <td>
                      {perms.length ? (
                        perms.map((perm) => (
                          <code key={perm} className="perm">
                            {perm}
                          </code>
                        ))
                      ) : (
                        <span className="muted">None</span>
                      )}
                    </td>
                    <td>
                      {suspended ? (
                        <>
                          <strong className="state-suspended">Suspended</strong>{" "}
                          <span className="hint">
                            since <time dateTime={isoWhen(p.info?.suspendTime)}>{when(p.info?.suspendTime, "—")}</time>
                          </span>
                        </>
                      ) : (
                        <>
                          Active{" "}
                          <span className="hint">
                            {p.info?.identity ? (
                              <>
                                first signed in{" "}
                                <time dateTime={isoWhen(p.info.identity.bindTime)}>{when(p.info.identity.bindTime, "—")}</time>
                              </>
                            ) : (
                              "not signed in yet"
                            )}
                          </span>
                        </>
                      )}
                    </td>
                    <td>
                      <ProfileWorkspaces id={id} permissions={perms} />
                    </td>
                    {canManage && (
                      <td className="row-actions">
                        {id === self ? (
                          <span className="muted">—</span>
                        ) : !perms.every((perm) => holds(held, perm)) ? (
                          <span className="muted">Holds more than you</span>
                        ) : suspended ? (
                          <button type="button" onClick={() => setDialog({ kind: "restore", profile: p })} aria-label={`Restore ${label}`}>
                            Restore
                          </button>
                        ) : (
                          <button type="button" onClick={() => setDialog({ kind: "suspend", profile: p })} aria-label={`Suspend ${label}`}>
                            Suspend
                          </button>
                        )}
                      </td>
                    )}
                  </tr>
                );
              })}
            </tbody>
          </table>
        </ListState>
        <Pager label="Pages of people" pages={pages} setPages={setPages} next={q.data?.nextPageToken} />
      </section>
      {dialog?.kind === "create" && <CreatePersonDialog session={session} onClose={() => setDialog(null)} />}
      {(dialog?.kind === "suspend" || dialog?.kind === "restore") && (
        <SuspendDialog profile={dialog.profile} restore={dialog.kind === "restore"} onClose={() => setDialog(null)} />
      )}
    </>
  );
}

// ProfileWorkspaces previews the workspaces a person is granted.
function ProfileWorkspaces({ id, permissions }: { id: string; permissions: string[] }) {
  const all = holds(permissions, "workspaces:manage");
  const q = useQuery(listProfileWorkspaces, { id, pageSize: WORKSPACES_SHOWN }, { enabled: !all });
  if (all) return <>All (workspaces:manage)</>;
  if (q.isPending) return <span className="muted">Loading…</span>;
  if (q.isError) return <span className="muted">Could not be loaded</span>;
  const ws = q.data.workspaces;
  if (!ws.length) return <span className="muted">None</span>;
  return (
    <>
      {ws.map((w) => `${w.metadata?.name}${w.status === WorkspaceStatus.ARCHIVED ? " (archived)" : ""}`).join(", ")}
      {q.data.nextPageToken && ", and more"}
    </>
  );
}

// grantable lists the workspaces the caller may grant: every active one
// with workspaces:manage, otherwise the active ones it is granted itself.
function useGrantable(session: Session): { workspaces: Workspace[]; loading: boolean } {
  const all = holds(callerPermissions(session), "workspaces:manage");
  const self = session.who.profile?.metadata?.id ?? "";
  const every = useQuery(listWorkspaces, { pageSize: 500, status: WorkspaceStatus.ACTIVE }, { enabled: all });
  const own = useQuery(listProfileWorkspaces, { id: self, pageSize: 500 }, { enabled: !all && self !== "" });
  const q = all ? every : own;
  return {
    workspaces: (q.data?.workspaces ?? []).filter((w) => w.status !== WorkspaceStatus.ARCHIVED),
    loading: q.isPending && q.fetchStatus !== "idle",
  };
}

function CreatePersonDialog({ session, onClose }: { session: Session; onClose: () => void }) {
  const qc = useQueryClient();
  const create = useMutation(createProfile);
  const grant = useMutation(grantProfileWorkspace);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  // Set once the profile exists but a workspace could not be granted.
  const [partly, setPartly] = useState<{ email: string; failed: { name: string; why: string }[] } | null>(null);
  const offered = offeredPermissions(session);
  const grantable = useGrantable(session);
  const ids = { email: useId(), name: useId(), err: useId(), emailHint: useId() };

  if (partly) {
    return (
      <Dialog title="Person added, with a problem" onClose={onClose}>
        <p>
          {partly.email} was added, but {partly.failed.length === 1 ? "a workspace" : "some workspaces"} could not be granted:
        </p>
        <ul role="alert">
          {partly.failed.map((f) => (
            <li key={f.name}>
              {f.name}: {f.why}
            </li>
          ))}
        </ul>
        <p>You can grant them later.</p>
        <div className="actions">
          <button type="button" className="primary" onClick={onClose} autoFocus>
            Close
          </button>
        </div>
      </Dialog>
    );
  }

  const submit = async (e: React.FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    setError(null);
    const f = new FormData(e.currentTarget);
    const address = String(f.get("email") ?? "").trim();
    const name = String(f.get("name") ?? "").trim();
    if (!email.test(address)) {
      setError("Enter the person's email address, such as alice@example.com.");
      return;
    }
    const chosen = f.getAll("workspace").map(String);
    setBusy(true);
    try {
      const res = await create.mutateAsync({
        metadata: { name: name || address },
        spec: { type: ProfileType.USER, email: address, name, permissions: f.getAll("permission").map(String) },
      });
      const id = res.profile?.metadata?.id ?? "";
      const failed: { name: string; why: string }[] = [];
      for (const ws of chosen) {
        try {
          await grant.mutateAsync({ id, workspaceId: ws });
        } catch (err) {
          failed.push({ name: grantable.workspaces.find((w) => w.metadata?.id === ws)?.metadata?.name ?? ws, why: plainError(err) });
        }
      }
      void qc.invalidateQueries();
      if (failed.length) setPartly({ email: address, failed });
      else onClose();
    } catch (err) {
      setError(plainError(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <Dialog title="Add a person" onClose={onClose}>
      <form onSubmit={submit} noValidate>
        <label htmlFor={ids.email}>Email</label>
        <input
          id={ids.email}
          name="email"
          inputMode="email"
          autoComplete="off"
          spellCheck={false}
          maxLength={254}
          autoFocus
          aria-describedby={ids.emailHint}
        />
        <p id={ids.emailHint} className="hint">
          The person signs in with this email at your company account; it must be verified there.
        </p>
        <label htmlFor={ids.name}>Name (optional)</label>
        <input id={ids.name} name="name" maxLength={128} autoComplete="off" />
        <fieldset>
          <legend>Permissions</legend>
          <p className="hint">None chosen: the person can sign in, but do nothing. You can give only what you hold.</p>
          {offered.map((p) => (
            <label key={p.name} className="check">
              <input type="checkbox" name="permission" value={p.name} /> <code>{p.name}</code> — {p.what}
            </label>
          ))}
        </fieldset>
        {grantable.loading ? (
          <p role="status">Loading workspaces…</p>
        ) : (
          grantable.workspaces.length > 0 && (
            <fieldset>
              <legend>Workspaces (optional)</legend>
              <p className="hint">You can grant only the workspaces you reach.</p>
              {grantable.workspaces.map((w) => (
                <label key={w.metadata?.id} className="check">
                  <input type="checkbox" name="workspace" value={w.metadata?.id} /> {w.metadata?.name}
                </label>
              ))}
            </fieldset>
          )
        )}
        {error && (
          <p id={ids.err} role="alert" className="error">
            {error}
          </p>
        )}
        <div className="actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="primary" disabled={busy}>
            {busy ? "Adding…" : "Add person"}
          </button>
        </div>
      </form>
    </Dialog>
  );
}

// SuspendDialog confirms suspending a person, or restoring one.
function SuspendDialog({ profile, restore, onClose }: { profile: Profile; restore: boolean; onClose: () => void }) {
  const qc = useQueryClient();
  const done = { onSuccess: () => (qc.invalidateQueries(), onClose()) };
  const suspend = useMutation(suspendProfile, done);
  const unsuspend = useMutation(restoreProfile, done);
  const m = restore ? unsuspend : suspend;
  const who = profile.spec?.email || profile.metadata?.name || "this person";
  const id = profile.metadata?.id ?? "";
  return (
    <Dialog title={restore ? `Restore ${who}?` : `Suspend ${who}?`} onClose={onClose}>
      {restore ? (
        <p>{who} can sign in and act again from the moment you confirm, with the permissions and workspaces they had.</p>
      ) : (
        <p>
          {who} is refused on every call from the moment you confirm, even while their sign-in at your company account is
          still valid. Keys they made keep working: they belong to the account. You can restore {who} later.
        </p>
      )}
      {m.isError && (
        <p role="alert" className="error">
          {plainError(m.error)}
        </p>
      )}
      <ConfirmActions
        onCancel={onClose}
        onConfirm={() => (restore ? unsuspend.mutate({ id }) : suspend.mutate({ id }))}
        pending={m.isPending}
        tone={restore ? "primary" : "danger"}
        label={restore ? "Restore person" : "Suspend person"}
        busyLabel={restore ? "Restoring…" : "Suspending…"}
      />
    </Dialog>
  );
}
