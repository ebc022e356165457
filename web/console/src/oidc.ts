// Sign-in through the OpenID Provider with oidc-client-ts: the
// authorization-code flow with PKCE. The ID token is kept in memory only
// (InMemoryWebStorage); only the flow's one-time state and PKCE verifier
// cross the redirect, in sessionStorage, and are removed when it returns.
// oidc-client-ts is loaded only when the server has sign-in configured.
export type OidcConfig = { issuer: string; clientId: string };

export async function oidcConfig(): Promise<OidcConfig | null> {
  const res = await fetch("/console/config.json", { headers: { Accept: "application/json" } });
  if (!res.ok) return null;
  const c = (await res.json()) as { oidcIssuer?: string; oidcClientId?: string };
  return c.oidcIssuer && c.oidcClientId ? { issuer: c.oidcIssuer, clientId: c.oidcClientId } : null;
}

// The manager of the flow under way, kept so that sign-out can forget the
// user it holds (oidcForget).
let current: { removeUser(): Promise<void> } | null = null;

async function manager(c: OidcConfig) {
  const { UserManager, WebStorageStateStore, InMemoryWebStorage } = await import("oidc-client-ts");
  const m = new UserManager({
    authority: c.issuer,
    client_id: c.clientId,
    redirect_uri: `${window.location.origin}/`,
    response_type: "code",
    scope: "openid email profile",
    userStore: new WebStorageStateStore({ store: new InMemoryWebStorage() }),
    stateStore: new WebStorageStateStore({ store: window.sessionStorage }),
    automaticSilentRenew: false,
  });
  current = m;
  return m;
}

// oidcForget forgets what the flow left: the user (with its ID token) that
// the manager holds in memory, and any one-time state of a flow in
// sessionStorage (a flow left half-way leaves its state behind).
export async function oidcForget() {
  const m = current;
  current = null;
  try {
    await m?.removeUser();
  } finally {
    for (const k of Object.keys(window.sessionStorage)) {
      if (k.startsWith("oidc.")) window.sessionStorage.removeItem(k);
    }
  }
}

export async function oidcSignIn(c: OidcConfig) {
  await (await manager(c)).signinRedirect();
}

// oidcCallback finishes the flow and returns the ID token, which the API
// takes as a bearer credential; the code leaves the address bar at once.
export async function oidcCallback(): Promise<string> {
  const c = await oidcConfig();
  if (!c) throw new Error("Sign-in with an OpenID Provider is not configured on this server.");
  const m = await manager(c);
  try {
    const user = await m.signinRedirectCallback();
    if (!user.id_token) throw new Error("The provider returned no ID token.");
    return user.id_token;
  } finally {
    window.history.replaceState(null, "", "/");
    // The ID token now lives only in session.ts; the manager's copy and
    // the flow's state go.
    await oidcForget();
  }
}
