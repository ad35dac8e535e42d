//! `template.yaml` is what is deployed; these tests keep the local stack
//! honest about it. The template lints clean, and every resource the local
//! stack creates (tables, keys, indexes, stream, TTL, queues, redrive, the
//! bucket's notification) has the shape the template declares, with the
//! parameter values the local stack deploys with.
//!
//! The template is read with cfn-lint's own decoder from the project's
//! virtualenv (see docs/decisions.md), which turns `!Ref` and the other
//! short forms into CloudFormation's long form, as CloudFormation does.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Instant;

use aws_sdk_sqs::types::QueueAttributeName;
use local_stack::{LocalStack, StackOptions, project_root};
use serde_json::{Value, json};

fn venv(tool: &str) -> std::path::PathBuf {
    let path = project_root().join(".venv/bin").join(tool);
    assert!(
        path.exists(),
        "{} is missing: run `make setup`",
        path.display()
    );
    path
}

/// The template, as CloudFormation reads it.
fn template() -> Value {
    let script = "import json, sys\n\
                  from cfnlint.decode import decode\n\
                  template, problems = decode(sys.argv[1])\n\
                  if problems:\n    sys.exit('\\n'.join(str(p) for p in problems))\n\
                  json.dump(template, sys.stdout)\n";
    let out = Command::new(venv("python"))
        .arg("-c")
        .arg(script)
        .arg(project_root().join("template.yaml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "template.yaml does not decode:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn resource<'a>(template: &'a Value, name: &str) -> &'a Value {
    let resource = &template["Resources"][name];
    assert!(resource.is_object(), "the template has no {name}");
    &resource["Properties"]
}

/// The parameter values the local stack deploys with: the template's
/// defaults, except where the local stack says otherwise (and then each
/// must be a value the template accepts).
fn parameters(template: &Value, local: &[(&str, i64)]) -> BTreeMap<String, Value> {
    let mut values = BTreeMap::new();
    for (name, parameter) in template["Parameters"].as_object().unwrap() {
        if let Some(default) = parameter.get("Default") {
            values.insert(name.clone(), default.clone());
        }
    }
    for (name, value) in local {
        let parameter = &template["Parameters"][*name];
        assert!(parameter.is_object(), "no parameter {name}");
        if let Some(min) = parameter["MinValue"].as_i64() {
            assert!(
                *value >= min,
                "{name} = {value} is below the template's {min}"
            );
        }
        if let Some(max) = parameter["MaxValue"].as_i64() {
            assert!(
                *value <= max,
                "{name} = {value} is above the template's {max}"
            );
        }
        values.insert((*name).to_owned(), json!(value));
    }
    values
}

/// A template value with `Ref`s to parameters resolved; numbers and
/// numeric strings compare as numbers.
fn resolve(value: &Value, parameters: &BTreeMap<String, Value>) -> Value {
    match value {
        Value::Object(map) if map.len() == 1 && map.contains_key("Ref") => {
            let name = map["Ref"].as_str().unwrap();
            parameters
                .get(name)
                .cloned()
                .unwrap_or_else(|| value.clone())
        }
        other => other.clone(),
    }
}

fn number(value: &Value) -> i64 {
    match value {
        Value::Number(n) => n.as_i64().unwrap(),
        Value::String(s) => s.parse().unwrap(),
        other => panic!("not a number: {other}"),
    }
}

#[test]
fn template_lints_clean() {
    let started = Instant::now();
    let out = Command::new(venv("cfn-lint"))
        .arg(project_root().join("template.yaml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cfn-lint found problems in template.yaml:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "cfn-lint: clean in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn every_function_is_built_by_cargo_lambda_for_graviton() {
    let template = template();
    let globals = &template["Globals"]["Function"];
    assert_eq!(globals["Runtime"], "provided.al2023");
    assert_eq!(globals["Architectures"], json!(["arm64"]));
    let mut binaries = Vec::new();
    for (name, resource) in template["Resources"].as_object().unwrap() {
        if resource["Type"] != "AWS::Serverless::Function" {
            continue;
        }
        assert_eq!(
            resource["Metadata"]["BuildMethod"], "rust-cargolambda",
            "{name}"
        );
        let binary = resource["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            project_root()
                .join("functions")
                .join(&binary)
                .join("src/main.rs")
                .exists(),
            "{name} builds {binary}, which is not a function of the workspace"
        );
        let samples = project_root().join("events").join(&binary);
        assert!(
            std::fs::read_dir(&samples).is_ok_and(|mut d| d.next().is_some()),
            "{binary} has no sample event in events/ for cargo lambda invoke"
        );
        binaries.push(binary);
    }
    binaries.sort();
    assert_eq!(
        binaries,
        [
            "catalog-observer",
            "csv-import",
            "inventory-push",
            "sync-worker",
            "webhook-ingress"
        ]
    );
}

/// The variables each function's `main.rs` reads beyond the common ones are
/// set by the template for that function.
#[test]
fn every_variable_a_function_reads_is_set_by_the_template() {
    let template = template();
    let globals: Vec<String> = template["Globals"]["Function"]["Environment"]["Variables"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    for (name, resource) in template["Resources"].as_object().unwrap() {
        if resource["Type"] != "AWS::Serverless::Function" {
            continue;
        }
        let binary = resource["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap();
        let main = std::fs::read_to_string(
            project_root()
                .join("functions")
                .join(binary)
                .join("src/main.rs"),
        )
        .unwrap();
        let own: Vec<String> = resource["Properties"]["Environment"]["Variables"]
            .as_object()
            .map(|v| v.keys().cloned().collect())
            .unwrap_or_default();
        for call in ["required_env(\"", "number_env(\"", "env::var(\""] {
            for (at, _) in main.match_indices(call) {
                let rest = &main[at + call.len()..];
                let variable = &rest[..rest.find('"').unwrap()];
                assert!(
                    own.iter().chain(&globals).any(|v| v == variable),
                    "{binary} reads {variable}, which {name} does not set"
                );
            }
        }
    }
}

#[test]
fn the_http_api_routes_are_the_gateway_stand_ins() {
    let template = template();
    let events = &template["Resources"]["InventoryPushFunction"]["Properties"]["Events"];
    let mut declared: Vec<(String, String)> = events
        .as_object()
        .unwrap()
        .values()
        .filter(|e| e["Type"] == "HttpApi")
        .map(|e| {
            (
                e["Properties"]["Method"].as_str().unwrap().to_owned(),
                e["Properties"]["Path"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    declared.sort();
    let mut local: Vec<(String, String)> = local_stack::gateway::ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    local.sort();
    assert_eq!(declared, local);
    let api = resource(&template, "HttpApi");
    assert!(
        api["Auth"]["DefaultAuthorizer"].is_string(),
        "every route needs the JWT authorizer"
    );
}

#[test]
fn the_routers_batches_are_the_event_source_mappings() {
    let template = template();
    let worker = &template["Resources"]["SyncWorkerFunction"]["Properties"]["Events"];
    assert_eq!(
        worker["PullJobs"]["Properties"]["BatchSize"],
        local_stack::lambda::PULL_BATCH_SIZE
    );
    assert_eq!(
        worker["CatalogJobs"]["Properties"]["BatchSize"],
        local_stack::lambda::CATALOG_BATCH_SIZE
    );
    for event in ["PullJobs", "CatalogJobs"] {
        assert_eq!(
            worker[event]["Properties"]["FunctionResponseTypes"],
            json!(["ReportBatchItemFailures"]),
            "{event}"
        );
    }
    let observer = &template["Resources"]["CatalogObserverFunction"]["Properties"]["Events"]["CatalogChanges"]
        ["Properties"];
    assert_eq!(observer["BatchSize"], 100);
    assert_eq!(observer["BisectBatchOnFunctionError"], true);
    assert_eq!(
        observer["FunctionResponseTypes"],
        json!(["ReportBatchItemFailures"])
    );
    let patterns: Vec<&str> = observer["FilterCriteria"]["Filters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["Pattern"].as_str().unwrap())
        .collect();
    assert_eq!(patterns, local_stack::stream::OBSERVER_FILTERS);
}

fn key_schema(elements: &[aws_sdk_dynamodb::types::KeySchemaElement]) -> Value {
    json!(
        elements
            .iter()
            .map(
                |k| json!({ "AttributeName": k.attribute_name(), "KeyType": k.key_type().as_str() })
            )
            .collect::<Vec<_>>()
    )
}

async fn table_matches(stack: &LocalStack, name: &str, declared: &Value) {
    let table = stack
        .dynamodb
        .describe_table()
        .table_name(name)
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    assert_eq!(
        key_schema(table.key_schema()),
        declared["KeySchema"],
        "{name}: key schema"
    );
    let mut attributes: Vec<Value> = table
        .attribute_definitions()
        .iter()
        .map(|a| json!({ "AttributeName": a.attribute_name(), "AttributeType": a.attribute_type().as_str() }))
        .collect();
    attributes.sort_by_key(|a| a.to_string());
    let mut declared_attributes = declared["AttributeDefinitions"].as_array().unwrap().clone();
    declared_attributes.sort_by_key(|a| a.to_string());
    assert_eq!(attributes, declared_attributes, "{name}: attributes");
    assert_eq!(
        table
            .billing_mode_summary()
            .and_then(|b| b.billing_mode())
            .map(|b| b.as_str()),
        declared["BillingMode"].as_str(),
        "{name}: billing"
    );

    let indexes: Vec<Value> = table
        .global_secondary_indexes()
        .iter()
        .map(|i| {
            json!({
                "IndexName": i.index_name(),
                "KeySchema": key_schema(i.key_schema()),
                "Projection": { "ProjectionType": i.projection().and_then(|p| p.projection_type()).map(|p| p.as_str()) },
            })
        })
        .collect();
    assert_eq!(
        json!(indexes),
        declared["GlobalSecondaryIndexes"],
        "{name}: indexes"
    );

    let stream = table
        .stream_specification()
        .filter(|s| s.stream_enabled())
        .and_then(|s| s.stream_view_type())
        .map(|v| v.as_str().to_owned());
    assert_eq!(
        stream.as_deref(),
        declared["StreamSpecification"]["StreamViewType"].as_str(),
        "{name}: stream"
    );

    let ttl = stack
        .dynamodb
        .describe_time_to_live()
        .table_name(name)
        .send()
        .await
        .unwrap()
        .time_to_live_description
        .filter(|t| {
            t.time_to_live_status()
                .is_some_and(|s| s.as_str() == "ENABLED")
        })
        .and_then(|t| t.attribute_name().map(str::to_owned));
    let declared_ttl = declared["TimeToLiveSpecification"]
        .as_object()
        .filter(|t| t["Enabled"] == true)
        .and_then(|t| t["AttributeName"].as_str());
    assert_eq!(ttl.as_deref(), declared_ttl, "{name}: TTL");
}

async fn queue_attributes(stack: &LocalStack, url: &str) -> BTreeMap<String, String> {
    stack
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k.as_str().to_owned(), v))
        .collect()
}

/// One queue against its template declaration: FIFO and its settings,
/// delay, visibility timeout, retention, and the redrive to the local queue
/// standing for the declared dead-letter queue.
async fn queue_matches(
    stack: &LocalStack,
    name: &str,
    url: &str,
    declared: &Value,
    dead_letter_url: Option<&str>,
    parameters: &BTreeMap<String, Value>,
) {
    let local = queue_attributes(stack, url).await;
    let fifo = declared["FifoQueue"] == true;
    assert_eq!(
        local.get("FifoQueue").map(String::as_str) == Some("true"),
        fifo,
        "{name}: FIFO"
    );
    if fifo {
        for attribute in ["DeduplicationScope", "FifoThroughputLimit"] {
            if let Some(value) = declared[attribute].as_str() {
                assert_eq!(
                    local.get(attribute).map(String::as_str),
                    Some(value),
                    "{name}: {attribute}"
                );
            }
        }
    }
    for (attribute, default) in [
        ("DelaySeconds", 0),
        ("VisibilityTimeout", 30),
        ("MessageRetentionPeriod", 345_600),
    ] {
        let expected = declared
            .get(attribute)
            .map(|v| number(&resolve(v, parameters)))
            .unwrap_or(default);
        assert_eq!(
            local.get(attribute).map(|v| v.parse::<i64>().unwrap()),
            Some(expected),
            "{name}: {attribute}"
        );
    }
    match (&declared["RedrivePolicy"], dead_letter_url) {
        (Value::Null, None) => assert!(!local.contains_key("RedrivePolicy"), "{name}: redrive"),
        (redrive, Some(dead_letter_url)) => {
            let local: Value = serde_json::from_str(&local["RedrivePolicy"]).unwrap();
            let dead_letter_arn = local_stack::resources::queue_arn(&stack.sqs, dead_letter_url)
                .await
                .unwrap();
            assert_eq!(
                local["deadLetterTargetArn"],
                dead_letter_arn.as_str(),
                "{name}: redrive target"
            );
            assert_eq!(
                number(&local["maxReceiveCount"]),
                number(&resolve(&redrive["maxReceiveCount"], parameters)),
                "{name}: maxReceiveCount"
            );
        }
        (redrive, None) => {
            panic!("{name}: the template redrives ({redrive}), the local queue does not")
        }
    }
}

#[tokio::test]
async fn local_resources_match_the_template() {
    let template = template();
    let options = StackOptions::default();
    let stack = LocalStack::start_with(options.clone()).await.unwrap();
    // The values the local stack deploys with; see LocalStack::start_with.
    let parameters = parameters(
        &template,
        &[
            ("PullMaxReceiveCount", 3),
            (
                "CatalogMaxReceiveCount",
                i64::from(options.catalog_max_receives),
            ),
            (
                "CatalogSyncDelaySeconds",
                i64::from(options.catalog_delay_seconds),
            ),
        ],
    );

    table_matches(
        &stack,
        &stack.tables.catalog,
        resource(&template, "CatalogTable"),
    )
    .await;
    table_matches(&stack, &stack.tables.sync, resource(&template, "SyncTable")).await;

    let declared_pull = resource(&template, "PullQueue");
    assert_eq!(
        declared_pull["RedrivePolicy"]["deadLetterTargetArn"],
        json!({ "Fn::GetAtt": ["PullDeadLetterQueue", "Arn"] })
    );
    queue_matches(
        &stack,
        "PullQueue",
        &stack.pull_queue,
        declared_pull,
        Some(&stack.pull_dlq),
        &parameters,
    )
    .await;
    queue_matches(
        &stack,
        "PullDeadLetterQueue",
        &stack.pull_dlq,
        resource(&template, "PullDeadLetterQueue"),
        None,
        &parameters,
    )
    .await;
    let declared_catalog = resource(&template, "CatalogQueue");
    assert_eq!(
        declared_catalog["RedrivePolicy"]["deadLetterTargetArn"],
        json!({ "Fn::GetAtt": ["CatalogDeadLetterQueue", "Arn"] })
    );
    queue_matches(
        &stack,
        "CatalogQueue",
        &stack.catalog_queue,
        declared_catalog,
        Some(&stack.catalog_dlq),
        &parameters,
    )
    .await;
    queue_matches(
        &stack,
        "CatalogDeadLetterQueue",
        &stack.catalog_dlq,
        resource(&template, "CatalogDeadLetterQueue"),
        None,
        &parameters,
    )
    .await;

    // The bucket's notification: the template's S3 event on csv-import.
    local_stack::resources::create_import_notification(&stack.s3, &stack.sqs, &stack.bucket)
        .await
        .unwrap();
    let declared = &template["Resources"]["CsvImportFunction"]["Properties"]["Events"]["ExportUploaded"]
        ["Properties"];
    let configuration = stack
        .s3
        .get_bucket_notification_configuration()
        .bucket(&stack.bucket)
        .send()
        .await
        .unwrap();
    let queues = configuration.queue_configurations();
    assert_eq!(queues.len(), 1);
    let events: Vec<&str> = queues[0].events().iter().map(|e| e.as_str()).collect();
    assert_eq!(json!(events), json!([declared["Events"]]));
    let mut rules: Vec<Value> = queues[0]
        .filter()
        .and_then(|f| f.key())
        .map(|k| k.filter_rules())
        .unwrap_or_default()
        .iter()
        .map(|r| {
            json!({
                "Name": r.name().map(|n| n.as_str().to_ascii_lowercase()),
                "Value": r.value(),
            })
        })
        .collect();
    rules.sort_by_key(|r| r.to_string());
    let mut declared_rules = declared["Filter"]["S3Key"]["Rules"]
        .as_array()
        .unwrap()
        .clone();
    declared_rules.sort_by_key(|r| r.to_string());
    assert_eq!(rules, declared_rules);
}

/// The deployment-only settings the local stack cannot have, spelled out so
/// that they are not lost: point-in-time recovery, encryption and deletion
/// protection on both tables, encrypted queues, a private versioned bucket.
#[test]
fn deployed_stores_are_protected() {
    let template = template();
    for table in ["CatalogTable", "SyncTable"] {
        let table = resource(&template, table);
        assert_eq!(
            table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
            true
        );
        assert_eq!(table["SSESpecification"]["SSEEnabled"], true);
        assert_eq!(table["DeletionProtectionEnabled"], true);
    }
    for queue in [
        "PullQueue",
        "PullDeadLetterQueue",
        "CatalogQueue",
        "CatalogDeadLetterQueue",
        "ImportFailuresQueue",
        "ObserverFailuresQueue",
    ] {
        assert_eq!(
            resource(&template, queue)["SqsManagedSseEnabled"],
            true,
            "{queue}"
        );
    }
    let bucket = resource(&template, "ImportsBucket");
    assert_eq!(bucket["VersioningConfiguration"]["Status"], "Enabled");
    assert_eq!(
        bucket["PublicAccessBlockConfiguration"]["RestrictPublicBuckets"],
        true
    );
}

/// Every dead-letter queue has an alarm on the metric the runtime test
/// raises, and every alarm notifies the alarm topic.
#[test]
fn every_dead_letter_queue_raises_an_alarm() {
    let template = template();
    let resources = template["Resources"].as_object().unwrap();
    let watched: Vec<String> = resources
        .values()
        .filter(|r| r["Type"] == "AWS::CloudWatch::Alarm")
        .filter(|r| r["Properties"]["MetricName"] == "ApproximateNumberOfMessagesVisible")
        .map(|r| {
            assert_eq!(r["Properties"]["Namespace"], "AWS/SQS");
            assert_eq!(r["Properties"]["Threshold"], 1);
            r["Properties"]["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    for queue in [
        "PullDeadLetterQueue",
        "CatalogDeadLetterQueue",
        "ImportFailuresQueue",
        "ObserverFailuresQueue",
    ] {
        assert!(watched.iter().any(|w| w == queue), "no alarm on {queue}");
    }
    for (name, alarm) in resources
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::CloudWatch::Alarm")
    {
        assert_eq!(
            alarm["Properties"]["AlarmActions"],
            json!([{ "Ref": "AlarmTopic" }]),
            "{name}"
        );
    }
}
