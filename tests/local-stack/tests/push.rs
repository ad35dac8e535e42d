//! "Push to Shopify", end to end: the catalog in DynamoDB (moto), the push
//! through the inventory-push HTTP handler or the pusher, and the shop on the
//! Shopify simulator, with faults injected where a real shop has them.

use std::collections::BTreeMap;

use fibermade_sync::domain::{
    AccountId, Base, BaseId, Descriptor, InventoryKey, LogSource, LogStatus, Money, Writer,
};
use fibermade_sync::push::{PushReport, PushRequest, http};
use local_stack::{LocalStack, project_root};
use serde_json::{Value, json};
use shopify_sim::FaultKind;

fn yarn_csv() -> Vec<u8> {
    std::fs::read(project_root().join("tests/fixtures/csv/yarn-catalog.csv")).unwrap()
}

/// A stack with the yarn catalog imported into a linked account.
async fn stack_with_catalog(account: &str) -> (LocalStack, AccountId) {
    let stack = LocalStack::start().await.unwrap();
    let acct = stack
        .seed_account(account, "user-creator", &["user-member"], true)
        .await
        .unwrap()
        .id;
    stack
        .import_file(&acct, "yarn.csv", yarn_csv())
        .await
        .unwrap()
        .unwrap();
    (stack, acct)
}

async fn push(stack: &LocalStack, account: &AccountId) -> PushReport {
    let request = PushRequest::account(account.clone());
    stack.pusher().push(&request).await.unwrap()
}

/// The shop as the simulator holds it: handle → base descriptor → (price, available).
async fn shop(stack: &LocalStack) -> BTreeMap<String, BTreeMap<String, (String, i64)>> {
    let state = stack.sim_control.state().await.unwrap();
    let mut shop = BTreeMap::new();
    for product in state["products"].as_array().unwrap() {
        let mut variants = BTreeMap::new();
        for variant in product["variants"].as_array().unwrap() {
            let base = variant["selectedOptions"][0]["value"]
                .as_str()
                .unwrap()
                .to_owned();
            let price = variant["price"].as_str().unwrap().to_owned();
            let available = variant["levels"]
                .as_array()
                .and_then(|levels| levels.first())
                .and_then(|level| level["available"].as_i64())
                .unwrap_or(i64::MIN);
            variants.insert(base, (price, available));
        }
        shop.insert(product["handle"].as_str().unwrap().to_owned(), variants);
    }
    shop
}

/// Fibermade's stock as handle → descriptor → quantity.
async fn catalog_stock(
    stack: &LocalStack,
    account: &AccountId,
) -> BTreeMap<String, BTreeMap<String, i64>> {
    let catalog = stack.store.load_catalog(account).await.unwrap();
    let mut stock: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    for row in &catalog.inventory {
        let colorway = catalog
            .colorways
            .iter()
            .find(|c| c.id == row.key.colorway_id)
            .unwrap();
        let base = catalog
            .bases
            .iter()
            .find(|b| b.id == row.key.base_id)
            .unwrap();
        stock
            .entry(colorway.handle.to_string())
            .or_default()
            .insert(base.descriptor.to_string(), row.quantity);
    }
    stock
}

/// Shop and catalog hold the same stock for every colorway × base.
async fn assert_shop_matches_catalog(stack: &LocalStack, account: &AccountId) {
    let shop: BTreeMap<String, BTreeMap<String, i64>> = shop(stack)
        .await
        .into_iter()
        .map(|(h, vs)| (h, vs.into_iter().map(|(b, (_, q))| (b, q)).collect()))
        .collect();
    assert_eq!(shop, catalog_stock(stack, account).await);
}

async fn mutation_calls(stack: &LocalStack) -> Vec<String> {
    stack
        .sim_control
        .calls()
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c["outcome"] == "ok")
        .flat_map(|c| c["rootFields"].as_array().cloned().unwrap_or_default())
        .filter_map(|f| f.as_str().map(str::to_owned))
        .filter(|f| {
            f == "productSet"
                || f.starts_with("inventory") && f != "inventoryItem"
                || f.starts_with("productVariants")
        })
        .collect()
}

#[tokio::test]
async fn push_creates_products_for_colorways_without_one() {
    let (stack, acct) = stack_with_catalog("acct-create").await;

    let report = push(&stack, &acct).await;

    assert_eq!(report.products_created, 3);
    assert_eq!(report.variants_created, 9);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let shop = shop(&stack).await;
    assert_eq!(
        shop.keys().collect::<Vec<_>>(),
        vec!["ember", "harbour-fog", "moss-garden"]
    );
    let state = stack.sim_control.state().await.unwrap();
    let moss = state["products"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["handle"] == "moss-garden")
        .unwrap();
    assert_eq!(moss["title"], "Moss Garden");
    assert_eq!(moss["vendor"], "Moss & Main Fiber Co.");
    assert_eq!(moss["status"], "ACTIVE");
    let ember = state["products"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["handle"] == "ember")
        .unwrap();
    assert_eq!(ember["status"], "DRAFT");
}

#[tokio::test]
async fn every_base_of_the_account_becomes_a_variant_zero_stock_included() {
    let (stack, acct) = stack_with_catalog("acct-all-bases").await;

    push(&stack, &acct).await;

    let shop = shop(&stack).await;
    for (handle, variants) in &shop {
        let bases: Vec<_> = variants.keys().cloned().collect();
        assert_eq!(
            bases,
            vec!["Merino DK", "Merino Fingering", "Sock 75/25"],
            "{handle}"
        );
    }
    // Harbour Fog had no Sock row and Ember no DK row: both exist with 0.
    assert_eq!(shop["harbour-fog"]["Sock 75/25"], ("26.00".to_owned(), 0));
    assert_eq!(shop["ember"]["Merino DK"], ("30.00".to_owned(), 0));
    assert_eq!(
        shop["moss-garden"]["Merino Fingering"],
        ("28.00".to_owned(), 12)
    );
    assert_shop_matches_catalog(&stack, &acct).await;
}

#[tokio::test]
async fn a_second_push_with_nothing_changed_writes_nothing() {
    let (stack, acct) = stack_with_catalog("acct-noop").await;
    push(&stack, &acct).await;
    stack.sim_control.clear_calls().await.unwrap();

    let report = push(&stack, &acct).await;

    assert_eq!(mutation_calls(&stack).await, Vec::<String>::new());
    assert_eq!(report.products_unchanged, 3);
    assert_eq!(report.quantities_set, 0);
    assert_eq!(report.shopify_calls, 0);
}

#[tokio::test]
async fn push_updates_existing_variants_with_the_right_quantities() {
    let (stack, acct) = stack_with_catalog("acct-update").await;
    push(&stack, &acct).await;
    let catalog = stack.store.load_catalog(&acct).await.unwrap();
    let mut row = catalog
        .inventory
        .iter()
        .find(|r| r.quantity == 12)
        .unwrap()
        .clone();
    row.quantity = 20;
    row.version += 1;
    row.sync_status = fibermade_sync::domain::SyncStatus::Pending;
    stack.store.put_inventory(&row, Writer::Dyer).await.unwrap();
    stack.sim_control.clear_calls().await.unwrap();

    let report = push(&stack, &acct).await;

    assert_eq!(report.quantities_set, 1);
    assert_eq!(report.products_created + report.products_updated, 0);
    assert_eq!(mutation_calls(&stack).await, vec!["inventorySetQuantities"]);
    assert_eq!(shop(&stack).await["moss-garden"]["Merino Fingering"].1, 20);
    assert_shop_matches_catalog(&stack, &acct).await;
}

#[tokio::test]
async fn push_creates_missing_variants_for_a_new_base_on_every_product() {
    let (stack, acct) = stack_with_catalog("acct-new-base").await;
    push(&stack, &acct).await;
    let descriptor = Descriptor::try_from("Mohair Lace".to_owned()).unwrap();
    let base = Base {
        id: BaseId::for_descriptor(&acct, &descriptor),
        account_id: acct.clone(),
        descriptor,
        retail_price: "34.50".parse::<Money>().unwrap(),
    };
    stack.store.put_base(&base, Writer::Dyer).await.unwrap();

    let report = push(&stack, &acct).await;

    assert_eq!(report.variants_created, 3);
    assert_eq!(report.products_updated, 3);
    let shop = shop(&stack).await;
    for variants in shop.values() {
        assert_eq!(variants["Mohair Lace"], ("34.50".to_owned(), 0));
        assert_eq!(variants.len(), 4);
    }
    assert_shop_matches_catalog(&stack, &acct).await;
}

#[tokio::test]
async fn pushing_one_colorway_touches_only_its_product() {
    let (stack, acct) = stack_with_catalog("acct-one").await;
    let catalog = stack.store.load_catalog(&acct).await.unwrap();
    let ember = catalog
        .colorways
        .iter()
        .find(|c| c.handle.as_str() == "ember")
        .unwrap();

    let request = PushRequest::colorway(acct.clone(), ember.id.clone());
    let report = stack.pusher().push(&request).await.unwrap();

    assert_eq!(report.products_created, 1);
    assert_eq!(shop(&stack).await.keys().collect::<Vec<_>>(), vec!["ember"]);
}

#[tokio::test]
async fn a_dry_run_counts_what_a_push_would_do_and_writes_nothing() {
    let (stack, acct) = stack_with_catalog("acct-dry").await;
    let before = stack.store.load_catalog(&acct).await.unwrap();

    let request = PushRequest::account(acct.clone()).dry_run();
    let preview = stack.pusher().push(&request).await.unwrap();

    assert!(shop(&stack).await.is_empty());
    assert_eq!(stack.store.load_catalog(&acct).await.unwrap(), before);
    let real = push(&stack, &acct).await;
    assert_eq!(
        (
            preview.products_created,
            preview.variants_created,
            preview.quantities_set
        ),
        (
            real.products_created,
            real.variants_created,
            real.quantities_set
        )
    );
    assert_eq!(
        preview.variants_affected, 9,
        "3 colorways × 3 bases, each created once"
    );
}

#[tokio::test]
async fn push_writes_integration_log_entries() {
    let (stack, acct) = stack_with_catalog("acct-log").await;

    push(&stack, &acct).await;

    let log = stack.store.recent_logs(&acct, 10).await.unwrap();
    let entry = log
        .iter()
        .find(|e| e.source == LogSource::ManualPush)
        .expect("a push entry");
    assert_eq!(entry.status, LogStatus::Success);
    assert!(
        entry.message.contains("3 products created"),
        "{}",
        entry.message
    );
    assert_eq!(entry.data["products_created"], 3);
    assert!(entry.integration_id.is_some());
}

/// The request API Gateway's HTTP API hands the function for a push.
fn api_request(account: &AccountId, claims: Option<Value>, body: Value) -> lambda_http::Request {
    let path = format!("/accounts/{account}/push");
    let event = local_stack::resources::api_event("POST", &path, claims, &body).unwrap();
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

fn claims(sub: &str) -> Option<Value> {
    Some(json!({ "sub": sub, "exp": "4102444800", "iss": "https://auth.fibermade.example/" }))
}

#[tokio::test]
async fn only_the_account_creator_may_push() {
    let (stack, acct) = stack_with_catalog("acct-auth").await;
    stack
        .seed_account("acct-other", "user-other-creator", &[], false)
        .await
        .unwrap();
    let api = http::PushApi::inline(stack.pusher());
    let dry = json!({ "dry_run": true });

    let cases = [
        ("the account's creator", claims("user-creator"), 200),
        ("another member of the account", claims("user-member"), 403),
        (
            "the creator of another account",
            claims("user-other-creator"),
            403,
        ),
        ("no token", None, 401),
        (
            "a token without sub",
            Some(json!({ "email": "x@example.com" })),
            401,
        ),
        (
            "an expired token",
            Some(json!({ "sub": "user-creator", "exp": "1000" })),
            401,
        ),
    ];
    for (who, claims, status) in cases {
        let response = http::handle(&api, api_request(&acct, claims, dry.clone())).await;
        assert_eq!(response.status().as_u16(), status, "{who}");
    }
    assert!(
        shop(&stack).await.is_empty(),
        "refused requests wrote nothing"
    );

    let response = http::handle(&api, api_request(&acct, claims("user-creator"), json!({}))).await;
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = serde_json::from_slice(response.body().as_ref()).unwrap();
    assert_eq!(body["products_created"], 3);
    assert_eq!(body["quantities_set"], 9);
}

#[tokio::test]
async fn a_bad_request_body_is_refused_with_its_problem_named() {
    let (stack, acct) = stack_with_catalog("acct-body").await;
    let response = http::handle(
        &http::PushApi::inline(stack.pusher()),
        api_request(&acct, claims("user-creator"), json!({ "dry_rn": true })),
    )
    .await;
    assert_eq!(response.status().as_u16(), 400);
    let body: Value = serde_json::from_slice(response.body().as_ref()).unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("dry_rn")
    );
}

#[tokio::test]
async fn retries_after_throttled_and_5xx_create_no_duplicate_and_set_no_quantity_twice() {
    let (stack, acct) = stack_with_catalog("acct-faults").await;
    let faults = [
        (FaultKind::Throttled, "productSet"),
        (FaultKind::ServerError { status: 502 }, "productSet"),
        (
            FaultKind::ServerError { status: 503 },
            "inventorySetQuantities",
        ),
        (FaultKind::Throttled, "inventorySetQuantities"),
    ];
    for (kind, operation) in faults {
        stack
            .sim_control
            .inject_fault(kind, Some(operation), 2)
            .await
            .unwrap();
    }
    push(&stack, &acct).await;
    // Make stock pushes happen too: a person changes two rows.
    let catalog = stack.store.load_catalog(&acct).await.unwrap();
    for row in catalog.inventory.iter().filter(|r| r.quantity > 0).take(2) {
        let mut row = row.clone();
        row.quantity += 5;
        row.version += 1;
        row.sync_status = fibermade_sync::domain::SyncStatus::Pending;
        stack.store.put_inventory(&row, Writer::Dyer).await.unwrap();
    }

    let report = push(&stack, &acct).await;

    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let state = stack.sim_control.state().await.unwrap();
    assert_eq!(
        state["products"].as_array().unwrap().len(),
        3,
        "no duplicate product"
    );
    assert_shop_matches_catalog(&stack, &acct).await;
    let stats = stack.shopify.stats();
    assert!(stats.throttled >= 2 && stats.retries >= 4, "{stats:?}");
}

#[tokio::test]
async fn a_response_lost_after_a_create_does_not_make_a_second_product() {
    let (stack, acct) = stack_with_catalog("acct-lost").await;
    let lost = FaultKind::LostResponse { status: None };
    stack
        .sim_control
        .inject_fault(lost.clone(), Some("productSet"), 2)
        .await
        .unwrap();
    stack
        .sim_control
        .inject_fault(lost, Some("inventorySetQuantities"), 1)
        .await
        .unwrap();

    let report = push(&stack, &acct).await;

    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let state = stack.sim_control.state().await.unwrap();
    let handles: Vec<_> = state["products"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["handle"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(handles.len(), 3, "{handles:?}");
    assert_shop_matches_catalog(&stack, &acct).await;
}

#[tokio::test]
async fn a_sale_on_the_shop_during_a_push_is_not_overwritten() {
    let (stack, acct) = stack_with_catalog("acct-sale").await;
    push(&stack, &acct).await;
    let (integration, _) = stack
        .store
        .account_integration(&acct)
        .await
        .unwrap()
        .unwrap();
    let catalog = stack.store.load_catalog(&acct).await.unwrap();
    let moss = catalog
        .colorways
        .iter()
        .find(|c| c.handle.as_str() == "moss-garden")
        .unwrap();
    let fingering = catalog
        .bases
        .iter()
        .find(|b| b.descriptor.as_str() == "Merino Fingering")
        .unwrap();
    let key = InventoryKey::new(moss.id.clone(), fingering.id.clone());
    let links = stack.store.load_links(&integration.id).await.unwrap();
    let item = links
        .iter()
        .find(|l| {
            l.local == fibermade_sync::domain::LocalRef::Inventory(key.clone())
                && l.external_type == fibermade_sync::domain::ExternalType::ShopifyInventoryItem
        })
        .unwrap();

    // Two skeins sell on the shop (12 → 10) before any webhook arrives, and
    // the dyer recounts the shelf in Fibermade (12 → 15).
    stack
        .sim_control
        .sale(item.external_id.as_str(), None, 2)
        .await
        .unwrap();
    stack.dyer_sets_stock(&acct, &key, 15).await.unwrap();

    let report = push(&stack, &acct).await;

    assert_eq!(report.sales_merged, 1);
    assert_eq!(
        shop(&stack).await["moss-garden"]["Merino Fingering"].1,
        13,
        "15 counted, 2 sold"
    );
    assert_eq!(
        stack
            .store
            .get_inventory(&acct, &key)
            .await
            .unwrap()
            .unwrap()
            .quantity,
        13
    );
    let log = stack.store.recent_logs(&acct, 20).await.unwrap();
    let conflict = log
        .iter()
        .find(|e| e.data["conflict"] == true)
        .expect("the conflict is logged");
    assert_eq!(conflict.status, LogStatus::Warning);
}

/// The root fields of every call the shop answered, in order.
async fn root_fields(stack: &LocalStack) -> Vec<String> {
    stack
        .sim_control
        .calls()
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c["outcome"] == "ok")
        .flat_map(|c| c["rootFields"].as_array().cloned().unwrap_or_default())
        .filter_map(|f| f.as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn a_large_push_goes_through_one_bulk_operation_and_matches_a_push_of_single_calls() {
    let (stack, acct) = stack_with_catalog("acct-bulk").await;
    stack.sim_control.clear_calls().await.unwrap();
    let pusher = stack.pusher().with_bulk_threshold(2);
    let report = pusher
        .push(&PushRequest::account(acct.clone()))
        .await
        .unwrap();

    assert_eq!(report.products_created, 3);
    assert_eq!(report.quantities_set, 9);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let roots = root_fields(&stack).await;
    assert!(
        !roots.iter().any(|f| f == "productSet"),
        "no single productSet: {roots:?}"
    );
    assert_eq!(
        roots
            .iter()
            .filter(|f| *f == "bulkOperationRunMutation")
            .count(),
        1
    );
    assert_shop_matches_catalog(&stack, &acct).await;

    // The links the bulk run established serve the next push: nothing to do.
    stack.sim_control.clear_calls().await.unwrap();
    let again = pusher.push(&PushRequest::account(acct)).await.unwrap();
    assert_eq!(again.shopify_calls, 0);
    assert_eq!(again.products_unchanged, 3);
}

#[tokio::test]
async fn a_bulk_operation_that_cannot_start_falls_back_to_single_calls() {
    let (stack, acct) = stack_with_catalog("acct-bulk-down").await;
    stack
        .sim_control
        .inject_fault(
            FaultKind::ServerError { status: 503 },
            Some("stagedUploadsCreate"),
            100,
        )
        .await
        .unwrap();
    let report = stack
        .pusher()
        .with_bulk_threshold(2)
        .push(&PushRequest::account(acct.clone()))
        .await
        .unwrap();
    assert_eq!(report.products_created, 3);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(
        mutation_calls(&stack)
            .await
            .iter()
            .filter(|f| *f == "productSet")
            .count(),
        3
    );
    assert_shop_matches_catalog(&stack, &acct).await;
}
