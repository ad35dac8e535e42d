//! The data migration on items an older version could have stored: it
//! brings them to today's shape, records what ran, and a second run (or a
//! forced one) changes nothing.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use fibermade_sync::domain::{
    AccountId, ExternalIdentifier, ExternalType, Gid, Inventory, InventoryKey, LocalRef,
    SyncStatus, Writer,
};
use fibermade_sync::migrate::{Migrator, Options, latest_version};
use local_stack::LocalStack;

type Item = HashMap<String, AttributeValue>;

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// An inventory row as a version without sync bookkeeping wrote it.
fn old_row(
    account: &AccountId,
    colorway: &str,
    base: &str,
    extra: &[(&str, AttributeValue)],
) -> Item {
    let mut item: Item = [
        ("pk", s(&format!("ACCOUNT#{account}"))),
        ("sk", s(&format!("INVENTORY#{colorway}#{base}"))),
        ("entity", s("inventory")),
        ("colorway_id", s(colorway)),
        ("base_id", s(base)),
        ("quantity", n(5)),
        ("writer", s("dyer")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for (k, v) in extra {
        item.insert((*k).to_owned(), v.clone());
    }
    item
}

async fn put(stack: &LocalStack, table: &str, item: Item) {
    stack
        .dynamodb
        .put_item()
        .table_name(table)
        .set_item(Some(item))
        .send()
        .await
        .unwrap();
}

/// Every item of a partition, raw, to compare runs byte for byte.
async fn partition(stack: &LocalStack, table: &str, pk: &str) -> Vec<Item> {
    let mut items = stack
        .dynamodb
        .query()
        .table_name(table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", s(pk))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default();
    items.sort_by_key(|i| format!("{:?}", i.get("sk")));
    items
}

struct Seeded {
    stack: LocalStack,
    account: AccountId,
    links_pk: String,
}

async fn seeded(account: &str) -> Seeded {
    let stack = LocalStack::start().await.unwrap();
    let account = stack
        .seed_account(account, "user-creator", &[], true)
        .await
        .unwrap()
        .id;
    let integration = stack
        .store
        .account_integration(&account)
        .await
        .unwrap()
        .unwrap()
        .0;
    let catalog = stack.tables.catalog.clone();
    let sync = stack.tables.sync.clone();

    // Never synced, no status, no version.
    put(&stack, &catalog, old_row(&account, "moss", "dk", &[])).await;
    // Synced by an old push that recorded no time.
    put(
        &stack,
        &catalog,
        old_row(
            &account,
            "moss",
            "fingering",
            &[
                ("sync_status", s("synced")),
                ("synced_quantity", n(5)),
                ("version", n(2)),
                ("updated_at", s("2025-03-01T10:00:00Z")),
            ],
        ),
    )
    .await;
    // Today's shape: nothing to do.
    stack
        .store
        .put_inventory(
            &Inventory {
                account_id: account.clone(),
                key: InventoryKey::new("moss".parse().unwrap(), "sock".parse().unwrap()),
                quantity: 2,
                last_synced_at: None,
                sync_status: SyncStatus::Pending,
                synced_quantity: None,
                shop_updated_at: None,
                version: 4,
            },
            Writer::Dyer,
        )
        .await
        .unwrap();

    // A base → variant identifier, as an old version could have written it,
    // beside a proper inventory link.
    let links_pk = format!("INTEGRATION#{}", integration.id);
    put(
        &stack,
        &sync,
        [
            ("pk", s(&links_pk)),
            ("sk", s("LINK#base#dk#shopify_variant")),
            ("entity", s("external_identifier")),
            ("integration_id", s(integration.id.as_str())),
            ("local_type", s("base")),
            ("local_id", s("dk")),
            ("external_type", s("shopify_variant")),
            (
                "external_id",
                s("gid://shopify/ProductVariant/9007199254740993"),
            ),
            (
                "gsi1pk",
                s(&format!(
                    "EXT#{}#shopify_variant#gid://shopify/ProductVariant/9007199254740993",
                    integration.id
                )),
            ),
            ("gsi1sk", s("LINK")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect(),
    )
    .await;
    stack
        .store
        .put_links(&[ExternalIdentifier {
            integration_id: integration.id.clone(),
            local: LocalRef::Inventory(InventoryKey::new(
                "moss".parse().unwrap(),
                "sock".parse().unwrap(),
            )),
            external_type: ExternalType::ShopifyVariant,
            external_id: "gid://shopify/ProductVariant/9007199254740995"
                .parse::<Gid>()
                .unwrap(),
            fingerprint: None,
        }])
        .await
        .unwrap();
    Seeded {
        stack,
        account,
        links_pk,
    }
}

fn migrator(stack: &LocalStack, options: Options) -> Migrator {
    Migrator::new(stack.store.clone(), options)
}

#[tokio::test]
async fn migration_brings_old_items_to_todays_shape() {
    let Seeded {
        stack,
        account,
        links_pk,
    } = seeded("acct-migrate").await;
    assert!(
        stack
            .store
            .load_links(&integration_id(&links_pk))
            .await
            .is_err(),
        "a base link makes the account's links unreadable, so every push fails"
    );

    let report = migrator(&stack, Options::default())
        .migrate_account(&account)
        .await
        .unwrap();
    assert_eq!(report.from_version, 0);
    assert_eq!(report.to_version, latest_version());
    let changed: Vec<(u32, u64)> = report
        .applied
        .iter()
        .map(|a| (a.version, a.changed))
        .collect();
    assert_eq!(changed, vec![(1, 2), (2, 1)], "{report:?}");

    let catalog = stack.store.load_catalog(&account).await.unwrap();
    let row = |base: &str| {
        catalog
            .inventory
            .iter()
            .find(|r| r.key.base_id.as_str() == base)
            .unwrap()
            .clone()
    };
    assert_eq!(row("dk").sync_status, SyncStatus::Pending);
    assert_eq!(
        row("dk").last_synced_at,
        None,
        "never synced: no time to claim"
    );
    assert_eq!(row("dk").version, 1);
    assert_eq!(row("fingering").sync_status, SyncStatus::Synced);
    assert_eq!(
        row("fingering").last_synced_at,
        Some(time::macros::datetime!(2025-03-01 10:00:00 UTC))
    );
    assert_eq!(row("fingering").version, 3);
    assert_eq!(
        row("sock").version,
        4,
        "a row of today's shape is left alone"
    );

    let raw = partition(&stack, &stack.tables.catalog, &format!("ACCOUNT#{account}")).await;
    for item in raw.iter().filter(|i| i["entity"] == s("inventory")) {
        if item["sk"] != s("INVENTORY#moss#sock") {
            assert_eq!(
                item["writer"],
                s("sync"),
                "the migration's writes must not wake the observer"
            );
        }
    }

    let links = stack
        .store
        .load_links(&integration_id(&links_pk))
        .await
        .unwrap();
    assert_eq!(links.len(), 1);
    assert!(matches!(links[0].local, LocalRef::Inventory(_)));
    assert_eq!(
        migrator(&stack, Options::default())
            .recorded_version(&account)
            .await
            .unwrap(),
        latest_version()
    );
}

#[tokio::test]
async fn migration_is_idempotent() {
    let Seeded {
        stack,
        account,
        links_pk,
    } = seeded("acct-migrate-twice").await;
    let catalog_pk = format!("ACCOUNT#{account}");
    migrator(&stack, Options::default())
        .migrate_account(&account)
        .await
        .unwrap();
    let catalog_after_first = partition(&stack, &stack.tables.catalog, &catalog_pk).await;
    let links_after_first = partition(&stack, &stack.tables.sync, &links_pk).await;

    let second = migrator(&stack, Options::default())
        .migrate_account(&account)
        .await
        .unwrap();
    assert!(second.applied.is_empty(), "recorded as done: {second:?}");
    assert_eq!(second.from_version, latest_version());

    let forced = migrator(
        &stack,
        Options {
            force: true,
            ..Options::default()
        },
    )
    .migrate_account(&account)
    .await
    .unwrap();
    assert_eq!(
        forced.applied.len(),
        2,
        "forced: every migration runs again"
    );
    assert_eq!(forced.changed(), 0, "and changes nothing: {forced:?}");

    assert_eq!(
        partition(&stack, &stack.tables.catalog, &catalog_pk).await,
        catalog_after_first
    );
    assert_eq!(
        partition(&stack, &stack.tables.sync, &links_pk).await,
        links_after_first
    );
}

#[tokio::test]
async fn a_dry_run_counts_and_writes_nothing() {
    let Seeded {
        stack,
        account,
        links_pk,
    } = seeded("acct-migrate-dry").await;
    let catalog_pk = format!("ACCOUNT#{account}");
    let catalog_before = partition(&stack, &stack.tables.catalog, &catalog_pk).await;
    let links_before = partition(&stack, &stack.tables.sync, &links_pk).await;

    let dry = migrator(
        &stack,
        Options {
            dry_run: true,
            ..Options::default()
        },
    );
    let report = dry.migrate_account(&account).await.unwrap();
    assert_eq!(report.changed(), 3, "{report:?}");
    assert_eq!(report.to_version, 0);
    assert_eq!(dry.recorded_version(&account).await.unwrap(), 0);
    assert_eq!(
        partition(&stack, &stack.tables.catalog, &catalog_pk).await,
        catalog_before
    );
    assert_eq!(
        partition(&stack, &stack.tables.sync, &links_pk).await,
        links_before
    );
}

#[tokio::test]
async fn every_account_is_listed_for_a_full_run() {
    let Seeded { stack, account, .. } = seeded("acct-migrate-list").await;
    stack
        .seed_account("acct-migrate-other", "user-2", &[], false)
        .await
        .unwrap();
    let accounts = migrator(&stack, Options::default())
        .accounts()
        .await
        .unwrap();
    assert_eq!(
        accounts,
        vec![account, "acct-migrate-other".parse().unwrap()]
    );
}

fn integration_id(links_pk: &str) -> fibermade_sync::domain::IntegrationId {
    links_pk
        .strip_prefix("INTEGRATION#")
        .unwrap()
        .to_owned()
        .try_into()
        .unwrap()
}
