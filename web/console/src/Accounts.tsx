import { useEffect, useId, useRef, useState } from "react";
import { skipToken, useQueryClient } from "@tanstack/react-query";
import { useMutation, useQuery } from "@connectrpc/connect-query";
import {
  createAccount,
  listAccounts,
  restoreAccount,
  suspendAccount,
} from "../../../gen/ts/latchkey/v1/account-AccountService_connectquery.js";
import { AccountState, type Account } from "../../../gen/ts/latchkey/v1/account_pb.js";
import type { Session } from "./App.js";
import { Dialog, TokenOnce } from "./dialogs.js";
import { plainError } from "./errors.js";
import { isoWhen, when } from "./format.js";
import { callerPermissions, holds } from "./permissions.js";
import { Pager } from "./Pager.js";
import { ListState } from "./ListState.js";

const PAGE_SIZE = 50;
const permissionPattern = /^(\*|[a-z0-9_]+:(\*|[a-z0-9_]+))$/;

// mayManageAccounts: only the operator account's callers can hold
// accounts:manage, and only they see this page's data.
export function mayManageAccounts(s: Session): boolean {
  return (s.who.account?.spec?.operator ?? false) && holds(callerPermissions(s), "accounts:manage");
}

export function AccountsPage({ session }: { session: Session }) {
  const allowed = mayManageAccounts(session);
  const [pages, setPages] = useState<string[]>([""]);
  const [dialog, setDialog] = useState<{ kind: "create" } | { kind: "suspend" | "restore"; account: Account } | null>(null);
  const heading = useRef<HTMLHeadingElement>(null);
  // A caller who may not manage accounts never asks for them.
  const q = useQuery(listAccounts, allowed ? { pageSize: PAGE_SIZE, pageToken: pages[pages.length - 1] } : skipToken);
  useEffect(() => {
    heading.current?.focus();
  }, []);

  if (!allowed) {
    return (
      <>
        <h1 ref={heading} tabIndex={-1}>
          Accounts
        </h1>
        <p role="alert" className="error">
          Only people and keys of the operator account who may manage accounts can see this page.
        </p>
        <p>
          You are signed in to “{session.who.account?.metadata?.name ?? "this account"}”, which cannot see or change other
          accounts.
        </p>
      </>
    );
  }

  const rows = q.data?.accounts ?? [];
  return (
    <>
      <div className="title-row">
        <h1 ref={heading} tabIndex={-1}>
          Accounts
        </h1>
        <button type="button" className="primary" onClick={() => setDialog({ kind: "create" })}>
          Create an account
        </button>
      </div>
      <section aria-labelledby="accounts-caption" aria-busy={q.isFetching}>
        <ListState
          q={q}
          loading="Loading accounts…"
          failed="The accounts could not be loaded."
          empty={
            rows.length === 0 ? (
              <>
                There are no accounts on this page.
              </>
            ) : null
          }
        >
          <table className="keys">
            <caption id="accounts-caption">Accounts{pages.length > 1 ? `, page ${pages.length}` : ""}</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">State</th>
                <th scope="col">Most active keys</th>
                <th scope="col">Default key permissions</th>
                <th scope="col">Created</th>
                <th scope="col">Actions</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((a) => {
                const name = a.metadata?.name ?? "";
                const suspended = a.state === AccountState.SUSPENDED;
                const max = Number(a.spec?.maxActiveKeys ?? 0n);
                const defaults = a.spec?.defaultKeyPermissions ?? [];
                return (
                  <tr key={a.metadata?.id}>
                    <th scope="row">
                      {name}
                      {a.spec?.operator && <span className="tag">operator</span>}
                    </th>
                    <td>
                      {suspended ? (
                        <>
                          <span className="state-suspended">Suspended</span>
                          <span className="hint block">
                            since <time dateTime={isoWhen(a.suspendTime)}>{when(a.suspendTime)}</time>: {a.suspendReason}
                          </span>
                        </>
                      ) : (
                        "Active"
                      )}
                    </td>
                    <td>{max === 0 ? "Server default" : max.toLocaleString()}</td>
                    <td>{defaults.length ? defaults.map((p) => <code key={p} className="perm">{p}</code>) : "None"}</td>
                    <td>
                      <time dateTime={isoWhen(a.metadata?.createTime)}>{when(a.metadata?.createTime)}</time>
                    </td>
                    <td className="row-actions">
                      {/* The operator account cannot be suspended: nobody would be left to restore it. */}
                      {a.spec?.operator ? (
                        <span className="muted">Cannot be suspended</span>
                      ) : suspended ? (
                        <button type="button" onClick={() => setDialog({ kind: "restore", account: a })} aria-label={`Restore ${name}`}>
                          Restore
                        </button>
                      ) : (
                        <button type="button" onClick={() => setDialog({ kind: "suspend", account: a })} aria-label={`Suspend ${name}`}>
                          Suspend
                        </button>
                      )}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </ListState>
        <Pager label="Pages of accounts" pages={pages} setPages={setPages} next={q.data?.nextPageToken} />
      </section>
      {dialog?.kind === "create" && <CreateAccountDialog onClose={() => setDialog(null)} />}
      {dialog && dialog.kind !== "create" && <SuspensionDialog kind={dialog.kind} account={dialog.account} onClose={() => setDialog(null)} />}
    </>
  );
}

function CreateAccountDialog({ onClose }: { onClose: () => void }) {
  const qc = useQueryClient();
  // gcTime 0: the system key's token goes with the dialog, not kept in the
  // mutation cache.
  const m = useMutation(createAccount, { gcTime: 0, onSuccess: () => qc.invalidateQueries() });
  const [error, setError] = useState<string | null>(null);
  const ids = { name: useId(), max: useId(), maxHint: useId(), defaults: useId(), defaultsHint: useId(), owner: useId(), ownerHint: useId() };

  if (m.data?.systemApiKey) {
    return (
      <Dialog title="Account created" onClose={onClose}>
        <p>
          “{m.data.account?.metadata?.name}” is ready. Its system key holds every permission within the account, can be
          rotated and cannot be revoked.
        </p>
        <TokenOnce apiKey={m.data.systemApiKey} onClose={onClose} />
      </Dialog>
    );
  }

  const submit = (e: React.FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    const name = String(f.get("name") ?? "").trim();
    const maxText = String(f.get("max") ?? "").trim();
    const ownerEmail = String(f.get("owner") ?? "").trim();
    const defaults = String(f.get("defaults") ?? "").split(",").map((s) => s.trim()).filter(Boolean);
    if (!name) return setError("Give the account a name.");
    if (maxText && !/^\d{1,7}$/.test(maxText)) return setError("The most active keys is a whole number from 0 to 1,000,000.");
    const max = maxText ? Number(maxText) : 0;
    if (max > 1_000_000) return setError("The most active keys is a whole number from 0 to 1,000,000.");
    const bad = defaults.find((p) => !permissionPattern.test(p));
    if (bad) return setError(`“${bad}” is not a permission: write resource:verb, such as api_keys:read, or *.`);
    if (defaults.some((p) => p.startsWith("accounts:"))) return setError("A permission on accounts cannot be a default: no key of another account could hold it.");
    if (ownerEmail && !/^[^\s@]+@[^\s@]+$/.test(ownerEmail)) return setError("The owner's email is not an email address.");
    setError(null);
    m.mutate({ name, maxActiveKeys: BigInt(max), defaultKeyPermissions: [...new Set(defaults)], ownerEmail });
  };
  const shown = error ?? (m.isError ? plainError(m.error) : null);
  return (
    <Dialog title="Create an account" onClose={onClose}>
      <form onSubmit={submit} noValidate>
        <label htmlFor={ids.name}>Name</label>
        <input id={ids.name} name="name" maxLength={128} autoFocus autoComplete="off" />
        <label htmlFor={ids.max}>Most active keys (optional)</label>
        <input id={ids.max} name="max" inputMode="numeric" placeholder="0" autoComplete="off" aria-describedby={ids.maxHint} />
        <p id={ids.maxHint} className="hint">
          Empty or 0: the server's default.
        </p>
        <label htmlFor={ids.defaults}>Default key permissions (optional, comma-separated)</label>
        <input id={ids.defaults} name="defaults" placeholder="api_keys:read, api_keys:verify" spellCheck={false} autoComplete="off" aria-describedby={ids.defaultsHint} />
        <p id={ids.defaultsHint} className="hint">
          What a key issued in the account gets when no permissions are chosen. Empty: such a key gets none.
        </p>
        <label htmlFor={ids.owner}>Owner's email (optional)</label>
        <input id={ids.owner} name="owner" inputMode="email" maxLength={254} autoComplete="off" spellCheck={false} aria-describedby={ids.ownerHint} />
        <p id={ids.ownerHint} className="hint">
          The person who signs in with this email, verified by your identity provider, owns the account with every permission.
        </p>
        {shown && (
          <p role="alert" className="error">
            {shown}
          </p>
        )}
        <div className="actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="primary" disabled={m.isPending}>
            {m.isPending ? "Creating…" : "Create account"}
          </button>
        </div>
      </form>
    </Dialog>
  );
}

function SuspensionDialog({ kind, account, onClose }: { kind: "suspend" | "restore"; account: Account; onClose: () => void }) {
  const qc = useQueryClient();
  const done = { onSuccess: () => (qc.invalidateQueries(), onClose()) };
  const suspend = useMutation(suspendAccount, done);
  const restore = useMutation(restoreAccount, done);
  const m = kind === "suspend" ? suspend : restore;
  const [error, setError] = useState<string | null>(null);
  const reasonId = useId();
  const hintId = useId();
  const name = account.metadata?.name ?? "";
  const submit = (e: React.FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const reason = String(new FormData(e.currentTarget).get("reason") ?? "").trim();
    if (!reason) return setError("Give a reason: it is kept in the account's audit log.");
    setError(null);
    m.mutate({ id: account.metadata?.id ?? "", reason });
  };
  const shown = error ?? (m.isError ? plainError(m.error) : null);
  return (
    <Dialog title={kind === "suspend" ? `Suspend “${name}”?` : `Restore “${name}”`} onClose={onClose}>
      <form onSubmit={submit} noValidate>
        {kind === "suspend" ? (
          <p>
            Every key and every person of “{name}” is refused from the moment you confirm, on every call. Nothing is deleted:
            restoring the account brings it all back.
          </p>
        ) : (
          <p>Every key, grant and person of “{name}” works again as before. A key that expired meanwhile stays expired.</p>
        )}
        <label htmlFor={reasonId}>Reason</label>
        <input id={reasonId} name="reason" maxLength={512} autoFocus autoComplete="off" aria-describedby={hintId} />
        <p id={hintId} className="hint">
          Kept in the account's audit log{kind === "suspend" ? " and shown with the account" : ""}.
        </p>
        {shown && (
          <p role="alert" className="error">
            {shown}
          </p>
        )}
        <div className="actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className={kind === "suspend" ? "danger" : "primary"} disabled={m.isPending}>
            {kind === "suspend" ? "Suspend account" : "Restore account"}
          </button>
        </div>
      </form>
    </Dialog>
  );
}
