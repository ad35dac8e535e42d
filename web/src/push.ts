// "Push to Shopify": count first (a dry run), ask before a large push, push,
// follow the job when the API runs it as one, and say what happened.

import { ApiError, type AcceptedJob, type PushApi, type PushJob, type PushReport } from "./api";
import { pendingCounts, plural } from "./format";
import type { ActivityPanel } from "./ui/activity";
import { confirmPush } from "./ui/confirm";
import { byId, h } from "./ui/dom";
import type { Notifications } from "./ui/notifications";
import type { Progress } from "./ui/progress";

/** A push changing this many variants or more is confirmed first. */
export const CONFIRM_AT = 50;

const POLL_FIRST_MS = 500;
const POLL_MAX_MS = 2_000;
/** Status reads that may fail in a row (network, 5xx) before giving up. */
const POLL_FAILURES = 5;
/** How long the page follows a job before leaving it to the activity panel. */
const FOLLOW_FOR_MS = 15 * 60_000;

export class PushAction {
  private readonly button = byId<HTMLButtonElement>("push-button");
  private readonly buttonLabel = byId("push-button-label");
  private readonly pending = byId("pending");
  private readonly pendingCounts = byId("pending-counts");
  private readonly pendingNote = byId("pending-note");
  private busy = false;

  constructor(
    private readonly api: PushApi,
    private readonly notifications: Notifications,
    private readonly progress: Progress,
    private readonly activity: ActivityPanel,
  ) {
    this.button.addEventListener("click", () => void this.run());
  }

  /** Shows what is waiting to go to the shop, and whether this dyer may push. */
  async showPending(): Promise<void> {
    this.pending.setAttribute("aria-busy", "true");
    try {
      this.renderPending(await this.api.preview());
      if (!this.busy) this.button.disabled = false;
    } catch (e) {
      const error = asApiError(e);
      this.pendingCounts.replaceChildren();
      this.pendingNote.textContent = error.message;
      // Who may not push, or an account without a shop, cannot push at all.
      if (error.status === 401 || error.status === 403 || error.code === "not_linked") {
        this.button.disabled = true;
        this.button.title = error.message;
      }
    } finally {
      this.pending.removeAttribute("aria-busy");
    }
  }

  async run(): Promise<void> {
    if (this.busy) return;
    this.setBusy(true, "Checking…");
    this.notifications.clear();
    try {
      this.progress.busy("Counting what changed since the last push…");
      const preview = await this.api.preview();
      this.renderPending(preview);
      if (preview.variants_affected >= CONFIRM_AT) {
        this.progress.hide();
        if (!(await confirmPush(preview))) {
          this.notifications.info("Push cancelled", "Nothing was sent to Shopify.");
          return;
        }
      }

      this.setBusy(true, "Pushing…");
      this.progress.busy("Pushing to Shopify…");
      const outcome = await this.api.push();
      const report = outcome.kind === "report" ? outcome.report : await this.follow(outcome.job);
      this.announce(report);
    } catch (e) {
      const error = asApiError(e);
      this.notifications.error(failureTitle(error), error.message, error instanceof JobFailed ? error.items : []);
    } finally {
      this.progress.hide();
      this.setBusy(false, "Push to Shopify");
      void this.activity.refresh();
      void this.showPending();
    }
  }

  /** Polls a job until it ends; its report, or a `JobFailed`. */
  private async follow(job: AcceptedJob): Promise<PushReport> {
    const started = Date.now();
    let wait = POLL_FIRST_MS;
    let failures = 0;
    let status: PushJob = { job_id: job.jobId, status: job.status };
    this.progress.busy("Waiting for the push to start…");
    while (Date.now() - started < FOLLOW_FOR_MS) {
      await sleep(wait);
      wait = Math.min(wait * 1.5, POLL_MAX_MS);
      try {
        status = await this.api.job(job.statusUrl);
        failures = 0;
      } catch (e) {
        const error = asApiError(e);
        failures += 1;
        if (!error.retryable || failures >= POLL_FAILURES) throw error;
        continue;
      }
      this.showJob(status);
      if (status.status === "succeeded" || status.status === "partial") {
        if (!status.report) throw new ApiError(502, "bad_answer", "The push finished but its report is missing; see the sync activity.");
        return status.report;
      }
      if (status.status === "failed") {
        throw new JobFailed(status);
      }
    }
    throw new ApiError(0, "still_running", "The push is still running. Its outcome will appear in the sync activity.");
  }

  private showJob(job: PushJob): void {
    const progress = job.progress;
    if (job.status === "queued") {
      this.progress.busy("Waiting for the push to start…");
    } else if (progress && progress.products_total > 0) {
      this.progress.products(progress.products_done, progress.products_total);
    } else {
      this.progress.busy("Pushing to Shopify…");
    }
  }

  private announce(report: PushReport): void {
    if (report.errors.length > 0) {
      this.notifications.partial(`${plural(report.errors.length, "item")} did not reach Shopify`, report);
    } else if (report.variants_affected === 0 && report.products_created === 0 && report.products_updated === 0) {
      this.notifications.success("Your shop was already up to date", report);
    } else {
      this.notifications.success("Pushed to Shopify", report);
    }
  }

  private renderPending(report: PushReport): void {
    this.pendingCounts.replaceChildren(
      ...pendingCounts(report).map((c) =>
        h("div", { class: "count" }, h("dt", {}, c.label), h("dd", { "data-count": c.key }, c.value.toLocaleString("en"))),
      ),
    );
    this.pendingNote.textContent =
      report.variants_affected === 0
        ? "Your shop holds everything in this catalog."
        : report.variants_affected >= CONFIRM_AT
          ? `You will be asked to confirm: ${plural(report.variants_affected, "variant")} will change on your shop.`
          : "These go to your shop with the next push.";
  }

  private setBusy(busy: boolean, label: string): void {
    this.busy = busy;
    this.button.disabled = busy;
    this.button.setAttribute("aria-busy", String(busy));
    this.button.classList.toggle("is-busy", busy);
    this.buttonLabel.textContent = label;
  }
}

/** A job that ended in failure, with the items it names. */
class JobFailed extends ApiError {
  readonly items;
  constructor(job: PushJob) {
    super(500, job.error?.code ?? "push_failed", job.error?.message ?? "The push stopped before it finished. Push again to continue.");
    this.items = job.report?.errors ?? [];
  }
}

function asApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  return new ApiError(0, "unexpected", (e as Error)?.message ?? String(e));
}

function failureTitle(error: ApiError): string {
  if (error.status === 401) return "Sign in again to push";
  if (error.status === 403) return "You can’t push this catalog";
  if (error.code === "push_running") return "A push is already running";
  if (error.code === "not_linked") return "Link a Shopify shop first";
  if (error.status === 0 && error.code === "still_running") return "The push is taking a while";
  if (error.status === 0) return "Fibermade could not be reached";
  if (error.status === 503) return "Shopify or Fibermade is busy";
  return "The push failed";
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
