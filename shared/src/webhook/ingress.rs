//! The webhook ingress (Lambda Function URL → `webhook-ingress`): verify,
//! check, queue, answer, well inside Shopify's 5 seconds.
//!
//! Status codes tell Shopify what to do next:
//! - 401: the signature is missing or wrong; nothing is stored.
//! - 200: accepted and queued, or permanently unprocessable (wrong topic,
//!   unknown shop, unreadable body), which is logged as an error with the
//!   payload kept for inspection; a retry could not help, so Shopify must not.
//! - 405, 413: not a delivery (wrong method, body too large).
//! - 503: the queue or the store is unreachable; Shopify retries later.

use aws_lambda_events::event::apigw::ApiGatewayV2httpRequest;
use aws_sdk_sqs::types::MessageAttributeValue;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use lambda_http::http::{HeaderMap, Method, StatusCode, Uri};
use lambda_http::{Body, Request, Response};
use serde_json::json;
use time::OffsetDateTime;

use super::signature::{HmacSignature, SignatureError, WebhookSecret};
use super::{INVENTORY_LEVELS_UPDATE, InventoryLevelUpdate, PullJob};
use crate::domain::{Direction, IntegrationLogEntry, LogSource, LogStatus};
use crate::metrics::{self, Operation, SyncRecord};
use crate::store::Store;

/// Shopify's inventory deliveries are a few hundred bytes; anything far
/// larger is not one of them.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// How much of an unprocessable payload is kept in the log.
const KEPT_PAYLOAD_BYTES: usize = 4096;

/// What the ingress needs, built once per Lambda instance.
#[derive(Clone)]
pub struct Ingress {
    pub store: Store,
    pub sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
    pub secret: WebhookSecret,
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

fn answer(status: StatusCode, body: serde_json::Value) -> Response<Body> {
    let mut response = Response::new(Body::Text(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        "content-type",
        lambda_http::http::HeaderValue::from_static("application/json"),
    );
    response
}

fn kept(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(KEPT_PAYLOAD_BYTES)]).into_owned()
}

/// Why a Function URL event could not be read as a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("the event is not a Function URL request: {0}")]
    Shape(String),
    #[error("the event's body is marked base64 but does not decode")]
    Base64,
}

/// Reads a Function URL event as Lambda hands it over, into the request
/// the ingress reads: method, headers and body.
///
/// `lambda_http`'s own conversion panics on events it cannot turn into a
/// URI or whose body is marked base64 but does not decode, and the runtime
/// reads the event outside its panic guard, so the process would die. This
/// one refuses such an event instead; it keeps only a path for the URI,
/// since the ingress answers every path alike. A Function URL sets the host
/// and encodes bodies itself: only a direct invocation can send such an
/// event.
pub fn request_from_event(event: &str) -> Result<Request, EventError> {
    let event: ApiGatewayV2httpRequest =
        serde_json::from_str(event).map_err(|e| EventError::Shape(e.to_string()))?;
    let body = match event.body {
        None => Body::Empty,
        Some(text) if event.is_base64_encoded => {
            Body::Binary(STANDARD.decode(&text).map_err(|_| EventError::Base64)?)
        }
        Some(text) => Body::Text(text),
    };
    let uri = event
        .raw_path
        .as_deref()
        .and_then(|path| Uri::try_from(path).ok())
        .filter(|uri| uri.path().starts_with('/') && uri.host().is_none())
        .unwrap_or_else(|| Uri::from_static("/"));
    let mut request = Request::new(body);
    *request.method_mut() = event.request_context.http.method;
    *request.uri_mut() = uri;
    *request.headers_mut() = event.headers;
    Ok(request)
}

/// Handles one delivery. Never fails: every outcome is an HTTP answer, and
/// each is counted (see [`crate::metrics::webhook_outcome`]).
pub async fn handle(ingress: &Ingress, request: Request) -> Response<Body> {
    let started = std::time::Instant::now();
    let response = receive(ingress, request).await;
    let outcome = metrics::webhook_outcome(response.status().as_u16(), response.body().as_ref());
    metrics::record(SyncRecord::new(
        Operation::Webhook,
        outcome,
        started.elapsed(),
    ));
    response
}

/// A delivery that passed the checks needing no AWS: POSTed, small enough,
/// and signed by the app's secret. Its headers, as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Screened {
    pub webhook_id: String,
    pub event_id: String,
    /// `X-Shopify-Shop-Domain`, lower-cased.
    pub shop: String,
    pub topic: String,
    pub triggered_at: Option<String>,
}

impl Screened {
    /// The pull job for this delivery, if its body is an inventory update.
    pub fn job(&self, body: &[u8]) -> Result<PullJob, serde_json::Error> {
        let update: InventoryLevelUpdate = serde_json::from_slice(body)?;
        Ok(PullJob {
            webhook_id: self.webhook_id.clone(),
            event_id: self.event_id.clone(),
            triggered_at: self.triggered_at.clone(),
            shop_domain: self.shop.clone(),
            update,
        })
    }
}

/// Why a delivery was refused before anything was stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("deliveries are POSTed")]
    Method,
    #[error("body too large")]
    TooLarge { bytes: usize },
    #[error(transparent)]
    Signature(#[from] SignatureError),
}

impl Refused {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Method => StatusCode::METHOD_NOT_ALLOWED,
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Signature(_) => StatusCode::UNAUTHORIZED,
        }
    }

    /// The answer Shopify gets: the reason, never the signature or body.
    pub fn answer(&self) -> Response<Body> {
        answer(self.status(), json!({ "error": self.to_string() }))
    }
}

/// The checks that need neither the store nor the queue, in the order they
/// run: the method, the body's size, then the signature over the raw body,
/// before anything reads it. Nothing has been stored when one refuses.
pub fn screen(request: &Request, secret: &WebhookSecret) -> Result<Screened, Refused> {
    if request.method() != Method::POST {
        return Err(Refused::Method);
    }
    let headers = request.headers();
    let body: &[u8] = request.body().as_ref();
    if body.len() > MAX_BODY_BYTES {
        tracing::warn!(bytes = body.len(), "delivery refused: body too large");
        return Err(Refused::TooLarge { bytes: body.len() });
    }

    let verified = HmacSignature::parse(header(headers, "x-shopify-hmac-sha256"))
        .and_then(|signature| signature.verify(secret, body));
    if let Err(e) = verified {
        tracing::warn!(reason = %e, "delivery refused: bad signature");
        return Err(e.into());
    }

    let text = |name: &str| header(headers, name).unwrap_or_default().to_owned();
    Ok(Screened {
        webhook_id: text("x-shopify-webhook-id"),
        event_id: text("x-shopify-event-id"),
        shop: text("x-shopify-shop-domain").to_ascii_lowercase(),
        topic: text("x-shopify-topic"),
        triggered_at: header(headers, "x-shopify-triggered-at").map(str::to_owned),
    })
}

#[tracing::instrument(name = "webhook", skip_all, fields(webhook_id = tracing::field::Empty, event_id = tracing::field::Empty, shop = tracing::field::Empty))]
async fn receive(ingress: &Ingress, request: Request) -> Response<Body> {
    let screened = match screen(&request, &ingress.secret) {
        Ok(screened) => screened,
        Err(refusal) => return refusal.answer(),
    };
    let body: &[u8] = request.body().as_ref();

    let span = tracing::Span::current();
    span.record("webhook_id", screened.webhook_id.as_str());
    span.record("event_id", screened.event_id.as_str());
    span.record("shop", screened.shop.as_str());
    let shop = &screened.shop;
    let webhook_id = &screened.webhook_id;
    let event_id = &screened.event_id;

    let integration = match ingress.store.integration_by_shop(shop).await {
        Ok(Some((integration, _))) => integration,
        Ok(None) => {
            tracing::error!(payload = %kept(body), "delivery from a shop no integration knows; dropped");
            return answer(
                StatusCode::OK,
                json!({ "accepted": false, "reason": "unknown shop" }),
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "could not look the shop up; Shopify will retry");
            return answer(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({ "error": "try again" }),
            );
        }
    };

    let log_unprocessable = |reason: String| IntegrationLogEntry {
        account_id: integration.account_id.clone(),
        integration_id: Some(integration.id.clone()),
        entity: format!("webhook:{webhook_id}"),
        direction: Direction::Pull,
        source: LogSource::Webhook,
        status: LogStatus::Error,
        message: reason,
        data: json!({ "payload": kept(body), "event_id": event_id, "topic": screened.topic }),
        at: OffsetDateTime::now_utc(),
    };

    let topic = screened.topic.as_str();
    if topic != INVENTORY_LEVELS_UPDATE {
        let entry = log_unprocessable(format!(
            "Webhook with topic {topic:?} ignored: only {INVENTORY_LEVELS_UPDATE} is handled"
        ));
        tracing::error!(topic, payload = %kept(body), "delivery of an unhandled topic; dropped");
        return store_and_accept(ingress, entry, "unhandled topic").await;
    }

    let job = match screened.job(body) {
        Ok(job) => job,
        Err(e) => {
            let entry = log_unprocessable(format!(
                "Webhook body could not be read ({e}); kept for inspection"
            ));
            tracing::error!(error = %e, payload = %kept(body), "unreadable delivery; dropped");
            return store_and_accept(ingress, entry, "unreadable body").await;
        }
    };

    match enqueue(ingress, &job).await {
        Ok(()) => {
            tracing::info!(
                inventory_item_id = job.update.inventory_item_id,
                "delivery queued"
            );
            answer(StatusCode::OK, json!({ "accepted": true }))
        }
        Err(e) => {
            tracing::error!(error = %e, "could not queue the delivery; Shopify will retry");
            answer(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({ "error": "try again" }),
            )
        }
    }
}

/// Logs a permanently unprocessable delivery and answers 200, unless the log
/// cannot be written (then 503, so the payload is not lost).
async fn store_and_accept(
    ingress: &Ingress,
    entry: IntegrationLogEntry,
    reason: &str,
) -> Response<Body> {
    match ingress.store.append_log(&entry).await {
        Ok(()) => answer(
            StatusCode::OK,
            json!({ "accepted": false, "reason": reason }),
        ),
        Err(e) => {
            tracing::error!(error = %e, "could not log the unprocessable delivery; Shopify will retry");
            answer(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({ "error": "try again" }),
            )
        }
    }
}

async fn enqueue(ingress: &Ingress, job: &PullJob) -> Result<(), String> {
    let body = serde_json::to_string(job).map_err(|e| e.to_string())?;
    let attribute = |value: &str| {
        MessageAttributeValue::builder()
            .data_type("String")
            .string_value(value)
            .build()
            .map_err(|e| e.to_string())
    };
    let mut send = ingress
        .sqs
        .send_message()
        .queue_url(&ingress.queue_url)
        .message_body(body)
        .message_attributes("kind", attribute("inventory_pull")?);
    if !job.event_id.is_empty() {
        send = send.message_attributes("event_id", attribute(&job.event_id)?);
    }
    send.send().await.map_err(|e| {
        use aws_sdk_sqs::error::ProvideErrorMetadata;
        e.as_service_error()
            .and_then(|s| s.message())
            .map(str::to_owned)
            .unwrap_or_else(|| e.to_string())
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "ingress-test-secret";

    fn delivery(method: &str, body: Vec<u8>, signature: Option<String>) -> Request {
        let mut request = lambda_http::http::Request::builder()
            .method(method)
            .uri("https://ingress.example/")
            .header("x-shopify-topic", INVENTORY_LEVELS_UPDATE)
            .header("x-shopify-shop-domain", " Example-Dyer.myshopify.com ")
            .header("x-shopify-webhook-id", "wh-1")
            .header("x-shopify-event-id", "ev-1");
        if let Some(signature) = signature {
            request = request.header("x-shopify-hmac-sha256", signature);
        }
        request.body(Body::Binary(body)).unwrap()
    }

    fn signed(body: &[u8]) -> Option<String> {
        Some(WebhookSecret::new(SECRET).sign(body))
    }

    fn refusal(request: &Request) -> u16 {
        screen(request, &WebhookSecret::new(SECRET))
            .unwrap_err()
            .answer()
            .status()
            .as_u16()
    }

    #[test]
    fn a_body_over_the_limit_is_refused_before_its_signature_is_checked() {
        let body = vec![b' '; MAX_BODY_BYTES + 1];
        assert_eq!(refusal(&delivery("POST", body.clone(), None)), 413);
        assert_eq!(refusal(&delivery("POST", body.clone(), signed(&body))), 413);
        let at_limit = vec![b' '; MAX_BODY_BYTES];
        assert_eq!(refusal(&delivery("POST", at_limit, None)), 401);
    }

    #[test]
    fn only_signed_posts_pass_and_their_headers_are_read_as_sent() {
        let body = br#"{"inventory_item_id":1,"location_id":2,"available":3,"updated_at":"2026-12-04T10:00:00Z"}"#;
        assert_eq!(refusal(&delivery("GET", body.to_vec(), signed(body))), 405);
        assert_eq!(refusal(&delivery("POST", body.to_vec(), None)), 401);
        let other_secret = Some(WebhookSecret::new("another").sign(body));
        assert_eq!(refusal(&delivery("POST", body.to_vec(), other_secret)), 401);

        let screened = screen(
            &delivery("POST", body.to_vec(), signed(body)),
            &WebhookSecret::new(SECRET),
        )
        .unwrap();
        assert_eq!(screened.shop, "example-dyer.myshopify.com");
        assert_eq!(screened.topic, INVENTORY_LEVELS_UPDATE);
        let job = screened.job(body).unwrap();
        assert_eq!(
            (job.event_id.as_str(), job.update.available),
            ("ev-1", Some(3))
        );
        assert!(screened.job(b"{}").is_err());
    }

    /// Found by the `function_url_event` fuzz target: an event whose body is
    /// marked base64 but is not, or whose host is no host, made
    /// `lambda_http`'s conversion panic.
    #[test]
    fn events_lambda_http_cannot_convert_are_read_or_refused_without_a_panic() {
        let sample = include_str!("../../../events/webhook-ingress/inventory-levels-update.json");
        let mut event: serde_json::Value = serde_json::from_str(sample).unwrap();
        event["isBase64Encoded"] = json!(true);
        event["body"] = json!("eyJp[not base64");
        let refused = std::panic::catch_unwind(|| request_from_event(&event.to_string()));
        assert_eq!(refused.unwrap().unwrap_err(), EventError::Base64);

        event["body"] = json!(STANDARD.encode(b"{}"));
        let request = request_from_event(&event.to_string()).unwrap();
        assert_eq!(request.body().as_ref(), b"{}");
        assert!(matches!(
            request_from_event("[1, 2]"),
            Err(EventError::Shape(_))
        ));

        // A host with a character no URI takes, and a path that is a URL.
        event["headers"]["host"] = json!("abcdefghij.lambda-url.us-e`st-1.on.aws");
        event["rawPath"] = json!("http://elsewhere.example/x");
        let read = std::panic::catch_unwind(|| request_from_event(&event.to_string()));
        let request = read.unwrap().unwrap();
        assert_eq!(request.uri().path(), "/");
        assert_eq!(request.method(), Method::POST);
        assert_eq!(
            header(request.headers(), "x-shopify-topic"),
            Some(INVENTORY_LEVELS_UPDATE)
        );
    }
}
