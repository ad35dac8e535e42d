//! The HTTP face of the push (API Gateway HTTP API → `inventory-push`).
//!
//! | route | what |
//! |---|---|
//! | `POST /accounts/{account}/push` | push the account, or one colorway with `{"colorway_id": …}`; `{"dry_run": true}` or `?dry_run=true` only counts |
//! | `POST /accounts/{account}/push/preview` | the same as a dry run |
//! | `GET /accounts/{account}/push/jobs/{job}` | a push running as a job: status, progress, report |
//! | `GET /accounts/{account}/sync-log?limit=N` | recent integration-log entries, newest first |
//!
//! A push whose plan touches more than [`PushApi::job_threshold`] variants
//! would not finish inside API Gateway's 30 s: it is answered `202 Accepted`
//! with a job id and a `Location` to poll, and runs in the sync worker.

use std::collections::HashMap;

use lambda_http::http::{Method, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;

use super::auth::{self, AuthError};
use super::{PushError, PushRequest, PushScope, Pusher};
use crate::domain::{AccountId, ColorwayId, UserId};
use crate::jobs::{self, CatalogJob, JobQueue};
use crate::metrics::{self, Operation, Outcome, SyncRecord};
use crate::store::{PushJobRecord, PushJobStatus};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PushBody {
    #[serde(default)]
    colorway_id: Option<String>,
    #[serde(default)]
    dry_run: bool,
}

enum Route {
    Push { account: String, preview: bool },
    PushJob { account: String, job: String },
    SyncLog { account: String },
}

/// Everything the push API needs.
#[derive(Clone)]
pub struct PushApi {
    pub pusher: Pusher,
    /// Where pushes too large for one request go; without a queue every push
    /// runs within its request.
    pub jobs: Option<JobQueue>,
    /// Variants a push may touch and still run within its request.
    pub job_threshold: u64,
}

impl PushApi {
    /// An API that runs every push within its request.
    pub fn inline(pusher: Pusher) -> Self {
        Self {
            pusher,
            jobs: None,
            job_threshold: DEFAULT_JOB_THRESHOLD,
        }
    }
}

/// Variants a push may touch within one request, unless configured: at
/// about 3 products a second once the shop's bucket is spent, 250 variants
/// of a 6-base catalog is 40 products, well inside 30 s.
pub const DEFAULT_JOB_THRESHOLD: u64 = 250;

fn route(method: &Method, path: &str) -> Option<Route> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, parts.as_slice()) {
        (&Method::POST, ["accounts", account, "push"]) => Some(Route::Push {
            account: (*account).to_owned(),
            preview: false,
        }),
        (&Method::POST, ["accounts", account, "push", "preview"]) => Some(Route::Push {
            account: (*account).to_owned(),
            preview: true,
        }),
        (&Method::GET, ["accounts", account, "sync-log"]) => Some(Route::SyncLog {
            account: (*account).to_owned(),
        }),
        (&Method::GET, ["accounts", account, "push", "jobs", job]) => Some(Route::PushJob {
            account: (*account).to_owned(),
            job: (*job).to_owned(),
        }),
        _ => None,
    }
}

/// The claims the HTTP API's JWT authorizer verified, if any.
fn claims(request: &Request) -> Option<HashMap<String, String>> {
    match request.request_context_ref()? {
        RequestContext::ApiGatewayV2(ctx) => ctx
            .authorizer
            .as_ref()?
            .jwt
            .as_ref()
            .map(|j| j.claims.clone()),
        _ => None,
    }
}

fn respond(status: StatusCode, body: serde_json::Value) -> Response<Body> {
    let mut response = Response::new(Body::Text(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        "content-type",
        lambda_http::http::HeaderValue::from_static("application/json"),
    );
    response
}

fn error(status: StatusCode, code: &str, message: impl std::fmt::Display) -> Response<Body> {
    respond(
        status,
        json!({ "error": { "code": code, "message": message.to_string() } }),
    )
}

fn auth_error(e: AuthError) -> Response<Body> {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::UNAUTHORIZED);
    let code = if e.status() == 403 {
        "forbidden"
    } else {
        "unauthorized"
    };
    error(status, code, e)
}

/// Handles one request. Never fails: every problem is an HTTP answer.
#[tracing::instrument(name = "push_request", skip_all, fields(method = %request.method(), path = %request.uri().path()))]
pub async fn handle(api: &PushApi, request: Request) -> Response<Body> {
    let pusher = &api.pusher;
    let Some(route) = route(request.method(), request.uri().path()) else {
        return error(StatusCode::NOT_FOUND, "not_found", "no such route");
    };
    let caller =
        match auth::caller_from_claims(claims(&request).as_ref(), OffsetDateTime::now_utc()) {
            Ok(caller) => caller,
            Err(e) => {
                tracing::warn!(reason = %e, "request refused");
                return auth_error(e);
            }
        };
    let account_text = match &route {
        Route::Push { account, .. }
        | Route::SyncLog { account }
        | Route::PushJob { account, .. } => account.clone(),
    };
    let Ok(account_id) = account_text.parse::<AccountId>() else {
        return auth_error(AuthError::Forbidden);
    };
    let account = match pusher.store.get_account(&account_id).await {
        Ok(account) => account,
        Err(e) => {
            tracing::error!(error = %e, "could not read the account");
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "the catalog could not be read; try again",
            );
        }
    };

    match route {
        Route::PushJob { job, .. } => {
            if let Err(e) = auth::authorize_read(&caller, account.as_ref()) {
                return auth_error(e);
            }
            match pusher.store.get_push_job(&account_id, &job).await {
                Ok(Some(record)) => respond(
                    StatusCode::OK,
                    serde_json::to_value(&record).unwrap_or_default(),
                ),
                Ok(None) => error(
                    StatusCode::NOT_FOUND,
                    "unknown_job",
                    "no such push job (they are kept 7 days)",
                ),
                Err(e) => {
                    tracing::error!(error = %e, "could not read the push job");
                    error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "store_unavailable",
                        "the push job could not be read; try again",
                    )
                }
            }
        }
        Route::SyncLog { .. } => {
            if let Err(e) = auth::authorize_read(&caller, account.as_ref()) {
                return auth_error(e);
            }
            let limit = request
                .query_string_parameters_ref()
                .and_then(|q| q.first("limit"))
                .and_then(|l| l.parse::<i32>().ok())
                .unwrap_or(50)
                .clamp(1, 200);
            match pusher.store.recent_logs(&account_id, limit).await {
                Ok(entries) => respond(StatusCode::OK, json!({ "entries": entries })),
                Err(e) => {
                    tracing::error!(error = %e, "could not read the integration log");
                    error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "store_unavailable",
                        "the sync log could not be read; try again",
                    )
                }
            }
        }
        Route::Push { preview, .. } => {
            if let Err(e) = auth::authorize_push(&caller, account.as_ref()) {
                tracing::warn!(user_id = %caller.user_id, "push refused");
                return auth_error(e);
            }
            let body: PushBody = match request.body() {
                Body::Empty => PushBody::default(),
                body if body.is_empty() => PushBody::default(),
                body => match serde_json::from_slice(body.as_ref()) {
                    Ok(b) => b,
                    Err(e) => {
                        return error(
                            StatusCode::BAD_REQUEST,
                            "bad_request",
                            format!("the request body is not a push request: {e}"),
                        );
                    }
                },
            };
            let colorway_id = match body
                .colorway_id
                .map(|c| c.parse::<ColorwayId>())
                .transpose()
            {
                Ok(c) => c,
                Err(e) => return error(StatusCode::BAD_REQUEST, "bad_request", e),
            };
            let query_dry_run = request
                .query_string_parameters_ref()
                .and_then(|q| q.first("dry_run"))
                .is_some_and(|v| v == "true" || v == "1");
            let mut push = match colorway_id {
                Some(colorway) => PushRequest::colorway(account_id, colorway),
                None => PushRequest::account(account_id),
            };
            push.dry_run = preview || body.dry_run || query_dry_run;
            let started = std::time::Instant::now();
            let operation = if push.dry_run {
                Operation::Preview
            } else {
                Operation::Push
            };
            let record = |outcome: Outcome, items: u64| {
                metrics::record(
                    SyncRecord::new(operation, outcome, started.elapsed())
                        .account(&push.account_id)
                        .items_failed(items),
                );
            };
            if !push.dry_run
                && let Some(queue) = &api.jobs
            {
                let queued = queue_if_large(api, queue, &push, &caller.user_id).await;
                match queued {
                    Ok(Some(response)) => {
                        match response.status() {
                            StatusCode::ACCEPTED => record(Outcome::Queued, 0),
                            _ => record(Outcome::Failed, 0),
                        }
                        return response;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        record(metrics::push_error_outcome(&e), 0);
                        return push_error(e);
                    }
                }
            }
            let result = pusher.push(&push).await;
            let (outcome, items) = metrics::push_outcome(&result);
            record(outcome, items);
            match result {
                Ok(report) => {
                    let status = if report.errors.is_empty() {
                        StatusCode::OK
                    } else {
                        StatusCode::MULTI_STATUS
                    };
                    respond(status, serde_json::to_value(&report).unwrap_or_default())
                }
                Err(e) => push_error(e),
            }
        }
    }
}

/// Plans the push; if it touches more variants than one request can carry,
/// queues it as a job and answers `202 Accepted` with where to poll.
async fn queue_if_large(
    api: &PushApi,
    queue: &JobQueue,
    push: &PushRequest,
    user: &UserId,
) -> Result<Option<Response<Body>>, PushError> {
    let plan = api.pusher.push(&push.clone().dry_run()).await?;
    if plan.variants_affected <= api.job_threshold {
        return Ok(None);
    }
    let colorway = match &push.scope {
        PushScope::Colorway(c) => Some(c.clone()),
        _ => None,
    };
    let products = plan.products_created + plan.products_updated;
    let record = jobs::new_push_job(&push.account_id, user, colorway.clone(), products);
    api.pusher.store.put_push_job(&record).await?;
    let job = CatalogJob::Push {
        account_id: push.account_id.clone(),
        job_id: record.job_id.clone(),
        colorway_id: colorway,
        requested_by: user.clone(),
    };
    if let Err(e) = queue
        .send_all(std::slice::from_ref(&job), &record.job_id)
        .await
    {
        tracing::error!(error = %e, "push job not queued");
        // The status route must not show a job that will never run.
        let failed = PushJobRecord {
            status: PushJobStatus::Failed,
            error: Some(json!({
                "code": "queue_unavailable",
                "message": "the push could not be queued",
            })),
            updated_at: OffsetDateTime::now_utc(),
            ..record
        };
        if let Err(e) = api.pusher.store.put_push_job(&failed).await {
            tracing::error!(error = %e, "push job status not recorded");
        }
        return Ok(Some(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "queue_unavailable",
            "the push could not be queued; try again",
        )));
    }
    let status_url = format!("/accounts/{}/push/jobs/{}", push.account_id, record.job_id);
    tracing::info!(job_id = %record.job_id, variants_affected = plan.variants_affected, "push queued as a job");
    let mut response = respond(
        StatusCode::ACCEPTED,
        json!({
            "job_id": record.job_id,
            "status": record.status,
            "status_url": status_url,
            "plan": plan,
        }),
    );
    if let Ok(location) = lambda_http::http::HeaderValue::from_str(&status_url) {
        response.headers_mut().insert("location", location);
    }
    Ok(Some(response))
}

fn push_error(e: PushError) -> Response<Body> {
    tracing::error!(error = %e, retryable = e.is_retryable(), "push failed");
    match &e {
        PushError::UnknownAccount(_) => auth_error(AuthError::Forbidden),
        PushError::UnknownColorway(_) => error(StatusCode::NOT_FOUND, "unknown_colorway", e),
        PushError::NotLinked(_) | PushError::NoLocation => {
            error(StatusCode::CONFLICT, "not_linked", e)
        }
        PushError::Busy => error(StatusCode::CONFLICT, "push_running", e),
        PushError::Shopify(inner) if inner.is_retryable() => {
            error(StatusCode::SERVICE_UNAVAILABLE, "shopify_unavailable", e)
        }
        PushError::Shopify(_) => error(StatusCode::BAD_GATEWAY, "shopify_refused", e),
        PushError::Store(_) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            "the catalog could not be read or written; try again",
        ),
    }
}
