//! What the functions print never holds a secret. One run goes through
//! every function under `cargo lambda watch` at debug level, with the shop's
//! access token in use (import, push, catalog job) and the webhook secret in
//! use (signed deliveries, a forged one, a push refused by the shop for a
//! revoked token); then everything the functions wrote to stdout and stderr
//! is searched for both, and for anything shaped like a Shopify token.

use fibermade_sync::domain::{ExternalType, IntegrationId, LocalRef, Writer};
use fibermade_sync::shopify::AccessToken;
use local_stack::lambda::LocalLambdas;
use local_stack::resources::api_event;
use local_stack::router::Feed;
use local_stack::{ACCESS_TOKEN, LocalStack, SHOP_DOMAIN, WEBHOOK_SECRET, project_root};
use serde_json::{Value, json};

/// A token of another account's shop that the shop no longer accepts.
const REVOKED_TOKEN: &str = "shpat_revoked_by_the_dyer_0042";

#[tokio::test]
async fn logs_contain_no_token_or_secret() {
    let stack = LocalStack::start().await.unwrap();
    let account = stack
        .seed_account("acct-logs", "user-creator", &[], true)
        .await
        .unwrap();
    let mut env = stack.function_env();
    for (name, value) in env.iter_mut() {
        if name == "RUST_LOG" {
            *value = "debug".to_owned();
        }
    }
    let lambdas = LocalLambdas::start_with_env(&stack, env).await.unwrap();

    // Import and push: Shopify calls with the access token.
    let csv = std::fs::read(project_root().join("tests/fixtures/csv/yarn-catalog.csv")).unwrap();
    stack
        .s3
        .put_object()
        .bucket(&stack.bucket)
        .key("imports/acct-logs/yarn.csv")
        .body(csv.into())
        .send()
        .await
        .unwrap();
    let imported = lambdas.deliver_imports().await.unwrap();
    assert_eq!(imported[0][0]["products"], 3, "{imported:?}");
    let claims = json!({ "sub": "user-creator", "exp": "4102444800" });
    let pushed = lambdas
        .watch
        .invoke(
            "inventory-push",
            &api_event(
                "POST",
                "/accounts/acct-logs/push",
                Some(claims.clone()),
                &json!({}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(pushed["statusCode"], 200, "{pushed}");

    // A catalog edit: the observer, then a catalog job with the token.
    let mut stream = stack.catalog_stream().await.unwrap();
    let mut dyer = stack.store.get_account(&account.id).await.unwrap().unwrap();
    dyer.auto_catalog_sync = true;
    stack.store.put_account(&dyer).await.unwrap();
    let catalog = stack.store.load_catalog(&account.id).await.unwrap();
    let mut colorway = catalog.colorways[0].clone();
    colorway.description_html = "<p>Dyed twice, for depth.</p>".into();
    stack
        .store
        .put_colorway(&colorway, Writer::Dyer)
        .await
        .unwrap();
    lambdas.deliver_stream(&mut stream).await.unwrap();
    lambdas.deliver_catalog_jobs(Feed::default()).await.unwrap();

    // Webhooks signed with the secret, and one forged.
    let shop = fibermade_sync::shopify::Shop {
        domain: SHOP_DOMAIN.to_owned(),
        access_token: AccessToken::new(ACCESS_TOKEN),
    };
    fibermade_sync::webhook::registration::ensure_inventory_subscription(
        &stack.shopify,
        &shop,
        &lambdas.webhook_url(),
    )
    .await
    .unwrap();
    let (integration, _) = stack
        .store
        .account_integration(&account.id)
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
            matches!(l.local, LocalRef::Inventory(_))
                && l.external_type == ExternalType::ShopifyInventoryItem
        })
        .unwrap();
    stack
        .sim_control
        .sale(item.external_id.as_str(), None, 1)
        .await
        .unwrap();
    stack.sim_control.flush_webhooks().await.unwrap();
    lambdas.deliver_pulls(Feed::default()).await.unwrap();
    let forged = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(lambdas.webhook_url())
        .header("x-shopify-topic", "inventory_levels/update")
        .header("x-shopify-shop-domain", SHOP_DOMAIN)
        .header("x-shopify-hmac-sha256", "bm90IHRoZSBzaWduYXR1cmU=")
        .body(r#"{"inventory_item_id":1,"location_id":1,"available":5}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);

    // A shop that refuses its token: the push fails, and says so.
    stack
        .seed_account("acct-revoked", "user-revoked", &[], false)
        .await
        .unwrap();
    let revoked = fibermade_sync::domain::Integration {
        id: IntegrationId::try_from("int-acct-revoked".to_owned()).unwrap(),
        account_id: "acct-revoked".parse().unwrap(),
        shop_domain: "revoked-dyer.myshopify.com".to_owned(),
        location_id: None,
        api_version: fibermade_sync::shopify::API_VERSION.to_owned(),
    };
    stack
        .store
        .put_integration(&revoked, &AccessToken::new(REVOKED_TOKEN))
        .await
        .unwrap();
    let refused = lambdas
        .watch
        .invoke(
            "inventory-push",
            &api_event(
                "POST",
                "/accounts/acct-revoked/push",
                Some(json!({ "sub": "user-revoked", "exp": "4102444800" })),
                &json!({}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    assert_ne!(refused["statusCode"], 200, "{refused}");

    let output = lambdas.watch.output().unwrap();
    for (what, secret) in [
        ("the access token", ACCESS_TOKEN),
        ("the webhook secret", WEBHOOK_SECRET),
        ("the revoked token", REVOKED_TOKEN),
    ] {
        assert!(
            !output.contains(secret),
            "{what} is in the functions' output ({})",
            lambdas.watch.log_path().display()
        );
    }
    for prefix in ["shpat_", "shpss_", "shpca_", "shppa_"] {
        assert!(
            !output.contains(prefix),
            "something shaped like a Shopify token ({prefix}…) is in {}",
            lambdas.watch.log_path().display()
        );
    }

    // The run did log: JSON lines with the request ids, and metric lines.
    let lines: Vec<Value> = output
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "delivery refused: bad signature")
    );
    assert!(lines.iter().any(|l| l["message"] == "push failed"));
    assert!(
        lines
            .iter()
            .filter(|l| l.get("_aws").is_none())
            .filter(|l| {
                ["account_id", "message_id", "webhook_id", "shop"]
                    .iter()
                    .any(|f| l.get(*f).is_some())
            })
            .all(|l| l["requestId"].is_string()),
        "every line about an account, a message or a delivery names its request"
    );
    let operations: Vec<&str> = lines
        .iter()
        .filter(|l| l["metric"] == "sync")
        .filter_map(|l| l["Operation"].as_str())
        .collect();
    for operation in ["import", "push", "catalog_job", "webhook", "pull"] {
        assert!(
            operations.contains(&operation),
            "no metric line for {operation}: {operations:?}"
        );
    }
}
