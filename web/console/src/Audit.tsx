import { useEffect, useId, useMemo, useRef, useState } from "react";
import { createClient, type Client } from "@connectrpc/connect";
import { useTransport } from "@connectrpc/connect-query";
import { useQuery } from "@tanstack/react-query";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { AuditService, type AuditEvent } from "../../../gen/ts/latchkey/v1/audit_pb.js";
import { Order } from "../../../gen/ts/latchkey/v1/metadata_pb.js";
import type { Session } from "./App.js";
import { isoWhen } from "./format.js";
import { linkProps } from "./router.js";
import { callerPermissions, holds } from "./permissions.js";
import { Pager } from "./Pager.js";
import { ListState } from "./ListState.js";

// What each action means, in plain words. An action this list does not
// know yet is shown as the server names it.
export const ACTIONS: [string, string][] = [
  ["api_key.issue", "Issued a key"],
  ["api_key.update", "Changed a key"],
  ["api_key.rotate", "Rotated a key"],
  ["api_key.revoke", "Revoked a key"],
  ["workspace.create", "Created a workspace"],
  ["workspace.update", "Changed a workspace"],
  ["workspace.archive", "Archived a workspace"],
  ["workspace.grant", "Granted a workspace"],
  ["workspace.revoke", "Withdrew a workspace"],
  ["profile.create", "Added a person"],
  ["profile.update", "Changed a person"],
  ["profile.bind", "A person signed in for the first time"],
  ["profile.suspend", "Suspended a person"],
  ["profile.restore", "Restored a person"],
  ["account.bootstrap", "Set up the operator account"],
  ["account.create", "Created the account"],
  ["account.update", "Changed the account"],
  ["account.suspend", "Suspended the account"],
  ["account.restore", "Restored the account"],
];
const actionWords = new Map(ACTIONS);

const targetPattern = /^(key|ws|prof|acct)_[0-9A-HJKMNP-TV-Z]{26}$/;
const actorPattern = /^prof_[0-9A-HJKMNP-TV-Z]{26}$/;
const PAGE_SIZES = [25, 50, 100];

type Filters = { targetId: string; action: string; actorId: string; from: string; to: string; order: Order; pageSize: number };
type Result = { events: AuditEvent[]; next: string };

const noFilters: Filters = { targetId: "", action: "", actorId: "", from: "", to: "", order: Order.CREATE_TIME_DESC, pageSize: 50 };

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

// The From and To fields are local times to the second, both included: the
// server's end is exclusive, so the range ends a second after To.
function range(f: Filters) {
  return {
    startTime: f.from ? timestampFromDate(new Date(f.from)) : undefined,
    endTime: f.to ? timestampFromDate(new Date(new Date(f.to).getTime() + 1000)) : undefined,
  };
}

// Every filter is the server's: one page on screen is one page it sends.
async function read(client: Client<typeof AuditService>, f: Filters, pageToken: string): Promise<Result> {
  const res = await client.listAuditEvents({
    pageSize: f.pageSize,
    pageToken,
    targetId: f.targetId,
    action: f.action,
    actorId: f.actorId,
    order: f.order,
    ...range(f),
  });
  return { events: res.auditEvents, next: res.nextPageToken };
}

export function AuditPage({ session }: { session: Session }) {
  const allowed = holds(callerPermissions(session), "audit:read");
  const initialTarget = new URLSearchParams(window.location.search).get("target") ?? "";
  const [draft, setDraft] = useState<Filters>({ ...noFilters, targetId: targetPattern.test(initialTarget) ? initialTarget : "" });
  const [applied, setApplied] = useState<Filters>(draft);
  // pages[i] is the token of page i; the first page has none.
  const [pages, setPages] = useState<string[]>([""]);
  const [formError, setFormError] = useState<string | null>(null);
  const heading = useRef<HTMLHeadingElement>(null);
  const transport = useTransport();
  const client = useMemo(() => createClient(AuditService, transport), [transport]);
  const ids = {
    target: useId(), action: useId(), actor: useId(), actorErr: useId(), from: useId(), to: useId(), order: useId(), size: useId(), err: useId(), hint: useId(),
  };
  const cursor = pages[pages.length - 1];
  const q = useQuery({
    queryKey: ["latchkey-audit", session.who.account?.metadata?.id, applied, cursor],
    queryFn: () => read(client, applied, cursor),
    enabled: allowed,
  });

  useEffect(() => {
    heading.current?.focus();
  }, []);
  // The address names the target filtered on (an id, never a secret), so
  // that a key's page can link here.
  useEffect(() => {
    const want = applied.targetId ? `/audit?target=${applied.targetId}` : "/audit";
    if (window.location.pathname === "/audit" && window.location.pathname + window.location.search !== want) {
      window.history.replaceState(null, "", want);
    }
  }, [applied.targetId]);

  if (!allowed) {
    return (
      <>
        <h1 ref={heading} tabIndex={-1}>
          Audit log
        </h1>
        <p role="alert" className="error">
          You may not read this account's audit log. Ask someone who manages this account for the audit:read permission.
        </p>
      </>
    );
  }

  const apply = (e: React.FormEvent) => {
    e.preventDefault();
    const f = { ...draft, targetId: draft.targetId.trim(), actorId: draft.actorId.trim() };
    if (f.targetId && !targetPattern.test(f.targetId)) {
      setFormError("A target id is a key, workspace, person or account id, such as key_01J… or ws_01J….");
      return;
    }
    if (f.actorId && !actorPattern.test(f.actorId)) {
      setFormError("An actor id is the id of a profile, such as prof_01J…: the id shown under each actor's name.");
      return;
    }
    if (f.from && f.to && new Date(f.from) > new Date(f.to)) {
      setFormError("The start of the time range is after its end.");
      return;
    }
    setFormError(null);
    setDraft(f);
    setApplied(f);
    setPages([""]);
  };
  const clear = () => {
    setFormError(null);
    setDraft(noFilters);
    setApplied(noFilters);
    setPages([""]);
  };
  const set = <K extends keyof Filters>(k: K, v: Filters[K]) => setDraft({ ...draft, [k]: v });
  const filtered = Boolean(applied.targetId || applied.action || applied.actorId || applied.from || applied.to);
  const rows = q.data?.events ?? [];

  return (
    <>
      <h1 ref={heading} tabIndex={-1}>
        Audit log
      </h1>
      <p className="hint">Every change made in “{session.who.account?.metadata?.name ?? "this account"}”, who made it and when.</p>
      <form className="filters" onSubmit={apply} aria-label="Filter events" aria-describedby={ids.hint}>
        <div>
          <label htmlFor={ids.target}>Target id</label>
          <input
            id={ids.target}
            value={draft.targetId}
            onChange={(e) => set("targetId", e.target.value)}
            placeholder="key_01J…"
            spellCheck={false}
            autoComplete="off"
            size={32}
            aria-invalid={formError?.startsWith("A target") ? true : undefined}
            aria-describedby={formError ? ids.err : undefined}
          />
        </div>
        <div>
          <label htmlFor={ids.action}>Action</label>
          <select id={ids.action} value={draft.action} onChange={(e) => set("action", e.target.value)}>
            <option value="">Any action</option>
            {ACTIONS.map(([a, words]) => (
              <option key={a} value={a}>
                {words}
              </option>
            ))}
          </select>
        </div>
        <div>
          <label htmlFor={ids.actor}>Actor id</label>
          <input
            id={ids.actor}
            value={draft.actorId}
            onChange={(e) => set("actorId", e.target.value)}
            placeholder="prof_01J…"
            spellCheck={false}
            autoComplete="off"
            size={32}
            aria-invalid={formError?.startsWith("An actor") ? true : undefined}
            aria-describedby={formError ? ids.err : undefined}
          />
        </div>
        <div>
          <label htmlFor={ids.from}>From</label>
          <input id={ids.from} type="datetime-local" step={1} value={draft.from} onChange={(e) => set("from", e.target.value)} />
        </div>
        <div>
          <label htmlFor={ids.to}>To</label>
          <input id={ids.to} type="datetime-local" step={1} value={draft.to} onChange={(e) => set("to", e.target.value)} />
        </div>
        <div>
          <label htmlFor={ids.order}>Order</label>
          <select id={ids.order} value={draft.order} onChange={(e) => set("order", Number(e.target.value) as Order)}>
            <option value={Order.CREATE_TIME_DESC}>Newest first</option>
            <option value={Order.CREATE_TIME_ASC}>Oldest first</option>
          </select>
        </div>
        <div>
          <label htmlFor={ids.size}>Page size</label>
          <select id={ids.size} value={draft.pageSize} onChange={(e) => set("pageSize", Number(e.target.value))}>
            {PAGE_SIZES.map((n) => (
              <option key={n} value={n}>
                {n} events
              </option>
            ))}
          </select>
        </div>
        <button type="submit">Apply filters</button>
        <button type="button" onClick={clear} disabled={!filtered && applied.pageSize === noFilters.pageSize && applied.order === noFilters.order}>
          Clear filters
        </button>
        <p id={ids.hint} className="hint full">
          The target id is the id of a key, workspace, person or account; the actor id is the profile shown under an
          actor's name. From and To include the seconds they name.
        </p>
        {formError && (
          <p id={ids.err} className="error" role="alert">
            {formError}
          </p>
        )}
      </form>
      <section aria-labelledby="audit-caption" aria-busy={q.isFetching}>
        <ListState
          q={q}
          loading="Loading events…"
          failed="The audit log could not be loaded."
          empty={
            rows.length === 0 ? (
              <>
                {filtered
                    ? "No event matches these filters."
                    : pages.length > 1
                      ? "There are no more events."
                      : "There are no events yet."}
              </>
            ) : null
          }
        >
          <table className="keys audit">
            <caption id="audit-caption">
              {filtered ? "Matching events" : "Events"}
              {pages.length > 1 ? `, page ${pages.length}` : ""}
            </caption>
            <thead>
              <tr>
                <th scope="col">Time</th>
                <th scope="col">Actor</th>
                <th scope="col">Action</th>
                <th scope="col">Target</th>
                <th scope="col">Reason</th>
                <th scope="col">Request id</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((e) => (
                <tr key={e.id}>
                  <th scope="row">
                    <time dateTime={isoWhen(e.time)}>{e.time ? dateTime.format(timestampDate(e.time)) : ""}</time>
                  </th>
                  <td>
                    {e.actor?.name || "Unnamed"}
                    <code className="id">{e.actor?.id}</code>
                  </td>
                  <td>
                    {actionWords.get(e.action) ?? e.action}
                    <code className="id">{e.action}</code>
                  </td>
                  <td>
                    {e.target?.id.startsWith("key_") ? (
                      <a {...linkProps(`/keys/${e.target.id}`)}>{e.target.name || e.target.id}</a>
                    ) : (
                      e.target?.name || "Unnamed"
                    )}
                    <code className="id">{e.target?.id}</code>
                  </td>
                  <td>{e.reason || <span className="muted">None</span>}</td>
                  <td>{e.requestId ? <code>{e.requestId}</code> : <span className="muted">None</span>}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </ListState>
        <Pager label="Pages of events" pages={pages} setPages={setPages} next={q.data?.next} />
      </section>
    </>
  );
}
