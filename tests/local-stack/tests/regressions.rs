//! Cases found by trying hard to break the import and the push; each stays
//! as a test so it cannot come back.

use std::time::Duration;

use fibermade_sync::domain::{AccountId, InventoryKey};
use fibermade_sync::push::{PushError, PushRequest};
use local_stack::{LocalStack, project_root};
use shopify_sim::FaultKind;

fn yarn() -> String {
    String::from_utf8(
        std::fs::read(project_root().join("tests/fixtures/csv/yarn-catalog.csv")).unwrap(),
    )
    .unwrap()
}

fn request(acct: &AccountId) -> PushRequest {
    PushRequest::account(acct.clone())
}

async fn pushed(account: &str) -> (LocalStack, AccountId, InventoryKey) {
    let stack = LocalStack::start().await.unwrap();
    let acct = stack
        .seed_account(account, "user-creator", &[], true)
        .await
        .unwrap()
        .id;
    stack
        .import_file(&acct, "yarn.csv", yarn().into_bytes())
        .await
        .unwrap()
        .unwrap();
    stack.pusher().push(&request(&acct)).await.unwrap();
    let catalog = stack.store.load_catalog(&acct).await.unwrap();
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
    (
        stack,
        acct,
        InventoryKey::new(moss.id.clone(), base.id.clone()),
    )
}

async fn shop_stock(stack: &LocalStack, handle: &str, base: &str) -> Option<i64> {
    let product = stack.sim_control.product_by_handle(handle).await.unwrap()?;
    product["variants"]
        .as_array()?
        .iter()
        .find(|v| v["selectedOptions"][0]["value"] == base)
        .and_then(|v| v["levels"][0]["available"].as_i64())
}

#[tokio::test]
async fn a_stock_write_whose_answers_were_all_lost_is_not_counted_again_as_a_sale() {
    let (stack, acct, key) = pushed("acct-r1").await;
    stack.dyer_sets_stock(&acct, &key, 20).await.unwrap();
    stack
        .sim_control
        .inject_fault(
            FaultKind::LostResponse { status: None },
            Some("inventorySetQuantities"),
            10,
        )
        .await
        .unwrap();
    let failed = stack.pusher().push(&request(&acct)).await.unwrap();
    assert!(!failed.errors.is_empty(), "every answer was lost");
    stack.sim_control.clear_faults().await.unwrap();

    let report = stack.pusher().push(&request(&acct)).await.unwrap();

    assert_eq!(report.sales_merged, 0);
    assert_eq!(
        shop_stock(&stack, "moss-garden", "Merino Fingering").await,
        Some(20)
    );
    assert_eq!(
        stack
            .store
            .get_inventory(&acct, &key)
            .await
            .unwrap()
            .unwrap()
            .quantity,
        20
    );
}

#[tokio::test]
async fn a_dyer_edit_during_a_push_is_not_doubled_by_the_next_push() {
    let (stack, acct, key) = pushed("acct-r2").await;
    stack.dyer_sets_stock(&acct, &key, 20).await.unwrap();
    stack
        .sim_control
        .inject_fault(
            FaultKind::Latency { ms: 1500 },
            Some("inventorySetQuantities"),
            1,
        )
        .await
        .unwrap();
    let pusher = stack.pusher();
    let req = request(&acct);
    let running = tokio::spawn(async move { pusher.push(&req).await });
    tokio::time::sleep(Duration::from_millis(700)).await;
    stack.dyer_sets_stock(&acct, &key, 25).await.unwrap();
    running.await.unwrap().unwrap();

    stack.pusher().push(&request(&acct)).await.unwrap();

    assert_eq!(
        shop_stock(&stack, "moss-garden", "Merino Fingering").await,
        Some(25)
    );
    assert_eq!(
        stack
            .store
            .get_inventory(&acct, &key)
            .await
            .unwrap()
            .unwrap()
            .quantity,
        25
    );
}

#[tokio::test]
async fn two_pushes_of_one_shop_at_once_are_refused_not_interleaved() {
    let (stack, acct, key) = pushed("acct-r3").await;
    stack.dyer_sets_stock(&acct, &key, 20).await.unwrap();
    stack
        .sim_control
        .inject_fault(
            FaultKind::Latency { ms: 400 },
            Some("inventorySetQuantities"),
            2,
        )
        .await
        .unwrap();

    let (one, two) = (stack.pusher(), stack.pusher());
    let req = request(&acct);
    let (a, b) = tokio::join!(one.push(&req), two.push(&req));

    let busy = [&a, &b]
        .iter()
        .filter(|r| matches!(r, Err(PushError::Busy)))
        .count();
    assert_eq!(busy, 1, "{a:?} {b:?}");
    assert_eq!(
        shop_stock(&stack, "moss-garden", "Merino Fingering").await,
        Some(20)
    );
    assert_eq!(
        stack
            .store
            .get_inventory(&acct, &key)
            .await
            .unwrap()
            .unwrap()
            .quantity,
        20
    );
    // The lease is given back: the next push runs.
    assert!(stack.pusher().push(&request(&acct)).await.is_ok());
}

#[tokio::test]
async fn products_deleted_on_the_shop_are_made_again_instead_of_failing_forever() {
    let (stack, acct, key) = pushed("acct-r4").await;
    stack.sim_control.reset().await.unwrap();
    stack.dyer_sets_stock(&acct, &key, 30).await.unwrap();

    let first = stack.pusher().push(&request(&acct)).await.unwrap();
    assert!(
        !first.errors.is_empty(),
        "the stock call finds the variant gone"
    );
    let second = stack.pusher().push(&request(&acct)).await.unwrap();

    assert!(second.errors.is_empty(), "{:?}", second.errors);
    assert_eq!(
        shop_stock(&stack, "moss-garden", "Merino Fingering").await,
        Some(30)
    );
    assert_eq!(
        shop_stock(&stack, "moss-garden", "Merino DK").await,
        Some(4)
    );
}

#[tokio::test]
async fn handles_differing_only_in_capitals_are_rejected_and_change_nothing() {
    let stack = LocalStack::start().await.unwrap();
    let acct = stack
        .seed_account("acct-r5", "user-1", &[], false)
        .await
        .unwrap()
        .id;
    let twin = format!(
        "{}MOSS-GARDEN,Shouting Moss,,M,Yarn,,true,Base,Merino DK,MG2-DK,4,30.00,,,,active\n",
        yarn()
    );

    let rejected = stack
        .import_file(&acct, "twins.csv", twin.into_bytes())
        .await
        .unwrap()
        .unwrap_err();

    assert!(
        rejected.contains("line 10") && rejected.contains("line 2"),
        "{rejected}"
    );
    assert!(
        stack
            .store
            .load_catalog(&acct)
            .await
            .unwrap()
            .bases
            .is_empty(),
        "nothing was written"
    );
}

#[tokio::test]
async fn a_description_too_large_to_store_is_rejected_naming_its_line() {
    let stack = LocalStack::start().await.unwrap();
    let acct = stack
        .seed_account("acct-r6", "user-1", &[], false)
        .await
        .unwrap()
        .id;
    let big = format!(
        "{}huge,Huge,\"{}\",M,Yarn,,true,Base,Merino DK,H-DK,1,30.00,,,,active\n",
        yarn(),
        "y".repeat(600 * 1024)
    );

    let rejected = stack
        .import_file(&acct, "big.csv", big.into_bytes())
        .await
        .unwrap()
        .unwrap_err();

    assert!(
        rejected.contains("line 10") && rejected.contains("description"),
        "{rejected}"
    );
    assert!(
        stack
            .store
            .load_catalog(&acct)
            .await
            .unwrap()
            .bases
            .is_empty()
    );
}

#[tokio::test]
async fn empty_quantity_cells_leave_existing_stock_alone() {
    let stack = LocalStack::start().await.unwrap();
    let acct = stack
        .seed_account("acct-r7", "user-1", &[], false)
        .await
        .unwrap()
        .id;
    stack
        .import_file(&acct, "yarn.csv", yarn().into_bytes())
        .await
        .unwrap()
        .unwrap();
    let untracked = yarn().replace(",MG-MF,12,", ",MG-MF,,");

    let report = stack
        .import_file(&acct, "yarn.csv", untracked.into_bytes())
        .await
        .unwrap()
        .unwrap();

    assert_eq!(report.written.total(), 0);
    let stock: i64 = stack
        .store
        .load_catalog(&acct)
        .await
        .unwrap()
        .inventory
        .iter()
        .map(|r| r.quantity)
        .sum();
    assert_eq!(stock, 50);
}

#[tokio::test]
async fn a_header_only_file_imports_nothing_and_says_so() {
    let stack = LocalStack::start().await.unwrap();
    let acct = stack
        .seed_account("acct-r8", "user-1", &[], false)
        .await
        .unwrap()
        .id;
    let header = yarn().lines().next().unwrap().to_owned() + "\n";

    let report = stack
        .import_file(&acct, "empty.csv", header.into_bytes())
        .await
        .unwrap()
        .unwrap();

    assert_eq!(report.products, 0);
    assert!(
        report.warnings.iter().any(|w| w.contains("no products")),
        "{:?}",
        report.warnings
    );
}
