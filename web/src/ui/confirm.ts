// The question asked before a large push, with the dry run's figures.

import type { PushReport } from "../api";
import { plural } from "../format";
import { byId, h } from "./dom";

/** Resolves true when the dyer confirms, false on Cancel or Escape. */
export function confirmPush(report: PushReport): Promise<boolean> {
  const dialog = byId<HTMLDialogElement>("confirm-dialog");
  const title = byId("confirm-title");
  const body = byId("confirm-body");
  const confirm = byId<HTMLButtonElement>("confirm-push");
  const cancel = byId<HTMLButtonElement>("confirm-cancel");

  const variants = plural(report.variants_affected, "variant");
  title.textContent = `Push ${variants} to Shopify?`;
  body.replaceChildren(
    h("p", {}, `This push changes ${variants} on your shop. Customers see the new products, prices and stock as soon as it finishes.`),
    h(
      "ul",
      { class: "confirm-counts" },
      h("li", { "data-count": "products_created" }, plural(report.products_created, "product"), " to create"),
      h("li", { "data-count": "products_updated" }, plural(report.products_updated, "product"), " to update"),
      h("li", { "data-count": "quantities_set" }, plural(report.quantities_set, "quantity", "quantities"), " to set"),
    ),
  );
  confirm.textContent = `Push ${variants}`;

  return new Promise((resolve) => {
    const finish = (answer: boolean) => {
      confirm.removeEventListener("click", onConfirm);
      cancel.removeEventListener("click", onCancel);
      dialog.removeEventListener("cancel", onEscape);
      dialog.close();
      resolve(answer);
    };
    const onConfirm = () => finish(true);
    const onCancel = () => finish(false);
    const onEscape = (event: Event) => {
      event.preventDefault();
      finish(false);
    };
    confirm.addEventListener("click", onConfirm);
    cancel.addEventListener("click", onCancel);
    dialog.addEventListener("cancel", onEscape);
    dialog.showModal();
    // Cancel is the safe default: Enter does not push hundreds of variants.
    cancel.focus();
  });
}
