//! The fault matrix in its short form (`make chaos` runs the full one):
//! imports, pushes, pulls and catalog jobs under Shopify's and DynamoDB's
//! faults and killed workers, ending with a reconciliation; afterwards shop,
//! catalog and an independent ledger of sales and edits agree.

use local_stack::chaos::{Chaos, ChaosConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fault_matrix_loses_no_sale_and_duplicates_nothing() {
    let seed = std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    let report = Chaos::run(ChaosConfig::short(seed)).await.unwrap();
    println!("{}", report.table());
    assert!(report.passed(), "{}", report.failures().join("\n"));
}

/// The proxy itself: a throttled operation fails after the SDK's three
/// attempts and passes once the rule is spent; a killed write never reaches
/// moto, and the store works again after the thaw.
#[tokio::test]
async fn the_dynamodb_proxy_throttles_by_operation_and_kills_before_the_write() {
    use fibermade_sync::domain::Account;
    use fibermade_sync::store::Store;
    use local_stack::chaos::{DynamoProxy, SdkAttempts, killable, proxied_dynamodb};

    let stack = local_stack::LocalStack::start().await.unwrap();
    let proxy = DynamoProxy::start(&stack.aws_endpoint, 1).await.unwrap();
    let attempts = SdkAttempts::default();
    let client = proxied_dynamodb(&proxy.endpoint(), attempts.clone()).await;
    let store = Store::new(client, stack.tables.clone());
    let account = Account {
        id: "acct-proxy".parse().unwrap(),
        name: "Proxy Yarns".into(),
        creator: "user-creator".parse().unwrap(),
        members: vec![],
        auto_catalog_sync: false,
    };

    proxy.add(DynamoRule::new(
        "GetItem",
        DynamoFault::ProvisionedThroughputExceeded,
        3,
    ));
    let refused = store.get_account(&account.id).await.unwrap_err();
    assert!(refused.is_retryable(), "{refused}");
    assert!(
        refused
            .to_string()
            .contains("ProvisionedThroughputExceeded")
    );
    assert_eq!(attempts.retries(), 2, "the SDK tried three times");
    assert_eq!(store.get_account(&account.id).await.unwrap(), None);

    proxy.add(DynamoRule::new("PutItem", DynamoFault::Kill, 1));
    let switch = proxy.kill_switch();
    let killed = killable(&switch, store.put_account(&account)).await;
    assert!(killed.is_none(), "the write was cut off");
    assert_eq!(stack.store.get_account(&account.id).await.unwrap(), None);
    store.put_account(&account).await.unwrap();
    assert_eq!(
        stack.store.get_account(&account.id).await.unwrap(),
        Some(account)
    );

    let hits: Vec<u32> = proxy.take_rules().iter().map(|r| r.hits).collect();
    assert_eq!(hits, vec![3, 1]);
}

// Interleavings the matrix found that lost or doubled a figure, each kept
// as a regression test of its fix.

use local_stack::chaos::{DynamoFault, DynamoRule, RECORD_SYNC, inventory_item_key};
use shopify_sim::WebhookConfigUpdate;

async fn stocked(seed: u64) -> Chaos {
    Chaos::stocked(ChaosConfig::short(seed)).await.unwrap()
}

/// Kills the catalog job the observer queues for the dyer's edits at the
/// first write matching `rule`, and lets the push lease run out.
async fn kill_the_job(chaos: &mut Chaos, rule: DynamoRule) {
    chaos.proxy.add(rule);
    chaos.observe().await.unwrap();
    let queue = chaos.stack.catalog_queue.clone();
    let (_, killed) = chaos.drain(&queue, 1).await.unwrap();
    assert!(killed, "the worker was killed");
    chaos.lease_runs_out().await.unwrap();
}

/// A sale of 2 whose webhook is held (so a push finds it as a stale figure)
/// and a dyer's +5 on the same clean row; gives the row and its sort key.
async fn sale_held_then_dyer_edit(
    chaos: &mut Chaos,
) -> (fibermade_sync::domain::InventoryKey, String) {
    chaos
        .stack
        .sim_control
        .configure_webhooks(&WebhookConfigUpdate {
            duplicate_rate: Some(0.0),
            reorder_window: Some(50),
            ..WebhookConfigUpdate::default()
        })
        .await
        .unwrap();
    let row = chaos.pick_clean_row(&[]).await.unwrap();
    chaos.sell(&row, 2).await.unwrap();
    chaos.dyer_edit(&row, 5).await.unwrap();
    let (_, sk) = inventory_item_key(&chaos.account, &row);
    (row, sk)
}

async fn assert_on_the_ledger(chaos: &Chaos, key: &fibermade_sync::domain::InventoryKey) {
    let (ledger, fibermade, shop) = chaos.figures(key).await.unwrap();
    assert_eq!(
        (fibermade, shop),
        (ledger, ledger),
        "Fibermade and the shop hold the ledger's figure"
    );
}

#[tokio::test]
async fn a_sale_made_before_a_killed_jobs_links_are_saved_survives_the_job_run_again() {
    let mut chaos = stocked(11).await;
    let (_, keys) = chaos.add_colorway().await.unwrap();
    kill_the_job(
        &mut chaos,
        DynamoRule::new("BatchWriteItem", DynamoFault::Kill, 1).containing("LINK#"),
    )
    .await;
    chaos.sell(&keys[0], 2).await.unwrap();
    chaos.drain_pulls().await.unwrap();
    chaos.drain_jobs().await.unwrap();
    chaos.settle().await.unwrap();
    assert_on_the_ledger(&chaos, &keys[0]).await;
}

#[tokio::test]
async fn a_throttled_pending_mark_leaves_no_other_colorway_without_its_job() {
    let mut chaos = stocked(12).await;
    let catalog = chaos.catalog().await.unwrap();
    let (first, second) = (&catalog.colorways[0], &catalog.colorways[1]);
    for colorway in [first, second] {
        let renamed = fibermade_sync::domain::Colorway {
            name: format!("{} Again", colorway.name),
            ..colorway.clone()
        };
        chaos
            .dyer
            .put_colorway(&renamed, fibermade_sync::domain::Writer::Dyer)
            .await
            .unwrap();
    }
    chaos.proxy.add(
        DynamoRule::new("PutItem", DynamoFault::Throttling, 3)
            .containing("PENDING#")
            .containing(format!("COLORWAY#{}", second.id)),
    );
    chaos.observe().await.unwrap();
    chaos.drain_jobs().await.unwrap();
    for colorway in [first, second] {
        let product = chaos
            .stack
            .sim_control
            .product_by_handle(colorway.handle.as_str())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            product["title"],
            format!("{} Again", colorway.name),
            "{} reached the shop",
            colorway.handle
        );
    }
}

#[tokio::test]
async fn a_sale_delivered_before_the_echo_of_a_killed_jobs_stock_write_is_not_taken_for_a_change() {
    let mut chaos = stocked(13).await;
    // Two deliveries held, then sent reversed: the sale's before the echo.
    chaos
        .stack
        .sim_control
        .configure_webhooks(&WebhookConfigUpdate {
            duplicate_rate: Some(0.0),
            reorder_window: Some(2),
            ..WebhookConfigUpdate::default()
        })
        .await
        .unwrap();
    let row = chaos.pick_clean_row(&[]).await.unwrap();
    chaos.dyer_edit(&row, 5).await.unwrap();
    kill_the_job(
        &mut chaos,
        DynamoRule::new("UpdateItem", DynamoFault::Kill, 1).containing(RECORD_SYNC),
    )
    .await;
    chaos.sell(&row, 1).await.unwrap();
    chaos.drain_pulls().await.unwrap();
    chaos.drain_jobs().await.unwrap();
    chaos.settle().await.unwrap();
    assert_on_the_ledger(&chaos, &row).await;
}

#[tokio::test]
async fn a_killed_job_run_again_after_a_sale_does_not_take_its_own_write_for_a_change() {
    let mut chaos = stocked(14).await;
    chaos.in_order_webhooks(true).await.unwrap();
    let row = chaos.pick_clean_row(&[]).await.unwrap();
    chaos.dyer_edit(&row, 5).await.unwrap();
    kill_the_job(
        &mut chaos,
        DynamoRule::new("UpdateItem", DynamoFault::Kill, 1).containing(RECORD_SYNC),
    )
    .await;
    chaos.sell(&row, 1).await.unwrap();
    // SQS hands the job out again before any webhook is pulled.
    chaos.drain_jobs().await.unwrap();
    chaos.settle().await.unwrap();
    assert_on_the_ledger(&chaos, &row).await;
}

#[tokio::test]
async fn a_dyer_edit_racing_the_record_of_a_merged_sale_keeps_the_sale() {
    let mut chaos = stocked(15).await;
    let (row, sk) = sale_held_then_dyer_edit(&mut chaos).await;
    chaos.proxy.add(
        DynamoRule::new("UpdateItem", DynamoFault::RacingEdit, 1)
            .containing(RECORD_SYNC)
            .containing(sk),
    );
    let request =
        fibermade_sync::push::PushRequest::colorway(chaos.account.clone(), row.colorway_id.clone());
    let report = chaos.stack.pusher().push(&request).await.unwrap();
    assert_eq!(report.sales_merged, 1, "the push found the sale");
    chaos.settle().await.unwrap();
    assert_on_the_ledger(&chaos, &row).await;
}

/// A push finds a sale as a stale figure, merges it into the dyer's
/// recount and sets the merged figure, then dies before recording it. The
/// pull of the sale settles the write first: the sale is kept on top of the
/// dyer's recount, once.
#[tokio::test]
async fn a_push_killed_after_merging_a_sale_keeps_the_sale_once_settled() {
    use local_stack::chaos::killable;

    let mut chaos = stocked(16).await;
    let (row, sk) = sale_held_then_dyer_edit(&mut chaos).await;
    chaos.proxy.add(
        DynamoRule::new("UpdateItem", DynamoFault::Kill, 1)
            .containing(RECORD_SYNC)
            .containing(sk),
    );
    let request =
        fibermade_sync::push::PushRequest::colorway(chaos.account.clone(), row.colorway_id.clone());
    let switch = chaos.proxy.kill_switch();
    let killed = killable(&switch, chaos.stack.pusher().push(&request)).await;
    assert!(killed.is_none(), "the push was killed: {killed:?}");
    chaos.lease_runs_out().await.unwrap();

    chaos.in_order_webhooks(true).await.unwrap();
    chaos.settle().await.unwrap();
    assert_on_the_ledger(&chaos, &row).await;
}
