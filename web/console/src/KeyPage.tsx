import { useEffect, useRef, useState } from "react";
import { useQuery } from "@connectrpc/connect-query";
import { get } from "../../../gen/ts/latchkey/v1/api_key-ApiKeyService_connectquery.js";
import { ApiKeyState, type ApiKey } from "../../../gen/ts/latchkey/v1/api_key_pb.js";
import type { Session } from "./App.js";
import { environmentName, isoWhen, labelsText, stateName, when } from "./format.js";
import { plainError } from "./errors.js";
import { linkProps } from "./router.js";
import { RevokeDialog, RotateDialog } from "./dialogs.js";
import { EditKeyDialog } from "./EditKeyDialog.js";
import { KeyWorkspaces, useCallerWorkspaces, useKeyReach } from "./KeyWorkspaces.js";
import { useKeyChanges } from "./live.js";
import { callerPermissions, holds } from "./permissions.js";

export function KeyPage({ id, session }: { id: string; session: Session }) {
  const q = useQuery(get, { id });
  const heading = useRef<HTMLHeadingElement>(null);
  useKeyChanges(session);
  useEffect(() => {
    if (!q.isPending) heading.current?.focus();
  }, [q.isPending]);

  const back = (
    <p>
      <a {...linkProps("/keys")}>← All keys</a>
    </p>
  );
  if (q.isPending) {
    return (
      <>
        {back}
        <p role="status">Loading the key…</p>
      </>
    );
  }
  if (q.isError) {
    return (
      <>
        {back}
        <h1 ref={heading} tabIndex={-1}>
          Key
        </h1>
        <p role="alert" className="error">
          The key could not be loaded. {plainError(q.error)}
        </p>
      </>
    );
  }
  return (
    <>
      {back}
      <KeyView apiKey={q.data.apiKey!} session={session} heading={heading} />
    </>
  );
}

function KeyView({ apiKey: k, session, heading }: { apiKey: ApiKey; session: Session; heading: React.RefObject<HTMLHeadingElement | null> }) {
  const [dialog, setDialog] = useState<"edit" | "rotate" | "revoke" | null>(null);
  const caller = useCallerWorkspaces(session);
  const reach = useKeyReach(session, k, caller);
  const m = k.metadata!;
  const spec = k.spec!;
  const info = k.info!;
  const active = info.state === ApiKeyState.ACTIVE;
  const revoked = info.state === ApiKeyState.REVOKED;
  const more = Number(info.workspacesTotal) - info.workspacesPreview.length;
  const changeable = reach.may === true;
  return (
    <>
      <div className="title-row">
        <h1 ref={heading} tabIndex={-1}>
          {m.name} {spec.system && <span className="tag">system</span>}
        </h1>
        {changeable && (
          <div className="actions">
            <button type="button" onClick={() => setDialog("edit")}>
              Edit
            </button>
            {active && (
              <button type="button" onClick={() => setDialog("rotate")}>
                Rotate
              </button>
            )}
            {!spec.system && (
              <button type="button" className="danger" onClick={() => setDialog("revoke")}>
                Revoke
              </button>
            )}
          </div>
        )}
      </div>
      <p className={`state state-${stateName(info.state).toLowerCase()}`}>{stateName(info.state)}</p>
      {holds(callerPermissions(session), "audit:read") && (
        <p>
          <a {...linkProps(`/audit?target=${m.id}`)}>This key's audit log</a>
        </p>
      )}
      {reach.may === false && !revoked && <p className="hint">{reach.why}</p>}
      <div className="cards">
        <section aria-labelledby="h-meta">
          <h2 id="h-meta">Metadata</h2>
          <dl>
            <dt>ID</dt>
            <dd>
              <code>{m.id}</code>
            </dd>
            <dt>Labels</dt>
            <dd>{labelsText(m.labels) || "None"}</dd>
            <dt>External ID</dt>
            <dd>{m.externalId || "None"}</dd>
            <dt>Created</dt>
            <dd>
              <time dateTime={isoWhen(m.createTime)}>{when(m.createTime)}</time>
            </dd>
            <dt>Updated</dt>
            <dd>
              <time dateTime={isoWhen(m.updateTime)}>{when(m.updateTime)}</time>
            </dd>
          </dl>
        </section>
        <section aria-labelledby="h-spec">
          <h2 id="h-spec">Spec</h2>
          <dl>
            <dt>Description</dt>
            <dd className="pre">{spec.description || "None"}</dd>
            <dt>Permissions</dt>
            <dd>{spec.permissions.length ? spec.permissions.map((p) => <code key={p} className="perm">{p}</code>) : "None"}</dd>
            <dt>Environment</dt>
            <dd>{environmentName(spec.environment)}</dd>
            <dt>Expires</dt>
            <dd>
              <time dateTime={isoWhen(spec.expireTime)}>{when(spec.expireTime)}</time>
            </dd>
            <dt>Allowed addresses</dt>
            <dd>{spec.allowedCidrs.length ? spec.allowedCidrs.join(", ") : "Any"}</dd>
          </dl>
        </section>
        <section aria-labelledby="h-info">
          <h2 id="h-info">Info</h2>
          <dl>
            <dt>Token prefix</dt>
            <dd>
              <code>{info.tokenPrefix}…</code>
            </dd>
            <dt>Created by</dt>
            <dd>{info.createdBy?.spec?.email || info.createdBy?.metadata?.name || "The system"}</dd>
            <dt>Workspaces</dt>
            <dd>
              {info.workspacesPreview.length ? info.workspacesPreview.map((w) => w.name).join(", ") : "None"}
              {more > 0 && ` and ${more} more`}
            </dd>
            <dt>Last used</dt>
            <dd>
              <time dateTime={isoWhen(info.lastUsedTime)}>{when(info.lastUsedTime)}</time>
            </dd>
            <dt>Last rotated</dt>
            <dd>
              <time dateTime={isoWhen(info.rotateTime)}>{when(info.rotateTime)}</time>
            </dd>
            {info.previousTokenExpireTime && (
              <>
                <dt>Previous token works until</dt>
                <dd>
                  <time dateTime={isoWhen(info.previousTokenExpireTime)}>{when(info.previousTokenExpireTime)}</time>
                </dd>
              </>
            )}
            {info.revokeTime && (
              <>
                <dt>Revoked</dt>
                <dd>
                  <time dateTime={isoWhen(info.revokeTime)}>{when(info.revokeTime)}</time>
                </dd>
              </>
            )}
          </dl>
        </section>
      </div>
      <KeyWorkspaces apiKey={k} changeable={changeable} caller={caller} granted={reach.granted} />
      {dialog === "edit" && changeable && <EditKeyDialog apiKey={k} session={session} onClose={() => setDialog(null)} />}
      {dialog === "rotate" && <RotateDialog apiKey={k} onClose={() => setDialog(null)} />}
      {dialog === "revoke" && <RevokeDialog apiKey={k} onClose={() => setDialog(null)} />}
    </>
  );
}
