// The push's progress under the header: indeterminate while the API works
// on an inline push or a job waits in the queue, a real figure once a job
// reports products done.

import { byId } from "./dom";

export class Progress {
  private readonly region = byId("push-progress");
  private readonly bar = byId<HTMLProgressElement>("push-progress-bar");
  private readonly label = byId("push-progress-label");

  /** Work of unknown length: `text` says what is happening. */
  busy(text: string): void {
    this.region.hidden = false;
    this.region.dataset.state = "busy";
    this.bar.removeAttribute("value");
    this.bar.removeAttribute("aria-valuetext");
    this.label.textContent = text;
  }

  /** `done` of `total` products pushed. */
  products(done: number, total: number): void {
    this.region.hidden = false;
    this.region.dataset.state = "counting";
    this.bar.max = Math.max(total, 1);
    this.bar.value = Math.min(done, total);
    const text = `${done.toLocaleString("en")} of ${total.toLocaleString("en")} products pushed`;
    this.bar.setAttribute("aria-valuetext", text);
    this.label.textContent = text;
  }

  hide(): void {
    this.region.hidden = true;
    delete this.region.dataset.state;
  }
}
