//! Webhook delivery rules, checked against a receiver on loopback.

mod common;

use std::collections::{HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use common::{Harness, fixture};
use serde_json::{Value, json};
use shopify_sim::webhooks::{sign, verify};
use shopify_sim::{SimConfig, SimError, WebhookConfigUpdate};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const SECRET: &str = "shpss_simulator_secret";

fn shared(name: &str) -> String {
    let path = format!(
        "{}/../../../shared/fixtures/webhooks/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("cannot read {path}: {error}"))
}

// ----- a receiving app --------------------------------------------------

#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: HashMap<String, String>,
    body: String,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("the body is JSON")
    }
}

/// How the receiver answers the next request.
#[derive(Debug, Clone, Copy)]
enum Reply {
    Status(u16),
    /// Answers 200 after this many milliseconds.
    Slow(u64),
}

#[derive(Default)]
struct Inbox {
    received: Mutex<Vec<Received>>,
    replies: Mutex<VecDeque<Reply>>,
}

/// An axum app on 127.0.0.1:0 that keeps every request it gets and
/// answers 200 unless told otherwise.
struct Receiver {
    addr: SocketAddr,
    inbox: Arc<Inbox>,
    task: tokio::task::JoinHandle<()>,
}

async fn receive(
    State(inbox): State<Arc<Inbox>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let headers = headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                value.to_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    inbox.received.lock().expect("inbox").push(Received {
        path: uri.path().to_owned(),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let reply = inbox.replies.lock().expect("replies").pop_front();
    match reply {
        Some(Reply::Status(status)) => StatusCode::from_u16(status).expect("status"),
        Some(Reply::Slow(ms)) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            StatusCode::OK
        }
        None => StatusCode::OK,
    }
}

impl Receiver {
    async fn start(replies: &[Reply]) -> Receiver {
        let inbox = Arc::new(Inbox::default());
        inbox
            .replies
            .lock()
            .expect("replies")
            .extend(replies.iter().copied());
        let app = Router::new()
            .fallback(receive)
            .with_state(Arc::clone(&inbox));
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("the receiver binds");
        let addr = listener.local_addr().expect("address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { addr, inbox, task }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn received(&self) -> Vec<Received> {
        self.inbox.received.lock().expect("inbox").clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A loopback address nothing listens on: connections are refused.
fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let addr = listener.local_addr().expect("address");
    drop(listener);
    format!("http://{addr}/webhooks")
}

// ----- the shop side ----------------------------------------------------

async fn subscribe(h: &Harness, uri: &str) -> String {
    let body = h
        .gql(
            &fixture("webhook-create.graphql"),
            json!({
                "topic": "INVENTORY_LEVELS_UPDATE",
                "webhookSubscription": {"uri": uri, "format": "JSON"},
            }),
        )
        .await;
    let payload = &body["data"]["webhookSubscriptionCreate"];
    assert_eq!(payload["userErrors"], json!([]), "{body}");
    payload["webhookSubscription"]["id"]
        .as_str()
        .expect("subscription id")
        .to_owned()
}

/// A tracked product, one variant per colour, stocked at the first
/// location; gives the inventory item ids in order.
async fn create_product(h: &Harness, title: &str, colours: &[(&str, i64)]) -> Vec<String> {
    let body = h
        .gql(
            &fixture("product-set.graphql"),
            product_set(h, title, colours).await,
        )
        .await;
    let payload = &body["data"]["productSet"];
    assert_eq!(payload["userErrors"], json!([]), "{body}");
    payload["product"]["variants"]["nodes"]
        .as_array()
        .expect("variants")
        .iter()
        .map(|variant| {
            variant["inventoryItem"]["id"]
                .as_str()
                .expect("inventory item")
                .to_owned()
        })
        .collect()
}

async fn product_set(h: &Harness, title: &str, colours: &[(&str, i64)]) -> Value {
    let location = h.first_location().await;
    let variants: Vec<Value> = colours
        .iter()
        .map(|(colour, quantity)| {
            json!({
                "optionValues": [{"optionName": "Color", "name": colour}],
                "price": "24.00",
                "inventoryItem": {"tracked": true},
                "inventoryQuantities": [{"locationId": location, "name": "available", "quantity": quantity}],
            })
        })
        .collect();
    let values: Vec<Value> = colours.iter().map(|(c, _)| json!({"name": c})).collect();
    json!({
        "synchronous": true,
        "input": {
            "title": title,
            "productOptions": [{"name": "Color", "position": 1, "values": values}],
            "variants": variants,
        },
    })
}

fn number_of(gid: &str) -> u64 {
    gid.rsplit('/')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("a numeric gid")
}

async fn set(h: &Harness, update: WebhookConfigUpdate) {
    h.control
        .configure_webhooks(&update)
        .await
        .expect("webhook config");
}

fn availables(received: &[Received]) -> Vec<i64> {
    received
        .iter()
        .map(|r| r.json()["available"].as_i64().expect("available"))
        .collect()
}

// ----- the rules --------------------------------------------------------

#[tokio::test]
async fn a_sale_delivers_one_signed_webhook_shaped_like_shopifys() {
    let h = Harness::start().await;
    let items = create_product(&h, "Sold", &[("Red", 5)]).await;
    let receiver = Receiver::start(&[]).await;
    subscribe(&h, &receiver.url("/webhooks/inventory")).await;

    h.control.sale(&items[0], None, 2).await.expect("sale");
    assert_eq!(h.control.flush_webhooks().await.expect("flush"), 1);

    let received = receiver.received();
    assert_eq!(received.len(), 1, "{received:#?}");
    let delivery = &received[0];
    assert_eq!(delivery.path, "/webhooks/inventory");

    // Every header of the recorded delivery is there.
    let expected_headers: Value =
        serde_json::from_str(&shared("inventory_levels_update.headers.json")).expect("headers");
    for name in expected_headers.as_object().expect("object").keys() {
        assert!(!delivery.header(name).is_empty(), "{name} is empty");
    }
    assert_eq!(
        delivery.header("X-Shopify-Topic"),
        "inventory_levels/update"
    );
    assert_eq!(
        delivery.header("X-Shopify-Shop-Domain"),
        SimConfig::default().shop_domain
    );
    assert_eq!(delivery.header("X-Shopify-API-Version"), "2026-07");
    assert_eq!(delivery.header("Content-Type"), "application/json");
    assert_eq!(delivery.header("X-Shopify-Webhook-Id").len(), 36);
    assert_eq!(delivery.header("X-Shopify-Event-Id").len(), 36);
    let triggered = delivery.header("X-Shopify-Triggered-At");
    assert!(
        OffsetDateTime::parse(triggered, &Rfc3339).is_ok(),
        "{triggered}"
    );

    // The signature is the HMAC of the raw body with the app secret.
    let hmac = delivery.header("X-Shopify-Hmac-Sha256");
    assert!(verify(SECRET.as_bytes(), delivery.body.as_bytes(), hmac));
    assert_eq!(hmac, sign(SECRET.as_bytes(), delivery.body.as_bytes()));
    assert!(!verify(b"another secret", delivery.body.as_bytes(), hmac));

    // Same keys, in the same order and of the same kinds as the fixture.
    let fixture_text = shared("inventory_levels_update.json");
    let fixture_body: Value = serde_json::from_str(&fixture_text).expect("fixture");
    let order = |text: &str| {
        let mut keys: Vec<(usize, String)> = fixture_body
            .as_object()
            .expect("object")
            .keys()
            .map(|key| (text.find(&format!("\"{key}\":")).expect(key), key.clone()))
            .collect();
        keys.sort();
        keys.into_iter().map(|(_, key)| key).collect::<Vec<_>>()
    };
    assert_eq!(order(&delivery.body), order(&fixture_text));
    let body = delivery.json();
    assert_eq!(body.as_object().expect("object").len(), 5);
    for (key, value) in fixture_body.as_object().expect("object") {
        let kind = |v: &Value| (v.is_u64(), v.is_i64(), v.is_string());
        assert_eq!(kind(&body[key]), kind(value), "{key}: {}", body[key]);
    }

    // Ids above 2^53 are exact JSON numbers.
    let item = number_of(&items[0]);
    let location = number_of(&h.first_location().await);
    assert!(
        delivery
            .body
            .contains(&format!("\"inventory_item_id\":{item},"))
    );
    assert!(
        delivery
            .body
            .contains(&format!("\"location_id\":{location},"))
    );
    assert_eq!(body["inventory_item_id"].as_u64(), Some(item));
    assert_eq!(body["available"], json!(3));
    let gid = body["admin_graphql_api_id"].as_str().expect("gid");
    assert!(gid.starts_with("gid://shopify/InventoryLevel/"), "{gid}");
    assert!(
        gid.ends_with(&format!("?inventory_item_id={item}")),
        "{gid}"
    );
    let updated_at = body["updated_at"].as_str().expect("updated_at");
    assert!(OffsetDateTime::parse(updated_at, &Rfc3339).is_ok());
    assert_eq!(&updated_at[19..], "+00:00", "{updated_at}");

    let log = h.control.webhook_deliveries().await.expect("deliveries");
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].outcome, "delivered");
    assert_eq!((log[0].status, log[0].attempt), (Some(200), 1));
    assert_eq!(log[0].event_id, delivery.header("X-Shopify-Event-Id"));
    assert_eq!(log[0].webhook_id, delivery.header("X-Shopify-Webhook-Id"));
    assert_eq!(log[0].body, delivery.body);
}

#[tokio::test]
async fn the_secret_is_configurable() {
    let h = Harness::start_with(SimConfig {
        webhook_secret: "test-webhook-secret".to_owned(),
        ..SimConfig::default()
    })
    .await;
    let items = create_product(&h, "Signed", &[("Red", 5)]).await;
    let receiver = Receiver::start(&[]).await;
    subscribe(&h, &receiver.url("/hook")).await;
    h.control
        .set_stock(&items[0], None, 9)
        .await
        .expect("set stock");
    h.control.flush_webhooks().await.expect("flush");
    let received = receiver.received();
    assert_eq!(received.len(), 1);
    let hmac = received[0].header("X-Shopify-Hmac-Sha256");
    assert!(verify(
        b"test-webhook-secret",
        received[0].body.as_bytes(),
        hmac
    ));
    assert!(!verify(
        SECRET.as_bytes(),
        received[0].body.as_bytes(),
        hmac
    ));
}

#[tokio::test]
async fn the_signing_function_reproduces_the_known_good_vector() {
    let vector: Value = serde_json::from_str(&shared("hmac-vector.json")).expect("vector");
    let secret = vector["secret"].as_str().expect("secret");
    let body = vector["body"].as_str().expect("body");
    let expected = vector["x_shopify_hmac_sha256"].as_str().expect("digest");
    assert_eq!(sign(secret.as_bytes(), body.as_bytes()), expected);
    assert!(verify(secret.as_bytes(), body.as_bytes(), expected));
}

#[tokio::test]
async fn inventory_set_quantities_delivers_one_webhook_per_changed_level() {
    let h = Harness::start().await;
    let items = create_product(&h, "Set", &[("Red", 5), ("Blue", 5), ("Green", 5)]).await;
    let location = h.first_location().await;
    let receiver = Receiver::start(&[]).await;
    subscribe(&h, &receiver.url("/hook")).await;

    let line = |item: &str, quantity: i64| json!({"inventoryItemId": item, "locationId": location, "quantity": quantity, "changeFromQuantity": 5});
    let body = h
        .gql(
            &fixture("inventory-set.graphql"),
            json!({
                "idempotencyKey": "set-three",
                "input": {
                    "name": "available",
                    "reason": "correction",
                    "referenceDocumentUri": "logistics://fibermade/test",
                    // Green is set to what it already holds: no change.
                    "quantities": [line(&items[0], 7), line(&items[1], 1), line(&items[2], 5)],
                },
            }),
        )
        .await;
    assert_eq!(
        body["data"]["inventorySetQuantities"]["userErrors"],
        json!([])
    );
    assert_eq!(h.control.flush_webhooks().await.expect("flush"), 2);

    let received = receiver.received();
    let levels: Vec<(u64, i64)> = received
        .iter()
        .map(|r| {
            let body = r.json();
            (
                body["inventory_item_id"].as_u64().expect("item"),
                body["available"].as_i64().expect("available"),
            )
        })
        .collect();
    assert_eq!(
        levels,
        vec![(number_of(&items[0]), 7), (number_of(&items[1]), 1)]
    );
    assert_ne!(
        received[0].header("X-Shopify-Event-Id"),
        received[1].header("X-Shopify-Event-Id")
    );
}

#[tokio::test]
async fn stocking_a_new_variant_through_product_set_delivers_and_the_same_stock_again_does_not() {
    let h = Harness::start().await;
    let receiver = Receiver::start(&[]).await;
    subscribe(&h, &receiver.url("/hook")).await;
    let items = create_product(&h, "Fresh", &[("Red", 4)]).await;
    h.control.flush_webhooks().await.expect("flush");
    let received = receiver.received();
    assert_eq!(availables(&received), vec![4]);
    assert_eq!(
        received[0].json()["inventory_item_id"].as_u64(),
        Some(number_of(&items[0]))
    );

    // The same input again: the handle matches, nothing changes.
    let mut again = product_set(&h, "Fresh", &[("Red", 4)]).await;
    again["identifier"] = json!({"handle": "fresh"});
    h.gql(&fixture("product-set.graphql"), again).await;
    h.control.flush_webhooks().await.expect("flush");
    assert_eq!(receiver.received().len(), 1);
}

#[tokio::test]
async fn without_a_reorder_window_deliveries_arrive_in_event_order() {
    let h = Harness::start().await;
    let items = create_product(&h, "Ordered", &[("Red", 50)]).await;
    let receiver = Receiver::start(&[]).await;
    subscribe(&h, &receiver.url("/hook")).await;
    for available in 1..=6 {
        h.control
            .set_stock(&items[0], None, available)
            .await
            .expect("set stock");
    }
    assert_eq!(h.control.flush_webhooks().await.expect("flush"), 6);
    assert_eq!(availables(&receiver.received()), vec![1, 2, 3, 4, 5, 6]);
}

#[tokio::test]
async fn duplicates_share_the_event_id_and_body_but_not_the_webhook_id() {
    let h = Harness::start().await;
    let items = create_product(&h, "Twice", &[("Red", 5)]).await;
    let receiver = Receiver::start(&[]).await;
    subscribe(&h, &receiver.url("/hook")).await;
    set(
        &h,
        WebhookConfigUpdate {
            duplicate_rate: Some(1.0),
            seed: Some(11),
            ..WebhookConfigUpdate::default()
        },
    )
    .await;

    h.control.sale(&items[0], None, 1).await.expect("sale");
    assert_eq!(h.control.flush_webhooks().await.expect("flush"), 2);

    let received = receiver.received();
    assert_eq!(received.len(), 2);
    let (first, second) = (&received[0], &received[1]);
    assert_eq!(
        first.header("X-Shopify-Event-Id"),
        second.header("X-Shopify-Event-Id")
    );
    assert_ne!(
        first.header("X-Shopify-Webhook-Id"),
        second.header("X-Shopify-Webhook-Id")
    );
    assert_eq!(first.body, second.body);
    assert_eq!(
        first.header("X-Shopify-Triggered-At"),
        second.header("X-Shopify-Triggered-At")
    );
    assert_eq!(
        first.header("X-Shopify-Hmac-Sha256"),
        second.header("X-Shopify-Hmac-Sha256")
    );
    let log = h.control.webhook_deliveries().await.expect("deliveries");
    let flags: Vec<bool> = log.iter().map(|record| record.duplicated).collect();
    assert_eq!(flags, vec![false, true]);
}

#[tokio::test]
async fn reordering_holds_deliveries_sends_all_out_of_order_and_flush_waits_for_them() {
    let h = Harness::start().await;
    let items = create_product(&h, "Shuffled", &[("Red", 50)]).await;
    let receiver = Receiver::start(&[]).await;
    subscribe(&h, &receiver.url("/hook")).await;
    set(
        &h,
        WebhookConfigUpdate {
            reorder_window: Some(10),
            delay_ms: Some(30),
            seed: Some(7),
            ..WebhookConfigUpdate::default()
        },
    )
    .await;

    for available in 1..=5 {
        h.control
            .set_stock(&items[0], None, available)
            .await
            .expect("set stock");
    }
    // Fewer than the window: all held.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(receiver.received().is_empty());

    // The flush answers only once every delivery has been answered.
    assert_eq!(h.control.flush_webhooks().await.expect("flush"), 5);
    let received = availables(&receiver.received());
    assert_eq!(received.len(), 5);
    assert_ne!(received, vec![1, 2, 3, 4, 5]);
    let mut sorted = received.clone();
    sorted.sort();
    assert_eq!(sorted, vec![1, 2, 3, 4, 5]);

    let log = h.control.webhook_deliveries().await.expect("deliveries");
    assert_eq!(log.len(), 5);
    assert!(log.iter().any(|record| record.reordered));
    assert!(log.iter().all(|record| record.outcome == "delivered"));
}

#[tokio::test]
async fn a_full_reorder_window_is_sent_without_a_flush() {
    let h = Harness::start().await;
    let items = create_product(&h, "Window", &[("Red", 50)]).await;
    let receiver = Receiver::start(&[]).await;
    subscribe(&h, &receiver.url("/hook")).await;
    set(
        &h,
        WebhookConfigUpdate {
            reorder_window: Some(3),
            seed: Some(3),
            ..WebhookConfigUpdate::default()
        },
    )
    .await;
    for available in 1..=4 {
        h.control
            .set_stock(&items[0], None, available)
            .await
            .expect("set stock");
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while receiver.received().len() < 3 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let first_three = availables(&receiver.received());
    let mut sorted = first_three.clone();
    sorted.sort();
    assert_eq!(sorted, vec![1, 2, 3]);
    assert_ne!(first_three, vec![1, 2, 3]);
    assert_eq!(h.control.flush_webhooks().await.expect("flush"), 4);
    assert_eq!(availables(&receiver.received())[3], 4);
}

#[tokio::test]
async fn failed_deliveries_are_retried_with_the_same_payload_and_event_id() {
    let h = Harness::start().await;
    let items = create_product(&h, "Retried", &[("Red", 5)]).await;
    let receiver = Receiver::start(&[Reply::Status(500), Reply::Status(503)]).await;
    subscribe(&h, &receiver.url("/hook")).await;
    set(
        &h,
        WebhookConfigUpdate {
            retry_delay_ms: Some(50),
            ..WebhookConfigUpdate::default()
        },
    )
    .await;

    h.control.sale(&items[0], None, 1).await.expect("sale");
    assert_eq!(h.control.flush_webhooks().await.expect("flush"), 1);

    let received = receiver.received();
    assert_eq!(received.len(), 3);
    for attempt in &received[1..] {
        assert_eq!(attempt.body, received[0].body);
        for header in [
            "X-Shopify-Event-Id",
            "X-Shopify-Webhook-Id",
            "X-Shopify-Triggered-At",
            "X-Shopify-Hmac-Sha256",
        ] {
            assert_eq!(attempt.header(header), received[0].header(header));
        }
    }
    let log = h.control.webhook_deliveries().await.expect("deliveries");
    let attempts: Vec<(u32, Option<u16>, &str)> = log
        .iter()
        .map(|r| (r.attempt, r.status, r.outcome.as_str()))
        .collect();
    assert_eq!(
        attempts,
        vec![
            (1, Some(500), "retrying"),
            (2, Some(503), "retrying"),
            (3, Some(200), "delivered"),
        ]
    );
}

#[tokio::test]
async fn an_answer_slower_than_the_timeout_is_a_failure_and_is_retried() {
    let h = Harness::start().await;
    let items = create_product(&h, "Slow", &[("Red", 5)]).await;
    let receiver = Receiver::start(&[Reply::Slow(1500)]).await;
    subscribe(&h, &receiver.url("/hook")).await;
    set(
        &h,
        WebhookConfigUpdate {
            timeout_ms: Some(200),
            retry_delay_ms: Some(10),
            ..WebhookConfigUpdate::default()
        },
    )
    .await;
    h.control.sale(&items[0], None, 1).await.expect("sale");
    h.control.flush_webhooks().await.expect("flush");
    let log = h.control.webhook_deliveries().await.expect("deliveries");
    assert_eq!(log.len(), 2, "{log:#?}");
    assert_eq!(log[0].status, None);
    assert!(
        log[0]
            .error
            .as_deref()
            .is_some_and(|e| e.starts_with("timeout")),
        "{log:#?}"
    );
    assert_eq!((log[1].attempt, log[1].outcome.as_str()), (2, "delivered"));
}

#[tokio::test]
async fn a_delivery_failing_every_attempt_is_recorded_as_failed() {
    let h = Harness::start().await;
    let items = create_product(&h, "Refused", &[("Red", 5)]).await;
    let url = closed_port_url();
    subscribe(&h, &url).await;
    set(
        &h,
        WebhookConfigUpdate {
            retry_delay_ms: Some(10),
            ..WebhookConfigUpdate::default()
        },
    )
    .await;
    h.control.sale(&items[0], None, 1).await.expect("sale");
    h.control.flush_webhooks().await.expect("flush");
    let log = h.control.webhook_deliveries().await.expect("deliveries");
    let outcomes: Vec<&str> = log.iter().map(|r| r.outcome.as_str()).collect();
    assert_eq!(outcomes, vec!["retrying", "retrying", "failed"]);
    assert!(log.iter().all(|r| r.status.is_none() && r.error.is_some()));
    assert!(
        log.iter()
            .all(|r| r.event_id == log[0].event_id && r.body == log[0].body)
    );
    // One failure is far from the limit: the subscription stays.
    let state = h.control.state().await.expect("state");
    assert_eq!(
        state["webhookSubscriptions"].as_array().map(Vec::len),
        Some(1)
    );
}

#[tokio::test]
async fn a_subscription_is_deleted_after_consecutive_failed_deliveries() {
    let h = Harness::start().await;
    let items = create_product(&h, "Gone", &[("Red", 50)]).await;
    subscribe(&h, &closed_port_url()).await;
    set(
        &h,
        WebhookConfigUpdate {
            attempts: Some(1),
            failure_limit: Some(2),
            ..WebhookConfigUpdate::default()
        },
    )
    .await;
    h.control.sale(&items[0], None, 1).await.expect("sale");
    h.control.flush_webhooks().await.expect("flush");
    let state = h.control.state().await.expect("state");
    assert_eq!(
        state["webhookSubscriptions"].as_array().map(Vec::len),
        Some(1)
    );

    h.control.sale(&items[0], None, 1).await.expect("sale");
    h.control.flush_webhooks().await.expect("flush");
    let state = h.control.state().await.expect("state");
    assert_eq!(state["webhookSubscriptions"], json!([]));
    let log = h.control.webhook_deliveries().await.expect("deliveries");
    assert_eq!(log.len(), 2);
    assert!(!log[0].subscription_removed);
    assert!(log[1].subscription_removed);

    // Nothing is delivered to a deleted subscription.
    h.control.sale(&items[0], None, 1).await.expect("sale");
    h.control.flush_webhooks().await.expect("flush");
    assert_eq!(h.control.webhook_deliveries().await.expect("log").len(), 2);
}

#[tokio::test]
async fn a_non_loopback_address_is_never_contacted() {
    let h = Harness::start().await;
    let items = create_product(&h, "Local", &[("Red", 5)]).await;
    let receiver = Receiver::start(&[]).await;
    // Accepted as a shop would accept them; never delivered to.
    let remote = [
        "https://example.invalid/webhooks",
        "http://127.0.0.1.example.invalid/webhooks",
    ];
    for uri in remote {
        subscribe(&h, uri).await;
    }
    subscribe(&h, &receiver.url("/hook")).await;

    h.control.sale(&items[0], None, 1).await.expect("sale");
    assert_eq!(h.control.flush_webhooks().await.expect("flush"), 3);

    assert_eq!(receiver.received().len(), 1);
    let log = h.control.webhook_deliveries().await.expect("deliveries");
    assert_eq!(log.len(), 3, "{log:#?}");
    for uri in remote {
        let records: Vec<_> = log.iter().filter(|r| r.url == uri).collect();
        assert_eq!(
            records.len(),
            1,
            "refused once, never retried: {records:#?}"
        );
        let record = records[0];
        assert_eq!(record.outcome, "refused");
        assert_eq!(record.status, None);
        assert!(
            record
                .error
                .as_deref()
                .is_some_and(|e| e.starts_with("refused")),
            "{record:#?}"
        );
    }
}

#[tokio::test]
async fn replay_resends_the_original_body_and_triggered_at_with_the_same_event_id() {
    let h = Harness::start().await;
    let items = create_product(&h, "Again", &[("Red", 5)]).await;
    let receiver = Receiver::start(&[]).await;
    subscribe(&h, &receiver.url("/hook")).await;
    h.control.sale(&items[0], None, 1).await.expect("sale");
    h.control.flush_webhooks().await.expect("flush");
    // Stock moves on before the replay; the replay still carries the old body.
    h.control.sale(&items[0], None, 1).await.expect("sale");
    h.control.flush_webhooks().await.expect("flush");
    let received = receiver.received();
    assert_eq!(availables(&received), vec![4, 3]);
    let event_id = received[0].header("X-Shopify-Event-Id").to_owned();

    assert_eq!(
        h.control.replay_webhook(&event_id).await.expect("replay"),
        1
    );
    let received = receiver.received();
    assert_eq!(received.len(), 3);
    let (original, replay) = (&received[0], &received[2]);
    assert_eq!(replay.body, original.body);
    for header in [
        "X-Shopify-Event-Id",
        "X-Shopify-Webhook-Id",
        "X-Shopify-Triggered-At",
        "X-Shopify-Hmac-Sha256",
    ] {
        assert_eq!(replay.header(header), original.header(header));
    }
    let log = h.control.webhook_deliveries().await.expect("deliveries");
    let last = log.last().expect("record");
    assert!(last.replayed);
    assert_eq!(last.attempt, 2);

    match h.control.replay_webhook("no-such-event").await {
        Err(SimError::ControlStatus { status: 404, .. }) => {}
        other => panic!("expected a 404, got {other:?}"),
    }
}

#[tokio::test]
async fn the_graphql_answer_does_not_wait_for_deliveries() {
    let h = Harness::start().await;
    let items = create_product(&h, "Background", &[("Red", 5)]).await;
    let location = h.first_location().await;
    let receiver = Receiver::start(&[Reply::Slow(3000)]).await;
    subscribe(&h, &receiver.url("/hook")).await;
    let started = Instant::now();
    let body = h
        .gql(
            &fixture("inventory-set.graphql"),
            json!({
                "idempotencyKey": "background",
                "input": {
                    "name": "available",
                    "reason": "correction",
                    "referenceDocumentUri": "logistics://fibermade/test",
                    "quantities": [{"inventoryItemId": items[0], "locationId": location, "quantity": 2, "changeFromQuantity": 5}],
                },
            }),
        )
        .await;
    let answered = started.elapsed();
    assert_eq!(
        body["data"]["inventorySetQuantities"]["userErrors"],
        json!([])
    );
    assert!(answered < Duration::from_millis(2000), "{answered:?}");
    h.control.flush_webhooks().await.expect("flush");
    assert!(started.elapsed() >= Duration::from_millis(3000));
    assert_eq!(receiver.received().len(), 1);
}

#[tokio::test]
async fn webhook_settings_round_trip_and_bad_ones_are_refused() {
    let h = Harness::start().await;
    let defaults = h.control.webhook_config().await.expect("config");
    assert_eq!(
        (
            defaults.attempts,
            defaults.retry_delay_ms,
            defaults.timeout_ms,
            defaults.failure_limit
        ),
        (3, 200, 5000, 20)
    );
    let changed = h
        .control
        .configure_webhooks(&WebhookConfigUpdate {
            duplicate_rate: Some(0.25),
            reorder_window: Some(4),
            ..WebhookConfigUpdate::default()
        })
        .await
        .expect("config");
    assert_eq!((changed.duplicate_rate, changed.reorder_window), (0.25, 4));
    assert_eq!(changed.attempts, 3);
    let refused = h
        .control
        .configure_webhooks(&WebhookConfigUpdate {
            duplicate_rate: Some(2.0),
            ..WebhookConfigUpdate::default()
        })
        .await;
    assert!(matches!(
        refused,
        Err(SimError::ControlStatus { status: 400, .. })
    ));

    h.control.reset().await.expect("reset");
    assert!(
        h.control
            .webhook_deliveries()
            .await
            .expect("log")
            .is_empty()
    );
}
