import { useId, useState } from "react";
import { createClient } from "@connectrpc/connect";
import { skipToken, useQueryClient } from "@tanstack/react-query";
import { useQuery } from "@connectrpc/connect-query";
import { listMyProfiles } from "../../../gen/ts/latchkey/v1/auth-AuthService_connectquery.js";
import { AuthService, type MyProfile } from "../../../gen/ts/latchkey/v1/auth_pb.js";
import { AccountState } from "../../../gen/ts/latchkey/v1/account_pb.js";
import { ProfileState } from "../../../gen/ts/latchkey/v1/profile_pb.js";
import type { Session } from "./App.js";
import { setAccount, transport } from "./session.js";
import { plainError } from "./errors.js";
import { navigate } from "./router.js";

const auth = createClient(AuthService, transport);

function usable(p: MyProfile): boolean {
  return p.accountState !== AccountState.SUSPENDED && p.profile?.info?.state !== ProfileState.SUSPENDED;
}

// whoAmIChoosingAccount is WhoAmI for a person just signed in. One with
// profiles in several accounts must name the account of every call: the
// first account (the oldest) where they may act is chosen, and the
// switcher offers the others.
export async function whoAmIChoosingAccount() {
  const mine = await auth.listMyProfiles({});
  if (mine.profiles.length > 1) {
    const first = mine.profiles.find(usable) ?? mine.profiles[0];
    if (first.account) setAccount(first.account.id);
  }
  return await auth.whoAmI({});
}

// AccountSwitcher lets a person signed in through the identity provider
// with profiles in several accounts choose the account they act in. It
// shows nothing for an API key, which belongs to one account, or for a
// person with one profile.
export function AccountSwitcher({ session, onSwitched }: { session: Session; onSwitched: (s: Session) => void }) {
  const person = session.via === "oidc";
  const q = useQuery(listMyProfiles, person ? {} : skipToken, { staleTime: 60_000 });
  const qc = useQueryClient();
  const current = session.who.account?.metadata?.id ?? "";
  const [chosen, setChosen] = useState(current);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const ids = { select: useId(), err: useId() };
  const profiles = q.data?.profiles ?? [];
  if (!person || profiles.length < 2) return null;

  const switchTo = async (e: React.FormEvent) => {
    e.preventDefault();
    if (chosen === current) return;
    setBusy(true);
    setError(null);
    try {
      // The other account is asked first and switched to only once it
      // answers: until then the page shown, and every call it makes, stay in
      // the current account.
      const who = await auth.whoAmI({}, { headers: { "latchkey-account": chosen } });
      setAccount(chosen);
      // Nothing read in the other account may show in this one.
      qc.clear();
      onSwitched({ who, via: session.via });
      navigate("/keys");
    } catch (err) {
      setChosen(current);
      setError(`You could not switch accounts. ${plainError(err)}`);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form className="switcher" onSubmit={switchTo} aria-label="Switch account">
      <label htmlFor={ids.select}>Account</label>
      <select
        id={ids.select}
        value={chosen}
        onChange={(e) => setChosen(e.target.value)}
        aria-describedby={error ? ids.err : undefined}
        disabled={busy}
      >
        {profiles.map((p) => (
          <option key={p.account?.id} value={p.account?.id} disabled={!usable(p)}>
            {p.account?.name}
            {p.accountState === AccountState.SUSPENDED
              ? " (suspended)"
              : p.profile?.info?.state === ProfileState.SUSPENDED
                ? " (your profile is suspended)"
                : ""}
          </option>
        ))}
      </select>
      <button type="submit" disabled={busy || chosen === current}>
        {busy ? "Switching…" : "Switch"}
      </button>
      {error && (
        <span id={ids.err} role="alert" className="error">
          {error}
        </span>
      )}
    </form>
  );
}
