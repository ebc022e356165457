import { useId, useLayoutEffect, useRef, useState } from "react";
import { useMutation } from "@connectrpc/connect-query";
import { useQueryClient } from "@tanstack/react-query";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { issue, revoke, rotate } from "../../../gen/ts/latchkey/v1/api_key-ApiKeyService_connectquery.js";
import { Environment, type ApiKey } from "../../../gen/ts/latchkey/v1/api_key_pb.js";
import type { Workspace } from "../../../gen/ts/latchkey/v1/workspace_pb.js";
import type { Session } from "./App.js";
import { plainError } from "./errors.js";
import { keyNameAndLabels } from "./format.js";
import { callerPermissions, offeredPermissions } from "./permissions.js";

// Dialog is a modal <dialog>: the browser traps focus inside it, makes the
// rest of the page inert and closes it on Escape; focus goes back to what
// opened it when it closes. It is mounted only while open, so whatever it
// held (a token) is gone with it.
export function Dialog({ title, onClose, children }: { title: string; onClose: () => void; children: React.ReactNode }) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  // A layout effect: focus goes back to the opener as the dialog leaves, in
  // the same commit, so that a page moving focus elsewhere afterwards (a
  // row that is gone) wins; a passive effect may run after the page's move.
  useLayoutEffect(() => {
    const opener = document.activeElement as HTMLElement | null;
    const d = ref.current!;
    if (!d.open) d.showModal();
    return () => {
      if (d.open) d.close();
      opener?.focus();
    };
  }, []);
  return (
    <dialog
      ref={ref}
      aria-labelledby={titleId}
      onCancel={(e) => {
        e.preventDefault();
        onClose();
      }}
    >
      <h2 id={titleId}>{title}</h2>
      {children}
    </dialog>
  );
}

// TokenOnce shows a new token, once, with a copy button and a plain warning.
export function TokenOnce({ apiKey, onClose }: { apiKey: ApiKey; onClose: () => void }) {
  const [copied, setCopied] = useState<string | null>(null);
  const tokenId = useId();
  const token = apiKey.spec?.token ?? "";
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(token);
      setCopied("Copied to the clipboard.");
    } catch {
      setCopied("The browser did not allow copying: select the token and copy it yourself.");
    }
  };
  return (
    <>
      <p className="warning" role="note">
        <strong>Copy this token now.</strong> It is shown only this once: Latchkey keeps no copy it could show again.
        Whoever holds it can act as this key, so keep it in a secret store, not in code or chat.
      </p>
      <label htmlFor={tokenId}>Token of “{apiKey.metadata?.name}”</label>
      <div className="token-row">
        <input id={tokenId} className="token" readOnly value={token} onFocus={(e) => e.currentTarget.select()} spellCheck={false} />
        <button type="button" onClick={copy}>
          Copy token
        </button>
      </div>
      <p role="status" className="hint">
        {copied}
      </p>
      <div className="actions">
        <button type="button" className="primary" onClick={onClose} autoFocus>
          I have copied it, close
        </button>
      </div>
    </>
  );
}

export function IssueDialog({ session, workspaces, onClose }: { session: Session; workspaces: Workspace[]; onClose: () => void }) {
  const qc = useQueryClient();
  // gcTime 0: the token goes with the dialog, not kept in the query
  // library's mutation cache after it closes.
  const mutation = useMutation(issue, { gcTime: 0, onSuccess: () => qc.invalidateQueries() });
  const [formError, setFormError] = useState<string | null>(null);
  const offered = offeredPermissions(session);
  const mayGiveAny = callerPermissions(session).includes("*");
  const ids = {
    name: useId(), desc: useId(), labels: useId(), other: useId(), expiry: useId(), cidrs: useId(), err: useId(),
  };

  if (mutation.data?.apiKey) {
    return (
      <Dialog title="Key issued" onClose={onClose}>
        <TokenOnce apiKey={mutation.data.apiKey} onClose={onClose} />
      </Dialog>
    );
  }

  const submit = (e: React.FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    setFormError(null);
    const f = new FormData(e.currentTarget);
    let name: string, labels: { [k: string]: string };
    try {
      ({ name, labels } = keyNameAndLabels(f));
    } catch (err) {
      setFormError((err as Error).message);
      return;
    }
    const permissions = [
      ...f.getAll("permission").map(String),
      ...String(f.get("other") ?? "").split(",").map((s) => s.trim()).filter(Boolean),
    ];
    const expiry = String(f.get("expiry") ?? "");
    const cidrs = String(f.get("cidrs") ?? "").split(",").map((s) => s.trim()).filter(Boolean);
    mutation.mutate({
      metadata: { name, labels },
      spec: {
        description: String(f.get("description") ?? ""),
        permissions,
        environment: f.get("environment") === "test" ? Environment.TEST : Environment.LIVE,
        expireTime: expiry ? timestampFromDate(new Date(expiry)) : undefined,
        allowedCidrs: cidrs,
      },
      initialWorkspaceIds: f.getAll("workspace").map(String),
    });
  };

  const error = formError ?? (mutation.isError ? plainError(mutation.error) : null);
  return (
    <Dialog title="Issue a key" onClose={onClose}>
      <form onSubmit={submit} noValidate>
        <label htmlFor={ids.name}>Name</label>
        <input id={ids.name} name="name" required maxLength={128} autoFocus autoComplete="off" />
        <label htmlFor={ids.desc}>Description (optional)</label>
        <textarea id={ids.desc} name="description" maxLength={1024} rows={2} />
        <label htmlFor={ids.labels}>Labels (optional)</label>
        <input id={ids.labels} name="labels" placeholder="team=ai, env=prod" spellCheck={false} autoComplete="off" />
        <fieldset>
          <legend>Permissions</legend>
          <p className="hint">None chosen: the key gets the account's default permissions. You can give only what you hold.</p>
          {offered.map((p) => (
            <label key={p.name} className="check">
              <input type="checkbox" name="permission" value={p.name} /> <code>{p.name}</code> — {p.what}
            </label>
          ))}
          {mayGiveAny && (
            <>
              <label htmlFor={ids.other}>Other permissions, for your own services (comma-separated)</label>
              <input id={ids.other} name="other" placeholder="billing:read, reports:*" spellCheck={false} autoComplete="off" />
            </>
          )}
        </fieldset>
        {workspaces.length > 0 && (
          <fieldset>
            <legend>Workspaces (optional)</legend>
            {workspaces.map((w) => (
              <label key={w.metadata?.id} className="check">
                <input type="checkbox" name="workspace" value={w.metadata?.id} /> {w.metadata?.name}
              </label>
            ))}
          </fieldset>
        )}
        <fieldset>
          <legend>Environment</legend>
          <label className="check">
            <input type="radio" name="environment" value="live" defaultChecked /> Live
          </label>
          <label className="check">
            <input type="radio" name="environment" value="test" /> Test
          </label>
        </fieldset>
        <label htmlFor={ids.expiry}>Expires (optional)</label>
        <input id={ids.expiry} name="expiry" type="datetime-local" />
        <label htmlFor={ids.cidrs}>Allowed addresses (optional, comma-separated; empty means any)</label>
        <input id={ids.cidrs} name="cidrs" placeholder="10.0.0.0/8, 2001:db8::/32" spellCheck={false} autoComplete="off" />
        {error && (
          <p id={ids.err} role="alert" className="error">
            {error}
          </p>
        )}
        <div className="actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="primary" disabled={mutation.isPending}>
            {mutation.isPending ? "Issuing…" : "Issue key"}
          </button>
        </div>
      </form>
    </Dialog>
  );
}

const GRACE = [
  { label: "None: the old token stops at once", seconds: 0 },
  { label: "1 hour", seconds: 3600 },
  { label: "1 day", seconds: 86400 },
  { label: "7 days", seconds: 604800 },
];

export function RotateDialog({ apiKey, onClose }: { apiKey: ApiKey; onClose: () => void }) {
  const qc = useQueryClient();
  const mutation = useMutation(rotate, { gcTime: 0, onSuccess: () => qc.invalidateQueries() });
  const [grace, setGrace] = useState(3600);
  if (mutation.data?.apiKey) {
    return (
      <Dialog title="Key rotated" onClose={onClose}>
        <TokenOnce apiKey={mutation.data.apiKey} onClose={onClose} />
      </Dialog>
    );
  }
  return (
    <Dialog title={`Rotate “${apiKey.metadata?.name}”`} onClose={onClose}>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          mutation.mutate({ id: apiKey.metadata?.id ?? "", gracePeriod: { seconds: BigInt(grace) } });
        }}
      >
        <p>Rotating gives the key a new token. Choose how long the current token keeps working, so services can move to the new one.</p>
        <fieldset>
          <legend>Grace period for the current token</legend>
          {GRACE.map((g, i) => (
            <label key={g.seconds} className="check">
              <input
                type="radio"
                name="grace"
                value={g.seconds}
                checked={grace === g.seconds}
                onChange={() => setGrace(g.seconds)}
                autoFocus={i === 1}
              />{" "}
              {g.label}
            </label>
          ))}
        </fieldset>
        {mutation.isError && (
          <p role="alert" className="error">
            {plainError(mutation.error)}
          </p>
        )}
        <div className="actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="primary" disabled={mutation.isPending}>
            {mutation.isPending ? "Rotating…" : "Rotate key"}
          </button>
        </div>
      </form>
    </Dialog>
  );
}

export function RevokeDialog({ apiKey, onClose }: { apiKey: ApiKey; onClose: () => void }) {
  const qc = useQueryClient();
  const mutation = useMutation(revoke, {
    onSuccess: () => {
      qc.invalidateQueries();
      onClose();
    },
  });
  return (
    <Dialog title={`Revoke “${apiKey.metadata?.name}”?`} onClose={onClose}>
      <p>
        Every service using this key is refused from the moment you confirm. A revoked key cannot be brought back; you
        would issue a new one.
      </p>
      {mutation.isError && (
        <p role="alert" className="error">
          {plainError(mutation.error)}
        </p>
      )}
      <ConfirmActions
        onCancel={onClose}
        onConfirm={() => mutation.mutate({ id: apiKey.metadata?.id ?? "" })}
        pending={mutation.isPending}
        label="Revoke key"
        busyLabel="Revoking…"
      />
    </Dialog>
  );
}

// ConfirmActions are the buttons of a confirmation: Cancel, which has the
// focus (a stray Enter cancels, Escape too), and the action itself.
export function ConfirmActions(props: {
  onCancel: () => void;
  onConfirm: () => void;
  pending: boolean;
  label: string;
  busyLabel: string;
  tone?: "danger" | "primary";
}) {
  return (
    <div className="actions">
      <button type="button" onClick={props.onCancel} autoFocus>
        Cancel
      </button>
      <button type="button" className={props.tone ?? "danger"} disabled={props.pending} onClick={props.onConfirm}>
        {props.pending ? props.busyLabel : props.label}
      </button>
    </div>
  );
}
