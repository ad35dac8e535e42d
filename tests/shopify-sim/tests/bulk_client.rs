//! The sync engine's bulk client (`ShopifyClient::product_set_bulk`)
//! against the simulator: the whole round trip, answers typed like single
//! `productSet` calls, partial failures, lost answers, timeouts, a busy
//! shop, refused uploads, and logs without secrets.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Harness, TOKEN};
use fibermade_sync::domain::Gid;
use fibermade_sync::shopify::operations::{
    InventoryItemInput, InventoryQuantityInput, OptionSetInput, OptionValueInput, ProductSetInput,
    VariantOptionValue, VariantSetInput,
};
use fibermade_sync::shopify::{
    AccessToken, BulkError, BulkOptions, ClientConfig, ProductIdentifier, RetryPolicy, Shop,
    ShopifyClient, ShopifyError,
};
use shopify_sim::{BulkConfig, FaultKind, SimConfig};

async fn sim(line_ms: u64) -> Harness {
    Harness::start_with(SimConfig {
        bulk: BulkConfig {
            start_delay_ms: 0,
            line_ms,
            ..BulkConfig::default()
        },
        ..SimConfig::default()
    })
    .await
}

fn client(h: &Harness) -> ShopifyClient {
    ShopifyClient::new(ClientConfig {
        base_url_override: Some(h.sim.base_url()),
        retry: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(200),
            max_throttled: 5,
        },
        request_timeout: Duration::from_secs(10),
    })
    .expect("a client")
}

fn shop() -> Shop {
    Shop {
        domain: "fibermade-sim.myshopify.com".to_owned(),
        access_token: AccessToken::new(TOKEN),
    }
}

fn quick() -> BulkOptions {
    BulkOptions {
        first_poll: Duration::from_millis(20),
        max_poll: Duration::from_millis(100),
        timeout: Duration::from_secs(20),
        ..BulkOptions::default()
    }
}

/// A colorway's product: one variant per base, stocked at `location`.
fn colorway(handle: &str, bases: &[&str], location: &Gid) -> (ProductIdentifier, ProductSetInput) {
    let input = ProductSetInput {
        title: handle.replace('-', " "),
        handle: handle.to_owned(),
        description_html: "<p>Dyed in small batches.</p>".to_owned(),
        vendor: "Fibermade Test Dyer".to_owned(),
        status: "ACTIVE",
        tags: vec!["speckled".to_owned()],
        product_options: vec![OptionSetInput {
            name: "Base".to_owned(),
            position: 1,
            values: bases
                .iter()
                .map(|base| OptionValueInput {
                    name: (*base).to_owned(),
                })
                .collect(),
        }],
        variants: bases
            .iter()
            .map(|base| VariantSetInput {
                id: None,
                option_values: vec![VariantOptionValue {
                    option_name: "Base".to_owned(),
                    name: (*base).to_owned(),
                }],
                price: "28.00".to_owned(),
                inventory_item: InventoryItemInput { tracked: true },
                inventory_quantities: Some(vec![InventoryQuantityInput {
                    location_id: location.clone(),
                    name: "available",
                    quantity: 3,
                }]),
            })
            .collect(),
        metafields: Vec::new(),
        files: None,
    };
    (ProductIdentifier::Handle(handle.to_owned()), input)
}

async fn catalog(
    h: &Harness,
    count: usize,
    bases: &[&str],
) -> Vec<(ProductIdentifier, ProductSetInput)> {
    let location: Gid = h.first_location().await.parse().expect("a location id");
    (0..count)
        .map(|n| colorway(&format!("colorway-{n}"), bases, &location))
        .collect()
}

async fn product_count(h: &Harness) -> usize {
    let state = h.control.state().await.expect("state");
    state["products"].as_array().expect("products").len()
}

#[tokio::test]
async fn a_bulk_push_sets_every_product_in_three_calls_and_answers_like_product_set() {
    let h = sim(2).await;
    let shopify = client(&h);
    let lines = catalog(&h, 6, &["Merino Fingering", "Sock", "DK"]).await;

    let run = shopify
        .product_set_bulk_with(&shop(), &lines, &quick())
        .await
        .expect("the bulk run");

    assert_eq!(run.results.len(), 6);
    for (index, result) in run.results.iter().enumerate() {
        let product = result.as_ref().expect("each line is set");
        assert_eq!(product.handle, format!("colorway-{index}"));
        assert_eq!(product.variants.nodes.len(), 3);
    }
    assert_eq!(product_count(&h).await, 6);
    let stock = h
        .control
        .product_by_handle("colorway-4")
        .await
        .unwrap()
        .expect("made");
    assert_eq!(stock["variants"][2]["levels"][0]["available"], 3);

    let stats = shopify.stats();
    assert_eq!(stats.by_operation.get("StagedUploadsCreate"), Some(&1));
    assert_eq!(stats.by_operation.get("BulkOperationRunMutation"), Some(&1));
    assert_eq!(
        stats.by_operation.get("BulkOperation").copied(),
        Some(u64::from(run.polls))
    );
    assert_eq!(stats.by_operation.get("ProductSet"), None);
    assert_eq!(stats.actual_cost, 11.0 + 10.0 + f64::from(run.polls));
}

#[tokio::test]
async fn bulk_and_single_answers_are_the_same_product() {
    let h = sim(1).await;
    let shopify = client(&h);
    let lines = catalog(&h, 2, &["DK", "Worsted"]).await;

    let single = shopify
        .product_set(&shop(), &lines[0].0, &lines[0].1)
        .await
        .expect("one call");
    let bulk = shopify
        .product_set_bulk(&shop(), &lines)
        .await
        .expect("the bulk run");

    let again = bulk[0].as_ref().expect("set");
    assert_eq!(again.id, single.id, "keyed by handle: the same product");
    assert_eq!(again.variants.nodes, single.variants.nodes);
    assert_eq!(product_count(&h).await, 2);
}

#[tokio::test]
async fn a_line_with_user_errors_or_too_many_variants_fails_alone() {
    let h = sim(1).await;
    let shopify = client(&h);
    let mut lines = catalog(&h, 3, &["DK"]).await;
    lines[1].0 = ProductIdentifier::Id("gid://shopify/Product/1".parse().unwrap());
    let many: Vec<String> = (0..251).map(|n| format!("Base {n}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let location: Gid = h.first_location().await.parse().unwrap();
    lines.push(colorway("too-many-bases", &many, &location));

    let results = shopify
        .product_set_bulk_with(&shop(), &lines, &quick())
        .await
        .expect("the bulk run")
        .results;

    assert!(results[0].is_ok() && results[2].is_ok());
    let missing = results[1].as_ref().unwrap_err();
    assert!(
        missing.has_user_error_code("PRODUCT_DOES_NOT_EXIST"),
        "{missing}"
    );
    assert!(!missing.is_retryable());
    assert!(matches!(
        results[3],
        Err(ShopifyError::InputTooLarge { lines: 251, .. })
    ));
    let uploads = h.control.bulk_uploads().await.unwrap();
    assert_eq!(uploads.len(), 1);
    assert!(
        h.control
            .product_by_handle("too-many-bases")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_failed_run_gives_partial_results_and_a_second_run_makes_no_duplicate() {
    let h = sim(1).await;
    let shopify = client(&h);
    let lines = catalog(&h, 4, &["DK", "Sock"]).await;
    h.control
        .inject_fault(
            FaultKind::BulkFailure {
                after_lines: 2,
                error_code: "INTERNAL_SERVER_ERROR".to_owned(),
            },
            Some("bulkOperationRunMutation"),
            1,
        )
        .await
        .unwrap();

    let results = shopify
        .product_set_bulk_with(&shop(), &lines, &quick())
        .await
        .expect("a failed run still answers per line")
        .results;

    let set: Vec<bool> = results.iter().map(Result::is_ok).collect();
    assert_eq!(set, [true, true, false, false]);
    for result in &results[2..] {
        let error = result.as_ref().unwrap_err();
        assert!(error.is_retryable(), "{error}");
    }
    let first_ids: Vec<Gid> = results[..2]
        .iter()
        .map(|r| r.as_ref().unwrap().id.clone())
        .collect();

    let again = shopify
        .product_set_bulk_with(&shop(), &lines, &quick())
        .await
        .expect("the retry")
        .results;
    assert!(again.iter().all(Result::is_ok));
    assert_eq!(again[0].as_ref().unwrap().id, first_ids[0]);
    assert_eq!(again[1].as_ref().unwrap().id, first_ids[1]);
    assert_eq!(product_count(&h).await, 4);
}

#[tokio::test]
async fn a_run_that_fails_before_any_line_is_a_retryable_error() {
    let h = sim(1).await;
    let shopify = client(&h);
    let lines = catalog(&h, 2, &["DK"]).await;
    h.control
        .inject_fault(
            FaultKind::BulkFailure {
                after_lines: 0,
                error_code: "TIMEOUT".to_owned(),
            },
            Some("bulkOperationRunMutation"),
            1,
        )
        .await
        .unwrap();

    let error = shopify
        .product_set_bulk_with(&shop(), &lines, &quick())
        .await
        .unwrap_err();

    assert!(
        matches!(&error, BulkError::Ended { error_code: Some(code), .. } if code == "TIMEOUT"),
        "{error:?}"
    );
    assert!(error.is_retryable());
    assert!(ShopifyError::from(error).is_retryable());
}

#[tokio::test]
async fn a_lost_answer_to_the_run_call_is_retried_without_a_duplicate_product() {
    let h = sim(2).await;
    let shopify = client(&h);
    let lines = catalog(&h, 5, &["DK", "Sock"]).await;
    h.control
        .inject_fault(
            FaultKind::LostResponse { status: None },
            Some("bulkOperationRunMutation"),
            1,
        )
        .await
        .unwrap();

    let results = shopify
        .product_set_bulk_with(&shop(), &lines, &quick())
        .await
        .expect("the retried run")
        .results;

    assert!(results.iter().all(Result::is_ok));
    let state = h.control.state().await.unwrap();
    assert_eq!(
        state["bulkOperations"].as_array().unwrap().len(),
        2,
        "the lost run ran too"
    );
    // Let the first run finish as well, then count.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(product_count(&h).await, 5);
}

#[tokio::test]
async fn a_run_that_outlasts_the_timeout_is_canceled_and_retryable() {
    let h = sim(100).await;
    let shopify = client(&h);
    let lines = catalog(&h, 20, &["DK"]).await;
    let options = BulkOptions {
        timeout: Duration::from_millis(400),
        ..quick()
    };

    let error = shopify
        .product_set_bulk_with(&shop(), &lines, &options)
        .await
        .unwrap_err();

    assert!(matches!(error, BulkError::TimedOut { .. }), "{error:?}");
    assert!(error.is_retryable());
    tokio::time::sleep(Duration::from_millis(250)).await;
    let state = h.control.state().await.unwrap();
    assert_eq!(state["bulkOperations"][0]["status"], "CANCELED");
}

#[tokio::test]
async fn a_busy_shop_is_waited_for() {
    let h = Harness::start_with(SimConfig {
        bulk: BulkConfig {
            concurrency: 1,
            start_delay_ms: 0,
            line_ms: 30,
            ..BulkConfig::default()
        },
        ..SimConfig::default()
    })
    .await;
    let shopify = client(&h);
    let first = catalog(&h, 8, &["DK"]).await;
    let location: Gid = h.first_location().await.parse().unwrap();
    let second = vec![colorway("late-colorway", &["DK"], &location)];

    let other = shopify.clone();
    let earlier = tokio::spawn(async move {
        other
            .product_set_bulk_with(&shop(), &first, &quick())
            .await
            .map(|run| run.results.len())
    });
    tokio::time::sleep(Duration::from_millis(60)).await;
    let later = shopify
        .product_set_bulk_with(&shop(), &second, &quick())
        .await
        .expect("waits for the slot");

    assert!(later.results[0].is_ok());
    assert_eq!(earlier.await.unwrap().expect("first run"), 8);
    let runs = shopify.stats().by_operation["BulkOperationRunMutation"];
    assert!(runs >= 3, "refused at least once: {runs} run calls");
}

#[tokio::test]
async fn an_upload_the_storage_refuses_is_a_permanent_error() {
    let h = Harness::start_with(SimConfig {
        bulk: BulkConfig {
            max_file_bytes: 64,
            ..BulkConfig::default()
        },
        ..SimConfig::default()
    })
    .await;
    let shopify = client(&h);
    let lines = catalog(&h, 2, &["DK"]).await;

    let error = shopify
        .product_set_bulk_with(&shop(), &lines, &quick())
        .await
        .unwrap_err();

    match &error {
        BulkError::Transfer {
            step: "upload",
            status: Some(400),
            message,
            retryable: false,
        } => assert!(message.starts_with("EntityTooLarge"), "{message}"),
        other => panic!("unexpected {other:?}"),
    }
    assert!(!error.is_retryable());
}

/// Collects formatted log lines.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `tracing` decides once per call site, for the whole process, whether
/// anyone listens. A sibling test reaching a call site first on a thread with
/// no subscriber would mark it as unheard and hide its lines from the
/// subscriber this test scopes to its own thread. A global subscriber that
/// drops everything makes every thread a listener, so the decision is always
/// "ask the subscriber in scope".
fn every_thread_has_a_subscriber() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        tracing::subscriber::set_global_default(tracing_subscriber::registry())
            .expect("no other global subscriber in this test binary");
    });
}

#[tokio::test]
async fn the_logs_carry_no_token_no_signed_url_and_no_upload_parameter() {
    let h = sim(1).await;
    let shopify = client(&h);
    let lines = catalog(&h, 3, &["DK"]).await;
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("fibermade_sync=trace")
        .with_writer(move || writer.clone())
        .json()
        .finish();
    every_thread_has_a_subscriber();
    let _guard = tracing::subscriber::set_default(subscriber);
    h.control
        .inject_fault(FaultKind::NetworkDrop, Some("bulkOperation"), 1)
        .await
        .unwrap();

    let run = shopify
        .product_set_bulk_with(&shop(), &lines, &quick())
        .await
        .expect("the bulk run");

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("bulk run finished"), "{logs}");
    let url = run.operation.unwrap().url.unwrap();
    for secret in [
        TOKEN,
        url.expose_secret(),
        "x-goog-signature",
        "policy",
        "/_storage/",
    ] {
        assert!(!logs.contains(secret), "{secret} in the logs:\n{logs}");
    }
}
