import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { ApiKeyState, Environment } from "../../../gen/ts/latchkey/v1/api_key_pb.js";

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

export function when(ts: Timestamp | undefined, none = "Never"): string {
  return ts ? dateTime.format(timestampDate(ts)) : none;
}

export function isoWhen(ts: Timestamp | undefined): string | undefined {
  return ts ? timestampDate(ts).toISOString() : undefined;
}

export function environmentName(e: Environment): string {
  return e === Environment.TEST ? "Test" : "Live";
}

export function stateName(s: ApiKeyState): string {
  switch (s) {
    case ApiKeyState.REVOKED:
      return "Revoked";
    case ApiKeyState.EXPIRED:
      return "Expired";
    default:
      return "Active";
  }
}

export function labelsText(labels: { [k: string]: string }): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(", ");
}

const labelPart = /^[a-z0-9]([-_.a-z0-9]*[a-z0-9])?$/;

// parseLabels reads "team=ai, env=prod"; it throws a sentence on a bad pair.
export function parseLabels(text: string): { [k: string]: string } {
  const out: { [k: string]: string } = {};
  for (const raw of text.split(",")) {
    const pair = raw.trim();
    if (!pair) continue;
    const [k, v, ...rest] = pair.split("=");
    if (rest.length || v === undefined || !labelPart.test(k) || !labelPart.test(v) || k.length > 63 || v.length > 63) {
      throw new Error(
        `"${pair}" is not a label: write key=value, with lowercase letters, digits, and - _ . inside, at most 63 characters each.`,
      );
    }
    out[k] = v;
  }
  return out;
}

// keyNameAndLabels reads the name and labels of the Issue and Edit forms;
// it throws an Error whose message is for the person filling the form.
export function keyNameAndLabels(f: FormData): { name: string; labels: { [k: string]: string } } {
  const name = String(f.get("name") ?? "").trim();
  if (!name) throw new Error("Give the key a name.");
  return { name, labels: parseLabels(String(f.get("labels") ?? "")) };
}
