import { useEffect, useRef, useState } from "react";
import { useQueryClient } from "@tanstack/react-query";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { AuthService } from "../../../gen/ts/latchkey/v1/auth_pb.js";
import type { WhoAmIResponse } from "../../../gen/ts/latchkey/v1/auth_pb.js";
import { onRefusal, setCredential, transport } from "./session.js";
import { linkProps, navigate, usePath } from "./router.js";
import { SignIn } from "./SignIn.js";
import { KeysPage } from "./Keys.js";
import { KeyPage } from "./KeyPage.js";
import { WorkspacesPage } from "./Workspaces.js";
import { PeoplePage } from "./People.js";
import { refusal, SessionRefused } from "./Refused.js";
import { oidcForget } from "./oidc.js";
import { AccountsPage, mayManageAccounts } from "./Accounts.js";
import { AuditPage } from "./Audit.js";
import { AccountSwitcher } from "./AccountSwitcher.js";
import { callerPermissions, holds } from "./permissions.js";

const auth = createClient(AuthService, transport);

export type Session = { who: WhoAmIResponse; via: "key" | "oidc" };

export function App() {
  const [session, setSession] = useState<Session | null>(null);
  const queryClient = useQueryClient();
  const path = usePath();
  // Why Latchkey refused the session, once it has.
  const [refused, setRefused] = useState<string | null>(null);
  const checking = useRef(false);

  const signOut = () => {
    setCredential(null);
    void oidcForget();
    queryClient.clear();
    setSession(null);
  };

  // A call refused with Unauthenticated, or with PermissionDenied when
  // WhoAmI is refused too (a suspended person or account, not a missing
  // permission), means the session itself is refused: forget it and say so.
  useEffect(() => {
    if (!session) return;
    const refuse = (err: unknown) => {
      const why = refusal(err, session.via);
      if (why === null) return;
      signOut();
      setRefused(why);
    };
    return onRefusal((err) => {
      if (ConnectError.from(err).code === Code.Unauthenticated) return refuse(err);
      if (checking.current) return;
      checking.current = true;
      auth.whoAmI({}).then(
        () => {},
        (e) => refuse(e),
      ).finally(() => {
        checking.current = false;
      });
    });
    // signOut uses only stable setters and the query client.
  }, [session]);

  if (!session) {
    if (refused) return <SessionRefused reason={refused} onSignInAgain={() => setRefused(null)} />;
    return <SignIn onSignedIn={setSession} />;
  }
  return (
    <>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="top">
        <span className="brand">Latchkey</span>
        <nav aria-label="Main">
          <a {...linkProps("/keys")} aria-current={path.startsWith("/keys") || path === "/" ? "page" : undefined}>
            Keys
          </a>
          <a {...linkProps("/workspaces")} aria-current={path.startsWith("/workspaces") ? "page" : undefined}>
            Workspaces
          </a>
          {holds(callerPermissions(session), "profiles:read") && (
            <a {...linkProps("/people")} aria-current={path.startsWith("/people") ? "page" : undefined}>
              People
            </a>
          )}
          {holds(callerPermissions(session), "audit:read") && (
            <a {...linkProps("/audit")} aria-current={path === "/audit" ? "page" : undefined}>
              Audit log
            </a>
          )}
          {mayManageAccounts(session) && (
            <a {...linkProps("/accounts")} aria-current={path === "/accounts" ? "page" : undefined}>
              Accounts
            </a>
          )}
        </nav>
        <AccountSwitcher session={session} onSwitched={setSession} />
        <span className="who">
          {who(session)} <span className="muted">in {session.who.account?.metadata?.name ?? "this account"}</span>
        </span>
        <button type="button" onClick={signOut}>
          Sign out
        </button>
      </header>
      <main id="main" tabIndex={-1}>
        {/* A page starts afresh in another account (the account switcher). */}
        <Route key={session.who.account?.metadata?.id} path={path} session={session} />
      </main>
    </>
  );
}

function who(s: Session): string {
  const p = s.who.profile;
  if (s.who.apiKey) return `Key “${s.who.apiKey.metadata?.name ?? ""}”`;
  return p?.spec?.email || p?.metadata?.name || "Signed in";
}

// The server answers index.html for the first path segments that
// console.Routes (console/console.go) lists: keep the two together.
function Route({ path, session }: { path: string; session: Session }) {
  const title = useRef<string>("");
  let page: React.ReactNode;
  const m = /^\/keys\/([^/]+)$/.exec(path);
  if (path === "/" || path === "/keys") {
    title.current = "Keys";
    page = <KeysPage session={session} />;
  } else if (path === "/workspaces") {
    title.current = "Workspaces";
    page = <WorkspacesPage session={session} />;
  } else if (path === "/people") {
    title.current = "People";
    page = <PeoplePage session={session} />;
  } else if (path === "/accounts") {
    title.current = "Accounts";
    page = <AccountsPage session={session} />;
  } else if (path === "/audit") {
    title.current = "Audit log";
    page = <AuditPage session={session} />;
  } else if (m) {
    title.current = "Key";
    page = <KeyPage id={decodeURIComponent(m[1])} session={session} />;
  } else {
    title.current = "Not found";
    page = <NotFound />;
  }
  useEffect(() => {
    document.title = `${title.current} · Latchkey console`;
  }, [path]);
  return page;
}

function NotFound() {
  useEffect(() => {
    document.getElementById("main")?.focus();
  }, []);
  return (
    <>
      <h1>Page not found</h1>
      <p>
        There is no page here. <a {...linkProps("/keys")}>Go to the keys</a>.
      </p>
    </>
  );
}

export { navigate };
