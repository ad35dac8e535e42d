//! `POST /admin/api/2026-07/graphql.json`: authentication, validation,
//! cost and throttling, faults, execution and the call log.

use std::sync::Arc;
use std::time::{Duration, Instant};

use apollo_compiler::ExecutableDocument;
use apollo_compiler::Node;
use apollo_compiler::executable::{Field, Operation};
use apollo_compiler::validation::Valid;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::app::{AppState, lock};
use crate::bulk;
use crate::calls::CallRecord;
use crate::cost::{CostModel, MAX_QUERY_COST};
use crate::faults::FaultKind;
use crate::projection::Projection;
use crate::resolvers::fields::ShopFields;
use crate::resolvers::{self, FieldError, MutationContext};
use crate::schema::parse_document;
use crate::state::timestamp;
use crate::values::{field_arguments, literal_to_json, locations, root_field_names};
use crate::variables;

/// The API version this simulator serves.
pub const API_VERSION: &str = "2026-07";

/// Input lists longer than this are refused before execution.
pub const MAX_INPUT_LIST: usize = 250;

const INVALID_TOKEN: &str =
    "[API] Invalid API key or access token (unrecognized login or wrong password)";

/// What one request turned into, before faults that lose it.
struct Answer {
    status: StatusCode,
    body: Value,
    record: CallRecord,
    fault: Option<FaultKind>,
}

pub async fn handle(
    State(app): State<Arc<AppState>>,
    Path(version): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if version != API_VERSION {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"errors": "Not Found"})),
        )
            .into_response();
    }
    let started = Instant::now();
    let token = headers
        .get("x-shopify-access-token")
        .and_then(|value| value.to_str().ok());
    if token != Some(app.access_token.as_str()) {
        let record = record(
            None,
            Vec::new(),
            None,
            None,
            "unauthorized",
            401,
            0,
            started,
        );
        lock(&app.calls).record(record);
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"errors": INVALID_TOKEN})),
        )
            .into_response();
    }

    // A latency fault is known only once the document names its root
    // fields, so the answer is computed first and delayed afterwards.
    let mut answer = answer(&app, &body, started);
    // Stock changes made by the request are delivered in the background.
    app.webhooks.wake();
    if let Some(FaultKind::Latency { ms }) = &answer.fault {
        tokio::time::sleep(Duration::from_millis(*ms)).await;
    }
    answer.record.duration_ms = elapsed_ms(started);
    tracing::info!(
        operation = answer.record.operation_name.as_deref().unwrap_or(""),
        root_fields = ?answer.record.root_fields,
        requested_cost = answer.record.requested_cost,
        actual_cost = answer.record.actual_cost,
        outcome = %answer.record.outcome,
        status = answer.record.status,
        "graphql request"
    );
    let fault = answer.fault.clone();
    lock(&app.calls).record(answer.record);
    match fault {
        Some(FaultKind::NetworkDrop) | Some(FaultKind::LostResponse { status: None }) => {
            dropped_connection()
        }
        Some(FaultKind::LostResponse {
            status: Some(status),
        }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::GATEWAY_TIMEOUT);
            (status, "upstream request timeout").into_response()
        }
        // Shopify's 429 tells the client how long to wait.
        _ if answer.status == StatusCode::TOO_MANY_REQUESTS => (
            answer.status,
            [("Retry-After", "1.0")],
            axum::Json(answer.body),
        )
            .into_response(),
        _ => (answer.status, axum::Json(answer.body)).into_response(),
    }
}

/// A response whose body fails at once: hyper aborts the connection and the
/// client sees it closed without an answer.
fn dropped_connection() -> Response {
    let failing = futures::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "connection dropped by a simulated fault",
        ))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(failing))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

#[allow(clippy::too_many_arguments)]
fn record(
    operation_name: Option<String>,
    root_fields: Vec<String>,
    requested_cost: Option<u64>,
    actual_cost: Option<u64>,
    outcome: &str,
    status: u16,
    variables_bytes: usize,
    started: Instant,
) -> CallRecord {
    CallRecord {
        sequence: 0,
        at: timestamp(),
        operation_name,
        root_fields,
        requested_cost,
        actual_cost,
        outcome: outcome.to_owned(),
        status,
        variables_bytes,
        duration_ms: elapsed_ms(started),
    }
}

fn answer(app: &AppState, body: &[u8], started: Instant) -> Answer {
    let request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let query = request.get("query").and_then(Value::as_str);
    let provided = match request.get("variables") {
        Some(Value::Object(map)) => map.clone(),
        Some(Value::String(text)) => serde_json::from_str(text).unwrap_or_default(),
        _ => Map::new(),
    };
    let variables_bytes = request
        .get("variables")
        .map_or(0, |variables| variables.to_string().len());
    let operation_name = request
        .get("operationName")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let invalid = |body: Value, status: StatusCode, name: Option<String>| Answer {
        status,
        record: record(
            name,
            Vec::new(),
            None,
            None,
            "invalid",
            status.as_u16(),
            variables_bytes,
            started,
        ),
        body,
        fault: None,
    };

    let Some(query) = query else {
        return invalid(
            json!({"errors": {"query": "Required parameter missing or invalid"}}),
            StatusCode::BAD_REQUEST,
            operation_name,
        );
    };
    let document = match parse_document(&app.schema, query) {
        Ok(document) => document,
        Err(errors) => return invalid(json!({"errors": errors}), StatusCode::OK, operation_name),
    };
    let operation = match document.operations.get(operation_name.as_deref()) {
        Ok(operation) => operation.clone(),
        Err(error) => {
            return invalid(
                json!({"errors": [{"message": error.message().to_string(), "extensions": {"code": "OPERATION_NOT_FOUND"}}]}),
                StatusCode::OK,
                operation_name,
            );
        }
    };
    let name = operation_name.or_else(|| operation.name.as_ref().map(|name| name.to_string()));
    let variables = match variables::coerce(&app.schema, &operation, &document.sources, &provided) {
        Ok(variables) => variables,
        Err(errors) => return invalid(json!({"errors": errors}), StatusCode::OK, name),
    };
    let root_fields = root_field_names(&operation, &document);
    let fault = lock(&app.faults).take(&root_fields);
    let mut answer = run(app, &document, &operation, &variables, fault.as_ref());
    answer.record.operation_name = name;
    answer.record.root_fields = root_fields;
    answer.record.variables_bytes = variables_bytes;
    answer.fault = fault;
    answer
}

/// Charges the bucket, runs the operation, refunds what was not used.
fn run(
    app: &AppState,
    document: &Valid<ExecutableDocument>,
    operation: &Node<Operation>,
    variables: &Map<String, Value>,
    fault: Option<&FaultKind>,
) -> Answer {
    let started = Instant::now();
    let model = CostModel {
        schema: &app.schema,
        document,
        variables,
    };
    let requested = model.requested(operation);
    let outcome_record = |outcome: &str, status: StatusCode, actual: Option<u64>| {
        record(
            None,
            Vec::new(),
            Some(requested),
            actual,
            outcome,
            status.as_u16(),
            0,
            started,
        )
    };

    match fault {
        Some(FaultKind::Throttled) => {
            let status = lock(&app.bucket).throttle_status();
            return Answer {
                status: StatusCode::OK,
                body: throttled(requested, status),
                record: outcome_record("throttled", StatusCode::OK, None),
                fault: None,
            };
        }
        Some(FaultKind::ServerError { status }) => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_GATEWAY);
            return Answer {
                status,
                body: json!({"errors": status.canonical_reason().unwrap_or("Server Error")}),
                record: outcome_record("server_error", status, None),
                fault: None,
            };
        }
        Some(FaultKind::NetworkDrop) => {
            return Answer {
                status: StatusCode::OK,
                body: Value::Null,
                record: outcome_record("network_drop", StatusCode::OK, None),
                fault: None,
            };
        }
        _ => {}
    }

    if requested > MAX_QUERY_COST {
        let status = lock(&app.bucket).throttle_status();
        return Answer {
            status: StatusCode::OK,
            body: max_cost_exceeded(requested, status),
            record: outcome_record("max_cost_exceeded", StatusCode::OK, None),
            fault: None,
        };
    }
    if !lock(&app.bucket).try_take(requested as f64) {
        let status = lock(&app.bucket).throttle_status();
        return Answer {
            status: StatusCode::OK,
            body: throttled(requested, status),
            record: outcome_record("throttled", StatusCode::OK, None),
            fault: None,
        };
    }

    let (data, errors) = execute(app, document, operation, variables, fault);
    let actual = model.actual(operation, Some(&data));
    let throttle_status = {
        let mut bucket = lock(&app.bucket);
        bucket.refund(requested.saturating_sub(actual) as f64);
        bucket.throttle_status()
    };
    let mut body = Map::new();
    if !errors.is_empty() {
        body.insert("errors".into(), Value::Array(errors));
    }
    body.insert("data".into(), data);
    body.insert(
        "extensions".into(),
        json!({"cost": {
            "requestedQueryCost": requested,
            "actualQueryCost": actual,
            "throttleStatus": throttle_status,
        }}),
    );
    let outcome = match fault {
        Some(FaultKind::LostResponse { .. }) => "lost_response",
        Some(FaultKind::Latency { .. }) => "latency",
        Some(FaultKind::BulkFailure { .. }) => "bulk_failure",
        _ => "ok",
    };
    Answer {
        status: StatusCode::OK,
        body: Value::Object(body),
        record: outcome_record(outcome, StatusCode::OK, Some(actual)),
        fault: None,
    }
}

fn throttled(requested: u64, throttle_status: Value) -> Value {
    json!({
        "errors": [{
            "message": "Throttled",
            "extensions": {
                "code": "THROTTLED",
                "documentation": "https://shopify.dev/api/usage/rate-limits",
            },
        }],
        "extensions": {"cost": {
            "requestedQueryCost": requested,
            "actualQueryCost": null,
            "throttleStatus": throttle_status,
        }},
    })
}

fn max_cost_exceeded(requested: u64, throttle_status: Value) -> Value {
    json!({
        "errors": [{
            "message": format!(
                "Query cost is {requested}, which exceeds the single query max cost limit ({MAX_QUERY_COST}).\n\n\
                 See https://shopify.dev/concepts/about-apis/rate-limits for more information on how the\n\
                 cost of a query is calculated.\n\n\
                 To query larger amounts of data with fewer limits, bulk operations should be used instead.\n\
                 See https://shopify.dev/tutorials/perform-bulk-operations-with-admin-api for usage details.\n"
            ),
            "extensions": {"code": "MAX_COST_EXCEEDED", "cost": requested, "maxCost": MAX_QUERY_COST},
        }],
        "extensions": {"cost": {
            "requestedQueryCost": requested,
            "actualQueryCost": null,
            "throttleStatus": throttle_status,
        }},
    })
}

/// Runs every root field in order and projects its value. Bulk runs call
/// this for each line of their variables file.
pub(crate) fn execute(
    app: &AppState,
    document: &Valid<ExecutableDocument>,
    operation: &Node<Operation>,
    variables: &Map<String, Value>,
    fault: Option<&FaultKind>,
) -> (Value, Vec<Value>) {
    let mut shop = lock(&app.shop);
    let root_type = operation.object_type().to_string();
    let mut data = Map::new();
    let mut errors = Vec::new();
    let groups = {
        let fields = ShopFields(&shop);
        let projection = Projection {
            schema: &app.schema,
            document,
            variables,
            source: &fields,
            errors: Vec::new(),
        };
        projection.collect_fields(&root_type, &[&operation.selection_set])
    };
    for (key, fields) in groups {
        let field = &fields[0];
        if field.name == "__typename" {
            data.insert(key, Value::String(root_type.clone()));
            continue;
        }
        let args = field_arguments(field, variables);
        let raw = precheck(field, &args, &key).and_then(|()| {
            let name = field.name.as_str();
            let resolved = if operation.is_mutation() {
                let context = MutationContext {
                    idempotency_key: idempotency_key(field, variables),
                };
                bulk::mutate(app, &mut shop, name, &args, fault)
                    .unwrap_or_else(|| resolvers::mutate(&mut shop, name, &args, &context))
            } else {
                resolvers::query(&shop, field.name.as_str(), &args)
            };
            resolved.map_err(RootError::from)
        });
        let raw = match raw {
            Ok(raw) => raw,
            Err(error) => {
                errors.push(field_error(document, operation, field, &key, error));
                data.insert(key, Value::Null);
                continue;
            }
        };
        let source = ShopFields(&shop);
        let mut projection = Projection {
            schema: &app.schema,
            document,
            variables,
            source: &source,
            errors: Vec::new(),
        };
        let mut path = vec![Value::String(key.clone())];
        let value = projection.complete(&fields, field.ty(), raw, &args, &mut path);
        errors.extend(projection.errors);
        data.insert(key, value);
    }
    (Value::Object(data), errors)
}

fn idempotency_key(field: &Field, variables: &Map<String, Value>) -> Option<String> {
    let directive = field.directives.get("idempotent")?;
    let key = directive.specified_argument_by_name("key")?;
    literal_to_json(key, variables)?.as_str().map(str::to_owned)
}

/// A root field that failed before or while running: a top-level error
/// and `null` data for the field.
struct RootError {
    error: FieldError,
    /// Where the error points inside the arguments, if not at the field.
    path: Option<Vec<Value>>,
    /// Whether the `$input` variable's definition is a second location.
    input_location: bool,
}

impl From<FieldError> for RootError {
    fn from(error: FieldError) -> RootError {
        RootError {
            error,
            path: None,
            input_location: false,
        }
    }
}

fn field_error(
    document: &Valid<ExecutableDocument>,
    operation: &Operation,
    field: &Node<Field>,
    key: &str,
    root_error: RootError,
) -> Value {
    let mut error_locations = locations(field, &document.sources);
    if root_error.input_location
        && let Some(location) = input_variable_location(document, operation, field)
        && let Some(list) = error_locations.as_array_mut()
    {
        list.push(location);
    }
    let path = root_error
        .path
        .unwrap_or_else(|| vec![Value::String(key.to_owned())]);
    json!({
        "message": root_error.error.message,
        "locations": error_locations,
        "extensions": {"code": root_error.error.code},
        "path": path,
    })
}

fn input_variable_location(
    document: &Valid<ExecutableDocument>,
    operation: &Operation,
    field: &Field,
) -> Option<Value> {
    let argument = field.arguments.iter().find(|arg| arg.name == "input")?;
    let variable = argument.value.as_variable()?;
    let definition = operation
        .variables
        .iter()
        .find(|definition| definition.name == *variable)?;
    let at = definition.location()?.line_column(&document.sources)?;
    Some(json!({"line": at.line, "column": at.column}))
}

/// Checks Shopify makes before a root field runs: the `@idempotent`
/// directive and explicit `changeFromQuantity` on inventory mutations, and
/// the size of input lists.
fn precheck(field: &Field, args: &Map<String, Value>, key: &str) -> Result<(), RootError> {
    let name = field.name.as_str();
    let inventory_lines = match name {
        "inventorySetQuantities" => Some(("quantities", "InventoryQuantityInput")),
        "inventoryAdjustQuantities" => Some(("changes", "InventoryChangeInput")),
        "inventorySetOnHandQuantities" => Some(("setQuantities", "InventorySetQuantityInput")),
        _ => None,
    };
    if let Some((list, type_name)) = inventory_lines {
        if field.directives.get("idempotent").is_none() {
            return Err(FieldError::new(
                "The @idempotent directive is required for this mutation but was not provided.",
                "BAD_REQUEST",
            )
            .into());
        }
        let lines = args
            .get("input")
            .and_then(|input| input.get(list))
            .and_then(Value::as_array);
        let missing = lines.is_some_and(|lines| {
            lines
                .iter()
                .any(|line| line.get("changeFromQuantity").is_none())
        });
        if missing {
            return Err(RootError {
                error: FieldError::new(
                    format!("{type_name} must include the following argument: changeFromQuantity."),
                    "INVALID_FIELD_ARGUMENTS",
                ),
                path: None,
                input_location: true,
            });
        }
    }
    let mut path = vec![Value::String(key.to_owned())];
    if let Some((size, at)) = oversized_list(name, &Value::Object(args.clone()), &mut path) {
        return Err(RootError {
            error: FieldError::new(
                format!(
                    "The input array size of {size} is greater than the maximum allowed of {MAX_INPUT_LIST}."
                ),
                "MAX_INPUT_SIZE_EXCEEDED",
            ),
            path: Some(at),
            input_location: false,
        });
    }
    Ok(())
}

/// The first input list longer than the limit, with its path.
/// `productSet`'s variants may hold up to 2048 and are checked there.
fn oversized_list(root: &str, value: &Value, path: &mut Vec<Value>) -> Option<(usize, Vec<Value>)> {
    match value {
        Value::Array(items) => {
            let exempt = root == "productSet"
                && path.len() == 3
                && path[1] == "input"
                && path[2] == "variants";
            if items.len() > MAX_INPUT_LIST && !exempt {
                return Some((items.len(), path.clone()));
            }
            for (index, item) in items.iter().enumerate() {
                path.push(Value::from(index));
                let found = oversized_list(root, item, path);
                path.pop();
                if found.is_some() {
                    return found;
                }
            }
            None
        }
        Value::Object(map) => {
            for (key, item) in map {
                path.push(Value::String(key.clone()));
                let found = oversized_list(root, item, path);
                path.pop();
                if found.is_some() {
                    return found;
                }
            }
            None
        }
        _ => None,
    }
}
