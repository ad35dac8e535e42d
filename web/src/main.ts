// The inventory page's sync corner: the "Push to Shopify" action in the
// header, its outcome, and the sync activity panel.

import "./style.css";
import { PushApi } from "./api";
import { PushAction } from "./push";
import { loadSession } from "./session";
import { ActivityPanel } from "./ui/activity";
import { ICONS, byId, icon } from "./ui/dom";
import { Notifications } from "./ui/notifications";
import { Progress } from "./ui/progress";

async function main(): Promise<void> {
  byId("push-button-icon").replaceWith(icon(ICONS.push, "icon push-icon"));
  byId("activity-refresh-icon").replaceWith(icon(ICONS.refresh));
  const notifications = new Notifications(byId("notifications"));

  let session;
  try {
    session = await loadSession(window.location);
  } catch (e) {
    notifications.error("You are not signed in", (e as Error).message);
    byId("activity-state").textContent = "Sign in to see the sync activity.";
    return;
  }
  byId("account-name").textContent = session.account;

  const api = new PushApi(session.apiBase, session.account, session.token);
  const activity = new ActivityPanel(api, session.refreshMs);
  const push = new PushAction(api, notifications, new Progress(), activity);
  activity.start();
  await push.showPending();
  document.body.dataset.ready = "true";
}

void main();
