// The sync activity panel: the newest integration-log entries (pushes,
// pulls from the shop, imports, observer writes) with their status and
// time. It refreshes on a timer while the page is visible, after every
// push, and when asked.
//
// Limitation: only the newest entries are shown (the API answers at most
// 200, the panel asks for 25) and there is no "show older"; a cursor on the
// sync-log route would let the panel page back.

import type { LogEntry, PushApi } from "../api";
import { SOURCE_LABELS, STATUS_LABELS, fullTime, timeAgo } from "../format";
import { ICONS, byId, h, icon } from "./dom";

const LIMIT = 25;

export class ActivityPanel {
  private readonly list = byId<HTMLOListElement>("activity-list");
  private readonly panel = byId("activity");
  private readonly state = byId("activity-state");
  private readonly refreshButton = byId<HTMLButtonElement>("activity-refresh");
  private timer: number | undefined;
  private seen = new Set<string>();
  private first = true;
  private running: Promise<void> | null = null;

  constructor(
    private readonly api: PushApi,
    private readonly intervalMs: number,
  ) {
    this.refreshButton.addEventListener("click", () => void this.refresh());
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") void this.refresh();
    });
  }

  start(): void {
    void this.refresh();
    this.timer = window.setInterval(() => {
      if (document.visibilityState === "visible") void this.refresh();
    }, this.intervalMs);
  }

  stop(): void {
    window.clearInterval(this.timer);
  }

  /** Reads the log again; a refresh already under way is joined, not doubled. */
  refresh(): Promise<void> {
    this.running ??= this.load().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async load(): Promise<void> {
    this.panel.setAttribute("aria-busy", "true");
    try {
      const entries = await this.api.syncLog(LIMIT);
      this.render(entries);
      const now = new Date();
      this.state.textContent = `Updated ${now.toLocaleTimeString("en")}`;
      this.state.dataset.state = "fresh";
    } catch (e) {
      // Keep what is shown; say that it may be old.
      this.state.textContent = `Could not refresh: ${(e as Error).message}`;
      this.state.dataset.state = "stale";
    } finally {
      this.panel.removeAttribute("aria-busy");
    }
  }

  private render(entries: LogEntry[]): void {
    const now = new Date();
    if (entries.length === 0) {
      this.list.replaceChildren(
        h("li", { class: "activity-empty" }, "Nothing yet. Pushes, sales pulled from Shopify and imports show here."),
      );
      this.first = false;
      return;
    }
    const keys = entries.map(entryKey);
    const items = entries.map((entry, i) => {
      const fresh = !this.first && !this.seen.has(keys[i]!);
      return row(entry, now, fresh);
    });
    this.list.replaceChildren(...items);
    this.seen = new Set(keys);
    this.first = false;
  }
}

function entryKey(entry: LogEntry): string {
  return `${entry.at}|${entry.entity}|${entry.source}|${entry.message}`;
}

function row(entry: LogEntry, now: Date, fresh: boolean): HTMLLIElement {
  const at = new Date(entry.at);
  const source = SOURCE_LABELS[entry.source] ?? entry.source;
  const status = STATUS_LABELS[entry.status] ?? entry.status;
  const statusIcon = entry.status === "success" ? ICONS.success : entry.status === "warning" ? ICONS.warning : ICONS.error;
  return h(
    "li",
    {
      class: `activity-entry status-${entry.status}${fresh ? " is-new" : ""}`,
      "data-source": entry.source,
      "data-status": entry.status,
      "data-entity": entry.entity,
    },
    h("span", { class: `source source-${entry.source}` }, source),
    h("span", { class: "status" }, icon(statusIcon), status),
    h("p", { class: "message" }, entry.message),
    h("time", { datetime: entry.at, title: fullTime(at) }, timeAgo(at, now)),
  );
}
