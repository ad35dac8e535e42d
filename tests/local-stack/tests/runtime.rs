//! The functions under the real Lambda runtime (`cargo lambda watch`): the
//! same binaries as in AWS, invoked with the events AWS sends.

use local_stack::lambda::LambdaWatch;
use local_stack::resources::api_event;
use local_stack::{LocalStack, project_root};
use serde_json::{Value, json};

#[tokio::test]
async fn import_and_push_run_under_the_lambda_runtime() {
    let stack = LocalStack::start().await.unwrap();
    let account = stack
        .seed_account("acct-runtime", "user-creator", &[], true)
        .await
        .unwrap();
    let watch = LambdaWatch::start(&stack.function_env()).await.unwrap();

    let csv = std::fs::read(project_root().join("tests/fixtures/csv/yarn-catalog.csv")).unwrap();
    let event = stack
        .upload(&account.id, "yarn catalog.csv", csv)
        .await
        .unwrap();
    assert!(
        event["Records"][0]["s3"]["object"]["key"]
            .as_str()
            .unwrap()
            .contains("yarn+catalog.csv"),
        "S3 encodes a space as +"
    );
    let imported = watch.invoke("csv-import", &event).await.unwrap();
    assert_eq!(imported[0]["products"], 3, "{imported}");
    assert_eq!(
        stack
            .store
            .load_catalog(&account.id)
            .await
            .unwrap()
            .inventory
            .len(),
        7
    );

    let path = "/accounts/acct-runtime/push";
    let anonymous = watch
        .invoke(
            "inventory-push",
            &api_event("POST", path, None, &json!({})).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(anonymous["statusCode"], 401);

    let claims = json!({ "sub": "user-creator", "exp": "4102444800" });
    let answer = watch
        .invoke(
            "inventory-push",
            &api_event("POST", path, Some(claims), &json!({})).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(answer["statusCode"], 200, "{answer}");
    let report: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
    assert_eq!(report["products_created"], 3);
    assert_eq!(report["quantities_set"], 9);

    let state = stack.sim_control.state().await.unwrap();
    let stock: i64 = state["products"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["variants"].as_array().unwrap().iter())
        .map(|v| v["levels"][0]["available"].as_i64().unwrap())
        .sum();
    assert_eq!(stock, 50, "the file's 50 skeins are on the shop");
}

/// The inventory item linked to a row, as a webhook names it.
async fn inventory_item(
    stack: &LocalStack,
    account: &fibermade_sync::domain::AccountId,
    key: &fibermade_sync::domain::InventoryKey,
) -> String {
    use fibermade_sync::domain::{ExternalType, LocalRef};
    let (integration, _) = stack
        .store
        .account_integration(account)
        .await
        .unwrap()
        .unwrap();
    stack
        .store
        .load_links(&integration.id)
        .await
        .unwrap()
        .into_iter()
        .find(|l| {
            l.local == LocalRef::Inventory(key.clone())
                && l.external_type == ExternalType::ShopifyInventoryItem
        })
        .unwrap()
        .external_id
        .to_string()
}

/// Each AWS event source, played by the router through `cargo lambda
/// watch`, reaches the function the template wires it to, with the event
/// AWS sends: S3's notification to csv-import, the API Gateway stand-in to
/// inventory-push, the catalog stream to catalog-observer, the catalog and
/// pull queues to sync-worker, and the Function URL to webhook-ingress.
#[tokio::test]
async fn the_router_delivers_each_event_kind_to_its_function() {
    use fibermade_sync::domain::Writer;
    use local_stack::gateway::{Gateway, Issuer};
    use local_stack::lambda::LocalLambdas;
    use local_stack::router::Feed;

    let stack = LocalStack::start().await.unwrap();
    let account = stack
        .seed_account("acct-wiring", "user-creator", &[], true)
        .await
        .unwrap();
    let lambdas = LocalLambdas::start(&stack).await.unwrap();

    // S3 → csv-import: only keys the template's filter lets through.
    let csv = std::fs::read(project_root().join("tests/fixtures/csv/yarn-catalog.csv")).unwrap();
    for key in [
        "imports/acct-wiring/yarn catalog.csv",
        "imports/acct-wiring/notes.txt",
        "exports/acct-wiring/other.csv",
    ] {
        stack
            .s3
            .put_object()
            .bucket(&stack.bucket)
            .key(key)
            .body(csv.clone().into())
            .send()
            .await
            .unwrap();
    }
    let answers = lambdas.deliver_imports().await.unwrap();
    assert_eq!(
        answers.len(),
        1,
        "one notification passes the filter: {answers:?}"
    );
    assert_eq!(answers[0][0]["products"], 3, "{answers:?}");
    assert_eq!(
        answers[0][0]["source"],
        "imports/acct-wiring/yarn catalog.csv"
    );

    // API Gateway → inventory-push, with the JWT authorizer in front.
    let gateway = Gateway::start(&lambdas.endpoint(), None, Issuer::local())
        .await
        .unwrap();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let push_url = format!("{}/accounts/acct-wiring/push", gateway.url());
    let anonymous = http.post(&push_url).json(&json!({})).send().await.unwrap();
    assert_eq!(anonymous.status(), 401, "refused by the authorizer");
    let pushed = http
        .post(&push_url)
        .bearer_auth(gateway.token_for("user-creator"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(pushed.status(), 200);
    let report: Value = pushed.json().await.unwrap();
    assert_eq!(report["products_created"], 3, "{report}");

    // DynamoDB stream → catalog-observer → catalog queue → sync-worker.
    let mut stream = stack.catalog_stream().await.unwrap();
    let mut dyer = stack.store.get_account(&account.id).await.unwrap().unwrap();
    dyer.auto_catalog_sync = true;
    stack.store.put_account(&dyer).await.unwrap();
    let catalog = stack.store.load_catalog(&account.id).await.unwrap();
    let mut colorway = catalog.colorways[0].clone();
    colorway.name = format!("{} (renamed)", colorway.name);
    stack
        .store
        .put_colorway(&colorway, Writer::Dyer)
        .await
        .unwrap();
    let observed = lambdas.deliver_stream(&mut stream).await.unwrap();
    assert!(observed.delivered >= 2, "{observed:?}");
    assert!(stack.queue_depth(&stack.catalog_queue).await.unwrap() >= 1);
    let jobs = lambdas.deliver_catalog_jobs(Feed::default()).await.unwrap();
    assert!(jobs.received >= 1 && jobs.failed == 0, "{jobs:?}");
    let product = stack
        .sim_control
        .product_by_handle(colorway.handle.as_str())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(product["title"], colorway.name.as_str());

    // Function URL → webhook-ingress → pull queue → sync-worker.
    let shop = fibermade_sync::shopify::Shop {
        domain: local_stack::SHOP_DOMAIN.to_owned(),
        access_token: fibermade_sync::shopify::AccessToken::new(local_stack::ACCESS_TOKEN),
    };
    fibermade_sync::webhook::registration::ensure_inventory_subscription(
        &stack.shopify,
        &shop,
        &lambdas.webhook_url(),
    )
    .await
    .unwrap();
    let row = catalog
        .inventory
        .iter()
        .find(|r| r.quantity >= 2)
        .unwrap()
        .clone();
    let item = inventory_item(&stack, &account.id, &row.key).await;
    stack.sim_control.sale(&item, None, 2).await.unwrap();
    stack.sim_control.flush_webhooks().await.unwrap();
    let deliveries = stack.sim_control.webhook_deliveries().await.unwrap();
    assert!(
        deliveries.iter().all(|d| d.status == Some(200)),
        "{deliveries:?}"
    );
    let pulled = lambdas.deliver_pulls(Feed::default()).await.unwrap();
    assert_eq!((pulled.received, pulled.failed), (1, 0));
    let after = stack
        .store
        .get_inventory(&account.id, &row.key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.quantity, row.quantity - 2);

    let hops = lambdas.hops();
    let functions: Vec<(&str, &str)> = hops
        .iter()
        .map(|h| (h.source.split(':').next().unwrap(), h.function))
        .collect();
    for hop in [
        ("s3", "csv-import"),
        ("dynamodb-stream", "catalog-observer"),
        ("sqs", "sync-worker"),
    ] {
        assert!(functions.contains(&hop), "{hop:?} in {functions:?}");
    }
}

/// A catalog job that fails on every receive (the shop answers 500) is
/// received the template's number of times, then SQS moves it to the
/// dead-letter queue, whose ApproximateNumberOfMessagesVisible is what
/// CatalogDeadLetterAlarm watches; the dyer's integration log says so.
#[tokio::test]
async fn a_job_that_keeps_failing_lands_in_the_dead_letter_queue_and_raises_the_alarm() {
    use aws_sdk_sqs::types::QueueAttributeName;
    use fibermade_sync::jobs::{CatalogJob, JobQueue};
    use local_stack::lambda::LocalLambdas;
    use local_stack::router::Feed;
    use shopify_sim::FaultKind;

    let stack = LocalStack::start().await.unwrap();
    let mut account = stack
        .seed_account("acct-dead-letter", "user-creator", &[], true)
        .await
        .unwrap();
    account.auto_catalog_sync = true;
    stack.store.put_account(&account).await.unwrap();
    let csv = std::fs::read(project_root().join("tests/fixtures/csv/yarn-catalog.csv")).unwrap();
    stack
        .import_file(&account.id, "yarn.csv", csv)
        .await
        .unwrap()
        .unwrap();
    let colorway = stack
        .store
        .load_catalog(&account.id)
        .await
        .unwrap()
        .colorways[0]
        .id
        .clone();
    let lambdas = LocalLambdas::start(&stack).await.unwrap();

    stack
        .sim_control
        .inject_fault(FaultKind::ServerError { status: 500 }, None, 10_000)
        .await
        .unwrap();
    JobQueue::new(stack.sqs.clone(), &stack.catalog_queue)
        .send_all(
            &[CatalogJob::SyncColorways {
                account_id: account.id.clone(),
                colorway_ids: vec![colorway],
                reasons: Default::default(),
                queued_at: time::OffsetDateTime::now_utc(),
            }],
            "dead-letter-test",
        )
        .await
        .unwrap();

    let drained = lambdas
        .deliver_catalog_jobs(Feed {
            visibility_timeout: 1,
            passes: 20,
            ..Feed::default()
        })
        .await
        .unwrap();
    let receives = stack.catalog_max_receives as usize;
    assert_eq!(
        (drained.received, drained.failed),
        (receives, receives),
        "received once per configured receive, failed each time"
    );
    assert_eq!(stack.queue_depth(&stack.catalog_queue).await.unwrap(), 0);

    // The alarm's metric: ApproximateNumberOfMessagesVisible of the DLQ.
    let visible: i64 = stack
        .sqs
        .get_queue_attributes()
        .queue_url(&stack.catalog_dlq)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&QueueAttributeName::ApproximateNumberOfMessages]
        .parse()
        .unwrap();
    let template = std::fs::read_to_string(project_root().join("template.yaml")).unwrap();
    let alarm = &template[template.find("  CatalogDeadLetterAlarm:").unwrap()..];
    let alarm = &alarm[..alarm.find("\n\n").unwrap()];
    assert!(alarm.contains("MetricName: ApproximateNumberOfMessagesVisible"));
    assert!(alarm.contains("Value: !GetAtt CatalogDeadLetterQueue.QueueName"));
    assert!(alarm.contains("Threshold: 1\n") && alarm.contains("GreaterThanOrEqualToThreshold"));
    assert!(
        visible >= 1,
        "the alarm's metric is {visible}, below its threshold 1"
    );

    let log = stack.store.recent_logs(&account.id, 10).await.unwrap();
    assert!(
        log.iter()
            .any(|e| e.data["dead_letter"] == true && e.message.contains("could not reach Shopify")),
        "{log:?}"
    );
    let output = lambdas.watch.output().unwrap();
    assert!(
        output.contains("catalog job failed"),
        "the worker logged each failure"
    );
}

/// Every sample in `events/` is an event its function reads, as
/// `cargo lambda invoke --data-file events/<function>/<sample>.json` sends
/// it: none is refused as an unreadable payload (what the function then
/// does with ids that name nothing locally is its business).
#[tokio::test]
async fn every_sample_event_is_one_its_function_reads() {
    let stack = LocalStack::start().await.unwrap();
    let watch = LambdaWatch::start(&stack.function_env()).await.unwrap();
    let mut invoked = Vec::new();
    for function in std::fs::read_dir(project_root().join("events")).unwrap() {
        let function = function.unwrap().path();
        let name = function.file_name().unwrap().to_str().unwrap().to_owned();
        for sample in std::fs::read_dir(&function).unwrap() {
            let sample = sample.unwrap().path();
            let event: Value =
                serde_json::from_str(&std::fs::read_to_string(&sample).unwrap()).unwrap();
            if let Err(e) = watch.invoke(&name, &event).await {
                assert!(
                    !e.to_string().contains("deserialize"),
                    "{} is not an event {name} reads: {e}",
                    sample.display()
                );
            }
            invoked.push(name.clone());
        }
    }
    for function in [
        "catalog-observer",
        "csv-import",
        "inventory-push",
        "sync-worker",
        "webhook-ingress",
    ] {
        assert!(
            invoked.iter().any(|f| f == function),
            "no sample for {function}"
        );
    }
}
