//! Nobody let in: what a hostile caller can send the webhook ingress and the
//! push API, and what they get back. Oversized deliveries, strangers' shops
//! and topics, old deliveries replayed, every caller and token against every
//! push route through the gateway stand-in, and every refusal's body
//! searched for a secret. (The functions' logs are searched in `logs.rs`;
//! each role's permissions are checked against the code in `template.rs`.)

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use fibermade_sync::domain::{
    AccountId, ExternalType, IntegrationId, InventoryKey, LocalRef, LogSource,
};
use fibermade_sync::push::PushRequest;
use fibermade_sync::push::http::{self, PushApi};
use fibermade_sync::shopify::AccessToken;
use fibermade_sync::webhook::ingress::{self, MAX_BODY_BYTES};
use fibermade_sync::webhook::signature::WebhookSecret;
use local_stack::gateway::{Gateway, Issuer};
use local_stack::resources::api_event;
use local_stack::router::{FunctionUrl, drain_queue};
use local_stack::{ACCESS_TOKEN, LocalStack, SHOP_DOMAIN, WEBHOOK_SECRET, project_root};
use serde_json::{Value, json};

/// A token of another account's shop that the shop no longer accepts.
const REVOKED_TOKEN: &str = "shpat_revoked_by_the_dyer_0099";

/// Every answer a refused or failed request got, to search for secrets.
#[derive(Clone, Default)]
struct Answers(Arc<Mutex<Vec<(String, String)>>>);

impl Answers {
    fn keep(&self, what: impl Into<String>, body: impl Into<String>) {
        self.0.lock().unwrap().push((what.into(), body.into()));
    }

    fn assert_none_contains(&self, secrets: &[(&str, &str)]) {
        let answers = self.0.lock().unwrap();
        assert!(!answers.is_empty(), "no answer was kept");
        for (what, body) in answers.iter() {
            for (name, secret) in secrets {
                assert!(
                    !body.contains(secret),
                    "{name} is in the answer to {what}: {body}"
                );
            }
            for prefix in ["shpat_", "shpss_", "shpca_", "shppa_"] {
                assert!(
                    !body.contains(prefix),
                    "something shaped like a Shopify token ({prefix}…) is in the answer to {what}: {body}"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The webhook ingress

/// An account with the yarn catalog imported and pushed to the shop.
async fn pushed_stack(account: &str) -> (LocalStack, AccountId) {
    let stack = LocalStack::start().await.unwrap();
    let acct = stack
        .seed_account(account, "user-creator", &["user-member"], true)
        .await
        .unwrap()
        .id;
    let csv = std::fs::read(project_root().join("tests/fixtures/csv/yarn-catalog.csv")).unwrap();
    stack
        .import_file(&acct, "yarn.csv", csv)
        .await
        .unwrap()
        .unwrap();
    stack
        .pusher()
        .push(&PushRequest::account(acct.clone()))
        .await
        .unwrap();
    (stack, acct)
}

/// The first inventory row linked to a Shopify inventory item, that item and
/// the shop's location.
async fn linked_row(stack: &LocalStack, acct: &AccountId) -> (InventoryKey, u64, u64) {
    let (integration, _) = stack
        .store
        .account_integration(acct)
        .await
        .unwrap()
        .unwrap();
    let (key, item) = stack
        .store
        .load_links(&integration.id)
        .await
        .unwrap()
        .into_iter()
        .find_map(|l| match l.local {
            LocalRef::Inventory(key) if l.external_type == ExternalType::ShopifyInventoryItem => {
                Some((key, l.external_id))
            }
            _ => None,
        })
        .unwrap();
    let location = integration.location_id.unwrap();
    (
        key,
        item.numeric_id().unwrap(),
        location.numeric_id().unwrap(),
    )
}

/// A delivery as Shopify sends it, signed with the app's secret.
#[derive(Clone)]
struct Delivery {
    body: Vec<u8>,
    headers: Vec<(&'static str, String)>,
}

impl Delivery {
    fn sale(event: &str, item: u64, location: u64, available: i64, updated_at: &str) -> Self {
        let body = json!({
            "inventory_item_id": item,
            "location_id": location,
            "available": available,
            "updated_at": updated_at,
            "admin_graphql_api_id": format!("gid://shopify/InventoryLevel/1?inventory_item_id={item}"),
        })
        .to_string()
        .into_bytes();
        let mut d = Delivery {
            headers: vec![
                ("x-shopify-topic", "inventory_levels/update".into()),
                ("x-shopify-shop-domain", SHOP_DOMAIN.into()),
                ("x-shopify-api-version", "2026-07".into()),
                ("x-shopify-webhook-id", format!("wh-{event}")),
                ("x-shopify-event-id", event.into()),
                ("x-shopify-triggered-at", updated_at.into()),
            ],
            body,
        };
        d.sign();
        d
    }

    fn sign(&mut self) {
        let signature = WebhookSecret::new(WEBHOOK_SECRET).sign(&self.body);
        self.set("x-shopify-hmac-sha256", &signature);
    }

    fn set(&mut self, name: &'static str, value: &str) {
        self.headers.retain(|(n, _)| *n != name);
        self.headers.push((name, value.to_owned()));
    }

    fn without(mut self, name: &str) -> Self {
        self.headers.retain(|(n, _)| *n != name);
        self
    }

    fn request(&self) -> lambda_http::Request {
        let mut builder = lambda_http::http::Request::builder()
            .method("POST")
            .uri("https://ingress.example/");
        for (name, value) in &self.headers {
            builder = builder.header(*name, value);
        }
        builder
            .body(lambda_http::Body::Binary(self.body.clone()))
            .unwrap()
    }
}

async fn deliver(stack: &LocalStack, d: &Delivery, answers: &Answers, what: &str) -> u16 {
    let response = ingress::handle(&stack.ingress(), d.request()).await;
    let status = response.status().as_u16();
    answers.keep(
        format!("delivery: {what} ({status})"),
        String::from_utf8_lossy(response.body().as_ref()),
    );
    status
}

async fn queued(stack: &LocalStack) -> u64 {
    stack.queue_depth(&stack.pull_queue).await.unwrap()
}

async fn quantity(stack: &LocalStack, acct: &AccountId, key: &InventoryKey) -> i64 {
    let row = stack.store.get_inventory(acct, key).await.unwrap().unwrap();
    row.quantity
}

async fn webhook_log_entries(stack: &LocalStack, acct: &AccountId) -> usize {
    stack
        .store
        .recent_logs(acct, 200)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.source == LogSource::Webhook)
        .count()
}

#[tokio::test]
async fn oversized_deliveries_are_refused_with_413_before_the_signature_and_store_nothing() {
    let (stack, acct) = pushed_stack("acct-sec-size").await;
    let (key, item, location) = linked_row(&stack, &acct).await;
    let answers = Answers::default();
    let before = quantity(&stack, &acct, &key).await;

    // A real delivery padded past the limit, signed as Shopify would sign it:
    // refused on its size alone.
    let mut padded = Delivery::sale("ev-big", item, location, 1, "2026-12-04T10:00:00Z");
    padded
        .body
        .extend(std::iter::repeat_n(b' ', MAX_BODY_BYTES));
    padded.sign();
    assert_eq!(deliver(&stack, &padded, &answers, "padded").await, 413);
    // Five megabytes, as a Function URL would pass (its limit is 6 MB), with
    // no signature at all: 413, not 401, since its size is checked first.
    let mut huge = padded.clone().without("x-shopify-hmac-sha256");
    huge.body = vec![b'{'; 5 * 1024 * 1024];
    assert_eq!(deliver(&stack, &huge, &answers, "5 MB unsigned").await, 413);
    // At the limit exactly, the signature decides.
    let mut at_limit = padded.clone();
    at_limit.body.truncate(MAX_BODY_BYTES);
    assert_eq!(
        deliver(&stack, &at_limit, &answers, "at the limit").await,
        401
    );

    // Over HTTP, through the Function URL stand-in.
    let url = FunctionUrl::start(stack.ingress()).await.unwrap();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut request = client.post(url.url()).body(padded.body.clone());
    for (name, value) in &padded.headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status().as_u16(), 413);
    answers.keep("padded over HTTP", response.text().await.unwrap());

    assert_eq!(queued(&stack).await, 0, "nothing queued");
    assert_eq!(
        webhook_log_entries(&stack, &acct).await,
        0,
        "nothing logged"
    );
    assert_eq!(quantity(&stack, &acct, &key).await, before);
    answers.assert_none_contains(&[("the webhook secret", WEBHOOK_SECRET)]);
}

/// Refusals `pull.rs` does not already make: a missing or mangled shop or
/// topic header, and a delivery signed by the app for one shop that names
/// an item of another account's shop.
#[tokio::test]
async fn deliveries_naming_no_shop_a_stranger_or_another_topic_change_nothing() {
    let (stack, acct) = pushed_stack("acct-sec-shop").await;
    let (key, item, location) = linked_row(&stack, &acct).await;
    // A second account on a shop of its own.
    stack
        .seed_account("acct-sec-neighbour", "user-neighbour", &[], false)
        .await
        .unwrap();
    let neighbour = fibermade_sync::domain::Integration {
        id: IntegrationId::try_from("int-acct-sec-neighbour".to_owned()).unwrap(),
        account_id: "acct-sec-neighbour".parse().unwrap(),
        shop_domain: "neighbour-dyer.myshopify.com".to_owned(),
        location_id: None,
        api_version: fibermade_sync::shopify::API_VERSION.to_owned(),
    };
    stack
        .store
        .put_integration(&neighbour, &AccessToken::new(REVOKED_TOKEN))
        .await
        .unwrap();
    let answers = Answers::default();
    let before = quantity(&stack, &acct, &key).await;
    let sale = |event: &str| Delivery::sale(event, item, location, 0, "2026-12-04T10:00:00Z");

    let mut cases = vec![
        (
            "no shop header",
            sale("ev-s1").without("x-shopify-shop-domain"),
        ),
        ("no topic header", sale("ev-s2").without("x-shopify-topic")),
    ];
    for (what, shop) in [
        ("an empty shop", ""),
        ("a shop no integration knows", "stranger.myshopify.com"),
        (
            "a shop that only ends like ours",
            "evil-example-dyer.myshopify.com",
        ),
        (
            "our shop with a path after it",
            "example-dyer.myshopify.com/admin",
        ),
    ] {
        let mut d = sale("ev-s3");
        d.set("x-shopify-shop-domain", shop);
        cases.push((what, d));
    }
    for (what, topic) in [
        ("an empty topic", ""),
        ("another inventory topic", "inventory_items/update"),
        ("the topic in capitals", "INVENTORY_LEVELS/UPDATE"),
        (
            "the topic with more after it",
            "inventory_levels/update/extra",
        ),
        ("an app uninstall", "app/uninstalled"),
    ] {
        let mut d = sale("ev-s4");
        d.set("x-shopify-topic", topic);
        cases.push((what, d));
    }
    for (what, d) in &cases {
        assert_eq!(
            deliver(&stack, d, &answers, what).await,
            200,
            "{what}: acknowledged, so Shopify stops retrying"
        );
    }
    assert_eq!(queued(&stack).await, 0, "none of them was queued");

    // Signed by the app (one secret for every shop) for the neighbour's
    // shop, naming our item: queued for the neighbour, where it finds
    // nothing of ours.
    let mut cross = sale("ev-cross");
    cross.set("x-shopify-shop-domain", "neighbour-dyer.myshopify.com");
    assert_eq!(
        deliver(&stack, &cross, &answers, "the neighbour's shop").await,
        200
    );
    let drained = drain_queue(&stack.sqs, &stack.pull_queue, &stack.puller())
        .await
        .unwrap();
    assert_eq!((drained.received, drained.failed), (1, 0));

    assert_eq!(
        quantity(&stack, &acct, &key).await,
        before,
        "our stock did not move"
    );
    let ours = stack.store.recent_logs(&acct, 50).await.unwrap();
    assert!(
        ours.iter().all(|e| !e.message.contains("set to")),
        "nothing was applied to our account: {ours:?}"
    );
    answers.assert_none_contains(&[("the webhook secret", WEBHOOK_SECRET)]);
}

/// Marks a delivery's dedupe record as expired, as DynamoDB's TTL would
/// after its retention.
async fn expire_dedupe_record(stack: &LocalStack, acct: &AccountId, dedupe_key: &str) {
    use aws_sdk_dynamodb::types::AttributeValue;
    let (integration, _) = stack
        .store
        .account_integration(acct)
        .await
        .unwrap()
        .unwrap();
    let past = time::OffsetDateTime::now_utc() - fibermade_sync::store::DEDUPE_RETENTION;
    stack
        .dynamodb
        .update_item()
        .table_name(&stack.tables.sync)
        .key(
            "pk",
            AttributeValue::S(format!("DEDUPE#{}", integration.id)),
        )
        .key("sk", AttributeValue::S(dedupe_key.to_owned()))
        .update_expression("SET expires_at = :past")
        .condition_expression("attribute_exists(pk)")
        .expression_attribute_values(
            ":past",
            AttributeValue::N(past.unix_timestamp().to_string()),
        )
        .send()
        .await
        .unwrap();
}

/// Headers are not signed: someone holding an old delivery's body and
/// signature can send it again with any ids and any `X-Shopify-Triggered-At`.
/// Only the signed body's `updated_at` can be trusted, and an older one than
/// the last applied is stale.
#[tokio::test]
async fn an_old_valid_delivery_replayed_long_after_changes_nothing() {
    let (stack, acct) = pushed_stack("acct-sec-replay").await;
    let (key, item, location) = linked_row(&stack, &acct).await;
    let answers = Answers::default();
    let drain = || async {
        drain_queue(&stack.sqs, &stack.pull_queue, &stack.puller())
            .await
            .unwrap()
    };

    // Two sales a minute apart, both applied.
    let old = Delivery::sale("ev-old", item, location, 7, "2026-12-04T09:00:00Z");
    let new = Delivery::sale("ev-new", item, location, 6, "2026-12-04T09:01:00Z");
    assert_eq!(deliver(&stack, &old, &answers, "old sale").await, 200);
    drain().await;
    assert_eq!(deliver(&stack, &new, &answers, "new sale").await, 200);
    drain().await;
    assert_eq!(quantity(&stack, &acct, &key).await, 6);
    let applied = webhook_log_entries(&stack, &acct).await;

    let mut replays = vec![("the old delivery as it was", old.clone())];
    let mut fresh_ids = old.clone();
    fresh_ids.set("x-shopify-event-id", "ev-forged-1");
    fresh_ids.set("x-shopify-webhook-id", "wh-forged-1");
    replays.push(("with fresh ids", fresh_ids.clone()));
    for (what, at) in [
        ("triggered years ago", "2019-01-01T00:00:00Z"),
        ("triggered just now", "2026-12-04T09:02:00Z"),
        ("triggered a second after it", "2026-12-04T09:00:01Z"),
        ("with a triggered-at that is not a time", "yesterday"),
    ] {
        let mut d = fresh_ids.clone();
        d.set("x-shopify-event-id", &format!("ev-forged-{what}"));
        d.set("x-shopify-triggered-at", at);
        replays.push((what, d));
    }
    for (what, d) in &replays {
        assert_eq!(deliver(&stack, d, &answers, what).await, 200, "{what}");
    }
    let drained = drain().await;
    assert_eq!(drained.failed, 0);
    assert_eq!(
        quantity(&stack, &acct, &key).await,
        6,
        "no replay moved the stock"
    );

    // A week later the dedupe records have expired; the stock still holds.
    expire_dedupe_record(&stack, &acct, "event:ev-old").await;
    expire_dedupe_record(&stack, &acct, "event:ev-new").await;
    assert_eq!(
        deliver(&stack, &old, &answers, "old, after the dedupe expired").await,
        200
    );
    assert_eq!(
        deliver(&stack, &new, &answers, "new, after the dedupe expired").await,
        200
    );
    drain().await;
    assert_eq!(quantity(&stack, &acct, &key).await, 6);

    let entries = stack.store.recent_logs(&acct, 200).await.unwrap();
    let moved = entries
        .iter()
        .filter(|e| e.source == LogSource::Webhook && e.message.contains("set to"))
        .count();
    assert_eq!(moved, 2, "only the two real sales were applied");
    assert!(webhook_log_entries(&stack, &acct).await >= applied);
}

/// Limitation: a push records no shop time, so the last applied delivery,
/// replayed with a fresh event id (headers are not signed) after a push
/// changed the figure and before the push's own echo arrives, is neither a
/// duplicate nor stale and sets its older figure again. Recording the
/// shop's `updatedAt` on the push (or deduplicating on the signed body as
/// well as the event id) would close it; until then this test shows it.
#[tokio::test]
#[ignore = "Limitation: a replay of the last applied delivery between a push and its echo is applied"]
async fn the_last_delivery_replayed_after_a_push_changes_nothing() {
    let (stack, acct) = pushed_stack("acct-sec-replay-push").await;
    let (key, item, location) = linked_row(&stack, &acct).await;
    let answers = Answers::default();
    let sale = Delivery::sale("ev-sale", item, location, 7, "2026-12-04T09:00:00Z");
    deliver(&stack, &sale, &answers, "sale").await;
    drain_queue(&stack.sqs, &stack.pull_queue, &stack.puller())
        .await
        .unwrap();
    stack.dyer_sets_stock(&acct, &key, 30).await.unwrap();
    stack
        .pusher()
        .push(&PushRequest::account(acct.clone()))
        .await
        .unwrap();

    let mut replay = sale.clone();
    replay.set("x-shopify-event-id", "ev-forged");
    deliver(&stack, &replay, &answers, "replay").await;
    drain_queue(&stack.sqs, &stack.pull_queue, &stack.puller())
        .await
        .unwrap();

    assert_eq!(quantity(&stack, &acct, &key).await, 30);
}

// ---------------------------------------------------------------------------
// The push API, through the gateway stand-in

/// Lambda's Invoke API for `inventory-push`, in process: the gateway
/// stand-in's event reaches the real handler as the runtime would hand it
/// over, without building the function under `cargo lambda watch` (the
/// runtime's own path is covered by `gateway.rs`).
struct InvokeApi {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl InvokeApi {
    async fn start(api: PushApi) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new()
            .route(
                "/2015-03-31/functions/inventory-push/invocations",
                axum::routing::post(invoke),
            )
            .with_state(Arc::new(api));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, task }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for InvokeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn invoke(State(api): State<Arc<PushApi>>, event: Bytes) -> axum::Json<Value> {
    let event = String::from_utf8_lossy(&event).into_owned();
    let request = lambda_http::request::from_str(&event).expect("an API Gateway event");
    let response = http::handle(&api, request).await;
    let headers: serde_json::Map<String, Value> = response
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.into())))
        .collect();
    axum::Json(json!({
        "statusCode": response.status().as_u16(),
        "headers": headers,
        "body": String::from_utf8_lossy(response.body().as_ref()),
        "isBase64Encoded": false,
    }))
}

async fn call(
    client: &reqwest::Client,
    method: &str,
    url: &str,
    token: Option<&str>,
    answers: &Answers,
    what: &str,
) -> u16 {
    let mut request = match method {
        "GET" => client.get(url),
        _ => client.post(url).body("{}"),
    };
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let body = response.text().await.unwrap();
    if status >= 300 {
        answers.keep(format!("{what} ({status})"), body);
    }
    status
}

/// Who may do what: creator, another member, a user of another account,
/// and tokens that are expired, malformed or missing, against push,
/// preview, a push job's status and the sync log. The gateway refuses bad
/// tokens (401 before the function runs); the function decides between
/// well-signed callers (403 for those who may not).
#[tokio::test]
async fn the_push_routes_let_in_only_whom_they_should() {
    let (stack, acct) = pushed_stack("acct-sec-auth").await;
    stack
        .seed_account("acct-sec-other", "user-other", &[], false)
        .await
        .unwrap();
    let job = fibermade_sync::jobs::new_push_job(&acct, &"user-creator".parse().unwrap(), None, 3);
    stack.store.put_push_job(&job).await.unwrap();
    let invoke = InvokeApi::start(PushApi::inline(stack.pusher())).await;
    let issuer = Issuer::local();
    let gateway = Gateway::start(&invoke.url(), None, issuer.clone())
        .await
        .unwrap();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let answers = Answers::default();
    stack.sim_control.clear_calls().await.unwrap();

    let base = format!("{}/accounts/{acct}", gateway.url());
    let routes = [
        ("push", "POST", format!("{base}/push")),
        ("preview", "POST", format!("{base}/push/preview")),
        (
            "job status",
            "GET",
            format!("{base}/push/jobs/{}", job.job_id),
        ),
        ("sync log", "GET", format!("{base}/sync-log?limit=5")),
    ];
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let signed = |claims: Value| issuer.sign(&claims);
    let claims = |sub: Value, exp: i64| json!({ "sub": sub, "iss": issuer.issuer, "aud": issuer.audience, "iat": now - 60, "exp": exp });
    let creator_token = issuer.token_for("user-creator");
    let tokens: Vec<(&str, Option<String>)> = vec![
        ("creator", Some(creator_token.clone())),
        ("another member", Some(issuer.token_for("user-member"))),
        (
            "another account's user",
            Some(issuer.token_for("user-other")),
        ),
        (
            "expired token",
            Some(signed(claims(json!("user-creator"), now - 1))),
        ),
        (
            "token of another issuer",
            Some(
                Issuer::new(&issuer.issuer, &issuer.audience, b"someone else's key")
                    .token_for("user-creator"),
            ),
        ),
        ("malformed token", Some("eyJhbGciOi.not-a-token".to_owned())),
        (
            "token with its signature cut",
            Some(creator_token.rsplit_once('.').unwrap().0.to_owned()),
        ),
        (
            "claims without sub",
            Some(signed(
                json!({ "iss": issuer.issuer, "aud": issuer.audience, "iat": now - 60, "exp": now + 600 }),
            )),
        ),
        (
            "claims with a malformed sub",
            Some(signed(claims(json!("user#creator"), now + 600))),
        ),
        ("no token", None),
    ];
    let expected: &[(&str, [u16; 4])] = &[
        ("creator", [200, 200, 200, 200]),
        ("another member", [403, 403, 200, 200]),
        ("another account's user", [403, 403, 403, 403]),
        ("expired token", [401; 4]),
        ("token of another issuer", [401; 4]),
        ("malformed token", [401; 4]),
        ("token with its signature cut", [401; 4]),
        ("claims without sub", [401; 4]),
        ("claims with a malformed sub", [401; 4]),
        ("no token", [401; 4]),
    ];

    // Refused callers first, so the creator's push comes last and a refusal
    // can be seen to have written nothing.
    let mut table = Vec::new();
    for (who, token) in tokens.iter().rev() {
        let mut row = [0u16; 4];
        for (i, (route, method, url)) in routes.iter().enumerate() {
            row[i] = call(
                &client,
                method,
                url,
                token.as_deref(),
                &answers,
                &format!("{who}: {route}"),
            )
            .await;
        }
        table.push((*who, row));
        if *who != "creator" {
            let calls = stack.sim_control.calls().await.unwrap();
            assert!(
                calls.is_empty(),
                "{who}: nothing reached the shop: {calls:?}"
            );
        }
    }
    table.reverse();
    println!("| caller | push | preview | job status | sync log |\n|---|---|---|---|---|");
    for (who, row) in &table {
        println!(
            "| {who} | {} | {} | {} | {} |",
            row[0], row[1], row[2], row[3]
        );
    }
    for ((who, got), (_, want)) in table.iter().zip(expected) {
        assert_eq!(got, want, "{who}: push, preview, job status, sync log");
    }

    // Another account's creator, on their own account's path, cannot reach
    // this account's job by its id.
    let other_token = issuer.token_for("user-other");
    let elsewhere = format!(
        "{}/accounts/acct-sec-other/push/jobs/{}",
        gateway.url(),
        job.job_id
    );
    assert_eq!(
        call(
            &client,
            "GET",
            &elsewhere,
            Some(&other_token),
            &answers,
            "job by id elsewhere"
        )
        .await,
        404
    );
    // An account that does not exist answers as one that is not yours.
    let nowhere = format!("{}/accounts/acct-nowhere/push/preview", gateway.url());
    assert_eq!(
        call(
            &client,
            "POST",
            &nowhere,
            Some(&creator_token),
            &answers,
            "unknown account"
        )
        .await,
        403
    );

    answers.assert_none_contains(&[
        ("the access token", ACCESS_TOKEN),
        ("the webhook secret", WEBHOOK_SECRET),
        ("the creator's bearer token", &creator_token),
    ]);
}

/// The function's own checks, for an authorizer that lets a request through
/// it should not have (misconfigured, or a route left without one).
#[tokio::test]
async fn the_function_checks_claims_again_on_every_route() {
    let stack = LocalStack::start().await.unwrap();
    let acct = stack
        .seed_account("acct-sec-claims", "user-creator", &["user-member"], true)
        .await
        .unwrap()
        .id;
    let api = PushApi::inline(stack.pusher());
    let answers = Answers::default();
    let paths = [
        ("POST", format!("/accounts/{acct}/push")),
        ("POST", format!("/accounts/{acct}/push/preview")),
        ("GET", format!("/accounts/{acct}/push/jobs/some-job")),
        ("GET", format!("/accounts/{acct}/sync-log")),
    ];
    let cases = [
        ("no authorizer context", None),
        ("empty claims", Some(json!({}))),
        (
            "an expired exp",
            Some(json!({ "sub": "user-creator", "exp": "1000" })),
        ),
        (
            "an exp that is not a number",
            Some(json!({ "sub": "user-creator", "exp": "soon" })),
        ),
        (
            "no sub",
            Some(json!({ "email": "dyer@example.com", "exp": "4102444800" })),
        ),
        (
            "a sub with a key separator",
            Some(json!({ "sub": "user#creator", "exp": "4102444800" })),
        ),
        (
            "an empty sub",
            Some(json!({ "sub": "", "exp": "4102444800" })),
        ),
    ];
    for (what, claims) in cases {
        for (method, path) in &paths {
            let event = api_event(method, path, claims.clone(), &json!({})).unwrap();
            let request = lambda_http::request::from_str(&event.to_string()).unwrap();
            let response = http::handle(&api, request).await;
            let status = response.status().as_u16();
            answers.keep(
                format!("{what}: {method} {path}"),
                String::from_utf8_lossy(response.body().as_ref()),
            );
            assert_eq!(status, 401, "{what}: {method} {path}");
        }
    }
    answers.assert_none_contains(&[("the access token", ACCESS_TOKEN)]);
}

/// Failing requests of every kind, their answers searched for the shop's
/// access token, the webhook secret and anything shaped like a Shopify
/// token; the sync log a member can read, too.
#[tokio::test]
async fn no_answer_holds_a_token_or_a_secret() {
    let (stack, acct) = pushed_stack("acct-sec-leak").await;
    let (_, item, location) = linked_row(&stack, &acct).await;
    let answers = Answers::default();

    // The ingress: every refusal and every unprocessable delivery.
    let good = Delivery::sale("ev-leak", item, location, 3, "2026-12-04T10:00:00Z");
    let mut forged = good.clone();
    forged.set(
        "x-shopify-hmac-sha256",
        &WebhookSecret::new("guess").sign(&good.body),
    );
    let mut garbled = good.clone();
    garbled.set("x-shopify-hmac-sha256", "not base64!");
    let mut unreadable = good.clone();
    unreadable.body = br#"{"inventory_item_id":"not a number"}"#.to_vec();
    unreadable.sign();
    let mut topic = good.clone();
    topic.set("x-shopify-topic", "orders/create");
    let mut stranger = good.clone();
    stranger.set("x-shopify-shop-domain", "stranger.myshopify.com");
    for (what, d) in [
        ("forged", &forged),
        ("garbled signature", &garbled),
        ("unreadable body", &unreadable),
        ("another topic", &topic),
        ("a stranger's shop", &stranger),
    ] {
        deliver(&stack, d, &answers, what).await;
    }
    let mut get = good.request();
    *get.method_mut() = lambda_http::http::Method::GET;
    let response = ingress::handle(&stack.ingress(), get).await;
    answers.keep("a GET", String::from_utf8_lossy(response.body().as_ref()));
    let mut down = stack.ingress();
    down.queue_url = format!("{}/123456789012/no-such-queue", stack.aws_endpoint);
    let response = ingress::handle(&down, good.request()).await;
    assert_eq!(response.status().as_u16(), 503);
    answers.keep(
        "queue down",
        String::from_utf8_lossy(response.body().as_ref()),
    );

    // The push API: bad bodies, unknown colorways, a shop that refuses its
    // token, a store that cannot be reached.
    let api = PushApi::inline(stack.pusher());
    let creator = json!({ "sub": "user-creator", "exp": "4102444800" });
    let push = format!("/accounts/{acct}/push");
    for (what, body) in [
        ("a body that is not a push", json!({ "colorway": "x" })),
        ("a malformed colorway id", json!({ "colorway_id": "cw#1" })),
        (
            "an unknown colorway",
            json!({ "colorway_id": "cw-nowhere" }),
        ),
    ] {
        let event = api_event("POST", &push, Some(creator.clone()), &body).unwrap();
        let response = http::handle(
            &api,
            lambda_http::request::from_str(&event.to_string()).unwrap(),
        )
        .await;
        assert!(response.status().as_u16() >= 400, "{what}");
        answers.keep(what, String::from_utf8_lossy(response.body().as_ref()));
    }
    stack
        .seed_account("acct-sec-revoked", "user-revoked", &[], false)
        .await
        .unwrap();
    let revoked = fibermade_sync::domain::Integration {
        id: IntegrationId::try_from("int-acct-sec-revoked".to_owned()).unwrap(),
        account_id: "acct-sec-revoked".parse().unwrap(),
        shop_domain: "revoked-dyer.myshopify.com".to_owned(),
        location_id: None,
        api_version: fibermade_sync::shopify::API_VERSION.to_owned(),
    };
    stack
        .store
        .put_integration(&revoked, &AccessToken::new(REVOKED_TOKEN))
        .await
        .unwrap();
    let csv = std::fs::read(project_root().join("tests/fixtures/csv/yarn-catalog.csv")).unwrap();
    let _ = stack
        .import_file(&"acct-sec-revoked".parse().unwrap(), "yarn.csv", csv)
        .await
        .unwrap();
    for path in [
        "/accounts/acct-sec-revoked/push",
        "/accounts/acct-sec-revoked/push/preview",
    ] {
        let claims = json!({ "sub": "user-revoked", "exp": "4102444800" });
        let event = api_event("POST", path, Some(claims), &json!({})).unwrap();
        let response = http::handle(
            &api,
            lambda_http::request::from_str(&event.to_string()).unwrap(),
        )
        .await;
        let status = response.status().as_u16();
        if !path.ends_with("preview") {
            // A preview reads no shop; the push is refused by it.
            assert_ne!(status, 200, "the shop refuses the revoked token");
        }
        answers.keep(
            format!("revoked token: {path} ({status})"),
            String::from_utf8_lossy(response.body().as_ref()),
        );
    }
    let mut broken = stack.store.tables().clone();
    broken.catalog = "no-such-table".into();
    broken.sync = "no-such-table".into();
    let unreachable = PushApi::inline(fibermade_sync::push::Pusher::new(
        fibermade_sync::store::Store::new(stack.dynamodb.clone(), broken),
        stack.shopify.clone(),
    ));
    for (method, path) in [
        ("POST", push.clone()),
        ("GET", format!("/accounts/{acct}/sync-log")),
    ] {
        let event = api_event(method, &path, Some(creator.clone()), &json!({})).unwrap();
        let response = http::handle(
            &unreachable,
            lambda_http::request::from_str(&event.to_string()).unwrap(),
        )
        .await;
        assert_eq!(response.status().as_u16(), 503);
        answers.keep(
            format!("store down: {method} {path}"),
            String::from_utf8_lossy(response.body().as_ref()),
        );
    }

    // What a member reads: the sync log, with the refused deliveries' kept
    // payloads and the failed push.
    for account in [acct.to_string(), "acct-sec-revoked".to_owned()] {
        let user = if account == "acct-sec-revoked" {
            "user-revoked"
        } else {
            "user-member"
        };
        let event = api_event(
            "GET",
            &format!("/accounts/{account}/sync-log"),
            Some(json!({ "sub": user, "exp": "4102444800" })),
            &json!(null),
        )
        .unwrap();
        let response = http::handle(
            &api,
            lambda_http::request::from_str(&event.to_string()).unwrap(),
        )
        .await;
        assert_eq!(response.status().as_u16(), 200);
        answers.keep(
            format!("sync log of {account}"),
            String::from_utf8_lossy(response.body().as_ref()),
        );
    }

    answers.assert_none_contains(&[
        ("the access token", ACCESS_TOKEN),
        ("the revoked token", REVOKED_TOKEN),
        ("the webhook secret", WEBHOOK_SECRET),
    ]);
}
