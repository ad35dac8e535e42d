//! The AWS resources of the bundle, created locally with the shapes
//! `template.yaml` declares for them.

use aws_lambda_events::event::s3::S3Event;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
    TimeToLiveSpecification,
};
use fibermade_sync::store::{GSI1, Tables};

use super::Error;

fn key(name: &str, kind: KeyType) -> Result<KeySchemaElement, Error> {
    Ok(KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()?)
}

fn string_attribute(name: &str) -> Result<AttributeDefinition, Error> {
    Ok(AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()?)
}

/// One table as the template declares it: `pk`/`sk`, the `gsi1` index, and
/// optionally a stream and a TTL attribute.
async fn create_table(
    dynamodb: &aws_sdk_dynamodb::Client,
    name: &str,
    stream: bool,
    ttl: Option<&str>,
) -> Result<(), Error> {
    let gsi = GlobalSecondaryIndex::builder()
        .index_name(GSI1)
        .key_schema(key("gsi1pk", KeyType::Hash)?)
        .key_schema(key("gsi1sk", KeyType::Range)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()?;
    let mut request = dynamodb
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .attribute_definitions(string_attribute("pk")?)
        .attribute_definitions(string_attribute("sk")?)
        .attribute_definitions(string_attribute("gsi1pk")?)
        .attribute_definitions(string_attribute("gsi1sk")?)
        .global_secondary_indexes(gsi);
    if stream {
        request = request.stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()?,
        );
    }
    request.send().await?;
    if let Some(attribute) = ttl {
        dynamodb
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name(attribute)
                    .build()?,
            )
            .send()
            .await?;
    }
    Ok(())
}

/// The catalog table (stream of new and old images, for the observer) and
/// the sync table (TTL on `expires_at`).
pub async fn create_tables(
    dynamodb: &aws_sdk_dynamodb::Client,
    tables: &Tables,
) -> Result<(), Error> {
    create_table(dynamodb, &tables.catalog, true, None).await?;
    create_table(dynamodb, &tables.sync, false, Some("expires_at")).await?;
    Ok(())
}

pub async fn create_bucket(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<(), Error> {
    s3.create_bucket().bucket(bucket).send().await?;
    Ok(())
}

/// The keys whose upload starts an import: the filter of csv-import's S3
/// event in the template.
pub const IMPORT_PREFIX: &str = "imports/";
pub const IMPORT_SUFFIX: &str = ".csv";

/// The bucket's ObjectCreated notification, filtered as the template
/// filters it. In AWS it invokes csv-import; locally S3 cannot invoke a
/// function under `cargo lambda watch`, so it goes to a queue of its own,
/// from which the router hands each notification to csv-import unchanged.
/// Returns the queue's URL.
pub async fn create_import_notification(
    s3: &aws_sdk_s3::Client,
    sqs: &aws_sdk_sqs::Client,
    bucket: &str,
) -> Result<String, Error> {
    use aws_sdk_s3::types::{
        Event, FilterRule, FilterRuleName, NotificationConfiguration,
        NotificationConfigurationFilter, QueueConfiguration, S3KeyFilter,
    };
    let url = sqs
        .create_queue()
        .queue_name(format!("{bucket}-events"))
        .send()
        .await?
        .queue_url
        .ok_or("no queue URL")?;
    let arn = queue_arn(sqs, &url).await?;
    let rule =
        |name: FilterRuleName, value: &str| FilterRule::builder().name(name).value(value).build();
    let queue = QueueConfiguration::builder()
        .id("csv-import")
        .queue_arn(arn)
        .events(Event::from("s3:ObjectCreated:*"))
        .filter(
            NotificationConfigurationFilter::builder()
                .key(
                    S3KeyFilter::builder()
                        .filter_rules(rule(FilterRuleName::Prefix, IMPORT_PREFIX))
                        .filter_rules(rule(FilterRuleName::Suffix, IMPORT_SUFFIX))
                        .build(),
                )
                .build(),
        )
        .build()?;
    s3.put_bucket_notification_configuration()
        .bucket(bucket)
        .notification_configuration(
            NotificationConfiguration::builder()
                .queue_configurations(queue)
                .build(),
        )
        .send()
        .await?;
    Ok(url)
}

/// The ObjectCreated notification S3 sends for an object: the sample in
/// `events/`, with the bucket and the key (URL-encoded as S3 encodes it).
pub fn object_created_event(bucket: &str, key: &str) -> Result<S3Event, Error> {
    let sample = std::fs::read_to_string(
        super::project_root().join("events/csv-import/object-created.json"),
    )?;
    let mut event: serde_json::Value = serde_json::from_str(&sample)?;
    let encoded: String = key
        .split(' ')
        .map(|part| percent_encoding::utf8_percent_encode(part, S3_KEY).to_string())
        .collect::<Vec<_>>()
        .join("+");
    let s3 = &mut event["Records"][0]["s3"];
    s3["bucket"]["name"] = serde_json::Value::String(bucket.to_owned());
    s3["bucket"]["arn"] = serde_json::Value::String(format!("arn:aws:s3:::{bucket}"));
    s3["object"]["key"] = serde_json::Value::String(encoded);
    Ok(serde_json::from_value(event)?)
}

/// What S3 leaves unencoded in notification keys: unreserved characters and
/// `/`; a space becomes `+` (handled by the caller).
const S3_KEY: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// The event API Gateway's HTTP API hands inventory-push, built from the
/// sample in `events/`: `method` and `path` of the route, the JWT claims the
/// authorizer verified (`None`: no authorizer context), and a JSON body.
pub fn api_event(
    method: &str,
    path: &str,
    claims: Option<serde_json::Value>,
    body: &serde_json::Value,
) -> Result<serde_json::Value, Error> {
    let sample =
        std::fs::read_to_string(super::project_root().join("events/inventory-push/push.json"))?;
    let mut event: serde_json::Value = serde_json::from_str(&sample)?;
    event["rawPath"] = path.into();
    event["routeKey"] = format!("{method} {path}").into();
    event["requestContext"]["routeKey"] = event["routeKey"].clone();
    event["requestContext"]["http"]["path"] = path.into();
    event["requestContext"]["http"]["method"] = method.into();
    event["body"] = body.to_string().into();
    match claims {
        Some(claims) => event["requestContext"]["authorizer"]["jwt"]["claims"] = claims,
        None => {
            if let Some(context) = event["requestContext"].as_object_mut() {
                context.remove("authorizer");
            }
        }
    }
    Ok(event)
}

/// The pull queue and its dead-letter queue, with the template's redrive:
/// a message received `max_receive_count` times without success moves to the
/// dead-letter queue. Returns (queue URL, dead-letter queue URL).
pub async fn create_pull_queues(
    sqs: &aws_sdk_sqs::Client,
    suffix: &str,
    max_receive_count: u32,
) -> Result<(String, String), Error> {
    create_queue_pair(
        sqs,
        &format!("fibermade-pull-{suffix}"),
        QueueShape {
            fifo: false,
            max_receive_count,
            delay_seconds: 0,
        },
    )
    .await
}

/// The catalog queue and its dead-letter queue, FIFO as in the template,
/// with `delay_seconds` of `CatalogSyncDelaySeconds`.
pub async fn create_catalog_queues(
    sqs: &aws_sdk_sqs::Client,
    suffix: &str,
    max_receive_count: u32,
    delay_seconds: u32,
) -> Result<(String, String), Error> {
    create_queue_pair(
        sqs,
        &format!("fibermade-catalog-{suffix}"),
        QueueShape {
            fifo: true,
            max_receive_count,
            delay_seconds,
        },
    )
    .await
}

struct QueueShape {
    fifo: bool,
    max_receive_count: u32,
    delay_seconds: u32,
}

/// The template's `VisibilityTimeout` of both worker queues (six times the
/// worker's timeout). The router receives with a visibility timeout of its
/// own, so tests can see a failed message again within a second.
pub const VISIBILITY_TIMEOUT: u32 = 360;
/// The template's retention: 4 days on a queue, 14 on a dead-letter queue.
pub const QUEUE_RETENTION: u32 = 345_600;
pub const DEAD_LETTER_RETENTION: u32 = 1_209_600;

async fn create_queue_pair(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    shape: QueueShape,
) -> Result<(String, String), Error> {
    use aws_sdk_sqs::types::QueueAttributeName;
    let fifo_name = |n: String| if shape.fifo { format!("{n}.fifo") } else { n };
    let mut dlq = sqs
        .create_queue()
        .queue_name(fifo_name(format!("{name}-dlq")))
        .attributes(
            QueueAttributeName::MessageRetentionPeriod,
            DEAD_LETTER_RETENTION.to_string(),
        );
    if shape.fifo {
        dlq = dlq.attributes(QueueAttributeName::FifoQueue, "true");
    }
    let dlq_url = dlq
        .send()
        .await?
        .queue_url
        .ok_or("no dead-letter queue URL")?;
    let dlq_arn = queue_arn(sqs, &dlq_url).await?;
    let redrive = serde_json::json!({ "deadLetterTargetArn": dlq_arn, "maxReceiveCount": shape.max_receive_count.to_string() });
    let mut queue = sqs
        .create_queue()
        .queue_name(fifo_name(name.to_owned()))
        .attributes(
            QueueAttributeName::VisibilityTimeout,
            VISIBILITY_TIMEOUT.to_string(),
        )
        .attributes(
            QueueAttributeName::MessageRetentionPeriod,
            QUEUE_RETENTION.to_string(),
        )
        .attributes(
            QueueAttributeName::DelaySeconds,
            shape.delay_seconds.to_string(),
        )
        .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string());
    if shape.fifo {
        queue = queue
            .attributes(QueueAttributeName::FifoQueue, "true")
            .attributes(QueueAttributeName::ContentBasedDeduplication, "true")
            .attributes(QueueAttributeName::DeduplicationScope, "messageGroup")
            .attributes(QueueAttributeName::FifoThroughputLimit, "perMessageGroupId");
    }
    let url = queue.send().await?.queue_url.ok_or("no queue URL")?;
    Ok((url, dlq_url))
}

/// A queue's ARN, as the event source mapping names it in each record.
pub async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<String, Error> {
    use aws_sdk_sqs::types::QueueAttributeName;
    Ok(sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await?
        .attributes
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .ok_or("no queue ARN")?)
}
