//! A small stand-in for the AWS wiring between the pieces: a Function URL
//! that hands HTTP requests to the webhook ingress as Lambda would, and the
//! SQS event source that feeds the pull queue to the sync worker with
//! partial-batch semantics.

use std::net::SocketAddr;
use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::IntoResponse;
use fibermade_sync::pull::{Puller, handle_sqs_event};
use fibermade_sync::webhook::ingress::{self, Ingress};
use tokio::task::JoinHandle;

use super::Error;

/// An HTTP endpoint on loopback that plays the ingress's Function URL.
pub struct FunctionUrl {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl FunctionUrl {
    pub async fn start(ingress: Ingress) -> Result<Self, Error> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(Arc::new(ingress));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, task })
    }

    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }
}

impl Drop for FunctionUrl {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(
    State(ingress): State<Arc<Ingress>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let mut request = lambda_http::http::Request::builder()
        .method(method)
        .uri(uri);
    for (name, value) in &headers {
        request = request.header(name, value);
    }
    let Ok(request) = request.body(lambda_http::Body::Binary(body.to_vec())) else {
        return (axum::http::StatusCode::BAD_REQUEST, "unreadable request").into_response();
    };
    let response = ingress::handle(&ingress, request).await;
    let (parts, body) = response.into_parts();
    (parts.status, parts.headers, body.to_vec()).into_response()
}

/// What one pass over the queue did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Drained {
    pub received: usize,
    pub failed: usize,
}

/// Feeds the queue to the worker until it is empty, ten messages a batch as
/// the event source mapping would; messages the worker reports as failed
/// stay on the queue (their visibility timeout runs out and they come back,
/// and after the redrive's receive count they move to the dead-letter queue).
pub async fn drain_queue(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    puller: &Puller,
) -> Result<Drained, Error> {
    drain_queue_with(sqs, queue_url, |event| async move {
        let event: SqsEvent = serde_json::from_value(event)?;
        let response = handle_sqs_event(puller, event).await;
        Ok(response
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect())
    })
    .await
}

/// The same, with any worker: `work` gets the SQS event as JSON and answers
/// the ids of the messages that failed (the partial batch response).
pub async fn drain_queue_with<F, Fut>(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    work: F,
) -> Result<Drained, Error>
where
    F: FnMut(serde_json::Value) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<String>, Error>>,
{
    drain(sqs, queue_url, Feed::default(), work).await
}

/// How the event source mapping polls a queue.
#[derive(Debug, Clone, Copy)]
pub struct Feed {
    /// Messages a batch (the template's BatchSize).
    pub batch_size: i32,
    /// Seconds a received message stays invisible (the queue's
    /// VisibilityTimeout; tests shorten it to see retries).
    pub visibility_timeout: i32,
    /// Passes over the queue to make: failed messages come back after their
    /// visibility timeout, and the drain waits for them this many times.
    pub passes: usize,
}

impl Default for Feed {
    fn default() -> Self {
        Self {
            batch_size: 10,
            visibility_timeout: 30,
            passes: 1,
        }
    }
}

/// Whether messages wait out a visibility timeout (or a delay).
async fn has_hidden_messages(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Result<bool, Error> {
    use aws_sdk_sqs::types::QueueAttributeName;
    let out = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .send()
        .await?;
    Ok(out
        .attributes
        .unwrap_or_default()
        .values()
        .any(|v| v.parse::<u64>().is_ok_and(|n| n > 0)))
}

/// Feeds a queue to `work` as Lambda's SQS event source mapping does: each
/// record carries its receive count and the queue's ARN; failed messages are
/// left for their visibility timeout, then received again (up to the
/// redrive's count, after which SQS moves them to the dead-letter queue).
pub async fn drain<F, Fut>(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    feed: Feed,
    mut work: F,
) -> Result<Drained, Error>
where
    F: FnMut(serde_json::Value) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<String>, Error>>,
{
    let arn = super::resources::queue_arn(sqs, queue_url).await?;
    let mut drained = Drained::default();
    let mut pass = 0;
    loop {
        let out = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(feed.batch_size)
            .visibility_timeout(feed.visibility_timeout)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .wait_time_seconds(0)
            .send()
            .await?;
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            pass += 1;
            if pass >= feed.passes || !has_hidden_messages(sqs, queue_url).await? {
                return Ok(drained);
            }
            // Wait for failed messages to become visible again.
            tokio::time::sleep(std::time::Duration::from_millis(
                (feed.visibility_timeout as u64 * 1000).max(200) + 200,
            ))
            .await;
            continue;
        }
        drained.received += messages.len();
        let records: Vec<serde_json::Value> = messages
            .iter()
            .map(|m| {
                let attributes: serde_json::Map<String, serde_json::Value> = m
                    .attributes
                    .iter()
                    .flatten()
                    .map(|(k, v)| (k.as_str().to_owned(), serde_json::Value::String(v.clone())))
                    .collect();
                serde_json::json!({
                    "messageId": m.message_id,
                    "receiptHandle": m.receipt_handle,
                    "body": m.body,
                    "md5OfBody": m.md5_of_body,
                    "attributes": attributes,
                    "messageAttributes": {},
                    "eventSource": "aws:sqs",
                    "eventSourceARN": arn,
                    "awsRegion": "us-east-1",
                })
            })
            .collect();
        let failed = work(serde_json::json!({ "Records": records })).await?;
        drained.failed += failed.len();
        for message in &messages {
            if failed
                .iter()
                .any(|f| Some(f.as_str()) == message.message_id.as_deref())
            {
                continue;
            }
            if let Some(handle) = &message.receipt_handle {
                sqs.delete_message()
                    .queue_url(queue_url)
                    .receipt_handle(handle)
                    .send()
                    .await?;
            }
        }
        if !failed.is_empty() && feed.passes <= 1 {
            // Failed messages are invisible for the visibility timeout; a
            // caller that wants them again asks for more passes.
            return Ok(drained);
        }
    }
}
