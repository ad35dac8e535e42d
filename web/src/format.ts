// Words and figures as a dyer reads them.

import type { LogEntry, PushReport } from "./api";

export interface Count {
  /** The report field, also the `data-count` attribute tests read. */
  key: keyof PushReport;
  label: string;
  value: number;
}

/** The counts a finished push shows: the three a dyer looks for first, then
 * whatever else moved. */
export function pushCounts(report: PushReport): Count[] {
  const always: Count[] = [
    { key: "variants_updated", label: "Variants updated", value: report.variants_updated },
    { key: "products_created", label: "Products created", value: report.products_created },
    { key: "quantities_set", label: "Quantities set", value: report.quantities_set },
  ];
  const others: Count[] = [
    { key: "variants_created", label: "Variants created", value: report.variants_created },
    { key: "products_updated", label: "Products updated", value: report.products_updated },
    { key: "sales_merged", label: "Sales merged", value: report.sales_merged },
  ];
  return [...always, ...others.filter((c) => c.value > 0)];
}

/** What a preview says is waiting to go to the shop. */
export function pendingCounts(report: PushReport): Count[] {
  return [
    { key: "variants_affected", label: "Variants to push", value: report.variants_affected },
    { key: "products_created", label: "Products to create", value: report.products_created },
    { key: "products_updated", label: "Products to update", value: report.products_updated },
    { key: "quantities_set", label: "Quantities to set", value: report.quantities_set },
  ];
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n.toLocaleString("en")} ${n === 1 ? one : many}`;
}

export const SOURCE_LABELS: Record<LogEntry["source"], string> = {
  manual_push: "Push",
  webhook: "Pull",
  import: "Import",
  observer: "Observer",
};

export const STATUS_LABELS: Record<LogEntry["status"], string> = {
  success: "Succeeded",
  warning: "Warning",
  error: "Failed",
};

const relative = new Intl.RelativeTimeFormat("en", { numeric: "auto" });

/** "just now", "3 minutes ago", "yesterday". */
export function timeAgo(at: Date, now: Date): string {
  const seconds = Math.round((at.getTime() - now.getTime()) / 1000);
  if (Math.abs(seconds) < 45) {
    return "just now";
  }
  const steps: [Intl.RelativeTimeFormatUnit, number][] = [
    ["minute", 60],
    ["hour", 3600],
    ["day", 86_400],
    ["week", 604_800],
  ];
  let chosen: [Intl.RelativeTimeFormatUnit, number] = ["minute", 60];
  for (const step of steps) {
    if (Math.abs(seconds) >= step[1]) {
      chosen = step;
    }
  }
  return relative.format(Math.round(seconds / chosen[1]), chosen[0]);
}

const absolute = new Intl.DateTimeFormat("en", { dateStyle: "medium", timeStyle: "medium" });

export function fullTime(at: Date): string {
  return absolute.format(at);
}
