import { useEffect, useId, useState } from "react";
import { createClient } from "@connectrpc/connect";
import { AuthService } from "../../../gen/ts/latchkey/v1/auth_pb.js";
import { setCredential, transport } from "./session.js";
import { plainError } from "./errors.js";
import { ConnectError, Code } from "@connectrpc/connect";
import type { Session } from "./App.js";
import { oidcConfig, oidcSignIn, oidcCallback, oidcForget, type OidcConfig } from "./oidc.js";
import { refusal } from "./Refused.js";
import { whoAmIChoosingAccount } from "./AccountSwitcher.js";

const auth = createClient(AuthService, transport);

// signInWith checks a credential with WhoAmI before keeping it.
async function signInWith(token: string, via: Session["via"]): Promise<Session> {
  setCredential(token);
  try {
    // A person with profiles in several accounts starts in the first.
    const who = via === "oidc" ? await whoAmIChoosingAccount() : await auth.whoAmI({});
    return { who, via };
  } catch (err) {
    setCredential(null);
    throw err;
  }
}

export function SignIn({ onSignedIn }: { onSignedIn: (s: Session) => void }) {
  const [key, setKey] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [oidc, setOidc] = useState<OidcConfig | null>(null);
  const keyId = useId();
  const errId = useId();

  useEffect(() => {
    document.title = "Sign in · Latchkey console";
    oidcConfig().then(setOidc, () => setOidc(null));
    // Back from the OpenID Provider: finish the code flow.
    const back = new URLSearchParams(window.location.search);
    if (back.has("error") && back.has("state")) {
      // The provider did not sign the person in (cancelled, refused).
      window.history.replaceState(null, "", "/");
      void oidcForget();
      setError("The sign-in at your company account was cancelled or refused there. Try again, or sign in with an API key.");
    } else if (back.has("code")) {
      setBusy(true);
      oidcCallback()
        .then((token) => signInWith(token, "oidc"))
        .then(onSignedIn, (err) => setError(signInError(err)))
        .finally(() => setBusy(false));
    } else {
      // A sign-in left half-way at the provider (the person came back
      // without finishing) leaves its state and PKCE verifier behind.
      void oidcForget();
    }
  }, [onSignedIn]);

  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    setError(null);
    const token = key.trim();
    if (!token) {
      setError("Enter an API key.");
      return;
    }
    setBusy(true);
    try {
      const s = await signInWith(token, "key");
      setKey("");
      onSignedIn(s);
    } catch (err) {
      setError(signInError(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <main className="signin" id="main">
      <h1>Sign in to Latchkey</h1>
      {oidc && (
        <section aria-labelledby="sso">
          <h2 id="sso">With your company account</h2>
          <button type="button" className="primary" disabled={busy} onClick={() => oidcSignIn(oidc).catch((err) => setError(signInError(err)))}>
            Sign in with {new URL(oidc.issuer).host}
          </button>
        </section>
      )}
      <form onSubmit={submit} noValidate aria-describedby={error ? errId : undefined}>
        {oidc && <h2>With an API key</h2>}
        <label htmlFor={keyId}>API key</label>
        <input
          id={keyId}
          name="api-key"
          type="password"
          autoComplete="off"
          spellCheck={false}
          value={key}
          onChange={(e) => setKey(e.target.value)}
          aria-invalid={error ? true : undefined}
          aria-describedby={error ? errId : undefined}
          autoFocus
        />
        <p className="hint">The key is kept in this tab's memory only, and forgotten when you sign out or close the tab.</p>
        <button type="submit" className="primary" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
        {error && (
          <p id={errId} role="alert" className="error">
            {error}
          </p>
        )}
      </form>
    </main>
  );
}

function signInError(err: unknown): string {
  const e = ConnectError.from(err);
  if (e.code === Code.Unauthenticated || e.code === Code.PermissionDenied) {
    // A person the provider knows and Latchkey refuses (no profile for the
    // email, suspended) is told why, in the server's words for people.
    return `Latchkey did not let you in. ${refusal(e, null)}`;
  }
  return plainError(err);
}
