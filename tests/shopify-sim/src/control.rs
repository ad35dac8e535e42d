//! The control API under `/_sim/`: what tests use to look inside the shop,
//! act as the merchant or a customer, and inject faults. No token needed.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::{AppState, lock};
use crate::bulk::BulkConfigUpdate;
use crate::faults::Fault;
use crate::ids::{gid, parse_kind};
use crate::state::{InventoryLevel, Shop};
use crate::webhooks::WebhookConfigUpdate;

/// Routes of the control API, to be nested at the server root.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/_sim/health", get(|| async { Json(json!({"ok": true})) }))
        .route("/_sim/state", get(state))
        .route("/_sim/products/by-handle/{handle}", get(product_by_handle))
        .route("/_sim/sale", post(sale))
        .route("/_sim/set-stock", post(set_stock))
        .route(
            "/_sim/faults",
            get(faults).post(add_faults).delete(clear_faults),
        )
        .route("/_sim/calls", get(calls).delete(clear_calls))
        .route("/_sim/stats", get(stats))
        .route("/_sim/config", get(config).post(set_config))
        .route("/_sim/reset", post(reset))
        .route(
            "/_sim/webhooks/config",
            get(webhook_config).post(set_webhook_config),
        )
        .route(
            "/_sim/webhooks/deliveries",
            get(deliveries).delete(clear_deliveries),
        )
        .route("/_sim/webhooks/flush", post(flush))
        .route("/_sim/webhooks/replay", post(replay))
        .route("/_sim/bulk/config", get(bulk_config).post(set_bulk_config))
        .route("/_sim/bulk/uploads", get(bulk_uploads))
}

fn problem(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

async fn state(State(app): State<Arc<AppState>>) -> Json<Value> {
    Json(lock(&app.shop).control_json())
}

async fn product_by_handle(
    State(app): State<Arc<AppState>>,
    Path(handle): Path<String>,
) -> Response {
    let shop = lock(&app.shop);
    match shop.product_by_handle(&handle) {
        Some(product) => Json(shop.control_product_json(product)).into_response(),
        None => problem(
            StatusCode::NOT_FOUND,
            format!("no product with handle {handle}"),
        ),
    }
}

/// Body of `POST /_sim/sale` and `POST /_sim/set-stock`.
#[derive(Debug, Deserialize)]
pub struct StockRequest {
    pub inventory_item_id: String,
    #[serde(default)]
    pub location_id: Option<String>,
    /// Units sold (sale, default 1) or the new `available` (set-stock).
    #[serde(default, alias = "available")]
    pub quantity: Option<i64>,
}

fn level_answer(item_id: u64, level: &InventoryLevel) -> Value {
    json!({
        "inventoryItemId": gid("InventoryItem", item_id),
        "locationId": gid("Location", level.location_id),
        "available": level.available,
        "onHand": level.on_hand,
        "updatedAt": level.updated_at,
    })
}

/// The item and location a stock request names (default: first location).
fn stock_target(shop: &Shop, request: &StockRequest) -> Result<(u64, u64), &'static str> {
    let item = parse_kind(&request.inventory_item_id, "InventoryItem")
        .filter(|id| shop.inventory_item(*id).is_some())
        .ok_or("unknown inventory item")?;
    let location = match &request.location_id {
        Some(id) => parse_kind(id, "Location").filter(|id| shop.location(*id).is_some()),
        None => shop.locations.first().map(|location| location.id),
    }
    .ok_or("unknown location")?;
    Ok((item, location))
}

/// A sale lowers `available` and `on_hand` at a location, as an order would.
async fn sale(State(app): State<Arc<AppState>>, Json(request): Json<StockRequest>) -> Response {
    let response = apply_sale(&app, &request);
    app.webhooks.wake();
    response
}

fn apply_sale(app: &AppState, request: &StockRequest) -> Response {
    let mut shop = lock(&app.shop);
    let (item, location) = match stock_target(&shop, request) {
        Ok(target) => target,
        Err(message) => return problem(StatusCode::NOT_FOUND, message),
    };
    let current = shop
        .inventory_item(item)
        .and_then(|(_, variant)| variant.inventory_item.level(location).cloned());
    let Some(current) = current else {
        return problem(
            StatusCode::CONFLICT,
            "the item is not stocked at that location",
        );
    };
    let sold = request.quantity.unwrap_or(1);
    match shop.set_available(item, location, current.available - sold, "sale") {
        Some(level) => Json(level_answer(item, &level)).into_response(),
        None => problem(StatusCode::NOT_FOUND, "unknown inventory item"),
    }
}

/// Sets `available` directly, as a merchant editing stock in the admin.
async fn set_stock(
    State(app): State<Arc<AppState>>,
    Json(request): Json<StockRequest>,
) -> Response {
    let response = apply_set_stock(&app, &request);
    app.webhooks.wake();
    response
}

fn apply_set_stock(app: &AppState, request: &StockRequest) -> Response {
    let mut shop = lock(&app.shop);
    let (item, location) = match stock_target(&shop, request) {
        Ok(target) => target,
        Err(message) => return problem(StatusCode::NOT_FOUND, message),
    };
    let Some(available) = request.quantity else {
        return problem(
            StatusCode::BAD_REQUEST,
            "quantity (or available) is required",
        );
    };
    match shop.set_available(item, location, available, "set-stock") {
        Some(level) => Json(level_answer(item, &level)).into_response(),
        None => problem(StatusCode::NOT_FOUND, "unknown inventory item"),
    }
}

async fn faults(State(app): State<Arc<AppState>>) -> Json<Value> {
    Json(json!(lock(&app.faults).pending()))
}

/// Queues one fault or a list of them.
async fn add_faults(State(app): State<Arc<AppState>>, Json(body): Json<Value>) -> Response {
    let items = match body {
        Value::Array(items) => items,
        single => vec![single],
    };
    let mut parsed = Vec::new();
    for item in items {
        match serde_json::from_value::<Fault>(item) {
            Ok(fault) => parsed.push(fault),
            Err(error) => return problem(StatusCode::BAD_REQUEST, format!("bad fault: {error}")),
        }
    }
    let mut queue = lock(&app.faults);
    for fault in parsed {
        queue.push(fault);
    }
    Json(json!(queue.pending())).into_response()
}

async fn clear_faults(State(app): State<Arc<AppState>>) -> StatusCode {
    lock(&app.faults).clear();
    StatusCode::NO_CONTENT
}

async fn calls(State(app): State<Arc<AppState>>) -> Json<Value> {
    Json(json!(lock(&app.calls).records()))
}

async fn clear_calls(State(app): State<Arc<AppState>>) -> StatusCode {
    lock(&app.calls).clear();
    StatusCode::NO_CONTENT
}

async fn stats(State(app): State<Arc<AppState>>) -> Json<Value> {
    Json(json!(lock(&app.calls).stats()))
}

/// Body of `POST /_sim/config`.
#[derive(Debug, Deserialize)]
pub struct ConfigRequest {
    #[serde(default)]
    pub bucket_size: Option<f64>,
    #[serde(default)]
    pub restore_rate: Option<f64>,
    /// Fill the bucket up after changing it.
    #[serde(default)]
    pub fill: bool,
}

async fn config(State(app): State<Arc<AppState>>) -> Json<Value> {
    Json(json!({"throttleStatus": lock(&app.bucket).throttle_status()}))
}

async fn set_config(
    State(app): State<Arc<AppState>>,
    Json(request): Json<ConfigRequest>,
) -> Json<Value> {
    let mut bucket = lock(&app.bucket);
    bucket.reconfigure(request.bucket_size, request.restore_rate);
    if request.fill {
        bucket.fill();
    }
    Json(json!({"throttleStatus": bucket.throttle_status()}))
}

/// Empties the shop (locations stay), the call log, the faults, the staged
/// files and bulk results, and fills the bucket.
async fn reset(State(app): State<Arc<AppState>>) -> StatusCode {
    lock(&app.shop).reset();
    lock(&app.calls).reset();
    lock(&app.faults).clear();
    lock(&app.bucket).fill();
    app.webhooks.reset();
    app.bulk.reset();
    StatusCode::NO_CONTENT
}

async fn bulk_config(State(app): State<Arc<AppState>>) -> Json<Value> {
    Json(json!(app.bulk.config()))
}

/// Changes bulk limits and pace; only the fields given change.
async fn set_bulk_config(
    State(app): State<Arc<AppState>>,
    Json(update): Json<BulkConfigUpdate>,
) -> Response {
    match app.bulk.configure(&update) {
        Ok(config) => Json(json!(config)).into_response(),
        Err(message) => problem(StatusCode::BAD_REQUEST, message),
    }
}

/// Files uploaded to staged targets: key, size, content type.
async fn bulk_uploads(State(app): State<Arc<AppState>>) -> Json<Value> {
    Json(json!(lock(&app.bulk.storage).uploads()))
}

async fn webhook_config(State(app): State<Arc<AppState>>) -> Json<Value> {
    Json(json!(app.webhooks.config()))
}

/// Changes how webhooks are delivered; only the fields given change.
async fn set_webhook_config(
    State(app): State<Arc<AppState>>,
    Json(update): Json<WebhookConfigUpdate>,
) -> Response {
    match app.webhooks.configure(&update) {
        Ok(config) => Json(json!(config)).into_response(),
        Err(message) => problem(StatusCode::BAD_REQUEST, message),
    }
}

async fn deliveries(State(app): State<Arc<AppState>>) -> Json<Value> {
    Json(json!(app.webhooks.deliveries()))
}

async fn clear_deliveries(State(app): State<Arc<AppState>>) -> StatusCode {
    app.webhooks.clear_deliveries();
    StatusCode::NO_CONTENT
}

/// Sends every held delivery and waits until none is queued.
async fn flush(State(app): State<Arc<AppState>>) -> Response {
    match app.webhooks.flush().await {
        Ok(sent) => Json(json!({"sent": sent})).into_response(),
        Err(message) => problem(StatusCode::SERVICE_UNAVAILABLE, message),
    }
}

/// Body of `POST /_sim/webhooks/replay`.
#[derive(Debug, Deserialize)]
pub struct ReplayRequest {
    pub event_id: String,
}

/// Sends an event's deliveries again, as Shopify's late retries do.
async fn replay(State(app): State<Arc<AppState>>, Json(request): Json<ReplayRequest>) -> Response {
    match app.webhooks.replay(&request.event_id).await {
        Ok(0) => problem(
            StatusCode::NOT_FOUND,
            format!("no delivery was sent for event {}", request.event_id),
        ),
        Ok(replayed) => Json(json!({"replayed": replayed})).into_response(),
        Err(message) => problem(StatusCode::SERVICE_UNAVAILABLE, message),
    }
}
