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

// ------------------------------------------------------------------ IAM
//
// Each function's code runs in process against the local stack with AWS
// clients that record every request they send (operation, table or index,
// queue, object). Each call must be allowed by the function's statements in
// the template, and each statement's action must be used by some call.

mod iam {
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::{Arc, Mutex};

    use aws_config::BehaviorVersion;
    use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
    use aws_sdk_dynamodb::config::{ConfigBag, Credentials, Intercept, Region, RuntimeComponents};
    use aws_sdk_dynamodb::error::BoxError;
    use serde_json::Value;

    /// One call as IAM sees it: `dynamodb:GetItem` on `table/catalog`.
    pub type Call = (String, String);

    /// Records the requests of one function's clients.
    #[derive(Debug, Clone, Default)]
    pub struct Recorder {
        calls: Arc<Mutex<BTreeSet<Call>>>,
        /// Local names → the template's: table names, queue URLs.
        names: Arc<BTreeMap<String, String>>,
    }

    impl Recorder {
        pub fn new(names: BTreeMap<String, String>) -> Self {
            Self {
                calls: Arc::default(),
                names: Arc::new(names),
            }
        }

        pub fn calls(&self) -> BTreeSet<Call> {
            self.calls.lock().unwrap().clone()
        }

        fn name(&self, local: &str) -> String {
            self.names
                .get(local)
                .cloned()
                .unwrap_or_else(|| format!("unknown:{local}"))
        }

        fn add(&self, action: &str, resource: String) {
            self.calls
                .lock()
                .unwrap()
                .insert((action.to_owned(), resource));
        }

        fn table(&self, body: &Value, table: &str) -> String {
            let mut resource = format!("table/{}", self.name(table));
            if let Some(index) = body["IndexName"].as_str() {
                resource.push_str(&format!("/index/{index}"));
            }
            resource
        }
    }

    impl Intercept for Recorder {
        fn name(&self) -> &'static str {
            "RecordCalls"
        }

        fn read_before_transmit(
            &self,
            context: &BeforeTransmitInterceptorContextRef<'_>,
            _: &RuntimeComponents,
            _: &mut ConfigBag,
        ) -> Result<(), BoxError> {
            let request = context.request();
            let target = request.headers().get("x-amz-target").unwrap_or_default();
            let body: Value = request
                .body()
                .bytes()
                .and_then(|b| serde_json::from_slice(b).ok())
                .unwrap_or(Value::Null);
            if let Some(op) = target.strip_prefix("DynamoDB_20120810.") {
                match op {
                    "BatchGetItem" | "BatchWriteItem" => {
                        for table in body["RequestItems"].as_object().into_iter().flatten() {
                            self.add(&format!("dynamodb:{op}"), self.table(&Value::Null, table.0));
                        }
                    }
                    "TransactWriteItems" => {
                        for item in body["TransactItems"].as_array().into_iter().flatten() {
                            for (kind, action) in [
                                ("Put", "PutItem"),
                                ("Update", "UpdateItem"),
                                ("Delete", "DeleteItem"),
                                ("ConditionCheck", "ConditionCheckItem"),
                            ] {
                                if let Some(table) = item[kind]["TableName"].as_str() {
                                    self.add(
                                        &format!("dynamodb:{action}"),
                                        self.table(&Value::Null, table),
                                    );
                                }
                            }
                        }
                    }
                    op => {
                        let table = body["TableName"].as_str().unwrap_or_default();
                        self.add(&format!("dynamodb:{op}"), self.table(&body, table));
                    }
                }
            } else if let Some(op) = target.strip_prefix("AmazonSQS.") {
                let action = match op {
                    "SendMessageBatch" => "SendMessage",
                    other => other,
                };
                let queue = body["QueueUrl"].as_str().unwrap_or_default();
                self.add(
                    &format!("sqs:{action}"),
                    format!("queue/{}", self.name(queue)),
                );
            } else if request.method() == "GET" || request.method() == "HEAD" {
                // Path-style S3: /<bucket>/<key>.
                let uri = request.uri();
                let path = uri.split("://").nth(1).unwrap_or(uri);
                let path = path.split_once('/').map_or("", |(_, p)| p);
                let path = path.split('?').next().unwrap_or_default();
                let key = path.split_once('/').map_or("", |(_, k)| k);
                self.add("s3:GetObject", format!("object/{key}"));
            }
            Ok(())
        }
    }

    /// AWS clients for one function, recording into `recorder`.
    pub struct Clients {
        pub dynamodb: aws_sdk_dynamodb::Client,
        pub sqs: aws_sdk_sqs::Client,
        pub s3: aws_sdk_s3::Client,
    }

    pub async fn clients(endpoint: &str, recorder: &Recorder) -> Clients {
        let shared = aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("testing", "testing", None, None, "iam"))
            .load()
            .await;
        Clients {
            dynamodb: aws_sdk_dynamodb::Client::from_conf(
                aws_sdk_dynamodb::config::Builder::from(&shared)
                    .interceptor(recorder.clone())
                    .build(),
            ),
            sqs: aws_sdk_sqs::Client::from_conf(
                aws_sdk_sqs::config::Builder::from(&shared)
                    .interceptor(recorder.clone())
                    .build(),
            ),
            s3: aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::config::Builder::from(&shared)
                    .force_path_style(true)
                    .interceptor(recorder.clone())
                    .build(),
            ),
        }
    }

    /// A statement's resource, named as the recorder names calls.
    fn resource(value: &Value) -> Vec<String> {
        let get_att = |v: &Value| -> Option<String> {
            let parts = v["Fn::GetAtt"].as_array()?;
            let (name, attribute) = (parts[0].as_str()?, parts[1].as_str()?);
            Some(match (name, attribute) {
                ("CatalogTable", "Arn") => "table/CatalogTable".to_owned(),
                ("SyncTable", "Arn") => "table/SyncTable".to_owned(),
                (queue, "Arn") if queue.ends_with("Queue") => format!("queue/{queue}"),
                (other, attribute) => format!("other/{other}.{attribute}"),
            })
        };
        match value {
            Value::Array(items) => items.iter().flat_map(resource).collect(),
            Value::Object(map) if map.contains_key("Fn::GetAtt") => {
                get_att(value).into_iter().collect()
            }
            Value::Object(map) if map.contains_key("Fn::Sub") => {
                let text = map["Fn::Sub"].as_str().unwrap_or_default();
                if let Some(rest) = text.strip_prefix("${SyncTable.Arn}") {
                    vec![format!("table/SyncTable{rest}")]
                } else if let Some((_, key)) = text
                    .strip_prefix("arn:${AWS::Partition}:s3:::")
                    .and_then(|t| t.split_once('/'))
                {
                    vec![format!("object/{key}")]
                } else {
                    vec![format!("other/{text}")]
                }
            }
            // The imports bucket's name, given or generated: both branches
            // must grant the same objects.
            Value::Object(map) if map.contains_key("Fn::If") => {
                let branches = map["Fn::If"].as_array().unwrap();
                let given = resource(&branches[1]);
                assert_eq!(given, resource(&branches[2]), "{value}");
                given
            }
            other => vec![format!("other/{other}")],
        }
    }

    fn matches(pattern: &str, value: &str) -> bool {
        match pattern.strip_suffix('*') {
            Some(prefix) => value.starts_with(prefix),
            None => pattern == value,
        }
    }

    fn strings(value: &Value) -> Vec<String> {
        match value {
            Value::String(s) => vec![s.clone()],
            Value::Array(items) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The function's Allow statements as (action, resource) grants, and
    /// its Deny statements as (actions, resources it does not deny).
    pub struct Policy {
        pub allow: Vec<(String, Vec<String>, String)>,
        pub deny: Vec<(Vec<String>, Vec<String>)>,
    }

    pub fn policy(template: &Value, function: &str) -> Policy {
        let mut policy = Policy {
            allow: Vec::new(),
            deny: Vec::new(),
        };
        let policies = &template["Resources"][function]["Properties"]["Policies"];
        for document in policies.as_array().unwrap() {
            for statement in document["Statement"].as_array().unwrap() {
                let actions = strings(&statement["Action"]);
                let sid = statement["Sid"].as_str().unwrap_or("?").to_owned();
                match statement["Effect"].as_str() {
                    Some("Allow") => {
                        let resources = resource(&statement["Resource"]);
                        for action in actions {
                            policy.allow.push((action, resources.clone(), sid.clone()));
                        }
                    }
                    Some("Deny") => {
                        policy
                            .deny
                            .push((actions, resource(&statement["NotResource"])));
                    }
                    _ => panic!("{function}: {statement}"),
                }
            }
        }
        policy
    }

    /// Calls the role does not allow, and grants no call used.
    pub fn compare(policy: &Policy, calls: &BTreeSet<Call>) -> (Vec<String>, Vec<String>) {
        let allowed = |(action, resource): &Call| {
            let allow = policy.allow.iter().any(|(a, resources, _)| {
                matches(a, action) && resources.iter().any(|r| matches(r, resource))
            });
            let deny = policy.deny.iter().any(|(actions, spared)| {
                actions.iter().any(|a| matches(a, action))
                    && !spared.iter().any(|r| matches(r, resource))
            });
            allow && !deny
        };
        let missing = calls
            .iter()
            .filter(|c| !allowed(c))
            .map(|(a, r)| format!("{a} on {r}"))
            .collect();
        let unused = policy
            .allow
            .iter()
            .filter(|(action, ..)| {
                ["dynamodb:", "sqs:", "s3:"]
                    .iter()
                    .any(|p| action.starts_with(p))
            })
            .flat_map(|(action, resources, sid)| {
                resources.iter().filter_map(move |resource| {
                    let used = calls
                        .iter()
                        .any(|(a, r)| matches(action, a) && matches(resource, r));
                    (!used).then(|| format!("{sid}: {action} on {resource}"))
                })
            })
            .collect();
        (missing, unused)
    }
}

/// Runs each function's code paths with recording clients and checks its
/// role against what it called.
#[tokio::test]
async fn every_role_allows_what_its_function_calls_and_nothing_more() {
    use std::collections::BTreeMap;

    use fibermade_sync::domain::Writer;
    use fibermade_sync::jobs::{JobQueue, Worker};
    use fibermade_sync::observer::Observer;
    use fibermade_sync::pull::Puller;
    use fibermade_sync::push::Pusher;
    use fibermade_sync::push::http::PushApi;
    use fibermade_sync::store::Store;
    use fibermade_sync::webhook::ingress::Ingress;
    use fibermade_sync::webhook::signature::WebhookSecret;
    use iam::{Recorder, clients, compare, policy};
    use local_stack::resources::{api_event, object_created_event};
    use local_stack::router::{Feed, FunctionUrl, drain};
    use shopify_sim::FaultKind;

    let template = template();
    let stack = LocalStack::start().await.unwrap();
    let missing_queue = format!(
        "{}-missing.fifo",
        stack.catalog_queue.trim_end_matches(".fifo")
    );
    let names: BTreeMap<String, String> = [
        (stack.tables.catalog.clone(), "CatalogTable"),
        (stack.tables.sync.clone(), "SyncTable"),
        (stack.pull_queue.clone(), "PullQueue"),
        (stack.catalog_queue.clone(), "CatalogQueue"),
        // The observer's queue when its send fails (it then unmarks).
        (missing_queue.clone(), "CatalogQueue"),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_owned()))
    .collect();
    let recorder = |_: &str| Recorder::new(names.clone());
    let store = |clients: &iam::Clients| Store::new(clients.dynamodb.clone(), stack.tables.clone());
    let csv = std::fs::read(project_root().join("tests/fixtures/csv/yarn-catalog.csv")).unwrap();
    let claims = |user: &str| Some(json!({ "sub": user, "exp": "4102444800" }));
    let request = |method: &str, path: &str, user: &str, body: Value| {
        lambda_http::request::from_str(
            &api_event(method, path, claims(user), &body)
                .unwrap()
                .to_string(),
        )
        .unwrap()
    };

    let a = stack
        .seed_account("acct-iam", "user-a", &[], true)
        .await
        .unwrap()
        .id;
    let b = stack
        .seed_account("acct-iam-job", "user-b", &[], true)
        .await
        .unwrap()
        .id;

    // csv-import: both accounts' exports (the second import below changes
    // a quantity and links variants found on the shop).
    let import = recorder("csv-import");
    let import_clients = clients(&stack.aws_endpoint, &import).await;
    let importer =
        fibermade_sync::import::Importer::new(store(&import_clients), stack.shopify.clone());
    for account in [&a, &b] {
        let key = format!("imports/{account}/yarn.csv");
        stack
            .s3
            .put_object()
            .bucket(&stack.bucket)
            .key(&key)
            .body(csv.clone().into())
            .send()
            .await
            .unwrap();
        fibermade_sync::import::handle_s3_event(
            &importer,
            &import_clients.s3,
            object_created_event(&stack.bucket, &key).unwrap(),
        )
        .await
        .unwrap();
    }

    // inventory-push: a push, a colorway push, a preview, the sync log, and
    // a push large enough to run as a job.
    let push = recorder("inventory-push");
    let push_clients = clients(&stack.aws_endpoint, &push).await;
    let api = PushApi {
        pusher: Pusher::new(store(&push_clients), stack.shopify.clone()),
        jobs: Some(JobQueue::new(
            push_clients.sqs.clone(),
            &stack.catalog_queue,
        )),
        job_threshold: 250,
    };
    let colorway = stack.store.load_catalog(&a).await.unwrap().colorways[0]
        .id
        .clone();
    for (method, path, body) in [
        ("POST", "/accounts/acct-iam/push", json!({})),
        (
            "POST",
            "/accounts/acct-iam/push",
            json!({ "colorway_id": colorway.as_str() }),
        ),
        ("POST", "/accounts/acct-iam/push/preview", json!({})),
        ("GET", "/accounts/acct-iam/sync-log", json!(null)),
    ] {
        let response =
            fibermade_sync::push::http::handle(&api, request(method, path, "user-a", body)).await;
        assert!(
            response.status().is_success(),
            "{method} {path}: {}",
            response.status()
        );
    }
    let as_job = PushApi {
        job_threshold: 1,
        ..api.clone()
    };
    let queued = fibermade_sync::push::http::handle(
        &as_job,
        request("POST", "/accounts/acct-iam-job/push", "user-b", json!({})),
    )
    .await;
    assert_eq!(queued.status(), 202);
    let answer: Value = serde_json::from_slice(queued.body().as_ref()).unwrap();
    let status_url = answer["status_url"].as_str().unwrap().to_owned();
    let status = fibermade_sync::push::http::handle(
        &api,
        request("GET", &status_url, "user-b", json!(null)),
    )
    .await;
    assert_eq!(status.status(), 200);

    // csv-import again: a changed quantity, variants now on the shop.
    let changed = String::from_utf8(csv.clone())
        .unwrap()
        .replacen(",12,", ",11,", 1);
    let key = "imports/acct-iam/yarn-again.csv";
    stack
        .s3
        .put_object()
        .bucket(&stack.bucket)
        .key(key)
        .body(changed.into_bytes().into())
        .send()
        .await
        .unwrap();
    fibermade_sync::import::handle_s3_event(
        &importer,
        &import_clients.s3,
        object_created_event(&stack.bucket, key).unwrap(),
    )
    .await
    .unwrap();

    // catalog-observer: automatic sync turned on, a colorway renamed, a
    // base's price changed; then once more with the queue unreachable.
    let observe = recorder("catalog-observer");
    let observer_clients = clients(&stack.aws_endpoint, &observe).await;
    let observer = Observer {
        store: store(&observer_clients),
        queue: JobQueue::new(observer_clients.sqs.clone(), &stack.catalog_queue),
    };
    let mut stream = stack.catalog_stream().await.unwrap();
    let mut account = stack.store.get_account(&a).await.unwrap().unwrap();
    account.auto_catalog_sync = true;
    stack.store.put_account(&account).await.unwrap();
    let catalog = stack.store.load_catalog(&a).await.unwrap();
    let mut renamed = catalog.colorways[1].clone();
    renamed.name = format!("{} (renamed)", renamed.name);
    stack
        .store
        .put_colorway(&renamed, Writer::Dyer)
        .await
        .unwrap();
    let mut base = catalog.bases[0].clone();
    base.retail_price = (base.retail_price.amount() + rust_decimal::Decimal::ONE)
        .try_into()
        .unwrap();
    stack.store.put_base(&base, Writer::Dyer).await.unwrap();
    let observe_with = |observer: Observer| {
        move |event: Value| {
            let observer = observer.clone();
            async move {
                let (response, _) = observer.handle(serde_json::from_value(event)?).await;
                Ok(response
                    .batch_item_failures
                    .into_iter()
                    .next()
                    .and_then(|f| f.item_identifier))
            }
        }
    };
    stream
        .deliver(observe_with(observer.clone()))
        .await
        .unwrap();

    // webhook-ingress: the shop's deliveries, and one of another topic.
    let ingest = recorder("webhook-ingress");
    let ingress_clients = clients(&stack.aws_endpoint, &ingest).await;
    let ingress = Ingress {
        store: store(&ingress_clients),
        sqs: ingress_clients.sqs.clone(),
        queue_url: stack.pull_queue.clone(),
        secret: WebhookSecret::new(local_stack::WEBHOOK_SECRET),
    };
    let url = FunctionUrl::start(ingress.clone()).await.unwrap();
    let shop = fibermade_sync::shopify::Shop {
        domain: local_stack::SHOP_DOMAIN.to_owned(),
        access_token: fibermade_sync::shopify::AccessToken::new(local_stack::ACCESS_TOKEN),
    };
    fibermade_sync::webhook::registration::ensure_inventory_subscription(
        &stack.shopify,
        &shop,
        &url.url(),
    )
    .await
    .unwrap();
    let (integration, _) = stack.store.account_integration(&a).await.unwrap().unwrap();
    let links = stack.store.load_links(&integration.id).await.unwrap();
    let items: Vec<(fibermade_sync::domain::InventoryKey, String)> = links
        .iter()
        .filter(|l| l.external_type == fibermade_sync::domain::ExternalType::ShopifyInventoryItem)
        .filter_map(|l| match &l.local {
            fibermade_sync::domain::LocalRef::Inventory(key) => {
                Some((key.clone(), l.external_id.to_string()))
            }
            _ => None,
        })
        .collect();
    // A sale, and a sale of a row the dyer changed meanwhile (a conflict).
    stack.sim_control.sale(&items[0].1, None, 1).await.unwrap();
    stack.dyer_sets_stock(&a, &items[1].0, 40).await.unwrap();
    stack.sim_control.sale(&items[1].1, None, 1).await.unwrap();
    stack.sim_control.flush_webhooks().await.unwrap();
    let body = br#"{"id": 1}"#;
    let other_topic = lambda_http::http::Request::builder()
        .method("POST")
        .uri("/")
        .header("x-shopify-topic", "products/update")
        .header("x-shopify-shop-domain", local_stack::SHOP_DOMAIN)
        .header("x-shopify-hmac-sha256", ingress.secret.sign(body))
        .body(lambda_http::Body::Binary(body.to_vec()))
        .unwrap();
    let answer = fibermade_sync::webhook::ingress::handle(&ingress, other_topic).await;
    assert_eq!(answer.status(), 200);

    // sync-worker: the pulls (one twice), the observer's jobs, the large
    // push, and a job that fails on its last receive.
    let work = recorder("sync-worker");
    let worker_clients = clients(&stack.aws_endpoint, &work).await;
    let worker = Worker {
        puller: Puller::new(store(&worker_clients)),
        pusher: Pusher::new(store(&worker_clients), stack.shopify.clone()),
        max_receives: 3,
        queue: Some(JobQueue::new(
            worker_clients.sqs.clone(),
            &stack.catalog_queue,
        )),
    };
    let run = |worker: Worker| {
        move |event: Value| {
            let worker = worker.clone();
            async move {
                let response =
                    fibermade_sync::jobs::handle_sqs_event(&worker, serde_json::from_value(event)?)
                        .await;
                Ok(response
                    .batch_item_failures
                    .into_iter()
                    .map(|f| f.item_identifier)
                    .collect())
            }
        }
    };
    let deliveries = stack.sim_control.webhook_deliveries().await.unwrap();
    stack
        .sim_control
        .replay_webhook(&deliveries[0].event_id)
        .await
        .unwrap();
    drain(
        &stack.sqs,
        &stack.pull_queue,
        Feed::default(),
        run(worker.clone()),
    )
    .await
    .unwrap();
    let jobs = drain(
        &stack.sqs,
        &stack.catalog_queue,
        Feed {
            batch_size: 5,
            ..Feed::default()
        },
        run(worker.clone()),
    )
    .await
    .unwrap();
    assert!(jobs.received >= 2 && jobs.failed == 0, "{jobs:?}");
    // The schedule's tick: one reconciliation per linked account.
    JobQueue::new(stack.sqs.clone(), &stack.catalog_queue)
        .send_all(&[fibermade_sync::jobs::CatalogJob::ReconcileAll {}], "tick")
        .await
        .unwrap();
    let reconciled = drain(
        &stack.sqs,
        &stack.catalog_queue,
        Feed {
            batch_size: 5,
            ..Feed::default()
        },
        run(worker.clone()),
    )
    .await
    .unwrap();
    assert!(
        reconciled.received >= 3 && reconciled.failed == 0,
        "{reconciled:?}"
    );
    // The observer again, its queue unreachable: it takes its marks back.
    let unreachable = Observer {
        queue: JobQueue::new(observer_clients.sqs.clone(), &missing_queue),
        ..observer.clone()
    };
    let mut renamed_again = renamed.clone();
    renamed_again.name.push('!');
    let mut other = catalog.colorways[2].clone();
    other.name.push('!');
    stack
        .store
        .put_colorway(&other, Writer::Dyer)
        .await
        .unwrap();
    stream.deliver(observe_with(unreachable)).await.unwrap();
    stack
        .sim_control
        .inject_fault(FaultKind::ServerError { status: 500 }, None, 10_000)
        .await
        .unwrap();
    let mut last = renamed_again;
    last.name.push('?');
    stack.store.put_colorway(&last, Writer::Dyer).await.unwrap();
    stream.deliver(observe_with(observer)).await.unwrap();
    let giving_up = Worker {
        max_receives: 1,
        ..worker.clone()
    };
    drain(
        &stack.sqs,
        &stack.catalog_queue,
        Feed {
            batch_size: 5,
            ..Feed::default()
        },
        run(giving_up),
    )
    .await
    .unwrap();
    stack.sim_control.clear_faults().await.unwrap();

    // Grants Lambda uses with the function's role, not the function's code:
    // the stream mapping's on-failure destination.
    let used_by_lambda = [("CatalogObserverFunction", "RecordFailedBatches")];
    let mut problems = Vec::new();
    for (function, recorded) in [
        ("CsvImportFunction", &import),
        ("InventoryPushFunction", &push),
        ("CatalogObserverFunction", &observe),
        ("WebhookIngressFunction", &ingest),
        ("SyncWorkerFunction", &work),
    ] {
        let (missing, unused) = compare(&policy(&template, function), &recorded.calls());
        for call in missing {
            problems.push(format!(
                "{function} calls {call}, which its role does not allow"
            ));
        }
        for grant in unused {
            if used_by_lambda
                .iter()
                .any(|(f, sid)| *f == function && grant.starts_with(&format!("{sid}:")))
            {
                continue;
            }
            problems.push(format!(
                "{function} is granted {grant}, which its code never called"
            ));
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}
