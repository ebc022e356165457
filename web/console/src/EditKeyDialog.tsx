import { useEffect, useId, useRef, useState } from "react";
import { useMutation } from "@connectrpc/connect-query";
import { useQueryClient } from "@tanstack/react-query";
import { Code, ConnectError } from "@connectrpc/connect";
import { timestampDate, timestampFromDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import { update } from "../../../gen/ts/latchkey/v1/api_key-ApiKeyService_connectquery.js";
import type { ApiKey } from "../../../gen/ts/latchkey/v1/api_key_pb.js";
import type { Session } from "./App.js";
import { Dialog } from "./dialogs.js";
import { plainError } from "./errors.js";
import { keyNameAndLabels, labelsText } from "./format.js";
import { callerPermissions, mayGive, offeredPermissions } from "./permissions.js";

const permission = /^(\*|[a-z0-9_]+:(\*|[a-z0-9_]+))$/;

// EditKeyDialog changes a key's name, description, labels, permissions,
// expiry and allowed addresses. It sends only the fields that changed, in
// update_mask, with the etag of the key as the form was filled from: when
// someone else changed the key meanwhile, the server refuses (aborted) and
// the dialog says so and offers to start again from their version.
export function EditKeyDialog({ apiKey, session, onClose }: { apiKey: ApiKey; session: Session; onClose: () => void }) {
  const qc = useQueryClient();
  // The key the form started from; apiKey is the latest one loaded.
  const [base, setBase] = useState(apiKey);
  const [formError, setFormError] = useState<string | null>(null);
  const mutation = useMutation(update, {
    onSuccess: async () => {
      await qc.invalidateQueries();
      onClose();
    },
    onError: (err) => {
      if (ConnectError.from(err).code === Code.Aborted) void qc.invalidateQueries();
    },
  });
  const ids = {
    name: useId(), desc: useId(), labels: useId(), other: useId(), expiry: useId(), expiryHint: useId(), cidrs: useId(),
  };
  const offered = offeredPermissions(session);
  const offeredNames = new Set(offered.map((p) => p.name));
  const m = base.metadata!;
  const spec = base.spec!;
  const others = spec.permissions.filter((p) => !offeredNames.has(p));
  const mayGiveAny = callerPermissions(session).includes("*");
  const conflict = mutation.isError && ConnectError.from(mutation.error).code === Code.Aborted;
  const theirs = apiKey.metadata?.etag !== m.etag;
  // The refusal is said at the bottom of a long form: take focus there.
  const conflictRef = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (conflict) conflictRef.current?.focus();
  }, [conflict]);

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
    const description = String(f.get("description") ?? "");
    const permissions = [
      ...f.getAll("permission").map(String),
      ...splitList(String(f.get("other") ?? "")),
    ];
    const expiry = String(f.get("expiry") ?? "");
    const cidrs = splitList(String(f.get("cidrs") ?? ""));

    const paths: string[] = [];
    if (name !== m.name) paths.push("metadata.name");
    if (labelsText(sorted(labels)) !== labelsText(sorted(m.labels))) paths.push("metadata.labels");
    if (description !== spec.description) paths.push("spec.description");
    if (!spec.system && !sameSet(permissions, spec.permissions)) {
      const bad = permissions.find((p) => !permission.test(p));
      if (bad) {
        setFormError(`“${bad}” is not a permission: write resource:verb, resource:* or *.`);
        return;
      }
      const beyond = permissions.find((p) => !mayGive(session, p));
      if (beyond) {
        setFormError(`You cannot give ${beyond}: you can give only permissions you hold yourself.`);
        return;
      }
      paths.push("spec.permissions");
    }
    if (expiry !== localInput(spec.expireTime)) {
      if (expiry && new Date(expiry).getTime() <= Date.now()) {
        setFormError("Choose an expiry in the future, or leave it empty for a key that does not expire.");
        return;
      }
      paths.push("spec.expire_time");
    }
    if (cidrs.join(",") !== spec.allowedCidrs.join(",")) paths.push("spec.allowed_cidrs");
    if (paths.length === 0) {
      onClose();
      return;
    }
    mutation.mutate({
      id: m.id,
      metadata: { name, labels },
      spec: {
        description,
        permissions,
        expireTime: expiry ? timestampFromDate(new Date(expiry)) : undefined,
        allowedCidrs: cidrs,
      },
      updateMask: { paths },
      etag: m.etag,
    });
  };

  const error = formError ?? (mutation.isError && !conflict ? plainError(mutation.error) : null);
  return (
    <Dialog title={`Edit “${apiKey.metadata?.name}”`} onClose={onClose}>
      {/* A new base remounts the form with its values. */}
      <form key={m.etag} onSubmit={submit} noValidate>
        {m.id === session.who.apiKey?.metadata?.id && (
          <p className="warning" role="note">
            You are signed in with this key: what you change here applies to this session too.
          </p>
        )}
        <label htmlFor={ids.name}>Name</label>
        <input id={ids.name} name="name" required maxLength={128} defaultValue={m.name} autoFocus autoComplete="off" />
        <label htmlFor={ids.desc}>Description (optional)</label>
        <textarea id={ids.desc} name="description" maxLength={1024} rows={2} defaultValue={spec.description} />
        <label htmlFor={ids.labels}>Labels (optional)</label>
        <input
          id={ids.labels}
          name="labels"
          placeholder="team=ai, env=prod"
          defaultValue={labelsText(m.labels)}
          spellCheck={false}
          autoComplete="off"
        />
        {spec.system ? (
          <p className="hint">This is the account's system key: it keeps every permission and does not expire.</p>
        ) : (
          <>
            <fieldset>
              <legend>Permissions</legend>
              <p className="hint">You can give only what you hold. None chosen: the key keeps no permission.</p>
              {offered.map((p) => (
                <label key={p.name} className="check">
                  <input type="checkbox" name="permission" value={p.name} defaultChecked={spec.permissions.includes(p.name)} />{" "}
                  <code>{p.name}</code> — {p.what}
                </label>
              ))}
              {(mayGiveAny || others.length > 0) && (
                <>
                  <label htmlFor={ids.other}>Other permissions, for your own services (comma-separated)</label>
                  <input
                    id={ids.other}
                    name="other"
                    placeholder="billing:read, reports:*"
                    defaultValue={others.join(", ")}
                    spellCheck={false}
                    autoComplete="off"
                  />
                </>
              )}
            </fieldset>
            <label htmlFor={ids.expiry}>Expires (optional)</label>
            <input
              id={ids.expiry}
              name="expiry"
              type="datetime-local"
              defaultValue={localInput(spec.expireTime)}
              aria-describedby={ids.expiryHint}
            />
            <p id={ids.expiryHint} className="hint">
              Empty: the key does not expire.
            </p>
          </>
        )}
        <label htmlFor={ids.cidrs}>Allowed addresses (optional, comma-separated; empty means any)</label>
        <input
          id={ids.cidrs}
          name="cidrs"
          placeholder="10.0.0.0/8, 2001:db8::/32"
          defaultValue={spec.allowedCidrs.join(", ")}
          spellCheck={false}
          autoComplete="off"
        />
        {error && (
          <p role="alert" className="error">
            {error}
          </p>
        )}
        {conflict && (
          <div role="alert" className="warning" ref={conflictRef} tabIndex={-1}>
            <p>
              <strong>Someone else changed this key while you were editing it.</strong> Nothing you entered was saved.
              Start again from their version to see what they changed, then make your change once more.
            </p>
            <button
              type="button"
              disabled={!theirs}
              onClick={() => {
                mutation.reset();
                setBase(apiKey);
              }}
            >
              {theirs ? "Start again from their version" : "Loading their version…"}
            </button>
          </div>
        )}
        <div className="actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="primary" disabled={mutation.isPending || conflict}>
            {mutation.isPending ? "Saving…" : "Save changes"}
          </button>
        </div>
      </form>
    </Dialog>
  );
}

function splitList(s: string): string[] {
  return s.split(",").map((x) => x.trim()).filter(Boolean);
}

function sameSet(a: string[], b: string[]): boolean {
  const x = new Set(a);
  const y = new Set(b);
  return x.size === y.size && [...x].every((p) => y.has(p));
}

function sorted(labels: { [k: string]: string }): { [k: string]: string } {
  return Object.fromEntries(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

// localInput is a time as a datetime-local input holds it: local time, to
// the minute; empty for none.
function localInput(ts: Timestamp | undefined): string {
  if (!ts) return "";
  const d = timestampDate(ts);
  return new Date(d.getTime() - d.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
}
