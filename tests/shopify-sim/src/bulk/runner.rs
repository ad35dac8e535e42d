//! Runs admitted bulk mutations in the background, one task per run: each
//! line's variables are coerced and the mutation executed against the shop
//! exactly as a request would be (without the bucket), at the configured
//! pace; the answers become the results file.

use std::sync::{Arc, Weak};
use std::time::Duration;

use apollo_compiler::executable::Operation;
use apollo_compiler::validation::Valid;
use apollo_compiler::{ExecutableDocument, Node};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde_json::{Map, Value};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::storage::OUTPUTS_PATH;
use super::{Job, uuid_like};
use crate::app::{AppState, lock};
use crate::graphql;
use crate::schema::parse_document;
use crate::state::{BulkStatus, timestamp};
use crate::variables;

/// Takes admitted runs off the queue until the simulator goes away.
pub(super) async fn run(app: Weak<AppState>, mut jobs: UnboundedReceiver<Job>) {
    let mut running = JoinSet::new();
    loop {
        tokio::select! {
            job = jobs.recv() => {
                let (Some(job), Some(app)) = (job, app.upgrade()) else { break };
                running.spawn(run_job(app, job));
            }
            Some(_) = running.join_next(), if !running.is_empty() => {}
        }
    }
}

/// What a run should do before its next line.
enum Next {
    Go,
    Cancel,
    /// The operation is gone (the shop was reset).
    Gone,
}

fn next(app: &AppState, id: u64) -> Next {
    match lock(&app.shop).bulk_operations.get(&id) {
        None => Next::Gone,
        Some(operation) if operation.status == BulkStatus::Canceling => Next::Cancel,
        Some(_) => Next::Go,
    }
}

async fn run_job(app: Arc<AppState>, job: Job) {
    let config = app.bulk.config();
    tokio::time::sleep(Duration::from_millis(config.start_delay_ms)).await;

    // The document was validated when the run was admitted.
    let parsed = parse_document(&app.schema, &job.document)
        .ok()
        .and_then(|document| {
            let operation = document.operations.iter().next().cloned()?;
            Some((document, operation))
        });
    let Some((document, operation)) = parsed else {
        let code = Some("INTERNAL_SERVER_ERROR");
        return finish(&app, &job, Vec::new(), BulkStatus::Failed, code);
    };
    match next(&app, job.id) {
        Next::Gone => return,
        Next::Cancel => return finish(&app, &job, Vec::new(), BulkStatus::Canceled, None),
        Next::Go => {}
    }
    if let Some(running) = lock(&app.shop).bulk_operations.get_mut(&job.id) {
        running.status = BulkStatus::Running;
    }
    tracing::info!(
        bulk_operation = job.id,
        lines = job.lines.len(),
        "bulk operation running"
    );

    let pace = Duration::from_millis(config.line_ms);
    let started = Instant::now();
    let mut results = Vec::with_capacity(job.lines.len());
    for (index, provided) in job.lines.iter().enumerate() {
        tokio::time::sleep_until(started + pace * index as u32).await;
        match next(&app, job.id) {
            Next::Gone => return,
            Next::Cancel => return finish(&app, &job, results, BulkStatus::Canceled, None),
            Next::Go => {}
        }
        if let Some((after, code)) = &job.fail_after
            && index as u64 >= *after
        {
            return finish(&app, &job, results, BulkStatus::Failed, Some(code));
        }
        results.push(run_line(&app, &document, &operation, provided, index));
        if let Some(running) = lock(&app.shop).bulk_operations.get_mut(&job.id) {
            running.object_count = results.len() as u64;
        }
        app.webhooks.wake();
    }
    tokio::time::sleep_until(started + pace * job.lines.len() as u32).await;
    match &job.fail_after {
        Some((_, code)) => finish(&app, &job, results, BulkStatus::Failed, Some(code)),
        None => finish(&app, &job, results, BulkStatus::Completed, None),
    }
}

/// One line: `{"data": …, "__lineNumber": n}`, with `errors` when the
/// variables are refused or the field failed, as a request would answer.
fn run_line(
    app: &AppState,
    document: &Valid<ExecutableDocument>,
    operation: &Node<Operation>,
    provided: &Map<String, Value>,
    index: usize,
) -> String {
    let (data, errors) =
        match variables::coerce(&app.schema, operation, &document.sources, provided) {
            Ok(variables) => {
                let (data, errors) = graphql::execute(app, document, operation, &variables, None);
                (Some(data), errors)
            }
            Err(errors) => (None, errors),
        };
    // Keys in Shopify's order, `__lineNumber` last; slashes escaped as a
    // real results file has them.
    let mut line = String::from("{");
    if let Some(data) = data {
        line.push_str("\"data\":");
        line.push_str(&data.to_string());
    }
    if !errors.is_empty() {
        if line.len() > 1 {
            line.push(',');
        }
        line.push_str("\"errors\":");
        line.push_str(&Value::Array(errors).to_string());
    }
    line.push_str(&format!(",\"__lineNumber\":{index}}}"));
    line.replace('/', "\\/")
}

/// Ends a run: writes what ran to a results file and records where it is.
/// A completed run has `url`; a failed or canceled one `partialDataUrl`,
/// if any line ran.
fn finish(
    app: &AppState,
    job: &Job,
    mut results: Vec<String>,
    status: BulkStatus,
    error_code: Option<&str>,
) {
    let count = results.len();
    if app.bulk.config().shuffle_results {
        results.shuffle(&mut StdRng::seed_from_u64(job.id));
    }
    let output = if count == 0 {
        None
    } else {
        let mut text = results.join("\n");
        text.push('\n');
        let kind = if status == BulkStatus::Completed {
            "final"
        } else {
            "partial"
        };
        let size = text.len() as u64;
        let name =
            lock(&app.bulk.storage).put_output(format!("{}-{kind}.jsonl", uuid_like()), text);
        Some((
            format!("{}{OUTPUTS_PATH}/{name}", app.bulk.base_url()),
            size,
        ))
    };

    let mut shop = lock(&app.shop);
    let Some(operation) = shop.bulk_operations.get_mut(&job.id) else {
        return;
    };
    operation.status = status;
    operation.error_code = error_code.map(str::to_owned);
    operation.object_count = count as u64;
    if status == BulkStatus::Completed {
        operation.completed_at = Some(timestamp());
        operation.file_size = output.as_ref().map(|(_, size)| *size);
        operation.url = output.map(|(url, _)| url);
    } else {
        operation.partial_data_url = output.map(|(url, _)| url);
    }
    tracing::info!(
        bulk_operation = job.id,
        status = status.as_str(),
        lines_run = count,
        "bulk operation finished"
    );
}
