//! The scheduled reconciliation, end to end: drift made on the simulated shop
//! behind Fibermade's back (sales whose webhooks never came, a product
//! deleted by hand, a price edited in the admin) is found and repaired, from
//! the schedule's tick on the catalog queue through the worker's fan-out.

use fibermade_sync::domain::{
    Account, AccountId, Base, Colorway, ColorwayStatus, Descriptor, ExternalType, Handle,
    InventoryKey, LocalRef, LogSource, LogStatus, Money, Writer,
};
use fibermade_sync::jobs::CatalogJob;
use fibermade_sync::push::PushRequest;
use local_stack::{ACCESS_TOKEN, LocalStack};
use serde_json::{Value, json};

const ACCOUNT: &str = "acct-reconciled";

fn colorway(n: usize) -> Colorway {
    let name = format!("Colorway {n}");
    Colorway {
        id: format!("cw-{n}").parse().unwrap(),
        account_id: ACCOUNT.parse().unwrap(),
        handle: Handle::from_title(&name).unwrap(),
        name,
        description_html: "<p>Small batch.</p>".into(),
        status: ColorwayStatus::Active,
        colors: vec!["Blue".into()],
        technique: Some("Tonal".into()),
        per_pan: Some(4),
    }
}

/// Two colorways on two bases, 10 skeins each, pushed; no webhook
/// subscription, so the shop's changes reach Fibermade only by the
/// reconciliation.
async fn pushed_catalog() -> (LocalStack, AccountId) {
    let stack = LocalStack::start().await.unwrap();
    let account = Account {
        id: ACCOUNT.parse().unwrap(),
        name: "Tidewater Yarns".into(),
        creator: "user-creator".parse().unwrap(),
        members: vec![],
        auto_catalog_sync: false,
    };
    stack.store.put_account(&account).await.unwrap();
    stack.link(&account.id).await.unwrap();
    for n in 0..2 {
        stack
            .store
            .put_colorway(&colorway(n), Writer::Dyer)
            .await
            .unwrap();
    }
    for (id, descriptor, price) in [("base-sport", "Sport", "24.00"), ("base-dk", "DK", "26.00")] {
        let base = Base {
            id: id.parse().unwrap(),
            account_id: account.id.clone(),
            descriptor: Descriptor::try_from(descriptor.to_owned()).unwrap(),
            retail_price: price.parse::<Money>().unwrap(),
        };
        stack.store.put_base(&base, Writer::Dyer).await.unwrap();
    }
    let pusher = stack.pusher();
    pusher
        .push(&PushRequest::account(account.id.clone()))
        .await
        .unwrap();
    for n in 0..2 {
        for base in ["base-sport", "base-dk"] {
            let key = InventoryKey::new(format!("cw-{n}").parse().unwrap(), base.parse().unwrap());
            stack.dyer_sets_stock(&account.id, &key, 10).await.unwrap();
        }
    }
    pusher
        .push(&PushRequest::account(account.id.clone()))
        .await
        .unwrap();
    (stack, account.id)
}

fn key(n: usize, base: &str) -> InventoryKey {
    InventoryKey::new(format!("cw-{n}").parse().unwrap(), base.parse().unwrap())
}

async fn link(stack: &LocalStack, local: LocalRef, kind: ExternalType) -> String {
    let links = stack
        .store
        .load_links(&format!("int-{ACCOUNT}").parse().unwrap())
        .await
        .unwrap();
    links
        .into_iter()
        .find(|l| l.local == local && l.external_type == kind)
        .map(|l| l.external_id.to_string())
        .expect("a link")
}

async fn stock(stack: &LocalStack, key: &InventoryKey) -> i64 {
    stack
        .store
        .get_inventory(&ACCOUNT.parse().unwrap(), key)
        .await
        .unwrap()
        .unwrap()
        .quantity
}

/// A GraphQL call to the simulated shop, as a merchant's other app would make.
async fn admin(stack: &LocalStack, query: &str, variables: Value) -> Value {
    reqwest::Client::new()
        .post(stack.sim.graphql_url())
        .header("X-Shopify-Access-Token", ACCESS_TOKEN)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The schedule's tick on the catalog queue, fanned out and run.
async fn tick(stack: &LocalStack) {
    stack
        .worker()
        .queue
        .clone()
        .unwrap()
        .send_all(&[CatalogJob::ReconcileAll {}], "test-tick")
        .await
        .unwrap();
    let drained = stack
        .drain_catalog_queue(local_stack::router::Feed {
            visibility_timeout: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(drained.failed, 0);
    assert_eq!(drained.received, 2, "the tick, then the account's job");
}

#[tokio::test]
async fn sales_whose_webhooks_never_came_are_recovered() {
    let (stack, acct) = pushed_catalog().await;
    let item = link(
        &stack,
        LocalRef::Inventory(key(0, "base-sport")),
        ExternalType::ShopifyInventoryItem,
    )
    .await;
    stack.sim_control.sale(&item, None, 3).await.unwrap();
    // Meanwhile the dyer counted the other colorway's DK again, and a sale
    // of it happened on the shop too: both changes stay.
    let dk = link(
        &stack,
        LocalRef::Inventory(key(1, "base-dk")),
        ExternalType::ShopifyInventoryItem,
    )
    .await;
    stack.sim_control.sale(&dk, None, 2).await.unwrap();
    stack
        .dyer_sets_stock(&acct, &key(1, "base-dk"), 15)
        .await
        .unwrap();
    stack.sim_control.clear_calls().await.unwrap();

    tick(&stack).await;

    assert_eq!(
        stock(&stack, &key(0, "base-sport")).await,
        7,
        "the lost sale of 3"
    );
    assert_eq!(
        stock(&stack, &key(1, "base-dk")).await,
        13,
        "recount 15, sale of 2"
    );
    let state = stack.sim_control.state().await.unwrap();
    let available = |item: &str| {
        state["products"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|p| p["variants"].as_array().unwrap().iter())
            .find(|v| v["inventoryItemId"] == item)
            .map(|v| v["levels"][0]["available"].as_i64().unwrap())
            .unwrap()
    };
    assert_eq!(
        available(&item),
        7,
        "the shop already held it; nothing rewritten"
    );
    assert_eq!(available(&dk), 13, "the merged figure was pushed");

    let log = stack.store.recent_logs(&acct, 20).await.unwrap();
    let warnings: Vec<_> = log
        .iter()
        .filter(|e| e.source == LogSource::Reconcile && e.status == LogStatus::Warning)
        .collect();
    assert!(
        warnings
            .iter()
            .any(|e| e.message.contains("moved -3 without a webhook")),
        "{warnings:?}"
    );
    let summary = log
        .iter()
        .find(|e| e.source == LogSource::Reconcile && e.entity.starts_with("account:"))
        .unwrap();
    assert_eq!(summary.data["stock_repaired"], 2);
}

#[tokio::test]
async fn a_late_webhook_of_a_repaired_sale_is_stale() {
    let (stack, acct) = pushed_catalog().await;
    let item = link(
        &stack,
        LocalRef::Inventory(key(0, "base-dk")),
        ExternalType::ShopifyInventoryItem,
    )
    .await;
    stack.sim_control.sale(&item, None, 1).await.unwrap();
    let sold_at = time::OffsetDateTime::now_utc() - time::Duration::seconds(5);
    tick(&stack).await;
    assert_eq!(stock(&stack, &key(0, "base-dk")).await, 9);

    // The webhook of that sale arrives a day late, after the repair.
    let (integration, _) = stack
        .store
        .account_integration(&acct)
        .await
        .unwrap()
        .unwrap();
    let location = integration.location_id.unwrap().numeric_id().unwrap();
    let job = fibermade_sync::webhook::PullJob {
        webhook_id: "late-delivery".into(),
        event_id: "late-event".into(),
        triggered_at: None,
        shop_domain: local_stack::SHOP_DOMAIN.into(),
        update: serde_json::from_value(json!({
            "inventory_item_id": item.rsplit('/').next().unwrap().parse::<u64>().unwrap(),
            "location_id": location,
            "available": 9,
            "updated_at": sold_at.format(&time::format_description::well_known::Rfc3339).unwrap(),
        }))
        .unwrap(),
    };
    let outcome = stack.puller().apply(&job).await.unwrap();
    assert!(
        matches!(outcome, fibermade_sync::pull::PullOutcome::Stale),
        "{outcome:?}"
    );
    assert_eq!(
        stock(&stack, &key(0, "base-dk")).await,
        9,
        "not applied twice"
    );
}

#[tokio::test]
async fn a_product_deleted_by_hand_and_a_price_edited_in_the_admin_are_repaired() {
    let (stack, _acct) = pushed_catalog().await;
    let product = link(
        &stack,
        LocalRef::Colorway("cw-0".parse().unwrap()),
        ExternalType::ShopifyProduct,
    )
    .await;
    let deleted = admin(
        &stack,
        "mutation($id: ID!) { productDelete(input: {id: $id}) { deletedProductId userErrors { message } } }",
        json!({ "id": product }),
    )
    .await;
    assert!(
        deleted["data"]["productDelete"]["deletedProductId"].is_string(),
        "{deleted}"
    );
    let other = link(
        &stack,
        LocalRef::Colorway("cw-1".parse().unwrap()),
        ExternalType::ShopifyProduct,
    )
    .await;
    let variant = link(
        &stack,
        LocalRef::Inventory(key(1, "base-sport")),
        ExternalType::ShopifyVariant,
    )
    .await;
    let edited = admin(
        &stack,
        "mutation($p: ID!, $v: [ProductVariantsBulkInput!]!) { productVariantsBulkUpdate(productId: $p, variants: $v) { userErrors { message } } }",
        json!({ "p": other, "v": [{ "id": variant, "price": "19.99" }] }),
    )
    .await;
    assert_eq!(
        edited["data"]["productVariantsBulkUpdate"]["userErrors"],
        json!([])
    );

    tick(&stack).await;

    let remade = stack
        .sim_control
        .product_by_handle("colorway-0")
        .await
        .unwrap()
        .expect("the deleted product is made again");
    let stocked: Vec<i64> = remade["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["levels"][0]["available"].as_i64().unwrap())
        .collect();
    assert_eq!(stocked, vec![10, 10], "with Fibermade's stock");
    let repriced = stack
        .sim_control
        .product_by_handle("colorway-1")
        .await
        .unwrap()
        .unwrap();
    assert!(
        repriced["variants"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["price"] != "19.99"),
        "Fibermade's price is back"
    );
    assert_eq!(
        stack.sim_control.state().await.unwrap()["products"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "no duplicate product"
    );
}

#[tokio::test]
async fn a_shop_in_step_costs_one_read_and_no_write() {
    let (stack, acct) = pushed_catalog().await;
    stack.sim_control.clear_calls().await.unwrap();
    tick(&stack).await;
    let calls = stack.sim_control.calls().await.unwrap();
    let roots: Vec<String> = calls
        .iter()
        .flat_map(|c| c["rootFields"].as_array().cloned().unwrap_or_default())
        .filter_map(|f| f.as_str().map(str::to_owned))
        .collect();
    assert_eq!(roots, vec!["nodes"], "one read of both products");
    let log = stack.store.recent_logs(&acct, 5).await.unwrap();
    let summary = log
        .iter()
        .find(|e| e.source == LogSource::Reconcile)
        .expect("a summary entry");
    assert_eq!(summary.status, LogStatus::Success);
}
