//! The Shopify client against the simulator: pacing, waits and retries, and
//! errors typed by what the caller can do about them.

use std::time::{Duration, Instant};

use fibermade_sync::shopify::{
    AccessToken, ClientConfig, QuantityLine, RetryPolicy, Shop, ShopifyClient, ShopifyError,
};
use local_stack::{ACCESS_TOKEN, LocalStack, SHOP_DOMAIN, StackOptions};
use shopify_sim::FaultKind;

fn shop(token: &str) -> Shop {
    Shop {
        domain: SHOP_DOMAIN.to_owned(),
        access_token: AccessToken::new(token),
    }
}

#[tokio::test]
async fn a_429_waits_as_long_as_retry_after_says_then_succeeds() {
    let stack = LocalStack::start().await.unwrap();
    stack
        .sim_control
        .inject_fault(FaultKind::ServerError { status: 429 }, Some("locations"), 1)
        .await
        .unwrap();

    let started = Instant::now();
    let locations = stack.shopify.locations(&shop(ACCESS_TOKEN)).await.unwrap();

    assert_eq!(locations.len(), 1);
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "Retry-After: 1.0 was honoured"
    );
    assert_eq!(stack.shopify.stats().retries, 1);
}

#[tokio::test]
async fn a_dropped_connection_is_retried() {
    let stack = LocalStack::start().await.unwrap();
    stack
        .sim_control
        .inject_fault(FaultKind::NetworkDrop, Some("locations"), 2)
        .await
        .unwrap();

    let locations = stack.shopify.locations(&shop(ACCESS_TOKEN)).await.unwrap();

    assert_eq!(locations.len(), 1);
    assert_eq!(stack.shopify.stats().requests, 3);
}

#[tokio::test]
async fn persistent_5xx_ends_in_a_retryable_error_after_the_configured_attempts() {
    let stack = LocalStack::start().await.unwrap();
    stack
        .sim_control
        .inject_fault(
            FaultKind::ServerError { status: 503 },
            Some("locations"),
            10,
        )
        .await
        .unwrap();

    let error = stack
        .shopify
        .locations(&shop(ACCESS_TOKEN))
        .await
        .unwrap_err();

    assert!(
        matches!(error, ShopifyError::Transient { attempts: 5, .. }),
        "{error:?}"
    );
    assert!(error.is_retryable());
}

#[tokio::test]
async fn a_refused_token_is_not_retried() {
    let stack = LocalStack::start().await.unwrap();

    let error = stack
        .shopify
        .locations(&shop("shpat_wrong"))
        .await
        .unwrap_err();

    assert!(
        matches!(error, ShopifyError::Unauthorized { status: 401, .. }),
        "{error:?}"
    );
    assert!(!error.is_retryable());
    assert_eq!(stack.shopify.stats().requests, 1);
    assert!(
        !error.to_string().contains("shpat_wrong"),
        "the token is not in the message"
    );
}

#[tokio::test]
async fn user_errors_come_back_typed_with_their_codes() {
    let stack = LocalStack::start().await.unwrap();
    let shop = shop(ACCESS_TOKEN);
    let location = stack.shopify.locations(&shop).await.unwrap().remove(0).id;
    let line = QuantityLine {
        inventory_item_id: "gid://shopify/InventoryItem/1".parse().unwrap(),
        location_id: location,
        quantity: 3,
        change_from_quantity: Some(0),
    };

    let error = stack
        .shopify
        .set_inventory_quantities(&shop, &[line], "key-unknown-item", "gid://fibermade/Test/1")
        .await
        .unwrap_err();

    assert!(
        error.has_user_error_code("INVALID_INVENTORY_ITEM"),
        "{error:?}"
    );
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn more_than_250_lines_are_refused_before_sending() {
    let stack = LocalStack::start().await.unwrap();
    let line = QuantityLine {
        inventory_item_id: "gid://shopify/InventoryItem/1".parse().unwrap(),
        location_id: "gid://shopify/Location/1".parse().unwrap(),
        quantity: 1,
        change_from_quantity: Some(0),
    };
    let lines = vec![line; 251];

    let error = stack
        .shopify
        .set_inventory_quantities(&shop(ACCESS_TOKEN), &lines, "k", "gid://fibermade/Test/1")
        .await
        .unwrap_err();

    assert!(matches!(
        error,
        ShopifyError::InputTooLarge {
            lines: 251,
            limit: 250,
            ..
        }
    ));
    assert_eq!(stack.shopify.stats().requests, 0);
}

/// With a small bucket, calls are spaced by the client so that Shopify does
/// not have to refuse them.
#[tokio::test]
async fn calls_are_paced_so_the_bucket_is_not_overrun() {
    let stack = LocalStack::start_with(StackOptions {
        bucket_size: 60.0,
        restore_rate: 50.0,
        ..StackOptions::default()
    })
    .await
    .unwrap();
    let client = ShopifyClient::new(ClientConfig {
        base_url_override: Some(stack.sim.base_url()),
        retry: RetryPolicy::default(),
        request_timeout: Duration::from_secs(10),
    })
    .unwrap();
    let shop = shop(ACCESS_TOKEN);

    let started = Instant::now();
    for _ in 0..10 {
        client.locations(&shop).await.unwrap();
    }

    let stats = client.stats();
    // The first call teaches the client the real bucket and the call's cost.
    assert!(stats.throttled <= 1, "{stats:?}");
    let spent = stats.actual_cost;
    let floor = (spent - 60.0).max(0.0) / 50.0;
    assert!(
        started.elapsed().as_secs_f64() >= floor * 0.8,
        "paced to the refill rate: {stats:?}"
    );
}
