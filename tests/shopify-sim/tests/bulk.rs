//! Bulk mutations: staged uploads, `bulkOperationRunMutation`, polling and
//! the results file, checked against the capture from a real store
//! (`2025-01/bulk-operations/`) and against Shopify's documented limits.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{Harness, assert_parity, cost, fixture, recorded, rewrite_ids};
use serde_json::{Value, json};
use shopify_sim::{BulkConfig, BulkConfigUpdate, FaultKind, SimConfig};

/// A simulator whose bulk runs start at once and take `line_ms` a line.
async fn fast(line_ms: u64) -> Harness {
    Harness::start_with(SimConfig {
        bulk: BulkConfig {
            start_delay_ms: 0,
            line_ms,
            ..BulkConfig::default()
        },
        ..SimConfig::default()
    })
    .await
}

/// A staged target: its URL and parameters, in order.
struct Target {
    url: String,
    parameters: Vec<(String, String)>,
}

impl Target {
    fn key(&self) -> String {
        self.parameters
            .iter()
            .find(|(name, _)| name == "key")
            .map(|(_, value)| value.clone())
            .expect("a key parameter")
    }
}

async fn stage(h: &Harness) -> (Target, Value) {
    let body = h
        .gql(
            &fixture("staged-uploads-create.graphql"),
            json!({"input": [{
                "resource": "BULK_MUTATION_VARIABLES",
                "filename": "bulk_op_vars.jsonl",
                "mimeType": "text/jsonl",
                "httpMethod": "POST",
            }]}),
        )
        .await;
    let target = &body["data"]["stagedUploadsCreate"]["stagedTargets"][0];
    let parameters = target["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .map(|p| {
            (
                p["name"].as_str().expect("name").to_owned(),
                p["value"].as_str().expect("value").to_owned(),
            )
        })
        .collect();
    let url = target["url"].as_str().expect("url").to_owned();
    (Target { url, parameters }, body)
}

/// Posts the form: the target's parameters, then `extra` fields, then the
/// file, then `after` fields. Gives the status and the body.
async fn post_form(
    target: &Target,
    skip: Option<&str>,
    file: Vec<u8>,
    after: &[(&str, &str)],
) -> (u16, String) {
    let mut form = reqwest::multipart::Form::new();
    for (name, value) in &target.parameters {
        if Some(name.as_str()) != skip {
            form = form.text(name.clone(), value.clone());
        }
    }
    let part = reqwest::multipart::Part::bytes(file)
        .file_name("bulk_op_vars.jsonl")
        .mime_str("text/jsonl")
        .expect("mime");
    form = form.part("file", part);
    for (name, value) in after {
        form = form.text((*name).to_owned(), (*value).to_owned());
    }
    let response = reqwest::Client::new()
        .post(&target.url)
        .multipart(form)
        .send()
        .await
        .expect("the upload is answered");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

fn jsonl(lines: &[Value]) -> Vec<u8> {
    let mut text = lines
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    text.push('\n');
    text.into_bytes()
}

/// Stages and uploads `lines`; gives the staged upload path.
async fn upload(h: &Harness, lines: &[Value]) -> String {
    let (target, _) = stage(h).await;
    let (status, body) = post_form(&target, None, jsonl(lines), &[]).await;
    assert_eq!(status, 201, "{body}");
    target.key()
}

/// A `productSet` line for a one-option product keyed by handle.
fn product_line(handle: &str, colours: &[&str]) -> Value {
    json!({
        "identifier": {"handle": handle},
        "input": {
            "title": handle.replace('-', " "),
            "handle": handle,
            "productOptions": [{"name": "Color", "position": 1,
                "values": colours.iter().map(|c| json!({"name": c})).collect::<Vec<_>>()}],
            "variants": colours.iter().map(|c| json!({
                "optionValues": [{"optionName": "Color", "name": c}],
                "price": "24.00",
            })).collect::<Vec<_>>(),
        },
    })
}

async fn run(h: &Harness, mutation: &str, path: &str) -> Value {
    h.gql(
        &fixture("bulk-run-mutation.graphql"),
        json!({"mutation": mutation, "path": path}),
    )
    .await
}

async fn poll(h: &Harness, id: &str) -> Value {
    let body = h
        .gql(&fixture("bulk-operation.graphql"), json!({"id": id}))
        .await;
    body["data"]["bulkOperation"].clone()
}

/// Polls every 20 ms until the operation leaves CREATED/RUNNING/CANCELING.
async fn finished(h: &Harness, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let operation = poll(h, id).await;
        let status = operation["status"].as_str().unwrap_or_default();
        if !matches!(status, "CREATED" | "RUNNING" | "CANCELING") {
            return operation;
        }
        assert!(Instant::now() < deadline, "still {status}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The lines of a results file, by `__lineNumber`.
async fn results(url: &str) -> (String, HashMap<u64, Value>) {
    let response = reqwest::get(url).await.expect("results are served");
    assert_eq!(response.status(), 200);
    let text = response.text().await.expect("text");
    let lines = text
        .lines()
        .map(|line| {
            let value: Value = serde_json::from_str(line).expect("each line is JSON");
            (value["__lineNumber"].as_u64().expect("__lineNumber"), value)
        })
        .collect();
    (text, lines)
}

fn run_id(body: &Value) -> String {
    body["data"]["bulkOperationRunMutation"]["bulkOperation"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no operation: {body}"))
        .to_owned()
}

fn run_errors(body: &Value) -> Vec<(Value, String)> {
    body["data"]["bulkOperationRunMutation"]["userErrors"]
        .as_array()
        .expect("userErrors")
        .iter()
        .map(|e| (e["code"].clone(), e["message"].as_str().unwrap().to_owned()))
        .collect()
}

#[tokio::test]
async fn a_staged_target_echoes_shopifys_parameters_on_loopback() {
    let h = Harness::start().await;
    let (target, body) = stage(&h).await;

    assert!(target.url.starts_with(&h.sim.base_url()), "{}", target.url);
    let names: Vec<&str> = target.parameters.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "key",
            "Content-Type",
            "success_action_status",
            "acl",
            "policy",
            "x-goog-credential",
            "x-goog-algorithm",
            "x-goog-date",
            "x-goog-signature",
        ]
    );
    let value = |name: &str| {
        target
            .parameters
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(value("Content-Type"), Some("text/jsonl"));
    assert_eq!(value("success_action_status"), Some("201"));
    assert_eq!(value("acl"), Some("private"));
    assert_eq!(value("x-goog-algorithm"), Some("GOOG4-RSA-SHA256"));
    let key = target.key();
    assert!(key.starts_with("tmp/1/bulk/") && key.ends_with("/bulk_op_vars.jsonl"));
    let staged = &body["data"]["stagedUploadsCreate"];
    assert_eq!(staged["stagedTargets"][0]["resourceUrl"], Value::Null);
    assert_eq!(staged["userErrors"], json!([]));
    // Shopify's documented answer costs 11: 10 for the mutation, 1 for
    // the parameters' objects.
    assert_eq!(cost(&body), (json!(11), json!(11)));
}

#[tokio::test]
async fn the_upload_stores_the_file_and_answers_a_post_response() {
    let h = Harness::start().await;
    let (target, _) = stage(&h).await;
    let file = jsonl(&[product_line("moss-garden", &["Fingering"])]);
    let size = file.len();

    let (status, body) = post_form(&target, None, file, &[]).await;

    assert_eq!(status, 201);
    assert!(body.contains("<PostResponse>"), "{body}");
    assert!(body.contains(&format!("<Key>{}</Key>", target.key())));
    let uploads = h.control.bulk_uploads().await.expect("uploads");
    assert_eq!(uploads.len(), 1);
    assert_eq!(
        (uploads[0].key.clone(), uploads[0].bytes),
        (target.key(), size)
    );
}

#[tokio::test]
async fn a_parameter_sent_after_the_file_is_ignored_and_the_upload_refused() {
    let h = Harness::start().await;
    let (target, _) = stage(&h).await;
    let policy = target
        .parameters
        .iter()
        .find(|(name, _)| name == "policy")
        .map(|(_, value)| value.clone())
        .expect("policy");

    let (status, body) = post_form(
        &target,
        Some("policy"),
        b"{}\n".to_vec(),
        &[("policy", &policy)],
    )
    .await;

    assert_eq!(status, 403, "{body}");
    assert!(body.contains("<Code>AccessDenied</Code>"), "{body}");
    assert!(h.control.bulk_uploads().await.expect("uploads").is_empty());
}

#[tokio::test]
async fn a_changed_parameter_or_a_missing_file_is_refused() {
    let h = Harness::start().await;
    let (mut target, _) = stage(&h).await;
    let original = target.parameters.clone();
    for (name, value) in &mut target.parameters {
        if name == "x-goog-signature" {
            value.push('0');
        }
    }
    let (status, body) = post_form(&target, None, b"{}\n".to_vec(), &[]).await;
    assert_eq!(status, 403, "{body}");

    target.parameters = original;
    let mut form = reqwest::multipart::Form::new();
    for (name, value) in &target.parameters {
        form = form.text(name.clone(), value.clone());
    }
    let response = reqwest::Client::new()
        .post(&target.url)
        .multipart(form)
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), 400);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("<Code>InvalidArgument</Code>")
    );
}

#[tokio::test]
async fn a_file_above_the_size_limit_is_refused() {
    let h = Harness::start().await;
    h.control
        .configure_bulk(&BulkConfigUpdate {
            max_file_bytes: Some(64),
            ..BulkConfigUpdate::default()
        })
        .await
        .expect("configure");
    let (target, _) = stage(&h).await;

    let (status, body) = post_form(&target, None, vec![b' '; 65], &[]).await;

    assert_eq!(status, 400, "{body}");
    assert!(body.contains("<Code>EntityTooLarge</Code>"), "{body}");
    let (status, _) = post_form(&target, None, b"{\"a\":1}\n".to_vec(), &[]).await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn the_default_limits_are_shopifys_for_2026_07() {
    let h = Harness::start().await;
    let config = h.control.bulk_config().await.expect("config");
    assert_eq!(config.concurrency, 5);
    assert_eq!(config.max_file_bytes, 100 * 1024 * 1024);
}

#[tokio::test]
async fn a_run_sets_each_line_as_the_mutation_and_writes_a_results_file() {
    let h = fast(5).await;
    let mutation = fixture("bulk-line-product-set.graphql");
    let lines = [
        product_line("moss-garden", &["Fingering", "DK"]),
        product_line("tidal-pool", &["Fingering"]),
        product_line("ember", &["Worsted"]),
    ];
    let path = upload(&h, &lines).await;

    let body = run(&h, &mutation, &path).await;
    let created = &body["data"]["bulkOperationRunMutation"]["bulkOperation"];
    assert_eq!(created["status"], "CREATED");
    assert_eq!(created["type"], "MUTATION");
    assert_eq!(created["objectCount"], "0");
    assert_eq!(created["query"], mutation.as_str());
    assert_eq!(cost(&body), (json!(10), json!(10)));

    let done = finished(&h, &run_id(&body)).await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
    assert_eq!(done["objectCount"], "3");
    assert_eq!(done["rootObjectCount"], "3");
    assert_eq!(done["errorCode"], Value::Null);
    assert_eq!(done["partialDataUrl"], Value::Null);
    assert!(done["completedAt"].is_string());
    let url = done["url"].as_str().expect("a results url");
    assert!(url.starts_with(&h.sim.base_url()));

    let (text, by_line) = results(url).await;
    assert_eq!(done["fileSize"], text.len().to_string());
    assert!(
        text.contains(r"gid:\/\/shopify\/Product\/"),
        "slashes are escaped"
    );
    for (index, handle) in ["moss-garden", "tidal-pool", "ember"].iter().enumerate() {
        let line = &by_line[&(index as u64)];
        let payload = &line["data"]["productSet"];
        assert_eq!(payload["userErrors"], json!([]), "{line}");
        assert_eq!(payload["product"]["handle"], *handle);
        let key_order: Vec<&str> = line
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        assert!(key_order.contains(&"__lineNumber"));
    }
    assert!(
        text.lines().all(|line| line.ends_with(&format!(
            ",\"__lineNumber\":{}}}",
            serde_json::from_str::<Value>(line).unwrap()["__lineNumber"]
        ))),
        "__lineNumber comes last"
    );
    let state = h.control.state().await.expect("state");
    assert_eq!(state["products"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn the_capture_of_two_runs_and_a_cancel_is_reproduced() {
    let capture =
        recorded("2025-01/bulk-operations/bulk-operation-run-mutation-operation-in-progress.json");
    // 2025-01 allowed one bulk mutation at a time; the first run stays
    // CREATED long enough for the second to find it.
    let h = Harness::start_with(SimConfig {
        bulk: BulkConfig {
            concurrency: 1,
            start_delay_ms: 60_000,
            ..BulkConfig::default()
        },
        ..SimConfig::default()
    })
    .await;
    let line = json!({"product": {"title": "HAR-752 bulk throttle"}});
    let first_path = upload(&h, std::slice::from_ref(&line)).await;
    let second_path = upload(&h, std::slice::from_ref(&line)).await;

    let first = &capture["firstRun"];
    let query = first["query"].as_str().expect("query");
    let mutation = first["variables"]["mutation"].clone();
    let body = h
        .gql(query, json!({"mutation": mutation, "path": first_path}))
        .await;
    assert_parity(&body["data"], &first["response"]["data"]);
    assert_eq!(cost(&body), cost(&first["response"]));
    let ours = run_id(&body);
    let theirs = first["response"]["data"]["bulkOperationRunMutation"]["bulkOperation"]["id"]
        .as_str()
        .expect("recorded id")
        .to_owned();
    let ids = HashMap::from([(theirs.clone(), ours.clone())]);

    let second = &capture["secondRun"];
    let body = h
        .gql(query, json!({"mutation": mutation, "path": second_path}))
        .await;
    let mut expected = second["response"]["data"].clone();
    let message = &mut expected["bulkOperationRunMutation"]["userErrors"][0]["message"];
    *message = json!(message.as_str().unwrap().replace(&theirs, &ours));
    assert_eq!(body["data"], expected);
    assert_eq!(cost(&body), cost(&second["response"]));

    let hydrate = &capture["upstreamCalls"][0];
    let body = h
        .gql(
            hydrate["query"].as_str().expect("query"),
            rewrite_ids(&hydrate["variables"], &ids),
        )
        .await;
    assert_parity(&body["data"], &hydrate["response"]["body"]["data"]);

    let cancel = &capture["cancelAttempt"];
    let body = h
        .gql(
            cancel["query"].as_str().expect("query"),
            rewrite_ids(&cancel["variables"], &ids),
        )
        .await;
    assert_parity(&body["data"], &cancel["response"]["data"]);
    assert_eq!(cost(&body), cost(&cancel["response"]));
}

#[tokio::test]
async fn five_bulk_mutations_may_be_in_progress_and_a_sixth_waits() {
    let h = Harness::start_with(SimConfig {
        bulk: BulkConfig {
            start_delay_ms: 60_000,
            ..BulkConfig::default()
        },
        ..SimConfig::default()
    })
    .await;
    let mutation = fixture("bulk-line-product-set.graphql");
    let path = upload(&h, &[product_line("moss-garden", &["DK"])]).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        let body = run(&h, &mutation, &path).await;
        assert_eq!(run_errors(&body), vec![], "{body}");
        ids.push(run_id(&body));
    }

    let body = run(&h, &mutation, &path).await;

    assert_eq!(
        body["data"]["bulkOperationRunMutation"]["bulkOperation"],
        Value::Null
    );
    assert_eq!(
        run_errors(&body),
        vec![(
            json!("OPERATION_IN_PROGRESS"),
            format!(
                "A bulk mutation operation for this app and shop is already in progress: {}.",
                ids[4]
            )
        )]
    );
}

#[tokio::test]
async fn a_mutation_that_is_invalid_or_not_one_mutation_field_is_refused() {
    let h = Harness::start().await;
    let path = upload(&h, &[json!({"id": "gid://shopify/Product/1"})]).await;
    for mutation in [
        "mutation { productSet(input: {title: \"x\"}) { product { nope } } }",
        "mutation M($id: ID!) { productDelete(input: {id: $id}) { deletedProductId } \
         other: productDelete(input: {id: $id}) { deletedProductId } }",
        "query Q { shop { name } }",
        "mutation A { shop: productDelete(input: {id: \"1\"}) { deletedProductId } } \
         mutation B { productDelete(input: {id: \"1\"}) { deletedProductId } }",
        "not graphql",
        "mutation C($id: ID!) { bulkOperationCancel(id: $id) { userErrors { message } } }",
    ] {
        let body = run(&h, mutation, &path).await;
        let errors = run_errors(&body);
        assert_eq!(errors.len(), 1, "{mutation}: {body}");
        assert_eq!(errors[0].0, "INVALID_MUTATION", "{mutation}");
        assert_eq!(
            body["data"]["bulkOperationRunMutation"]["userErrors"][0]["field"],
            json!(["mutation"])
        );
    }
}

#[tokio::test]
async fn an_unknown_path_or_a_file_that_is_not_jsonl_is_refused() {
    let h = Harness::start().await;
    let mutation = fixture("bulk-line-product-set.graphql");

    let body = run(&h, &mutation, "tmp/1/bulk/none/bulk_op_vars.jsonl").await;
    assert_eq!(run_errors(&body)[0].0, "NO_SUCH_FILE");

    let (target, _) = stage(&h).await;
    let (status, _) = post_form(&target, None, b"{\"a\":1}\nnot json\n".to_vec(), &[]).await;
    assert_eq!(status, 201);
    let body = run(&h, &mutation, &target.key()).await;
    let errors = run_errors(&body);
    assert_eq!(errors[0].0, "INVALID_STAGED_UPLOAD_FILE");
    assert!(errors[0].1.contains("line 2"), "{}", errors[0].1);
}

#[tokio::test]
async fn lines_run_in_the_background_at_the_configured_pace() {
    let h = fast(60).await;
    let lines: Vec<Value> = (0..10)
        .map(|n| product_line(&format!("colorway-{n}"), &["DK"]))
        .collect();
    let path = upload(&h, &lines).await;

    let started = Instant::now();
    let body = run(&h, &fixture("bulk-line-product-set.graphql"), &path).await;
    assert!(
        started.elapsed() < Duration::from_millis(200),
        "the run call answers at once"
    );
    let id = run_id(&body);
    tokio::time::sleep(Duration::from_millis(250)).await;
    let midway = poll(&h, &id).await;
    assert_eq!(midway["status"], "RUNNING");
    let count: u64 = midway["objectCount"].as_str().unwrap().parse().unwrap();
    assert!((2..10).contains(&count), "{count} lines after 250 ms");

    let done = finished(&h, &id).await;
    assert_eq!(done["status"], "COMPLETED");
    assert!(started.elapsed() >= Duration::from_millis(600));
}

#[tokio::test]
async fn only_the_run_call_is_charged_to_the_bucket() {
    let h = fast(1).await;
    let lines: Vec<Value> = (0..40)
        .map(|n| product_line(&format!("colorway-{n}"), &["DK", "Fingering"]))
        .collect();
    let path = upload(&h, &lines).await;
    h.control.clear_calls().await.expect("clear");

    let body = run(&h, &fixture("bulk-line-product-set.graphql"), &path).await;
    let done = finished(&h, &run_id(&body)).await;
    assert_eq!(done["objectCount"], "40");

    let calls = h.control.calls().await.expect("calls");
    let fields: Vec<&str> = calls
        .iter()
        .filter_map(|call| call["rootFields"][0].as_str())
        .collect();
    assert!(
        fields
            .iter()
            .all(|f| *f == "bulkOperationRunMutation" || *f == "bulkOperation")
    );
    let charged: u64 = calls
        .iter()
        .filter_map(|call| call["actualCost"].as_u64())
        .sum();
    let polls = fields.iter().filter(|f| **f == "bulkOperation").count() as u64;
    assert_eq!(
        charged,
        10 + polls,
        "the run costs 10, each poll 1, lines nothing"
    );
}

#[tokio::test]
async fn a_line_with_bad_variables_gets_its_errors_and_the_others_run() {
    let h = fast(1).await;
    let mut bad = product_line("tidal-pool", &["DK"]);
    bad["input"]["colour"] = json!("teal");
    let lines = [product_line("moss-garden", &["DK"]), bad];
    let path = upload(&h, &lines).await;

    let body = run(&h, &fixture("bulk-line-product-set.graphql"), &path).await;
    let done = finished(&h, &run_id(&body)).await;
    assert_eq!(done["status"], "COMPLETED");
    let (_, by_line) = results(done["url"].as_str().unwrap()).await;

    assert_eq!(by_line[&0]["data"]["productSet"]["userErrors"], json!([]));
    let refused = &by_line[&1];
    assert!(refused.get("data").is_none(), "{refused}");
    assert_eq!(
        refused["errors"][0]["extensions"]["code"],
        "INVALID_VARIABLE"
    );
    assert!(
        h.control
            .product_by_handle("tidal-pool")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_failing_operation_reports_its_error_code_and_partial_results() {
    let h = fast(1).await;
    let lines: Vec<Value> = (0..5)
        .map(|n| product_line(&format!("colorway-{n}"), &["DK"]))
        .collect();
    let path = upload(&h, &lines).await;
    h.control
        .inject_fault(
            FaultKind::BulkFailure {
                after_lines: 2,
                error_code: "INTERNAL_SERVER_ERROR".to_owned(),
            },
            Some("bulkOperationRunMutation"),
            1,
        )
        .await
        .expect("fault");

    let body = run(&h, &fixture("bulk-line-product-set.graphql"), &path).await;
    let done = finished(&h, &run_id(&body)).await;

    assert_eq!(done["status"], "FAILED");
    assert_eq!(done["errorCode"], "INTERNAL_SERVER_ERROR");
    assert_eq!(done["url"], Value::Null);
    assert_eq!(done["completedAt"], Value::Null);
    assert_eq!(done["objectCount"], "2");
    let (_, by_line) = results(done["partialDataUrl"].as_str().expect("partial")).await;
    assert_eq!(
        by_line
            .keys()
            .copied()
            .collect::<std::collections::BTreeSet<_>>(),
        [0, 1].into()
    );
    assert!(
        h.control
            .product_by_handle("colorway-1")
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        h.control
            .product_by_handle("colorway-2")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_failure_before_any_line_leaves_no_partial_data() {
    let h = fast(1).await;
    let path = upload(&h, &[product_line("moss-garden", &["DK"])]).await;
    h.control
        .inject_fault(
            FaultKind::BulkFailure {
                after_lines: 0,
                error_code: "TIMEOUT".to_owned(),
            },
            Some("bulkOperationRunMutation"),
            1,
        )
        .await
        .expect("fault");

    let body = run(&h, &fixture("bulk-line-product-set.graphql"), &path).await;
    let done = finished(&h, &run_id(&body)).await;

    assert_eq!(
        (done["status"].clone(), done["errorCode"].clone()),
        (json!("FAILED"), json!("TIMEOUT"))
    );
    assert_eq!(done["partialDataUrl"], Value::Null);
    assert_eq!(done["objectCount"], "0");
}

#[tokio::test]
async fn an_operation_reads_the_same_through_current_bulk_operation_node_and_the_list() {
    let h = fast(1).await;
    let path = upload(&h, &[product_line("moss-garden", &["DK"])]).await;
    let body = run(&h, &fixture("bulk-line-product-set.graphql"), &path).await;
    let id = run_id(&body);
    let done = finished(&h, &id).await;

    let body = h
        .gql(
            "query Polls($id: ID!) {
               current: currentBulkOperation(type: MUTATION) { id status url }
               queries: currentBulkOperation { id }
               node(id: $id) { ... on BulkOperation { id status url } }
               completed: bulkOperations(first: 5, query: \"status:completed operation_type:mutation\") { nodes { id } }
               running: bulkOperations(first: 5, query: \"status:running\") { nodes { id } }
             }",
            json!({"id": id}),
        )
        .await;
    let data = &body["data"];
    assert_eq!(data["current"]["id"], id.as_str());
    assert_eq!(data["current"]["url"], done["url"]);
    assert_eq!(data["queries"], Value::Null, "no bulk query ran");
    assert_eq!(data["node"]["status"], "COMPLETED");
    assert_eq!(data["completed"]["nodes"], json!([{"id": id}]));
    assert_eq!(data["running"]["nodes"], json!([]));
}

#[tokio::test]
async fn a_canceled_run_stops_before_its_next_line() {
    let h = fast(40).await;
    let lines: Vec<Value> = (0..20)
        .map(|n| product_line(&format!("colorway-{n}"), &["DK"]))
        .collect();
    let path = upload(&h, &lines).await;
    let body = run(&h, &fixture("bulk-line-product-set.graphql"), &path).await;
    let id = run_id(&body);
    tokio::time::sleep(Duration::from_millis(150)).await;

    let body = h
        .gql(&fixture("bulk-cancel.graphql"), json!({"id": id}))
        .await;
    assert_eq!(
        body["data"]["bulkOperationCancel"]["bulkOperation"]["status"],
        "CANCELING"
    );

    let done = finished(&h, &id).await;
    assert_eq!(done["status"], "CANCELED");
    let ran: u64 = done["objectCount"].as_str().unwrap().parse().unwrap();
    assert!(ran > 0 && ran < 20, "{ran}");
    let state = h.control.state().await.expect("state");
    assert_eq!(state["products"].as_array().unwrap().len() as u64, ran);

    let body = h
        .gql(&fixture("bulk-cancel.graphql"), json!({"id": id}))
        .await;
    assert_eq!(
        body["data"]["bulkOperationCancel"]["userErrors"][0]["message"],
        "A bulk operation cannot be canceled when it is canceled"
    );
}

#[tokio::test]
async fn running_the_same_file_again_updates_the_products_it_made() {
    let h = fast(1).await;
    let lines: Vec<Value> = (0..4)
        .map(|n| product_line(&format!("colorway-{n}"), &["DK", "Sock"]))
        .collect();
    let path = upload(&h, &lines).await;
    let mutation = fixture("bulk-line-product-set.graphql");

    let first = finished(&h, &run_id(&run(&h, &mutation, &path).await)).await;
    let again = finished(&h, &run_id(&run(&h, &mutation, &path).await)).await;

    let (_, before) = results(first["url"].as_str().unwrap()).await;
    let (_, after) = results(again["url"].as_str().unwrap()).await;
    for line in 0..4 {
        let id = |lines: &HashMap<u64, Value>| {
            lines[&line]["data"]["productSet"]["product"]["id"].clone()
        };
        assert_eq!(id(&before), id(&after), "line {line} upserted by handle");
    }
    let state = h.control.state().await.expect("state");
    assert_eq!(state["products"].as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn results_are_not_in_input_order_but_every_line_is_numbered() {
    let h = fast(0).await;
    let lines: Vec<Value> = (0..12)
        .map(|n| product_line(&format!("colorway-{n}"), &["DK"]))
        .collect();
    let path = upload(&h, &lines).await;
    let body = run(&h, &fixture("bulk-line-product-set.graphql"), &path).await;
    let done = finished(&h, &run_id(&body)).await;

    let (text, by_line) = results(done["url"].as_str().unwrap()).await;
    let order: Vec<u64> = text
        .lines()
        .map(|line| {
            serde_json::from_str::<Value>(line).unwrap()["__lineNumber"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_ne!(order, (0..12).collect::<Vec<_>>());
    assert_eq!(by_line.len(), 12);
}
