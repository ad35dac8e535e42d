// The outcome of a push, in the notification area under the page header.
// A success is a status message (read politely); an error is an alert
// (read at once). Each stays until dismissed or replaced by the next push.

import type { ItemError, PushReport } from "../api";
import { pushCounts } from "../format";
import { ICONS, h, icon } from "./dom";

export class Notifications {
  constructor(private readonly area: HTMLElement) {}

  clear(): void {
    this.area.replaceChildren();
  }

  success(title: string, report: PushReport): void {
    this.show("success", title, null, counts(report), null);
  }

  /** A push that ran but could not bring every item to the shop. */
  partial(title: string, report: PushReport): void {
    this.show("error", title, "The rest reached your shop. Items marked “push again” can succeed later.", counts(report), failures(report.errors));
  }

  /** Something the dyer chose, such as cancelling a push. */
  info(title: string, message: string): void {
    this.show("info", title, message, null, null);
  }

  error(title: string, message: string, items: ItemError[] = []): void {
    this.show("error", title, message, null, items.length ? failures(items) : null);
  }

  private show(
    kind: "success" | "info" | "error",
    title: string,
    message: string | null,
    details: HTMLElement | null,
    items: HTMLElement | null,
  ): void {
    const titleId = `notification-title-${Date.now()}`;
    const dismiss = h("button", { type: "button", class: "icon-button", "aria-label": "Dismiss notification" }, icon(ICONS.close));
    const note = h(
      "div",
      {
        class: `notification notification-${kind}`,
        role: kind === "error" ? "alert" : "status",
        "aria-labelledby": titleId,
        "data-kind": kind,
      },
      icon(kind === "error" ? ICONS.error : kind === "info" ? ICONS.info : ICONS.success, "icon notification-icon"),
      h(
        "div",
        { class: "notification-body" },
        h("p", { class: "notification-title", id: titleId }, title),
        message && h("p", { class: "notification-message" }, message),
        details,
        items,
      ),
      dismiss,
    );
    dismiss.addEventListener("click", () => note.remove());
    this.area.replaceChildren(note);
  }
}

function counts(report: PushReport): HTMLElement {
  return h(
    "dl",
    { class: "counts" },
    ...pushCounts(report).map((c) =>
      h("div", { class: "count" }, h("dt", {}, c.label), h("dd", { "data-count": c.key }, c.value.toLocaleString("en"))),
    ),
  );
}

function failures(errors: ItemError[]): HTMLElement {
  return h(
    "ul",
    { class: "failures", "aria-label": "Items that did not reach Shopify" },
    ...errors.map((e) =>
      h(
        "li",
        { class: "failure", "data-entity": e.entity },
        h("strong", { class: "failure-name" }, e.name),
        h("span", { class: "failure-message" }, e.message),
        h("span", { class: `tag ${e.retryable ? "tag-retry" : "tag-fix"}` }, e.retryable ? "push again later" : "needs a change"),
      ),
    ),
  );
}
