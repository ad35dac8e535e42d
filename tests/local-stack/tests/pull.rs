//! Pull, end to end: signed deliveries through the webhook ingress, onto the
//! pull queue (SQS on moto), and through the sync worker into Fibermade's
//! stock, exactly once whatever Shopify's delivery does.

use fibermade_sync::domain::{
    AccountId, ExternalType, Gid, InventoryKey, LocalRef, LogSource, LogStatus, SyncStatus,
};
use fibermade_sync::pull::PullOutcome;
use fibermade_sync::push::PushRequest;
use fibermade_sync::webhook::ingress;
use fibermade_sync::webhook::signature::WebhookSecret;
use local_stack::router::drain_queue;
use local_stack::{LocalStack, SHOP_DOMAIN, WEBHOOK_SECRET, project_root};
use serde_json::{Value, json};

/// An account with the yarn catalog imported and pushed to the shop.
async fn pushed_stack(account: &str) -> (LocalStack, AccountId) {
    let stack = LocalStack::start().await.unwrap();
    let acct = stack
        .seed_account(account, "user-creator", &[], true)
        .await
        .unwrap()
        .id;
    let csv = std::fs::read(project_root().join("tests/fixtures/csv/yarn-catalog.csv")).unwrap();
    stack
        .import_file(&acct, "yarn.csv", csv)
        .await
        .unwrap()
        .unwrap();
    let request = PushRequest::account(acct.clone());
    stack.pusher().push(&request).await.unwrap();
    (stack, acct)
}

/// The inventory row of Moss Garden on Merino Fingering (12 skeins), its
/// Shopify inventory item and the shop's location.
async fn moss_fingering(stack: &LocalStack, acct: &AccountId) -> (InventoryKey, u64, u64) {
    let catalog = stack.store.load_catalog(acct).await.unwrap();
    let moss = catalog
        .colorways
        .iter()
        .find(|c| c.handle.as_str() == "moss-garden")
        .unwrap();
    let base = catalog
        .bases
        .iter()
        .find(|b| b.descriptor.as_str() == "Merino Fingering")
        .unwrap();
    let key = InventoryKey::new(moss.id.clone(), base.id.clone());
    let (integration, _) = stack
        .store
        .account_integration(acct)
        .await
        .unwrap()
        .unwrap();
    let item = stack
        .store
        .load_links(&integration.id)
        .await
        .unwrap()
        .into_iter()
        .find(|l| {
            l.local == LocalRef::Inventory(key.clone())
                && l.external_type == ExternalType::ShopifyInventoryItem
        })
        .unwrap()
        .external_id;
    let location = integration.location_id.unwrap();
    (
        key,
        item.numeric_id().unwrap(),
        location.numeric_id().unwrap(),
    )
}

/// A delivery as Shopify sends it.
struct Delivery {
    body: String,
    headers: Vec<(&'static str, String)>,
}

fn delivery(
    event: &str,
    item: u64,
    location: u64,
    available: Option<i64>,
    updated_at: &str,
) -> Delivery {
    let body = json!({
        "inventory_item_id": item,
        "location_id": location,
        "available": available,
        "updated_at": updated_at,
        "admin_graphql_api_id": format!("gid://shopify/InventoryLevel/1?inventory_item_id={item}"),
    })
    .to_string();
    let signature = WebhookSecret::new(WEBHOOK_SECRET).sign(body.as_bytes());
    Delivery {
        headers: vec![
            ("x-shopify-topic", "inventory_levels/update".into()),
            ("x-shopify-shop-domain", SHOP_DOMAIN.into()),
            ("x-shopify-api-version", "2026-07".into()),
            (
                "x-shopify-webhook-id",
                format!("wh-{event}-{}", uuid_like()),
            ),
            ("x-shopify-event-id", event.into()),
            ("x-shopify-triggered-at", updated_at.into()),
            ("x-shopify-hmac-sha256", signature),
        ],
        body,
    }
}

fn uuid_like() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

fn request(d: &Delivery) -> lambda_http::Request {
    let mut builder = lambda_http::http::Request::builder()
        .method("POST")
        .uri("https://ingress.example/");
    for (name, value) in &d.headers {
        builder = builder.header(*name, value);
    }
    builder
        .body(lambda_http::Body::Text(d.body.clone()))
        .unwrap()
}

async fn deliver(stack: &LocalStack, d: &Delivery) -> u16 {
    ingress::handle(&stack.ingress(), request(d))
        .await
        .status()
        .as_u16()
}

async fn queued(stack: &LocalStack) -> usize {
    let attributes = stack
        .sqs
        .get_queue_attributes()
        .queue_url(&stack.pull_queue)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap_or_default();
    attributes
        .get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

async fn quantity(stack: &LocalStack, acct: &AccountId, key: &InventoryKey) -> i64 {
    stack
        .store
        .get_inventory(acct, key)
        .await
        .unwrap()
        .unwrap()
        .quantity
}

#[tokio::test]
async fn a_sale_on_shopify_lowers_fibermade_stock() {
    let (stack, acct) = pushed_stack("acct-pull").await;
    let (key, item, location) = moss_fingering(&stack, &acct).await;

    let status = deliver(
        &stack,
        &delivery("ev-1", item, location, Some(10), "2026-12-04T10:00:00Z"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(queued(&stack).await, 1);
    drain_queue(&stack.sqs, &stack.pull_queue, &stack.puller())
        .await
        .unwrap();

    let row = stack
        .store
        .get_inventory(&acct, &key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.quantity, 10, "12 in stock, 2 sold on the shop");
    assert_eq!(row.synced_quantity, Some(10));
    assert_eq!(row.sync_status, SyncStatus::Synced);
    let log = stack.store.recent_logs(&acct, 5).await.unwrap();
    let entry = log
        .iter()
        .find(|e| e.source == LogSource::Webhook)
        .expect("a pull entry");
    assert!(
        entry
            .message
            .contains("Moss Garden / Merino Fingering set to 10"),
        "{}",
        entry.message
    );
    assert_eq!(
        (entry.status, entry.direction),
        (LogStatus::Success, fibermade_sync::domain::Direction::Pull)
    );
}

#[tokio::test]
async fn invalid_missing_and_truncated_signatures_are_refused_and_store_nothing() {
    let (stack, acct) = pushed_stack("acct-sig").await;
    let (_, item, location) = moss_fingering(&stack, &acct).await;
    let good = delivery("ev-sig", item, location, Some(1), "2026-12-04T10:00:00Z");
    let signature_at = good
        .headers
        .iter()
        .position(|(n, _)| *n == "x-shopify-hmac-sha256")
        .unwrap();

    let mut wrong = delivery("ev-sig", item, location, Some(1), "2026-12-04T10:00:00Z");
    wrong.headers[signature_at].1 = WebhookSecret::new("another-app").sign(wrong.body.as_bytes());
    let mut missing = delivery("ev-sig", item, location, Some(1), "2026-12-04T10:00:00Z");
    missing.headers.remove(signature_at);
    let mut truncated = delivery("ev-sig", item, location, Some(1), "2026-12-04T10:00:00Z");
    truncated.headers[signature_at].1.truncate(20);
    let mut tampered = delivery("ev-sig", item, location, Some(1), "2026-12-04T10:00:00Z");
    tampered.body = tampered
        .body
        .replace("\"available\":1", "\"available\":1000");

    for (case, d) in [
        ("wrong", wrong),
        ("missing", missing),
        ("truncated", truncated),
        ("tampered body", tampered),
    ] {
        assert_eq!(deliver(&stack, &d).await, 401, "{case}");
    }
    assert_eq!(queued(&stack).await, 0, "nothing was queued");
    assert_eq!(deliver(&stack, &good).await, 200);
}

#[tokio::test]
async fn a_base64_body_from_the_function_url_verifies() {
    let (stack, acct) = pushed_stack("acct-b64").await;
    let (_, item, location) = moss_fingering(&stack, &acct).await;
    let d = delivery("ev-b64", item, location, Some(3), "2026-12-04T10:00:00Z");
    let sample = std::fs::read_to_string(
        project_root().join("events/webhook-ingress/inventory-levels-update.json"),
    )
    .unwrap();
    let mut event: Value = serde_json::from_str(&sample).unwrap();
    use base64::Engine;
    event["body"] = json!(base64::engine::general_purpose::STANDARD.encode(&d.body));
    event["isBase64Encoded"] = json!(true);
    for (name, value) in &d.headers {
        event["headers"][*name] = json!(value);
    }
    let request = lambda_http::request::from_str(&event.to_string()).unwrap();

    let response = ingress::handle(&stack.ingress(), request).await;

    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(queued(&stack).await, 1);
}

#[tokio::test]
async fn unknown_shops_wrong_topics_and_unreadable_bodies_are_acknowledged_not_applied() {
    let (stack, acct) = pushed_stack("acct-odd").await;
    let (key, item, location) = moss_fingering(&stack, &acct).await;
    let sign = |d: &mut Delivery| {
        let at = d
            .headers
            .iter()
            .position(|(n, _)| *n == "x-shopify-hmac-sha256")
            .unwrap();
        d.headers[at].1 = WebhookSecret::new(WEBHOOK_SECRET).sign(d.body.as_bytes());
    };
    let header = |d: &mut Delivery, name: &str, value: &str| {
        let at = d.headers.iter().position(|(n, _)| *n == name).unwrap();
        d.headers[at].1 = value.to_owned();
    };

    let mut unknown_shop = delivery("ev-x1", item, location, Some(1), "2026-12-04T10:00:00Z");
    header(
        &mut unknown_shop,
        "x-shopify-shop-domain",
        "someone-else.myshopify.com",
    );
    let mut wrong_topic = delivery("ev-x2", item, location, Some(1), "2026-12-04T10:00:00Z");
    header(&mut wrong_topic, "x-shopify-topic", "orders/create");
    let mut unreadable = delivery("ev-x3", item, location, Some(1), "2026-12-04T10:00:00Z");
    unreadable.body = "{\"inventory_item_id\": \"not a number\"}".into();
    sign(&mut unreadable);

    for (case, d) in [
        ("unknown shop", unknown_shop),
        ("wrong topic", wrong_topic),
        ("unreadable body", unreadable),
    ] {
        assert_eq!(
            deliver(&stack, &d).await,
            200,
            "{case}: acknowledged so Shopify does not retry"
        );
    }
    assert_eq!(queued(&stack).await, 0);
    assert_eq!(quantity(&stack, &acct, &key).await, 12);
    let log = stack.store.recent_logs(&acct, 10).await.unwrap();
    let kept: Vec<_> = log
        .iter()
        .filter(|e| e.status == LogStatus::Error && e.data["payload"].is_string())
        .collect();
    assert_eq!(
        kept.len(),
        2,
        "the wrong topic and the unreadable body are logged with their payload"
    );
}

#[tokio::test]
async fn a_queue_that_cannot_be_reached_answers_503_so_shopify_retries() {
    let (stack, acct) = pushed_stack("acct-503").await;
    let (_, item, location) = moss_fingering(&stack, &acct).await;
    let mut ingress = stack.ingress();
    ingress.queue_url = format!("{}/123456789012/no-such-queue", stack.aws_endpoint);

    let response = ingress::handle(
        &ingress,
        request(&delivery(
            "ev-503",
            item,
            location,
            Some(1),
            "2026-12-04T10:00:00Z",
        )),
    )
    .await;

    assert_eq!(response.status().as_u16(), 503);
}

#[tokio::test]
async fn duplicated_and_reordered_deliveries_apply_once_and_end_at_the_latest_figure() {
    let (stack, acct) = pushed_stack("acct-order").await;
    let (key, item, location) = moss_fingering(&stack, &acct).await;
    // Three sales in a row on the shop: 12 → 11 → 10 → 9.
    let first = delivery("ev-a", item, location, Some(11), "2026-12-04T10:00:01Z");
    let second = delivery("ev-b", item, location, Some(10), "2026-12-04T10:00:02Z");
    let third = delivery("ev-c", item, location, Some(9), "2026-12-04T10:00:03Z");

    // Delivered newest first, each twice, the first one a third time late.
    for d in [&third, &second, &third, &first, &second, &first] {
        assert_eq!(deliver(&stack, d).await, 200);
    }
    drain_queue(&stack.sqs, &stack.pull_queue, &stack.puller())
        .await
        .unwrap();
    assert_eq!(deliver(&stack, &first).await, 200);
    drain_queue(&stack.sqs, &stack.pull_queue, &stack.puller())
        .await
        .unwrap();

    assert_eq!(quantity(&stack, &acct, &key).await, 9);
    let applied = stack
        .store
        .recent_logs(&acct, 50)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| {
            e.source == LogSource::Webhook
                && e.status == LogStatus::Success
                && e.data["stale"] != true
        })
        .count();
    assert_eq!(
        applied, 1,
        "only the newest figure was applied; older ones were stale, repeats duplicates"
    );
}

#[tokio::test]
async fn outcomes_name_each_rule() {
    let (stack, acct) = pushed_stack("acct-rules").await;
    let (key, item, location) = moss_fingering(&stack, &acct).await;
    let puller = stack.puller();
    let job = |event: &str, item: u64, location: u64, available: Option<i64>, at: &str| {
        let d = delivery(event, item, location, available, at);
        fibermade_sync::webhook::PullJob {
            webhook_id: format!("wh-{event}"),
            event_id: event.to_owned(),
            triggered_at: None,
            shop_domain: SHOP_DOMAIN.to_owned(),
            update: serde_json::from_str(&d.body).unwrap(),
        }
    };

    // Our own push set 12: the echo writes nothing.
    let version = stack
        .store
        .get_inventory(&acct, &key)
        .await
        .unwrap()
        .unwrap()
        .version;
    assert_eq!(
        puller
            .apply(&job("e1", item, location, Some(12), "2026-12-04T10:00:00Z"))
            .await
            .unwrap(),
        PullOutcome::Echo
    );
    assert_eq!(
        puller
            .apply(&job("e1", item, location, Some(12), "2026-12-04T10:00:00Z"))
            .await
            .unwrap(),
        PullOutcome::Duplicate
    );
    assert_eq!(
        puller
            .apply(&job("e2", 999, location, Some(3), "2026-12-04T10:00:01Z"))
            .await
            .unwrap(),
        PullOutcome::UnknownItem
    );
    assert_eq!(
        puller
            .apply(&job("e3", item, 424242, Some(3), "2026-12-04T10:00:01Z"))
            .await
            .unwrap(),
        PullOutcome::OtherLocation
    );
    assert_eq!(
        puller
            .apply(&job("e4", item, location, None, "2026-12-04T10:00:01Z"))
            .await
            .unwrap(),
        PullOutcome::Untracked
    );
    assert_eq!(quantity(&stack, &acct, &key).await, 12);
    assert!(
        stack
            .store
            .get_inventory(&acct, &key)
            .await
            .unwrap()
            .unwrap()
            .version
            <= version + 1
    );

    let mut other_shop = job("e5", item, location, Some(3), "2026-12-04T10:00:01Z");
    other_shop.shop_domain = "unknown.myshopify.com".into();
    assert_eq!(
        puller.apply(&other_shop).await.unwrap(),
        PullOutcome::UnknownShop
    );

    // The dyer recounts to 15 in Fibermade; 2 sell on the shop before a push.
    stack
        .sim_control
        .sale(Gid::new("InventoryItem", item).as_str(), None, 2)
        .await
        .unwrap();
    stack.dyer_sets_stock(&acct, &key, 15).await.unwrap();
    let merged = puller
        .apply(&job("e6", item, location, Some(10), "2026-12-04T10:00:05Z"))
        .await
        .unwrap();
    assert_eq!(
        merged,
        PullOutcome::Merged {
            fibermade: 15,
            shop_change: -2,
            to: 13
        }
    );
    let row = stack
        .store
        .get_inventory(&acct, &key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (row.quantity, row.synced_quantity, row.sync_status),
        (13, Some(10), SyncStatus::Conflict)
    );
    let notices = stack.store.recent_notifications(&acct, 5).await.unwrap();
    assert_eq!(notices[0].0, "stock_conflict");
    let warning = stack
        .store
        .recent_logs(&acct, 10)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.data["conflict"] == true)
        .unwrap();
    assert_eq!(warning.status, LogStatus::Warning);

    // The next push sets the merged figure on the shop, changing from 10.
    stack
        .pusher()
        .push(&PushRequest::account(acct.clone()))
        .await
        .unwrap();
    let product = stack
        .sim_control
        .product_by_handle("moss-garden")
        .await
        .unwrap()
        .unwrap();
    let fingering = product["variants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["selectedOptions"][0]["value"] == "Merino Fingering")
        .unwrap();
    assert_eq!(fingering["levels"][0]["available"], 13);
}

#[tokio::test]
async fn a_push_followed_by_its_own_webhook_writes_and_pushes_nothing() {
    let (stack, acct) = pushed_stack("acct-loop").await;
    let (key, item, location) = moss_fingering(&stack, &acct).await;
    stack.dyer_sets_stock(&acct, &key, 20).await.unwrap();
    stack
        .pusher()
        .push(&PushRequest::account(acct.clone()))
        .await
        .unwrap();

    // Shopify echoes the push back as a webhook.
    deliver(
        &stack,
        &delivery("ev-echo", item, location, Some(20), "2026-12-04T11:00:00Z"),
    )
    .await;
    drain_queue(&stack.sqs, &stack.pull_queue, &stack.puller())
        .await
        .unwrap();
    stack.sim_control.clear_calls().await.unwrap();
    let report = stack
        .pusher()
        .push(&PushRequest::account(acct.clone()))
        .await
        .unwrap();

    assert_eq!(quantity(&stack, &acct, &key).await, 20);
    assert_eq!(report.shopify_calls, 0, "nothing to push back");
    assert_eq!(report.quantities_set, 0);
}

#[tokio::test]
async fn a_store_failure_leaves_the_message_for_a_retry() {
    let (stack, acct) = pushed_stack("acct-dbfail").await;
    let (_, item, location) = moss_fingering(&stack, &acct).await;
    deliver(
        &stack,
        &delivery("ev-db", item, location, Some(5), "2026-12-04T10:00:00Z"),
    )
    .await;
    let mut broken = stack.store.tables().clone();
    broken.catalog = "no-such-table".into();
    broken.sync = "no-such-table".into();
    let puller = fibermade_sync::pull::Puller::new(fibermade_sync::store::Store::new(
        stack.dynamodb.clone(),
        broken,
    ));

    let drained = drain_queue(&stack.sqs, &stack.pull_queue, &puller)
        .await
        .unwrap();

    assert_eq!((drained.received, drained.failed), (1, 1));
}

/// The whole path with the shop's own deliveries: registration through the
/// API, sales on the simulated shop, Shopify duplicating and reordering its
/// deliveries, the Function URL, the queue and the worker.
#[tokio::test]
async fn sales_on_the_shop_reach_fibermade_through_registered_webhooks() {
    use fibermade_sync::webhook::registration::{Registration, ensure_inventory_subscription};
    use local_stack::router::FunctionUrl;

    let (stack, acct) = pushed_stack("acct-sim-hooks").await;
    let (key, item, _) = moss_fingering(&stack, &acct).await;
    let url = FunctionUrl::start(stack.ingress()).await.unwrap();
    let shop = fibermade_sync::shopify::Shop {
        domain: SHOP_DOMAIN.to_owned(),
        access_token: fibermade_sync::shopify::AccessToken::new(local_stack::ACCESS_TOKEN),
    };
    let (first, _) = ensure_inventory_subscription(&stack.shopify, &shop, &url.url())
        .await
        .unwrap();
    assert!(matches!(first, Registration::Created(_)));
    let (again, _) = ensure_inventory_subscription(&stack.shopify, &shop, &url.url())
        .await
        .unwrap();
    assert!(
        matches!(again, Registration::AlreadyRegistered(_)),
        "registration is idempotent"
    );

    let update = shopify_sim::WebhookConfigUpdate {
        duplicate_rate: Some(0.5),
        reorder_window: Some(3),
        seed: Some(7),
        ..Default::default()
    };
    stack.sim_control.configure_webhooks(&update).await.unwrap();
    let item_gid = Gid::new("InventoryItem", item);
    for _ in 0..3 {
        stack
            .sim_control
            .sale(item_gid.as_str(), None, 1)
            .await
            .unwrap();
    }
    stack.sim_control.flush_webhooks().await.unwrap();
    drain_queue(&stack.sqs, &stack.pull_queue, &stack.puller())
        .await
        .unwrap();

    assert_eq!(
        quantity(&stack, &acct, &key).await,
        9,
        "12 in stock, 3 sold"
    );
    let deliveries = stack.sim_control.webhook_deliveries().await.unwrap();
    assert!(
        deliveries.len() > 3,
        "Shopify duplicated some deliveries: {}",
        deliveries.len()
    );
}

/// Two sales in one second: `updated_at` ties, `X-Shopify-Triggered-At`
/// orders them, so the older one delivered last is stale.
#[tokio::test]
async fn sales_within_one_second_delivered_in_reverse_keep_the_latest_figure() {
    let (stack, acct) = pushed_stack("acct-same-second").await;
    let (key, item, location) = moss_fingering(&stack, &acct).await;
    let with_trigger = |event: &str, available: i64, triggered: &str| {
        let mut d = delivery(
            event,
            item,
            location,
            Some(available),
            "2026-12-04T10:00:00Z",
        );
        let at = d
            .headers
            .iter()
            .position(|(n, _)| *n == "x-shopify-triggered-at")
            .unwrap();
        d.headers[at].1 = triggered.to_owned();
        d
    };
    let first = with_trigger("same-1", 11, "2026-12-04T10:00:00.100000Z");
    let second = with_trigger("same-2", 10, "2026-12-04T10:00:00.700000Z");

    deliver(&stack, &second).await;
    drain_queue(&stack.sqs, &stack.pull_queue, &stack.puller())
        .await
        .unwrap();
    deliver(&stack, &first).await;
    drain_queue(&stack.sqs, &stack.pull_queue, &stack.puller())
        .await
        .unwrap();

    assert_eq!(quantity(&stack, &acct, &key).await, 10);
}

#[tokio::test]
async fn figures_beyond_shopify_bounds_or_dated_in_the_future_are_logged_not_applied() {
    let (stack, acct) = pushed_stack("acct-implausible").await;
    let (key, item, location) = moss_fingering(&stack, &acct).await;

    deliver(
        &stack,
        &delivery(
            "huge",
            item,
            location,
            Some(5_000_000_000),
            "2026-12-04T10:00:00Z",
        ),
    )
    .await;
    deliver(
        &stack,
        &delivery("future", item, location, Some(11), "2999-01-01T00:00:00Z"),
    )
    .await;
    drain_queue(&stack.sqs, &stack.pull_queue, &stack.puller())
        .await
        .unwrap();
    deliver(
        &stack,
        &delivery("real", item, location, Some(10), "2026-12-04T10:00:01Z"),
    )
    .await;
    drain_queue(&stack.sqs, &stack.pull_queue, &stack.puller())
        .await
        .unwrap();

    assert_eq!(
        quantity(&stack, &acct, &key).await,
        10,
        "the real sale still applies"
    );
    let log = stack.store.recent_logs(&acct, 20).await.unwrap();
    assert_eq!(
        log.iter().filter(|e| e.message.contains("ignored")).count(),
        2
    );
}

#[tokio::test]
async fn deliveries_without_ids_are_told_apart_by_what_they_say() {
    let (stack, acct) = pushed_stack("acct-no-ids").await;
    let (key, item, location) = moss_fingering(&stack, &acct).await;
    for (event, available, at) in [
        ("a", 11, "2026-12-04T10:00:01Z"),
        ("b", 10, "2026-12-04T10:00:02Z"),
    ] {
        let mut d = delivery(event, item, location, Some(available), at);
        d.headers
            .retain(|(n, _)| *n != "x-shopify-webhook-id" && *n != "x-shopify-event-id");
        assert_eq!(deliver(&stack, &d).await, 200);
    }
    drain_queue(&stack.sqs, &stack.pull_queue, &stack.puller())
        .await
        .unwrap();

    assert_eq!(quantity(&stack, &acct, &key).await, 10);
}

/// A sale lands between a push's stock write and its bookkeeping: the worker
/// must not take the push's figure for a change of the dyer's and merge.
#[tokio::test]
async fn a_sale_during_a_push_is_applied_once_the_push_has_recorded() {
    let (stack, acct) = pushed_stack("acct-sale-in-push").await;
    let (key, item, location) = moss_fingering(&stack, &acct).await;
    stack.dyer_sets_stock(&acct, &key, 20).await.unwrap();
    stack
        .sim_control
        .inject_fault(
            shopify_sim::FaultKind::Latency { ms: 2500 },
            Some("inventorySetQuantities"),
            1,
        )
        .await
        .unwrap();
    let pusher = stack.pusher();
    let request = PushRequest::account(acct.clone());
    let pushing = tokio::spawn(async move { pusher.push(&request).await });
    let item_gid = Gid::new("InventoryItem", item);
    for _ in 0..100 {
        let product = stack
            .sim_control
            .product_by_handle("moss-garden")
            .await
            .unwrap()
            .unwrap();
        let level = product["variants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["inventoryItemId"] == item_gid.as_str())
            .unwrap()["levels"][0]["available"]
            .as_i64();
        if level == Some(20) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    stack
        .sim_control
        .sale(item_gid.as_str(), None, 1)
        .await
        .unwrap();
    let sale = delivery(
        "sale-in-push",
        item,
        location,
        Some(19),
        "2026-12-04T12:00:00Z",
    );
    deliver(&stack, &sale).await;
    let early = drain_queue(&stack.sqs, &stack.pull_queue, &stack.puller())
        .await
        .unwrap();
    assert_eq!(early.failed, 1, "deferred while the push runs");

    pushing.await.unwrap().unwrap();
    deliver(&stack, &sale).await;
    drain_queue(&stack.sqs, &stack.pull_queue, &stack.puller())
        .await
        .unwrap();
    stack
        .pusher()
        .push(&PushRequest::account(acct.clone()))
        .await
        .unwrap();

    assert_eq!(
        quantity(&stack, &acct, &key).await,
        19,
        "20 counted, 1 sold"
    );
    let product = stack
        .sim_control
        .product_by_handle("moss-garden")
        .await
        .unwrap()
        .unwrap();
    let level = product["variants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["inventoryItemId"] == item_gid.as_str())
        .unwrap()["levels"][0]["available"]
        .as_i64();
    assert_eq!(level, Some(19));
}
