import { useEffect, useId, useRef, useState } from "react";
import { useMutation, useQuery } from "@connectrpc/connect-query";
import { useQueryClient } from "@tanstack/react-query";
import {
  archiveWorkspace,
  createWorkspace,
  listWorkspaces,
  updateWorkspace,
} from "../../../gen/ts/latchkey/v1/workspace-WorkspaceService_connectquery.js";
import { WorkspaceStatus, type Workspace } from "../../../gen/ts/latchkey/v1/workspace_pb.js";
import type { Session } from "./App.js";
import { ConfirmActions, Dialog } from "./dialogs.js";
import { plainError } from "./errors.js";
import { isoWhen, when } from "./format.js";
import { callerPermissions, holds } from "./permissions.js";
import { Pager } from "./Pager.js";
import { ListState } from "./ListState.js";

const PAGE_SIZE = 50;

export function WorkspacesPage({ session }: { session: Session }) {
  const [status, setStatus] = useState<WorkspaceStatus>(WorkspaceStatus.ACTIVE);
  const [pages, setPages] = useState<string[]>([""]);
  const [dialog, setDialog] = useState<{ kind: "create" } | { kind: "rename" | "archive"; ws: Workspace } | null>(null);
  const heading = useRef<HTMLHeadingElement>(null);
  const statusId = useId();
  const canManage = holds(callerPermissions(session), "workspaces:manage");
  const q = useQuery(listWorkspaces, { pageSize: PAGE_SIZE, pageToken: pages[pages.length - 1], status });
  useEffect(() => {
    heading.current?.focus();
  }, []);
  const rows = q.data?.workspaces ?? [];
  return (
    <>
      <div className="title-row">
        <h1 ref={heading} tabIndex={-1}>
          Workspaces
        </h1>
        {canManage && (
          <button type="button" className="primary" onClick={() => setDialog({ kind: "create" })}>
            Create a workspace
          </button>
        )}
      </div>
      <div className="filters">
        <div>
          <label htmlFor={statusId}>Status</label>
          <select
            id={statusId}
            value={status}
            onChange={(e) => {
              setStatus(Number(e.target.value) as WorkspaceStatus);
              setPages([""]);
            }}
          >
            <option value={WorkspaceStatus.ACTIVE}>Active</option>
            <option value={WorkspaceStatus.ARCHIVED}>Archived</option>
          </select>
        </div>
      </div>
      <section aria-labelledby="ws-caption" aria-busy={q.isFetching}>
        <ListState
          q={q}
          loading="Loading workspaces…"
          failed="The workspaces could not be loaded."
          empty={
            rows.length === 0 ? (
              <>
                {status === WorkspaceStatus.ACTIVE ? "There are no workspaces yet." : "No workspace is archived."}
              </>
            ) : null
          }
        >
          <table className="keys">
            <caption id="ws-caption">
              {status === WorkspaceStatus.ACTIVE ? "Active" : "Archived"} workspaces
              {pages.length > 1 ? `, page ${pages.length}` : ""}
            </caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Description</th>
                <th scope="col">Created</th>
                {canManage && status === WorkspaceStatus.ACTIVE && <th scope="col">Actions</th>}
              </tr>
            </thead>
            <tbody>
              {rows.map((w) => (
                <tr key={w.metadata?.id}>
                  <th scope="row">{w.metadata?.name}</th>
                  <td>{w.spec?.description || "None"}</td>
                  <td>
                    <time dateTime={isoWhen(w.metadata?.createTime)}>{when(w.metadata?.createTime)}</time>
                  </td>
                  {canManage && status === WorkspaceStatus.ACTIVE && (
                    <td className="row-actions">
                      <button type="button" onClick={() => setDialog({ kind: "rename", ws: w })} aria-label={`Rename ${w.metadata?.name}`}>
                        Rename
                      </button>
                      <button type="button" onClick={() => setDialog({ kind: "archive", ws: w })} aria-label={`Archive ${w.metadata?.name}`}>
                        Archive
                      </button>
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        </ListState>
        <Pager label="Pages of workspaces" pages={pages} setPages={setPages} next={q.data?.nextPageToken} />
      </section>
      {dialog?.kind === "create" && <WorkspaceForm onClose={() => setDialog(null)} />}
      {dialog?.kind === "rename" && <WorkspaceForm ws={dialog.ws} onClose={() => setDialog(null)} />}
      {dialog?.kind === "archive" && <ArchiveDialog ws={dialog.ws} onClose={() => setDialog(null)} />}
    </>
  );
}

// WorkspaceForm creates a workspace, or with ws renames it and changes its
// description.
function WorkspaceForm({ ws, onClose }: { ws?: Workspace; onClose: () => void }) {
  const qc = useQueryClient();
  const done = { onSuccess: () => (qc.invalidateQueries(), onClose()) };
  const create = useMutation(createWorkspace, done);
  const update = useMutation(updateWorkspace, done);
  const m = ws ? update : create;
  const [error, setError] = useState<string | null>(null);
  const ids = { name: useId(), desc: useId() };
  const submit = (e: React.FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    const name = String(f.get("name") ?? "").trim();
    const description = String(f.get("description") ?? "");
    if (!name) {
      setError("Give the workspace a name.");
      return;
    }
    setError(null);
    if (ws) {
      update.mutate({
        id: ws.metadata?.id ?? "",
        metadata: { name },
        spec: { description },
        updateMask: { paths: ["metadata.name", "spec.description"] },
        etag: ws.metadata?.etag ?? "",
      });
    } else {
      create.mutate({ metadata: { name }, spec: { description } });
    }
  };
  const shown = error ?? (m.isError ? plainError(m.error) : null);
  return (
    <Dialog title={ws ? `Rename “${ws.metadata?.name}”` : "Create a workspace"} onClose={onClose}>
      <form onSubmit={submit} noValidate>
        <label htmlFor={ids.name}>Name</label>
        <input id={ids.name} name="name" maxLength={128} defaultValue={ws?.metadata?.name} autoFocus autoComplete="off" />
        <label htmlFor={ids.desc}>Description (optional)</label>
        <textarea id={ids.desc} name="description" rows={2} maxLength={1024} defaultValue={ws?.spec?.description} />
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
            {ws ? "Save" : "Create workspace"}
          </button>
        </div>
      </form>
    </Dialog>
  );
}

function ArchiveDialog({ ws, onClose }: { ws: Workspace; onClose: () => void }) {
  const qc = useQueryClient();
  const m = useMutation(archiveWorkspace, { onSuccess: () => (qc.invalidateQueries(), onClose()) });
  return (
    <Dialog title={`Archive “${ws.metadata?.name}”?`} onClose={onClose}>
      <p>
        Keys and people granted this workspace stop reaching it. Their grants stay recorded, but admit nothing while the
        workspace is archived.
      </p>
      {m.isError && (
        <p role="alert" className="error">
          {plainError(m.error)}
        </p>
      )}
      <ConfirmActions onCancel={onClose} onConfirm={() => m.mutate({ id: ws.metadata?.id ?? "" })} pending={m.isPending} label="Archive workspace" busyLabel="Archiving…" />
    </Dialog>
  );
}
