// What a dyer does on the push page, click by click. Each scenario checks
// what the page must show whatever the figures are, and returns what it
// showed; the Rust test that set up the stack compares that with the shop.

import assert from "node:assert/strict";
import { createRequire } from "node:module";

const AXE = createRequire(import.meta.url).resolve("axe-core/axe.min.js");

const PUSH_TIMEOUT = 90_000;

async function open(page, ctx, url = ctx.pageUrl) {
  await page.goto(url);
  await page.locator("body[data-ready=true]").waitFor({ timeout: 30_000 });
}

/** `{report field: number}` for every `[data-count]` inside `scope`. */
async function counts(scope) {
  return scope.locator("[data-count]").evaluateAll((nodes) =>
    Object.fromEntries(nodes.map((n) => [n.dataset.count, Number(n.textContent.replace(/[^\d-]/g, ""))])),
  );
}

/** The activity panel's entries, newest first. */
async function entries(page) {
  return page.locator("#activity-list li.activity-entry").evaluateAll((nodes) =>
    nodes.map((n) => ({
      source: n.dataset.source,
      status: n.dataset.status,
      entity: n.dataset.entity,
      label: n.querySelector(".source")?.textContent,
      status_label: n.querySelector(".status")?.textContent,
      message: n.querySelector(".message")?.textContent,
      time: n.querySelector("time")?.textContent,
      datetime: n.querySelector("time")?.getAttribute("datetime"),
      is_new: n.classList.contains("is-new"),
    })),
  );
}

async function until(check, what, timeout = 30_000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

/** Runs axe-core on the page as it is; serious and critical findings fail. */
async function expectAccessible(page, what) {
  await page.addScriptTag({ path: AXE });
  const findings = await page.evaluate(async () => {
    const result = await window.axe.run(document, { resultTypes: ["violations"] });
    return result.violations
      .filter((v) => v.impact === "serious" || v.impact === "critical")
      .map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`);
  });
  assert.deepEqual(findings, [], `accessibility of ${what}`);
}

function pushButton(page) {
  return page.getByRole("button", { name: "Push to Shopify" });
}

async function expectIdle(page) {
  await page.locator('#push-button[aria-busy="false"]:not([disabled])').waitFor({ timeout: 10_000 });
  assert.equal(await page.locator("#push-button-label").textContent(), "Push to Shopify");
  assert.ok(await page.locator("#push-progress").isHidden(), "the progress bar is gone after the push");
}

/** Clicks the push action and checks the page says it is working. */
async function startPush(page) {
  const button = pushButton(page);
  assert.ok(await button.isEnabled(), "the push action is available");
  assert.equal(await page.locator("header .page-actions #push-button").count(), 1, "the push action is in the page header's actions");
  assert.equal(await button.locator("svg.icon").count(), 1, "the push action has an icon");
  await button.click();
  await page.locator('#push-button[aria-busy="true"][disabled]').waitFor({ timeout: 5_000 });
}

export const scenarios = {
  async "push-success"(page, ctx) {
    await open(page, ctx);
    const pending = await counts(page.locator("#pending-counts"));
    const before = await entries(page);
    await ctx.screenshot(page, "1-before-push");

    await startPush(page);
    const progress = page.locator("#push-progress");
    await progress.waitFor({ state: "visible", timeout: 5_000 });
    // First the dry run, then the push itself.
    const checkingLabel = await page.locator("#push-button-label").textContent();
    await page.locator("#push-button-label", { hasText: "Pushing…" }).waitFor({ timeout: 10_000 });
    assert.ok(await page.locator('#push-button[aria-busy="true"]').isVisible(), "the button is busy while the push runs");
    const busyLabel = await page.locator("#push-button-label").textContent();
    const progressLabel = await page.locator("#push-progress-label").textContent();
    await ctx.screenshot(page, "2-pushing");

    const note = page.getByRole("status").filter({ hasText: "Pushed to Shopify" });
    await note.waitFor({ timeout: PUSH_TIMEOUT });
    const shown = await counts(note);
    for (const key of ["variants_updated", "products_created", "quantities_set"]) {
      assert.ok(Number.isInteger(shown[key]), `the success notification shows ${key}`);
    }
    assert.equal(await page.getByRole("alert").count(), 0, "no error is shown");
    await expectIdle(page);

    const top = await until(async () => {
      const now = await entries(page);
      return now.length > before.length && now[0].source === "manual_push" ? now[0] : null;
    }, "the push in the activity panel");
    assert.equal(top.label, "Push");
    assert.match(top.status_label, /Succeeded/);
    const after = await until(async () => {
      const now = await counts(page.locator("#pending-counts"));
      return now.variants_affected === 0 ? now : null;
    }, "nothing left to push");
    await expectAccessible(page, "the page after a push");
    await ctx.screenshot(page, "3-pushed");
    return { pending_before: pending, shown, checking_label: checkingLabel, busy_label: busyLabel, progress_label: progressLabel, activity_top: top, pending_after: after };
  },

  async "push-errors"(page, ctx) {
    await open(page, ctx);
    await startPush(page);
    const alert = page.getByRole("alert");
    await alert.waitFor({ timeout: PUSH_TIMEOUT });
    const title = await alert.locator(".notification-title").textContent();
    const failures = await alert.locator("li.failure").evaluateAll((nodes) =>
      nodes.map((n) => ({
        entity: n.dataset.entity,
        name: n.querySelector(".failure-name")?.textContent,
        message: n.querySelector(".failure-message")?.textContent,
        advice: n.querySelector(".tag")?.textContent,
      })),
    );
    assert.ok(failures.length > 0, "the error notification lists the failed items");
    const shown = await counts(alert);
    await expectIdle(page);
    const logged = await until(async () => {
      const now = await entries(page);
      return now.find((e) => e.source === "manual_push" && e.status === "error") ?? null;
    }, "the failed push in the activity panel");
    await expectAccessible(page, "the error notification");
    await ctx.screenshot(page, "push-with-errors");
    return { title, failures, shown, logged };
  },

  async "confirm-cancel"(page, ctx) {
    await open(page, ctx);
    const pending = await counts(page.locator("#pending-counts"));
    await startPush(page);
    const dialog = page.getByRole("alertdialog");
    await dialog.waitFor({ state: "visible", timeout: 30_000 });
    const title = await dialog.locator("h2").textContent();
    const inDialog = await counts(dialog);
    assert.equal(
      await page.evaluate(() => document.activeElement?.id),
      "confirm-cancel",
      "Cancel has the focus, so Enter does not push",
    );
    await expectAccessible(page, "the confirmation dialog");
    await ctx.screenshot(page, "1-confirm-dialog");

    await dialog.getByRole("button", { name: "Cancel" }).click();
    await dialog.waitFor({ state: "hidden", timeout: 5_000 });
    const note = page.getByRole("status").filter({ hasText: "Push cancelled" });
    await note.waitFor({ timeout: 5_000 });
    await expectIdle(page);
    await ctx.screenshot(page, "2-cancelled");

    // Escape cancels too.
    await startPush(page);
    await dialog.waitFor({ state: "visible", timeout: 30_000 });
    await page.keyboard.press("Escape");
    await dialog.waitFor({ state: "hidden", timeout: 5_000 });
    await expectIdle(page);
    const pendingAfter = await counts(page.locator("#pending-counts"));
    return { pending, title, in_dialog: inDialog, pending_after: pendingAfter };
  },

  async "job-progress"(page, ctx) {
    await open(page, ctx);
    const pending = await counts(page.locator("#pending-counts"));
    await startPush(page);
    const dialog = page.getByRole("alertdialog");
    await dialog.waitFor({ state: "visible", timeout: 30_000 });
    await dialog.getByRole("button", { name: /^Push \d+ variants$/ }).click();

    // Watch the bar until the push ends: it must count products as the job runs.
    const samples = [];
    let shotTaken = false;
    const note = page.getByRole("status").filter({ hasText: "Pushed to Shopify" });
    const deadline = Date.now() + PUSH_TIMEOUT;
    while (!(await note.isVisible()) && !(await page.getByRole("alert").isVisible())) {
      assert.ok(Date.now() < deadline, "the push ended in time");
      const sample = await page.locator("#push-progress").evaluate((region) => {
        const bar = region.querySelector("progress");
        return {
          hidden: region.hidden,
          state: region.dataset.state ?? null,
          value: bar.hasAttribute("value") ? bar.value : null,
          max: bar.max,
          text: region.querySelector("label")?.textContent,
          valuetext: bar.getAttribute("aria-valuetext"),
        };
      });
      if (!sample.hidden) samples.push(sample);
      if (sample.state === "counting" && sample.value > 0 && !shotTaken) {
        await ctx.screenshot(page, "1-job-progress");
        shotTaken = true;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(await page.getByRole("alert").count(), 0, "the job succeeded");
    const shown = await counts(note);
    await expectIdle(page);
    await ctx.screenshot(page, "2-job-done");
    const counted = samples.filter((s) => s.state === "counting");
    assert.ok(counted.length > 0, "the bar showed products done");
    return {
      pending,
      shown,
      values: [...new Set(counted.map((s) => s.value))],
      max: Math.max(...counted.map((s) => s.max)),
      texts: [...new Set(samples.map((s) => s.text))],
    };
  },

  async "activity-updates"(page, ctx) {
    await open(page, ctx);
    const before = await until(async () => {
      const now = await entries(page);
      return now.length > 0 ? now : null;
    }, "the activity panel's first entries");
    assert.equal(await page.getByRole("list", { name: /Recent sync activity/ }).count(), 1);
    await ctx.screenshot(page, "1-activity-before");

    await ctx.waitFor("sale");
    // No reload: the panel refreshes by itself.
    const arrived = await until(async () => {
      const now = await entries(page);
      return now.length > before.length && now[0].source === "webhook" ? now[0] : null;
    }, "the sale pulled from Shopify in the activity panel", 30_000);
    await ctx.screenshot(page, "2-activity-after-sale");
    return { before: before.length, arrived };
  },

  async unauthorized(page, ctx) {
    await open(page, ctx);
    const note = await until(async () => {
      const text = await page.locator("#pending-note").textContent();
      return /sign in/i.test(text) ? text : null;
    }, "the page asking to sign in");
    assert.ok(await page.locator("#push-button").isDisabled(), "a dyer who is not signed in cannot push");
    const activity = await until(async () => {
      const text = await page.locator("#activity-state").textContent();
      return /Could not refresh/.test(text) ? text : null;
    }, "the activity panel saying it could not load");
    await ctx.screenshot(page, "signed-out");
    return { note, activity };
  },
};
