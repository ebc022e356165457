import { useEffect, useId, useRef, useState } from "react";
import { useQuery } from "@connectrpc/connect-query";
import { list } from "../../../gen/ts/latchkey/v1/api_key-ApiKeyService_connectquery.js";
import { listWorkspaces } from "../../../gen/ts/latchkey/v1/workspace-WorkspaceService_connectquery.js";
import { ApiKeyState } from "../../../gen/ts/latchkey/v1/api_key_pb.js";
import type { Session } from "./App.js";
import { environmentName, isoWhen, stateName, when } from "./format.js";
import { linkProps } from "./router.js";
import { IssueDialog } from "./dialogs.js";
import { holds, callerPermissions } from "./permissions.js";
import { useCallerWorkspaces } from "./KeyWorkspaces.js";
import { useKeyChanges } from "./live.js";
import { Pager } from "./Pager.js";
import { ListState } from "./ListState.js";

const PAGE_SIZE = 50;
const labelSelector = /^[a-z0-9]([-_.a-z0-9]*[a-z0-9])?=[a-z0-9]([-_.a-z0-9]*[a-z0-9])?(,[a-z0-9]([-_.a-z0-9]*[a-z0-9])?=[a-z0-9]([-_.a-z0-9]*[a-z0-9])?)*$/;

export function KeysPage({ session }: { session: Session }) {
  const [state, setState] = useState<ApiKeyState>(ApiKeyState.ACTIVE);
  const [selectorText, setSelectorText] = useState("");
  const [selector, setSelector] = useState("");
  const [workspace, setWorkspace] = useState("");
  // pages[i] is the token of page i; the first page has none.
  const [pages, setPages] = useState<string[]>([""]);
  const [issuing, setIssuing] = useState(false);
  const [selectorError, setSelectorError] = useState<string | null>(null);
  const heading = useRef<HTMLHeadingElement>(null);
  const ids = { state: useId(), sel: useId(), selErr: useId(), ws: useId() };
  const pageToken = pages[pages.length - 1];
  const canManage = holds(callerPermissions(session), "api_keys:manage");

  // Issued elsewhere (another person, a script) makes no change event, so
  // the list is asked again whenever the page is shown, cached rows first.
  const keys = useQuery(list, { pageSize: PAGE_SIZE, pageToken, state, labelSelector: selector, workspaceId: workspace }, { refetchOnMount: "always" });
  const seesWorkspaces = holds(callerPermissions(session), "workspaces:read");
  const workspaces = useQuery(listWorkspaces, { pageSize: 500 }, { enabled: seesWorkspaces });
  useKeyChanges(session);

  useEffect(() => {
    heading.current?.focus();
  }, []);

  const applySelector = (e: React.FormEvent) => {
    e.preventDefault();
    const s = selectorText.replace(/\s+/g, "");
    if (s && !labelSelector.test(s)) {
      setSelectorError("Write labels as key=value, separated by commas, such as team=ai,env=prod.");
      return;
    }
    setSelectorError(null);
    setSelector(s);
    setPages([""]);
  };

  const rows = keys.data?.apiKeys ?? [];
  return (
    <>
      <div className="title-row">
        <h1 ref={heading} tabIndex={-1}>
          Keys
        </h1>
        {canManage && (
          <button type="button" className="primary" onClick={() => setIssuing(true)}>
            Issue a key
          </button>
        )}
      </div>
      <form className="filters" onSubmit={applySelector} aria-label="Filter keys">
        <div>
          <label htmlFor={ids.state}>State</label>
          <select
            id={ids.state}
            value={state}
            onChange={(e) => {
              setState(Number(e.target.value) as ApiKeyState);
              setPages([""]);
            }}
          >
            <option value={ApiKeyState.ACTIVE}>Active</option>
            <option value={ApiKeyState.REVOKED}>Revoked</option>
            <option value={ApiKeyState.EXPIRED}>Expired</option>
          </select>
        </div>
        <div>
          <label htmlFor={ids.sel}>Labels</label>
          <input
            id={ids.sel}
            value={selectorText}
            placeholder="team=ai,env=prod"
            onChange={(e) => setSelectorText(e.target.value)}
            aria-invalid={selectorError ? true : undefined}
            aria-describedby={selectorError ? ids.selErr : undefined}
            spellCheck={false}
          />
        </div>
        {seesWorkspaces && (<div>
          <label htmlFor={ids.ws}>Workspace</label>
          <select
            id={ids.ws}
            value={workspace}
            onChange={(e) => {
              setWorkspace(e.target.value);
              setPages([""]);
            }}
          >
            <option value="">Any workspace</option>
            {workspaces.data?.workspaces.map((w) => (
              <option key={w.metadata?.id} value={w.metadata?.id}>
                {w.metadata?.name}
              </option>
            ))}
          </select>
        </div>)}
        <button type="submit">Apply labels</button>
        {selectorError && (
          <p id={ids.selErr} className="error" role="alert">
            {selectorError}
          </p>
        )}
      </form>
      <section aria-labelledby="keys-table-caption" aria-busy={keys.isFetching}>
        <ListState
          q={keys}
          loading="Loading keys…"
          failed="The keys could not be loaded."
          empty={
            rows.length === 0 ? (
              <>
                {selector || workspace || state !== ApiKeyState.ACTIVE
                  ? "No key matches these filters."
                  : "There are no active keys yet."}
                {canManage && !selector && !workspace && state === ApiKeyState.ACTIVE && " Issue one to get started."}
              </>
            ) : null
          }
        >
          <table className="keys">
            <caption id="keys-table-caption">
              {stateName(state)} keys{pages.length > 1 ? `, page ${pages.length}` : ""}
            </caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Token prefix</th>
                <th scope="col">Last used</th>
                <th scope="col">Expires</th>
                <th scope="col">Environment</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((k) => (
                <tr key={k.metadata?.id}>
                  <th scope="row">
                    <a {...linkProps(`/keys/${k.metadata?.id}`)}>{k.metadata?.name}</a>
                    {k.spec?.system && <span className="tag">system</span>}
                  </th>
                  <td>
                    <code>{k.info?.tokenPrefix}…</code>
                  </td>
                  <td>
                    <time dateTime={isoWhen(k.info?.lastUsedTime)}>{when(k.info?.lastUsedTime)}</time>
                  </td>
                  <td>
                    <time dateTime={isoWhen(k.spec?.expireTime)}>{when(k.spec?.expireTime)}</time>
                  </td>
                  <td>{environmentName(k.spec?.environment ?? 0)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </ListState>
        <Pager label="Pages of keys" pages={pages} setPages={setPages} next={keys.data?.nextPageToken} />
      </section>
      {issuing && <Issue session={session} onClose={() => setIssuing(false)} />}
    </>
  );
}

// Issue offers the workspaces the caller may grant: all of the account's
// with workspaces:manage, else only those it is granted itself.
function Issue({ session, onClose }: { session: Session; onClose: () => void }) {
  const caller = useCallerWorkspaces(session);
  return <IssueDialog session={session} workspaces={caller.workspaces} onClose={onClose} />;
}
