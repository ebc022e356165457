import type { ReactNode } from "react";
import { plainError } from "./errors.js";

// ListState is what a list shows before its rows: loading, the error in
// plain words, or the empty state (empty is null when there are rows), and
// the rows themselves (children) once there are some.
export function ListState(props: {
  q: { isPending: boolean; isError: boolean; error: unknown };
  loading: string;
  failed: string;
  empty: ReactNode | null;
  children: ReactNode;
}) {
  const { q } = props;
  if (q.isPending) return <p role="status">{props.loading}</p>;
  if (q.isError) {
    return (
      <p role="alert" className="error">
        {props.failed} {plainError(q.error)}
      </p>
    );
  }
  if (props.empty !== null) {
    return (
      <p role="status" className="empty">
        {props.empty}
      </p>
    );
  }
  return <>{props.children}</>;
}
