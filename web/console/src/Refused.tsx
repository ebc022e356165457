import { useEffect, useRef } from "react";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Session } from "./App.js";

// refusal says in plain words why Latchkey refused a sign-in or a session
// (Unauthenticated or PermissionDenied on WhoAmI), or returns null for any
// other error. The server's reasons for refusing a person or an account
// (suspended, no profile for this email) are sentences written for people;
// its reasons for a token it cannot trust are not, and are left out.
export function refusal(err: unknown, via: Session["via"] | null): string | null {
  const e = ConnectError.from(err);
  if (e.code === Code.Unauthenticated) {
    return via === "oidc"
      ? "Your sign-in has expired or is no longer accepted."
      : via === "key"
        ? "The key you signed in with is no longer accepted: it may have been revoked, or have expired."
        : "That credential was not accepted: it may be mistyped, revoked or expired.";
  }
  if (e.code === Code.PermissionDenied) {
    const why = e.rawMessage.trim();
    return why ? `${why[0].toUpperCase()}${why.slice(1)}${/[.!?]$/.test(why) ? "" : "."}` : "Latchkey does not let you in any more.";
  }
  return null;
}

// SessionRefused replaces the console when Latchkey refuses the session
// itself (a suspended person or account, an expired sign-in): the
// credential is already forgotten; the person may sign in again.
export function SessionRefused({ reason, onSignInAgain }: { reason: string; onSignInAgain: () => void }) {
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    document.title = "Session refused · Latchkey console";
    heading.current?.focus();
  }, []);
  return (
    <main className="signin" id="main">
      <h1 ref={heading} tabIndex={-1}>
        Latchkey refused your session
      </h1>
      <p role="alert" className="error">
        {reason}
      </p>
      <p>You have been signed out of the console, and what it showed is gone. When the problem is solved, sign in again.</p>
      <button type="button" className="primary" onClick={onSignInAgain}>
        Sign in again
      </button>
    </main>
  );
}
