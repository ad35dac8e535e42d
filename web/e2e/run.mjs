// Runs one browser scenario against a page the caller has set up:
//
//   PAGE_URL=… ARTIFACTS_DIR=… node e2e/run.mjs <scenario>
//
// It talks to its caller (the Rust test that started the local stack) in
// lines on stdout: `@wait <label>` when the caller has to act on the stack
// (it answers with a line on stdin), and a final `@result <json>` with what
// the page showed. Anything the page got wrong fails the run (exit 1,
// `@error <message>`). Screenshots go to ARTIFACTS_DIR.

import { mkdir } from "node:fs/promises";
import { createInterface } from "node:readline";
import { openBrowser } from "./browser.mjs";
import { scenarios } from "./scenarios.mjs";

const name = process.argv[2];
const scenario = scenarios[name];
if (!scenario) {
  console.log(`@error no scenario named ${name}; known: ${Object.keys(scenarios).join(", ")}`);
  process.exit(2);
}
const pageUrl = process.env.PAGE_URL;
const artifacts = process.env.ARTIFACTS_DIR;
if (!pageUrl || !artifacts) {
  console.log("@error PAGE_URL and ARTIFACTS_DIR must be set");
  process.exit(2);
}
await mkdir(artifacts, { recursive: true });

const stdin = createInterface({ input: process.stdin });
const answers = stdin[Symbol.asyncIterator]();

const ctx = {
  pageUrl,
  /** Lets the caller act on the stack, and waits until it has. */
  async waitFor(label) {
    console.log(`@wait ${label}`);
    const { value, done } = await answers.next();
    if (done) throw new Error(`the caller went away while the page waited for ${label}`);
    return value;
  },
  async screenshot(page, label) {
    await page.screenshot({ path: `${artifacts}/${label}.png`, fullPage: true });
  },
  log(...args) {
    console.error(`[${name}]`, ...args);
  },
};

const browser = await openBrowser();
let failed = null;
try {
  const result = await scenario(browser.page, ctx);
  if (browser.consoleErrors.length) {
    result.console_errors = browser.consoleErrors;
  }
  console.log(`@result ${JSON.stringify(result)}`);
} catch (error) {
  failed = error;
  await ctx.screenshot(browser.page, "failure").catch(() => {});
  console.log(`@error ${String(error?.stack ?? error).replace(/\n/g, " | ")}`);
} finally {
  await browser.close();
  stdin.close();
}
process.exit(failed ? 1 : 0);
