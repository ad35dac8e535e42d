// Who is looking at the page, and for which account.
//
// Fibermade's own shell hands the page its account and the dyer's token in
// the address fragment (`#account=…&token=…`, never sent to a server). On
// the local stack, a page opened without them asks the gateway stand-in for
// the demo dyer's session at `/local/session`, which only the stand-in has.

export interface Session {
  account: string;
  token: string;
  /** The API's origin and prefix; empty when the API is on the page's origin. */
  apiBase: string;
  /** How often the activity panel refreshes, in milliseconds. */
  refreshMs: number;
}

const DEFAULT_REFRESH_MS = 10_000;

export async function loadSession(location: Location): Promise<Session> {
  const fragment = new URLSearchParams(location.hash.replace(/^#/, ""));
  const query = new URLSearchParams(location.search);
  const apiBase = (import.meta.env.VITE_API_BASE ?? "").replace(/\/$/, "");
  const refreshSeconds = Number(query.get("refresh"));
  const refreshMs =
    Number.isFinite(refreshSeconds) && refreshSeconds > 0 ? refreshSeconds * 1000 : DEFAULT_REFRESH_MS;

  let account = fragment.get("account") ?? query.get("account") ?? "";
  let token = fragment.get("token") ?? "";
  if (!token) {
    const local = await localSession(apiBase);
    token = local.token;
    account ||= local.account_id;
  }
  if (!account) {
    throw new Error("No account was given to this page.");
  }
  return { account, token, apiBase, refreshMs };
}

async function localSession(apiBase: string): Promise<{ account_id: string; token: string }> {
  let response: Response;
  try {
    response = await fetch(`${apiBase}/local/session`, { cache: "no-store" });
  } catch {
    throw new Error("You are not signed in, and no local session could be had.");
  }
  if (!response.ok) {
    throw new Error("You are not signed in. Open this page from Fibermade.");
  }
  return (await response.json()) as { account_id: string; token: string };
}
