//! CSV import, end to end: an export uploaded to S3 (moto), the csv-import
//! handler run on S3's notification, the catalog in DynamoDB, and variants
//! looked up on the Shopify simulator.

use std::collections::BTreeMap;

use fibermade_sync::domain::{AccountId, ExternalType, Gid, LocalRef, LogStatus};
use fibermade_sync::store::Catalog;
use local_stack::{LocalStack, fixture_csv, project_root};

fn own_fixture(name: &str) -> Vec<u8> {
    std::fs::read(project_root().join("tests/fixtures/csv").join(name)).expect("fixture exists")
}

fn shared_fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture_csv(name)).expect("the shared exports are beside the project")
}

/// Quantities by "handle / descriptor", to compare with the file.
fn stock_by_name(catalog: &Catalog) -> BTreeMap<String, i64> {
    catalog
        .inventory
        .iter()
        .map(|row| {
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
            (
                format!("{} / {}", colorway.handle, base.descriptor),
                row.quantity,
            )
        })
        .collect()
}

/// Every item of the catalog table, attribute for attribute.
async fn raw_catalog(stack: &LocalStack, account: &AccountId) -> Vec<String> {
    let out = stack
        .dynamodb
        .query()
        .table_name(&stack.tables.catalog)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(
            ":pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("ACCOUNT#{account}")),
        )
        .send()
        .await
        .unwrap();
    let mut items: Vec<String> = out
        .items
        .unwrap_or_default()
        .into_iter()
        .map(|item| format!("{:?}", item.into_iter().collect::<BTreeMap<_, _>>()))
        .collect();
    items.sort();
    items
}

#[tokio::test]
async fn quantities_come_from_the_file() {
    let stack = LocalStack::start().await.unwrap();
    let acct = stack
        .seed_account("acct-q", "user-1", &[], false)
        .await
        .unwrap()
        .id;

    let report = stack
        .import_file(&acct, "yarn.csv", own_fixture("yarn-catalog.csv"))
        .await
        .unwrap()
        .unwrap();

    let catalog = stack.store.load_catalog(&acct).await.unwrap();
    let stock = stock_by_name(&catalog);
    assert_eq!(stock["moss-garden / Merino Fingering"], 12);
    assert_eq!(stock["moss-garden / Merino DK"], 4);
    assert_eq!(stock["moss-garden / Sock 75/25"], 0);
    assert_eq!(stock["harbour-fog / Merino Fingering"], 7);
    assert_eq!(stock["harbour-fog / Merino DK"], 9);
    assert_eq!(stock["ember / Merino Fingering"], 3);
    assert_eq!(stock["ember / Sock 75/25"], 15);
    assert_eq!(stock.values().sum::<i64>(), 50);
    assert_eq!(report.variants, 7);
}

#[tokio::test]
async fn bases_are_deduplicated_across_products_by_descriptor() {
    let stack = LocalStack::start().await.unwrap();
    let acct = stack
        .seed_account("acct-d", "user-1", &[], false)
        .await
        .unwrap()
        .id;

    stack
        .import_file(&acct, "yarn.csv", own_fixture("yarn-catalog.csv"))
        .await
        .unwrap()
        .unwrap();

    let catalog = stack.store.load_catalog(&acct).await.unwrap();
    let mut descriptors: Vec<_> = catalog
        .bases
        .iter()
        .map(|b| b.descriptor.to_string())
        .collect();
    descriptors.sort();
    // "merino  fingering" in Harbour Fog is the same yarn as "Merino Fingering".
    assert_eq!(
        descriptors,
        vec!["Merino DK", "Merino Fingering", "Sock 75/25"]
    );
    assert_eq!(catalog.colorways.len(), 3);
    let moss = catalog
        .colorways
        .iter()
        .find(|c| c.handle.as_str() == "moss-garden")
        .unwrap();
    assert_eq!(
        moss.description_html,
        "<p>Greens of a wet wood,\nspeckled with bark brown.</p>"
    );
    assert_eq!(moss.colors, vec!["Green", "Brown"]);
    assert_eq!(moss.technique.as_deref(), Some("Speckled"));
    let media: Vec<_> = catalog
        .media_of(&moss.id)
        .iter()
        .map(|m| (m.position, m.is_primary))
        .collect();
    assert_eq!(media, vec![(1, true), (2, false)]);
}

#[tokio::test]
async fn price_conflicts_keep_the_most_common_price_and_are_logged_as_warnings() {
    let stack = LocalStack::start().await.unwrap();
    let acct = stack
        .seed_account("acct-p", "user-1", &[], false)
        .await
        .unwrap()
        .id;

    let report = stack
        .import_file(&acct, "yarn.csv", own_fixture("yarn-catalog.csv"))
        .await
        .unwrap()
        .unwrap();

    let catalog = stack.store.load_catalog(&acct).await.unwrap();
    let fingering = catalog
        .bases
        .iter()
        .find(|b| b.descriptor.as_str() == "Merino Fingering")
        .unwrap();
    assert_eq!(
        fingering.retail_price.to_string(),
        "28.00",
        "28.00 is on two variants, 30.00 on one"
    );
    let warning = report
        .warnings
        .iter()
        .find(|w| w.contains("Merino Fingering"))
        .expect("a price warning");
    assert!(
        warning.contains("30.00 on 1 variant, first at ember (line"),
        "{warning}"
    );

    let log = stack.store.recent_logs(&acct, 50).await.unwrap();
    assert!(
        log.iter()
            .any(|e| e.status == LogStatus::Warning && e.message.contains("Merino Fingering"))
    );
    let summary = log
        .iter()
        .find(|e| e.message.starts_with("Imported"))
        .expect("a summary entry");
    assert_eq!(summary.status, LogStatus::Warning);
}

#[tokio::test]
async fn inventory_is_linked_to_variants_from_id_columns() {
    let stack = LocalStack::start().await.unwrap();
    let acct = stack
        .seed_account("acct-i", "user-1", &[], true)
        .await
        .unwrap()
        .id;

    let report = stack
        .import_file(&acct, "ids.csv", own_fixture("yarn-catalog-with-ids.csv"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report.links_from_file, 2);

    let (integration, _) = stack
        .store
        .account_integration(&acct)
        .await
        .unwrap()
        .unwrap();
    // One index lookup finds the inventory row of a webhook's inventory item.
    let item: Gid = "gid://shopify/InventoryItem/9007199254743002"
        .parse()
        .unwrap();
    let link = stack
        .store
        .find_link(&integration.id, ExternalType::ShopifyInventoryItem, &item)
        .await
        .unwrap()
        .expect("the inventory item is linked");
    let LocalRef::Inventory(key) = &link.local else {
        panic!("linked to {:?}", link.local)
    };
    let row = stack
        .store
        .get_inventory(&acct, key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.quantity, 4);
    assert_eq!(
        row.synced_quantity,
        Some(4),
        "the file's figure is the shop's figure"
    );

    let variant: Gid = "gid://shopify/ProductVariant/9007199254742001"
        .parse()
        .unwrap();
    let link = stack
        .store
        .find_link(&integration.id, ExternalType::ShopifyVariant, &variant)
        .await
        .unwrap();
    assert!(link.is_some(), "the variant is linked");
    // Links go to inventory rows and the colorway, never to a base.
    for link in stack.store.load_links(&integration.id).await.unwrap() {
        assert!(matches!(
            link.local,
            LocalRef::Inventory(_) | LocalRef::Colorway(_)
        ));
    }
}

#[tokio::test]
async fn variants_without_ids_are_linked_through_the_shop_by_handle() {
    let stack = LocalStack::start().await.unwrap();
    // The dyer's shop already sells Moss Garden, made by an earlier push.
    let other = stack
        .seed_account("acct-shop", "user-9", &[], true)
        .await
        .unwrap()
        .id;
    stack
        .import_file(&other, "yarn.csv", own_fixture("yarn-catalog.csv"))
        .await
        .unwrap()
        .unwrap();
    stack
        .pusher()
        .push(&fibermade_sync::push::PushRequest::account(other))
        .await
        .unwrap();

    let acct = stack
        .seed_account("acct-l", "user-1", &[], true)
        .await
        .unwrap()
        .id;
    let report = stack
        .import_file(&acct, "yarn.csv", own_fixture("yarn-catalog.csv"))
        .await
        .unwrap()
        .unwrap();

    assert_eq!(
        report.links_resolved, 7,
        "every variant in the file exists on the shop: {:?}",
        report.warnings
    );
    assert_eq!(report.links_unresolved, 0);
    let (integration, _) = stack
        .store
        .account_integration(&acct)
        .await
        .unwrap()
        .unwrap();
    let links = stack.store.load_links(&integration.id).await.unwrap();
    assert_eq!(
        links
            .iter()
            .filter(|l| l.external_type == ExternalType::ShopifyVariant)
            .count(),
        7
    );
    assert_eq!(
        links
            .iter()
            .filter(|l| l.external_type == ExternalType::ShopifyProduct)
            .count(),
        3
    );
}

#[tokio::test]
async fn a_variant_missing_on_the_shop_is_a_warning_not_a_failure() {
    let stack = LocalStack::start().await.unwrap();
    let acct = stack
        .seed_account("acct-m", "user-1", &[], true)
        .await
        .unwrap()
        .id;

    let report = stack
        .import_file(&acct, "yarn.csv", own_fixture("yarn-catalog.csv"))
        .await
        .unwrap()
        .unwrap();

    assert_eq!(report.links_unresolved, 7);
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("no product with handle \"moss-garden\""))
    );
    let catalog = stack.store.load_catalog(&acct).await.unwrap();
    assert_eq!(catalog.inventory.len(), 7, "stock is imported all the same");
}

#[tokio::test]
async fn reimport_changes_nothing() {
    let stack = LocalStack::start().await.unwrap();
    let acct = stack
        .seed_account("acct-r", "user-1", &[], false)
        .await
        .unwrap()
        .id;
    let first = stack
        .import_file(&acct, "yarn.csv", own_fixture("yarn-catalog.csv"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.written.total(), 3 + 3 + 7 + 3);
    let before = raw_catalog(&stack, &acct).await;

    let second = stack
        .import_file(&acct, "yarn.csv", own_fixture("yarn-catalog.csv"))
        .await
        .unwrap()
        .unwrap();

    assert_eq!(second.written.total(), 0);
    assert_eq!(
        raw_catalog(&stack, &acct).await,
        before,
        "not one attribute changed"
    );
}

#[tokio::test]
async fn each_real_export_imports_with_the_counts_read_from_it() {
    let stack = LocalStack::start().await.unwrap();
    // (file, colorways, bases, inventory rows, total stock, media)
    let expected = [
        ("legacy-export-2021.csv", 20, 3, 21, 65, 21),
        ("template-multi-option.csv", 3, 16, 16, 95, 11),
        ("new-format-2025.csv", 3, 4, 12, 120, 3),
    ];
    for (i, (file, colorways, bases, rows, stock, media)) in expected.into_iter().enumerate() {
        let acct = stack
            .seed_account(&format!("acct-real-{i}"), "user-1", &[], false)
            .await
            .unwrap()
            .id;
        let report = stack
            .import_file(&acct, file, shared_fixture(file))
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        let catalog = stack.store.load_catalog(&acct).await.unwrap();
        let counts = (
            catalog.colorways.len(),
            catalog.bases.len(),
            catalog.inventory.len(),
            catalog.inventory.iter().map(|r| r.quantity).sum::<i64>(),
            catalog.media.len(),
        );
        assert_eq!(
            counts,
            (colorways, bases, rows, stock, media),
            "{file}: {report:?}"
        );
    }
}

/// A bad file of each kind is refused with its line named, and leaves the
/// catalog exactly as it was.
#[tokio::test]
async fn malformed_files_are_rejected_naming_the_line_and_change_nothing() {
    let stack = LocalStack::start().await.unwrap();
    let acct = stack
        .seed_account("acct-bad", "user-1", &[], false)
        .await
        .unwrap()
        .id;
    stack
        .import_file(&acct, "yarn.csv", own_fixture("yarn-catalog.csv"))
        .await
        .unwrap()
        .unwrap();
    let before = raw_catalog(&stack, &acct).await;

    let good = String::from_utf8(own_fixture("yarn-catalog.csv")).unwrap();
    let unterminated = good.replace("EM-SK", "\"EM-SK");
    let stray_quote = good.replace("<p>Grey-blue tonal.</p>", "\"<p>Grey-blue tonal.</p>");
    let semicolons = good.replace(',', ";");
    let mut latin1 = good.replace("Ember", "Emb\u{e9}r").into_bytes();
    let at = latin1.windows(2).position(|w| w == [0xC3, 0xA9]).unwrap();
    latin1.splice(at..at + 2, [0xE9]);
    let no_header = "moss-garden,Moss Garden,12\nember,Ember,3\n".to_owned();
    let bad_quantity = good.replace(",MG-DK,4,", ",MG-DK,four,");

    let cases: [(&str, Vec<u8>, &str); 6] = [
        ("unterminated quote", unterminated.into_bytes(), "line 9"),
        (
            "a quote closed before more text",
            stray_quote.into_bytes(),
            "line 6",
        ),
        ("other delimiter", semicolons.into_bytes(), "line 1"),
        ("not UTF-8", latin1, "line 8"),
        ("no recognisable header", no_header.into_bytes(), "line 1"),
        (
            "a quantity that is not a number",
            bad_quantity.into_bytes(),
            "line 4",
        ),
    ];
    for (kind, body, line) in cases {
        let rejected = stack
            .import_file(&acct, "bad.csv", body)
            .await
            .unwrap()
            .expect_err(kind);
        assert!(rejected.contains(line), "{kind}: {rejected}");
        assert_eq!(
            raw_catalog(&stack, &acct).await,
            before,
            "{kind} changed the catalog"
        );
    }
    let log = stack.store.recent_logs(&acct, 20).await.unwrap();
    let rejections = log
        .iter()
        .filter(|e| e.status == LogStatus::Error && e.message.contains("rejected"))
        .count();
    assert_eq!(rejections, 6, "each rejection is in the integration log");
}
