// The push API as the page uses it: preview, push (answered inline or as a
// job), the job's status, and the sync log. Every failure becomes an
// `ApiError` that says what the dyer can do next.

export interface ItemError {
  entity: string;
  name: string;
  message: string;
  retryable: boolean;
}

export interface PushReport {
  dry_run: boolean;
  products_created: number;
  products_updated: number;
  products_unchanged: number;
  variants_created: number;
  variants_updated: number;
  quantities_set: number;
  quantities_unchanged: number;
  sales_merged: number;
  variants_affected: number;
  errors: ItemError[];
  shopify_calls: number;
  shopify_cost: number;
}

export type JobStatus = "queued" | "running" | "succeeded" | "partial" | "failed";

export interface PushJob {
  job_id: string;
  account_id?: string;
  status: JobStatus;
  created_at?: string;
  updated_at?: string;
  progress?: { products_total: number; products_done: number } | null;
  report?: PushReport | null;
  error?: { code: string; message: string } | null;
}

/** A job the API accepted; its status is read at `statusUrl`. */
export interface AcceptedJob {
  jobId: string;
  status: JobStatus;
  statusUrl: string;
}

export type PushOutcome =
  | { kind: "report"; report: PushReport }
  | { kind: "job"; job: AcceptedJob };

export interface LogEntry {
  account_id: string;
  integration_id?: string | null;
  entity: string;
  direction: "push" | "pull";
  source: "manual_push" | "webhook" | "observer" | "import";
  status: "success" | "warning" | "error";
  message: string;
  data: unknown;
  at: string;
}

export class ApiError extends Error {
  constructor(
    /** The HTTP status, or 0 when no answer came. */
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "ApiError";
  }

  /** Whether trying again later can help. */
  get retryable(): boolean {
    return this.status === 0 || this.status === 409 || this.status >= 500;
  }
}

export class PushApi {
  constructor(
    private readonly base: string,
    private readonly account: string,
    private readonly token: string,
  ) {}

  preview(): Promise<PushReport> {
    return this.json<PushReport>("POST", this.path("/push/preview"), {});
  }

  async push(body: { colorway_id?: string } = {}): Promise<PushOutcome> {
    const response = await this.send("POST", this.path("/push"), body);
    if (response.status === 202) {
      const accepted = (await readJson(response)) as Partial<{
        job_id: string;
        status: JobStatus;
        status_url: string;
      }>;
      const statusUrl = accepted.status_url ?? response.headers.get("location");
      if (!accepted.job_id || !statusUrl) {
        throw new ApiError(502, "bad_answer", "The push was accepted but no job was named; check the sync activity.");
      }
      return {
        kind: "job",
        job: { jobId: accepted.job_id, status: accepted.status ?? "queued", statusUrl },
      };
    }
    return { kind: "report", report: (await this.expectOk(response)) as PushReport };
  }

  /** The job at `statusUrl`, a path the API gave (or a full URL). */
  job(statusUrl: string): Promise<PushJob> {
    const url = /^https?:\/\//.test(statusUrl) ? statusUrl : this.base + statusUrl;
    return this.json<PushJob>("GET", url);
  }

  async syncLog(limit: number): Promise<LogEntry[]> {
    const answer = await this.json<{ entries: LogEntry[] }>(
      "GET",
      this.path(`/sync-log?limit=${encodeURIComponent(String(limit))}`),
    );
    return answer.entries ?? [];
  }

  private path(rest: string): string {
    return `${this.base}/accounts/${encodeURIComponent(this.account)}${rest}`;
  }

  private async json<T>(method: string, url: string, body?: unknown): Promise<T> {
    return (await this.expectOk(await this.send(method, url, body))) as T;
  }

  private async send(method: string, url: string, body?: unknown): Promise<Response> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}` };
    const init: RequestInit = { method, headers, cache: "no-store" };
    if (body !== undefined) {
      headers["content-type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    try {
      return await fetch(url, init);
    } catch {
      throw new ApiError(0, "unreachable", "Fibermade could not be reached. Check your connection and try again.");
    }
  }

  /** The body of a 2xx answer (200 and 207 both carry a report). */
  private async expectOk(response: Response): Promise<unknown> {
    const body = await readJson(response);
    if (response.ok) {
      return body;
    }
    throw apiError(response.status, body);
  }
}

async function readJson(response: Response): Promise<unknown> {
  const text = await response.text();
  if (!text) {
    return null;
  }
  try {
    return JSON.parse(text);
  } catch {
    return { message: text };
  }
}

/** The function's `{"error": {code, message}}`, or the gateway's `{"message"}`. */
function apiError(status: number, body: unknown): ApiError {
  const shaped = body as { error?: { code?: string; message?: string }; message?: string } | null;
  const code = shaped?.error?.code ?? defaultCode(status);
  const given = shaped?.error?.message;
  return new ApiError(status, code, given ? sentence(given) : fallbackMessage(status));
}

/** The function's messages are written to follow a colon; the page shows them alone. */
function sentence(text: string): string {
  const trimmed = text.trim();
  const capital = trimmed.charAt(0).toUpperCase() + trimmed.slice(1);
  return /[.!?]$/.test(capital) ? capital : `${capital}.`;
}

function defaultCode(status: number): string {
  if (status === 401) return "unauthorized";
  if (status === 403) return "forbidden";
  if (status === 404) return "not_found";
  if (status === 503) return "unavailable";
  return "error";
}

function fallbackMessage(status: number): string {
  if (status === 401) return "Your session has expired. Sign in again to push.";
  if (status === 403) return "You may not do this for this account.";
  if (status === 404) return "Fibermade does not know this page.";
  if (status === 503 || status === 504) return "Fibermade is busy right now. Try again in a minute.";
  return `Fibermade answered with an error (HTTP ${status}). Try again; if it keeps happening, contact support.`;
}
