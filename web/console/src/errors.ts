import { Code, ConnectError } from "@connectrpc/connect";

// plainError turns any error of a call into a sentence for a person. A
// Connect code is never shown as such.
export function plainError(err: unknown): string {
  const e = ConnectError.from(err);
  switch (e.code) {
    case Code.Unauthenticated:
      return "You are not signed in any more, or your credential was not accepted. Sign in again.";
    case Code.PermissionDenied:
      return "You are not allowed to do this. Ask someone who manages this account for the permission.";
    case Code.NotFound:
      return "This was not found. It may have been deleted, or belong to another account.";
    case Code.InvalidArgument:
      return `Some of what was entered is not valid${detail(e)}.`;
    case Code.FailedPrecondition:
      return `This cannot be done in the current state${detail(e)}.`;
    case Code.Aborted:
      return "Someone else changed this at the same time. Look at what it holds now and try again.";
    case Code.AlreadyExists:
      return "Something with this name or email already exists.";
    case Code.ResourceExhausted:
      return "A limit was reached: the account has as many active keys as it may, or the request is too large.";
    case Code.Unavailable:
    case Code.DeadlineExceeded:
      return "Latchkey could not be reached. Check your connection and try again.";
    case Code.Canceled:
      return "The request was cancelled.";
    default:
      return "Something went wrong on the server. Try again; if it goes on, tell whoever runs Latchkey.";
  }
}

// detail is the server's own explanation, such as a field violation, which
// is written for people, with its technical prefix removed.
function detail(e: ConnectError): string {
  const m = e.rawMessage.trim().replace(/^validation error:\s*/, "");
  return m ? `: ${m}` : "";
}
