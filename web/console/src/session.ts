// The signed-in credential lives here, in this module's memory only: never
// in localStorage, sessionStorage, a cookie or a URL. A reload, closing the
// tab, or signing out forgets it.
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";

let credential: string | null = null;
let account: string | null = null;

export function setCredential(token: string | null) {
  credential = token;
  if (token === null) account = null;
}

// setAccount names the account for a person with profiles in several
// (the latchkey-account header); null lets the server imply it.
export function setAccount(id: string | null) {
  account = id;
}

const withCredential: Interceptor = (next) => (req) => {
  if (credential !== null) req.header.set("Authorization", `Bearer ${credential}`);
  // A call that names its account itself (the switcher's WhoAmI, asked
  // before the switch) keeps it.
  if (account !== null && !req.header.has("latchkey-account")) req.header.set("latchkey-account", account);
  return next(req);
};

// onRefusal registers the one listener told of a call refused with
// Unauthenticated or PermissionDenied while signed in (App decides whether
// the session itself was refused); it returns the unregistering function.
let refusalListener: ((err: ConnectError) => void) | null = null;
export function onRefusal(l: (err: ConnectError) => void): () => void {
  refusalListener = l;
  return () => {
    if (refusalListener === l) refusalListener = null;
  };
}

const watchRefusal: Interceptor = (next) => async (req) => {
  const sent = credential;
  try {
    return await next(req);
  } catch (err) {
    const e = ConnectError.from(err);
    if (sent !== null && sent === credential && (e.code === Code.Unauthenticated || e.code === Code.PermissionDenied)) {
      refusalListener?.(e);
    }
    throw err;
  }
};

// The console is served by latchkey itself, so the API is same-origin and
// needs no CORS.
export const transport = createConnectTransport({
  baseUrl: window.location.origin,
  interceptors: [withCredential, watchRefusal],
});
