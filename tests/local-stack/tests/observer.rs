//! Catalog edits reach the shop without a push, end to end: a dyer's write to
//! the catalog table (moto), its stream record read back from moto's
//! DynamoDB Streams and filtered as the template filters it, the observer,
//! the FIFO catalog queue, the worker, and the shop on the simulator.

use fibermade_sync::domain::{
    Account, AccountId, Base, BaseId, Colorway, ColorwayId, ColorwayStatus, Descriptor, Handle,
    InventoryKey, LogSource, LogStatus, Media, MediaId, Money, Writer,
};
use fibermade_sync::push::PushRequest;
use local_stack::router::Feed;
use local_stack::stream::StreamSource;
use local_stack::{LocalStack, StackOptions};
use serde_json::Value;
use shopify_sim::FaultKind;

const ACCOUNT: &str = "acct-observed";

fn colorway(n: usize) -> Colorway {
    let name = format!("Colorway {n}");
    Colorway {
        id: format!("cw-{n}").parse().unwrap(),
        account_id: ACCOUNT.parse().unwrap(),
        handle: Handle::from_title(&name).unwrap(),
        name,
        description_html: format!("<p>Dye lot {n}.</p>"),
        status: ColorwayStatus::Active,
        colors: vec!["Green".into()],
        technique: Some("Speckled".into()),
        per_pan: Some(6),
    }
}

fn base(id: &str, descriptor: &str, price: &str) -> Base {
    Base {
        id: id.parse().unwrap(),
        account_id: ACCOUNT.parse().unwrap(),
        descriptor: Descriptor::try_from(descriptor.to_owned()).unwrap(),
        retail_price: price.parse::<Money>().unwrap(),
    }
}

/// A linked account with automatic catalog sync, `colorways` colorways on two
/// bases, pushed once; and the catalog stream, opened after that push.
async fn synced_catalog(colorways: usize) -> (LocalStack, AccountId, StreamSource) {
    synced_catalog_with(colorways, StackOptions::default()).await
}

async fn synced_catalog_with(
    colorways: usize,
    options: StackOptions,
) -> (LocalStack, AccountId, StreamSource) {
    let stack = LocalStack::start_with(options).await.unwrap();
    let account = Account {
        id: ACCOUNT.parse().unwrap(),
        name: "Moss & Main Fiber Co.".into(),
        creator: "user-creator".parse().unwrap(),
        members: vec![],
        auto_catalog_sync: true,
    };
    stack.store.put_account(&account).await.unwrap();
    stack.link(&account.id).await.unwrap();
    for n in 0..colorways {
        stack
            .store
            .put_colorway(&colorway(n), Writer::Dyer)
            .await
            .unwrap();
    }
    for b in [
        base("base-fingering", "Merino Fingering", "28.00"),
        base("base-dk", "Merino DK", "30.00"),
    ] {
        stack.store.put_base(&b, Writer::Dyer).await.unwrap();
    }
    let report = stack
        .pusher()
        .push(&PushRequest::account(account.id.clone()))
        .await
        .unwrap();
    assert_eq!(report.products_created, colorways as u64);
    let stream = stack.catalog_stream().await.unwrap();
    stack.sim_control.clear_calls().await.unwrap();
    (stack, account.id, stream)
}

async fn product(stack: &LocalStack, n: usize) -> Value {
    let handle = colorway(n).handle.to_string();
    stack
        .sim_control
        .product_by_handle(&handle)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no product {handle} on the shop"))
}

fn prices(product: &Value) -> Vec<(String, String)> {
    let mut prices: Vec<(String, String)> = product["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["selectedOptions"][0]["value"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                v["price"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    prices.sort();
    prices
}

/// The root fields of the mutations the shop ran since the last clear.
async fn mutations(stack: &LocalStack) -> Vec<String> {
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
            f == "productSet" || f.starts_with("productVariants") || f == "inventorySetQuantities"
        })
        .collect()
}

#[tokio::test]
async fn colorway_rename_updates_the_product_title() {
    let (stack, acct, mut stream) = synced_catalog(2).await;
    let renamed = Colorway {
        name: "Moss Garden After Rain".into(),
        ..colorway(0)
    };
    stack
        .store
        .put_colorway(&renamed, Writer::Dyer)
        .await
        .unwrap();

    let pass = stack.sync_catalog(&mut stream).await.unwrap();
    assert_eq!(pass.observed.jobs_queued, 1);
    assert_eq!(product(&stack, 0).await["title"], "Moss Garden After Rain");
    assert_eq!(product(&stack, 1).await["title"], "Colorway 1");
    assert_eq!(mutations(&stack).await, vec!["productSet"]);

    let log = stack.store.recent_logs(&acct, 10).await.unwrap();
    let entry = log
        .iter()
        .find(|e| e.source == LogSource::Observer)
        .expect("an observer log entry");
    assert_eq!(entry.status, LogStatus::Success);
    assert_eq!(entry.entity, "colorway:cw-0");
}

#[tokio::test]
async fn other_colorway_fields_update_the_product() {
    let (stack, _acct, mut stream) = synced_catalog(1).await;
    let changed = Colorway {
        description_html: "<p>Now with more moss.</p>".into(),
        status: ColorwayStatus::Retired,
        colors: vec!["Olive".into(), "Brown".into()],
        technique: Some("Tonal".into()),
        per_pan: Some(8),
        ..colorway(0)
    };
    stack
        .store
        .put_colorway(&changed, Writer::Dyer)
        .await
        .unwrap();
    stack.sync_catalog(&mut stream).await.unwrap();

    let product = product(&stack, 0).await;
    assert_eq!(product["descriptionHtml"], "<p>Now with more moss.</p>");
    assert_eq!(product["status"], "ARCHIVED");
    assert_eq!(product["vendor"], "Moss & Main Fiber Co.");
    let tags: Vec<&str> = product["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(tags, vec!["Brown", "Olive", "Tonal"]);
    let per_pan = product["metafields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["namespace"] == "fibermade" && m["key"] == "per_pan")
        .expect("the per_pan metafield");
    assert_eq!(per_pan["type"], "number_integer");
    assert_eq!(per_pan["value"], "8");
}

#[tokio::test]
async fn retail_price_change_updates_every_variant_with_one_cheap_call_per_product() {
    let (stack, _acct, mut stream) = synced_catalog(3).await;
    let dearer = base("base-dk", "Merino DK", "32.50");
    stack.store.put_base(&dearer, Writer::Dyer).await.unwrap();

    let pass = stack.sync_catalog(&mut stream).await.unwrap();
    assert_eq!(pass.observed.jobs_queued, 1);
    for n in 0..3 {
        assert_eq!(
            prices(&product(&stack, n).await),
            vec![
                ("Merino DK".to_owned(), "32.50".to_owned()),
                ("Merino Fingering".to_owned(), "28.00".to_owned()),
            ]
        );
    }
    assert_eq!(
        mutations(&stack).await,
        vec!["productVariantsBulkUpdate"; 3],
        "a price change is a variant update, not a whole product"
    );
}

#[tokio::test]
async fn descriptor_change_updates_every_variant() {
    let (stack, acct, mut stream) = synced_catalog(2).await;
    let renamed = base("base-dk", "Merino DK Superwash", "30.00");
    stack.store.put_base(&renamed, Writer::Dyer).await.unwrap();
    stack.sync_catalog(&mut stream).await.unwrap();

    for n in 0..2 {
        let product = product(&stack, n).await;
        assert_eq!(
            prices(&product),
            vec![
                ("Merino DK Superwash".to_owned(), "30.00".to_owned()),
                ("Merino Fingering".to_owned(), "28.00".to_owned()),
            ]
        );
        assert_eq!(product["options"][0]["values"].as_array().unwrap().len(), 2);
    }
    // The renamed variant is still the one Fibermade's inventory links to.
    let key = InventoryKey::new("cw-0".parse().unwrap(), "base-dk".parse().unwrap());
    let links = stack
        .store
        .load_links(&format!("int-{acct}").parse().unwrap())
        .await
        .unwrap();
    let variant = links
        .iter()
        .find(|l| l.local == fibermade_sync::domain::LocalRef::Inventory(key.clone()))
        .expect("the variant link");
    let on_shop = product(&stack, 0).await["variants"]
        .as_array()
        .unwrap()
        .iter()
        .any(|v| {
            v["id"] == variant.external_id.as_str()
                || v["inventoryItemId"] == variant.external_id.as_str()
        });
    assert!(on_shop, "the link still names a variant of the product");
}

#[tokio::test]
async fn base_creation_adds_a_stocked_variant_to_every_product() {
    let (stack, acct, mut stream) = synced_catalog(2).await;
    stack
        .store
        .put_base(&base("base-sock", "Sock 75/25", "26.00"), Writer::Dyer)
        .await
        .unwrap();
    stack.sync_catalog(&mut stream).await.unwrap();

    for n in 0..2 {
        let product = product(&stack, n).await;
        let sock = product["variants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["selectedOptions"][0]["value"] == "Sock 75/25")
            .expect("a variant for the new base");
        assert_eq!(sock["price"], "26.00");
        assert_eq!(sock["levels"][0]["available"], 0, "stocked at zero");
    }
    assert_eq!(
        mutations(&stack).await,
        vec!["productVariantsBulkCreate"; 2]
    );
    let catalog = stack.store.load_catalog(&acct).await.unwrap();
    assert_eq!(
        catalog.inventory.len(),
        6,
        "every colorway × base has a row"
    );
}

#[tokio::test]
async fn base_deletion_removes_its_variant_from_every_product() {
    let (stack, acct, mut stream) = synced_catalog(2).await;
    let gone: BaseId = "base-dk".parse().unwrap();
    stack.store.delete_base(&acct, &gone).await.unwrap();
    stack.sync_catalog(&mut stream).await.unwrap();

    for n in 0..2 {
        assert_eq!(
            prices(&product(&stack, n).await),
            vec![("Merino Fingering".to_owned(), "28.00".to_owned())]
        );
    }
    let links = stack
        .store
        .load_links(&format!("int-{acct}").parse().unwrap())
        .await
        .unwrap();
    assert!(
        !links.iter().any(|l| matches!(&l.local,
            fibermade_sync::domain::LocalRef::Inventory(k) if k.base_id == gone)),
        "no link leads to a deleted base's variant"
    );
}

#[tokio::test]
async fn image_changes_sync_with_primary_first() {
    let (stack, acct, mut stream) = synced_catalog(1).await;
    let cw: ColorwayId = "cw-0".parse().unwrap();
    let image = |id: &str, position: u32, primary: bool| Media {
        id: MediaId::try_from(id.to_owned()).unwrap(),
        colorway_id: cw.clone(),
        src: format!("https://cdn.example.com/{id}.jpg"),
        alt: Some(format!("{id} skeins")),
        position,
        is_primary: primary,
    };
    let sources = |product: &Value| -> Vec<String> {
        product["media"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["originalSource"].as_str().unwrap().to_owned())
            .collect()
    };

    for m in [image("a", 1, true), image("b", 2, false)] {
        stack
            .store
            .put_media(&acct, &m, Writer::Dyer)
            .await
            .unwrap();
    }
    stack.sync_catalog(&mut stream).await.unwrap();
    assert_eq!(
        sources(&product(&stack, 0).await),
        vec![
            "https://cdn.example.com/a.jpg",
            "https://cdn.example.com/b.jpg"
        ]
    );

    // The second image becomes the primary one.
    stack
        .store
        .put_media(&acct, &image("a", 1, false), Writer::Dyer)
        .await
        .unwrap();
    stack
        .store
        .put_media(&acct, &image("b", 2, true), Writer::Dyer)
        .await
        .unwrap();
    stack.sync_catalog(&mut stream).await.unwrap();
    assert_eq!(
        sources(&product(&stack, 0).await),
        vec![
            "https://cdn.example.com/b.jpg",
            "https://cdn.example.com/a.jpg"
        ]
    );

    // Both removed: the product's media is cleared.
    for id in ["a", "b"] {
        stack
            .store
            .delete_media(&acct, &cw, &MediaId::try_from(id.to_owned()).unwrap())
            .await
            .unwrap();
    }
    stack.sync_catalog(&mut stream).await.unwrap();
    assert!(sources(&product(&stack, 0).await).is_empty());
}

#[tokio::test]
async fn a_dyers_stock_edit_is_pushed_and_a_pulled_one_is_not() {
    let (stack, acct, mut stream) = synced_catalog(1).await;
    let key = InventoryKey::new("cw-0".parse().unwrap(), "base-fingering".parse().unwrap());
    stack.dyer_sets_stock(&acct, &key, 9).await.unwrap();
    stack.sync_catalog(&mut stream).await.unwrap();

    let fingering = |product: &Value| {
        product["variants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["selectedOptions"][0]["value"] == "Merino Fingering")
            .map(|v| v["levels"][0]["available"].as_i64().unwrap())
            .unwrap()
    };
    assert_eq!(fingering(&product(&stack, 0).await), 9);
    assert_eq!(mutations(&stack).await, vec!["inventorySetQuantities"]);

    // The push's own bookkeeping (writer = sync) came through the stream
    // too, and was filtered out before the observer.
    stack.sim_control.clear_calls().await.unwrap();
    let pass = stack.sync_catalog(&mut stream).await.unwrap();
    assert!(pass.delivered.read > 0, "the push wrote rows");
    assert_eq!(pass.delivered.delivered, 0);
    assert_eq!(pass.observed.jobs_queued, 0);
    assert!(mutations(&stack).await.is_empty());
}

#[tokio::test]
async fn a_write_by_the_sync_itself_produces_no_job() {
    let stack = LocalStack::start().await.unwrap();
    let account = Account {
        id: ACCOUNT.parse().unwrap(),
        name: "Moss & Main Fiber Co.".into(),
        creator: "user-creator".parse().unwrap(),
        members: vec![],
        auto_catalog_sync: true,
    };
    stack.store.put_account(&account).await.unwrap();
    stack.link(&account.id).await.unwrap();
    stack
        .store
        .put_colorway(&colorway(0), Writer::Dyer)
        .await
        .unwrap();
    stack
        .store
        .put_base(&base("base-dk", "Merino DK", "30.00"), Writer::Dyer)
        .await
        .unwrap();
    // Opened before the push: every write the push makes is on the stream.
    let mut stream = stack.catalog_stream().await.unwrap();
    stack
        .pusher()
        .push(&PushRequest::account(account.id.clone()))
        .await
        .unwrap();
    stack.sim_control.clear_calls().await.unwrap();

    let pass = stack.sync_catalog(&mut stream).await.unwrap();
    assert!(
        pass.delivered.read >= 1,
        "the push created and synced a row"
    );
    assert_eq!(pass.delivered.filtered_out, pass.delivered.read);
    assert_eq!(pass.observed.jobs_queued, 0);
    assert_eq!(stack.queue_depth(&stack.catalog_queue).await.unwrap(), 0);
    assert!(mutations(&stack).await.is_empty());
}

#[tokio::test]
async fn with_the_flag_off_nothing_is_queued() {
    let (stack, acct, mut stream) = synced_catalog(1).await;
    let mut account = stack.store.get_account(&acct).await.unwrap().unwrap();
    account.auto_catalog_sync = false;
    stack.store.put_account(&account).await.unwrap();
    let renamed = Colorway {
        name: "Renamed While Off".into(),
        ..colorway(0)
    };
    stack
        .store
        .put_colorway(&renamed, Writer::Dyer)
        .await
        .unwrap();

    let pass = stack.sync_catalog(&mut stream).await.unwrap();
    assert_eq!(pass.observed.jobs_queued, 0);
    assert!(pass.observed.skipped_flag_off >= 1);
    assert_eq!(stack.queue_depth(&stack.catalog_queue).await.unwrap(), 0);
    assert_eq!(product(&stack, 0).await["title"], "Colorway 0");

    // Turning it on catches up with what changed meanwhile.
    account.auto_catalog_sync = true;
    stack.store.put_account(&account).await.unwrap();
    stack.sync_catalog(&mut stream).await.unwrap();
    assert_eq!(product(&stack, 0).await["title"], "Renamed While Off");
}

#[tokio::test]
async fn ten_or_more_products_are_queued_as_bounded_jobs() {
    let (stack, _acct, mut stream) = synced_catalog(12).await;
    stack
        .store
        .put_base(
            &base("base-fingering", "Merino Fingering", "29.00"),
            Writer::Dyer,
        )
        .await
        .unwrap();
    let pass = stack.sync_catalog(&mut stream).await.unwrap();
    assert_eq!(pass.observed.jobs_queued, 3, "12 products, at most 5 a job");
    assert_eq!(pass.drained.received, 3);
    for n in 0..12 {
        assert!(
            prices(&product(&stack, n).await)
                .contains(&("Merino Fingering".into(), "29.00".into()))
        );
    }
}

#[tokio::test]
async fn a_burst_of_renames_costs_one_write() {
    let (stack, _acct, mut stream) = synced_catalog(1).await;
    for i in 1..=10 {
        let renamed = Colorway {
            name: format!("Moss Garden take {i}"),
            ..colorway(0)
        };
        stack
            .store
            .put_colorway(&renamed, Writer::Dyer)
            .await
            .unwrap();
    }
    let pass = stack.sync_catalog(&mut stream).await.unwrap();
    assert_eq!(pass.observed.changes, 10);
    assert_eq!(pass.observed.jobs_queued, 1);
    assert_eq!(mutations(&stack).await, vec!["productSet"]);
    assert_eq!(product(&stack, 0).await["title"], "Moss Garden take 10");
}

#[tokio::test]
async fn a_save_that_touches_no_synced_field_costs_no_call() {
    let (stack, _acct, mut stream) = synced_catalog(1).await;
    // The same colorway saved again: only updated_at differs.
    stack
        .store
        .put_colorway(&colorway(0), Writer::Dyer)
        .await
        .unwrap();
    let pass = stack.sync_catalog(&mut stream).await.unwrap();
    assert_eq!(pass.delivered.delivered, 1);
    assert_eq!(pass.observed.changes, 0);
    assert_eq!(pass.observed.jobs_queued, 0);
    assert!(stack.sim_control.calls().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_job_run_twice_leaves_the_shop_as_once() {
    let (stack, _acct, mut stream) = synced_catalog(2).await;
    stack
        .store
        .put_base(&base("base-dk", "Merino DK", "31.00"), Writer::Dyer)
        .await
        .unwrap();
    stack.sync_catalog(&mut stream).await.unwrap();
    let once = stack.sim_control.state().await.unwrap()["products"].clone();

    let job = fibermade_sync::jobs::CatalogJob::SyncColorways {
        account_id: ACCOUNT.parse().unwrap(),
        colorway_ids: vec!["cw-0".parse().unwrap(), "cw-1".parse().unwrap()],
        reasons: [fibermade_sync::jobs::ChangeReason::BaseFields].into(),
        queued_at: time::OffsetDateTime::now_utc(),
    };
    stack.sim_control.clear_calls().await.unwrap();
    stack.worker().run(&job).await.unwrap();
    assert!(mutations(&stack).await.is_empty(), "nothing left to write");
    assert_eq!(stack.sim_control.state().await.unwrap()["products"], once);
}

#[tokio::test]
async fn a_failing_job_never_blocks_the_save_and_ends_in_the_dead_letter_queue_with_a_log_entry() {
    let (stack, acct, mut stream) = synced_catalog(1).await;
    // Every write to the shop fails, more often than the client retries.
    stack
        .sim_control
        .inject_fault(
            FaultKind::ServerError { status: 503 },
            Some("productSet"),
            1000,
        )
        .await
        .unwrap();
    let renamed = Colorway {
        name: "Renamed During An Outage".into(),
        ..colorway(0)
    };
    // The dyer's save is a plain write to the catalog: it succeeded before
    // the observer or Shopify saw anything.
    stack
        .store
        .put_colorway(&renamed, Writer::Dyer)
        .await
        .unwrap();
    let saved = stack.store.load_catalog(&acct).await.unwrap();
    assert!(
        saved
            .colorways
            .iter()
            .any(|c| c.name == "Renamed During An Outage")
    );

    let pass = stack.sync_catalog(&mut stream).await.unwrap();
    assert_eq!(pass.observed.jobs_queued, 1);
    assert_eq!(
        pass.drained.failed, 1,
        "the first try failed and stays queued"
    );

    // Receives until the redrive: each failure comes back after the
    // visibility timeout, the last one moves to the dead-letter queue.
    let drained = stack
        .drain_catalog_queue(Feed {
            visibility_timeout: 1,
            passes: 6,
            ..Feed::default()
        })
        .await
        .unwrap();
    assert_eq!(drained.failed as u32, stack.catalog_max_receives - 1);
    assert_eq!(stack.queue_depth(&stack.catalog_dlq).await.unwrap(), 1);
    assert_eq!(stack.queue_depth(&stack.catalog_queue).await.unwrap(), 0);

    let log = stack.store.recent_logs(&acct, 20).await.unwrap();
    let dead = log
        .iter()
        .find(|e| e.data["dead_letter"] == true)
        .expect("a log entry for the dead-lettered job");
    assert_eq!(dead.status, LogStatus::Error);
    assert_eq!(dead.source, LogSource::Observer);
    assert!(
        dead.message.contains("could not reach Shopify"),
        "{}",
        dead.message
    );

    // Once the shop is back, the next edit brings everything across.
    stack.sim_control.clear_faults().await.unwrap();
    let again = Colorway {
        description_html: "<p>Back online.</p>".into(),
        ..renamed
    };
    stack
        .store
        .put_colorway(&again, Writer::Dyer)
        .await
        .unwrap();
    stack.sync_catalog(&mut stream).await.unwrap();
    let product = product(&stack, 0).await;
    assert_eq!(product["title"], "Renamed During An Outage");
    assert_eq!(product["descriptionHtml"], "<p>Back online.</p>");
}

#[tokio::test]
async fn a_job_that_fails_once_is_retried_and_succeeds() {
    let (stack, _acct, mut stream) = synced_catalog(1).await;
    // More 5xx in a row than the client's own retries: the job fails once.
    stack
        .sim_control
        .inject_fault(
            FaultKind::ServerError { status: 502 },
            Some("productSet"),
            5,
        )
        .await
        .unwrap();
    let renamed = Colorway {
        name: "Second Time Lucky".into(),
        ..colorway(0)
    };
    stack
        .store
        .put_colorway(&renamed, Writer::Dyer)
        .await
        .unwrap();
    let pass = stack.sync_catalog(&mut stream).await.unwrap();
    assert_eq!(pass.drained.failed, 1);
    stack
        .drain_catalog_queue(Feed {
            visibility_timeout: 1,
            passes: 3,
            ..Feed::default()
        })
        .await
        .unwrap();
    assert_eq!(product(&stack, 0).await["title"], "Second Time Lucky");
    assert_eq!(stack.queue_depth(&stack.catalog_dlq).await.unwrap(), 0);
}
