//! The DynamoDB Streams event source, as Lambda's event source mapping plays
//! it for the catalog observer: read the catalog table's stream, drop what
//! the template's filter criteria drop, hand the rest over in batches of the
//! Lambda event's shape, and on a partial batch failure deliver again from
//! the failed record (a few times, then give the records up, as the mapping
//! does before its on-failure destination).

use aws_sdk_dynamodbstreams::types::{AttributeValue, Record, ShardIteratorType};
use serde_json::{Map, Value, json};

use super::Error;

/// The filter criteria of `CatalogObserverFunction`'s stream event in
/// `template.yaml`, as written there (a test checks they are the same).
pub const OBSERVER_FILTERS: &[&str] = &[
    r#"{"eventName": ["REMOVE"]}"#,
    r#"{"eventName": ["INSERT", "MODIFY"], "dynamodb": {"NewImage": {"writer": {"S": [{"anything-but": ["sync", "import"]}]}}}}"#,
];

/// The template's batch size for the observer.
const BATCH_SIZE: usize = 100;

/// Deliveries of a failing batch before its records are given up.
const MAX_RETRIES: usize = 3;

/// A reader of one table's stream, from where it stood when it was opened.
pub struct StreamSource {
    client: aws_sdk_dynamodbstreams::Client,
    stream_arn: String,
    iterators: Vec<String>,
}

/// What one delivery pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    pub read: usize,
    pub filtered_out: usize,
    pub delivered: usize,
    pub batches: usize,
    pub retried: usize,
    pub given_up: usize,
}

impl StreamSource {
    /// Opens the table's stream at its end: records written afterwards are
    /// delivered.
    pub async fn open(
        client: aws_sdk_dynamodbstreams::Client,
        dynamodb: &aws_sdk_dynamodb::Client,
        table: &str,
    ) -> Result<Self, Error> {
        let described = dynamodb.describe_table().table_name(table).send().await?;
        let stream_arn = described
            .table
            .and_then(|t| t.latest_stream_arn)
            .ok_or("the table has no stream")?;
        let stream = client
            .describe_stream()
            .stream_arn(&stream_arn)
            .send()
            .await?;
        let shards = stream
            .stream_description
            .and_then(|d| d.shards)
            .unwrap_or_default();
        let mut iterators = Vec::new();
        for shard in shards {
            let Some(shard_id) = shard.shard_id else {
                continue;
            };
            let iterator = client
                .get_shard_iterator()
                .stream_arn(&stream_arn)
                .shard_id(shard_id)
                .shard_iterator_type(ShardIteratorType::Latest)
                .send()
                .await?;
            iterators.extend(iterator.shard_iterator);
        }
        Ok(Self {
            client,
            stream_arn,
            iterators,
        })
    }

    /// Reads everything written since the last call.
    pub async fn read_new(&mut self) -> Result<Vec<Value>, Error> {
        let mut records = Vec::new();
        let mut next = Vec::new();
        for iterator in std::mem::take(&mut self.iterators) {
            let mut current = Some(iterator);
            let mut last = None;
            while let Some(iterator) = current.take() {
                let out = self
                    .client
                    .get_records()
                    .shard_iterator(&iterator)
                    .send()
                    .await?;
                let page = out.records.unwrap_or_default();
                let empty = page.is_empty();
                records.extend(page.iter().map(|r| lambda_record(r, &self.stream_arn)));
                last = Some(out.next_shard_iterator.clone().unwrap_or(iterator));
                if !empty {
                    current = out.next_shard_iterator;
                }
            }
            next.extend(last);
        }
        self.iterators = next;
        Ok(records)
    }

    /// Delivers what was written since the last call to `work`, which gets
    /// the Lambda event (JSON) and answers the sequence number of the first
    /// record to deliver again (a partial batch response), if any.
    pub async fn deliver<F, Fut>(&mut self, mut work: F) -> Result<Delivered, Error>
    where
        F: FnMut(Value) -> Fut,
        Fut: std::future::Future<Output = Result<Option<String>, Error>>,
    {
        let records = self.read_new().await?;
        let mut delivered = Delivered {
            read: records.len(),
            ..Delivered::default()
        };
        let kept: Vec<Value> = records.into_iter().filter(passes_filters).collect();
        delivered.filtered_out = delivered.read - kept.len();
        let mut start = 0;
        let mut retries = 0;
        while start < kept.len() {
            let end = (start + BATCH_SIZE).min(kept.len());
            let batch = &kept[start..end];
            delivered.batches += 1;
            let failed = work(json!({ "Records": batch })).await?;
            let Some(failed) = failed else {
                delivered.delivered += batch.len();
                start = end;
                retries = 0;
                continue;
            };
            let at = batch
                .iter()
                .position(|r| r["dynamodb"]["SequenceNumber"].as_str() == Some(failed.as_str()))
                .unwrap_or(0);
            delivered.delivered += at;
            if retries >= MAX_RETRIES {
                delivered.given_up += batch.len() - at;
                start = end;
                retries = 0;
                continue;
            }
            retries += 1;
            delivered.retried += 1;
            start += at;
        }
        Ok(delivered)
    }
}

/// Whether a record passes any of the observer's filter criteria.
pub fn passes_filters(record: &Value) -> bool {
    OBSERVER_FILTERS.iter().any(|pattern| {
        serde_json::from_str::<Value>(pattern)
            .is_ok_and(|pattern| matches_pattern(&pattern, record))
    })
}

/// Event filtering's pattern rules, for the subset the template uses: an
/// object matches field by field; a list of values matches if the field is
/// one of them; `{"anything-but": [...]}` matches a present value that is
/// none of them.
fn matches_pattern(pattern: &Value, value: &Value) -> bool {
    match pattern {
        Value::Object(fields) => fields.iter().all(|(name, inner)| match value.get(name) {
            Some(v) => matches_pattern(inner, v),
            None => false,
        }),
        Value::Array(alternatives) => alternatives.iter().any(|alt| match alt {
            Value::Object(rule) => match rule.get("anything-but") {
                Some(Value::Array(excluded)) => !excluded.contains(value),
                _ => false,
            },
            literal => literal == value,
        }),
        _ => pattern == value,
    }
}

/// A stream record in the shape Lambda hands the function.
fn lambda_record(record: &Record, stream_arn: &str) -> Value {
    let change = record.dynamodb.as_ref();
    let image = |m: Option<&std::collections::HashMap<String, AttributeValue>>| {
        m.map(|m| {
            Value::Object(
                m.iter()
                    .map(|(k, v)| (k.clone(), attribute(v)))
                    .collect::<Map<_, _>>(),
            )
        })
    };
    let mut dynamodb = Map::new();
    if let Some(change) = change {
        if let Some(at) = change.approximate_creation_date_time {
            dynamodb.insert("ApproximateCreationDateTime".into(), json!(at.secs()));
        }
        if let Some(keys) = image(change.keys.as_ref()) {
            dynamodb.insert("Keys".into(), keys);
        }
        if let Some(new) = image(change.new_image.as_ref()) {
            dynamodb.insert("NewImage".into(), new);
        }
        if let Some(old) = image(change.old_image.as_ref()) {
            dynamodb.insert("OldImage".into(), old);
        }
        dynamodb.insert("SequenceNumber".into(), json!(change.sequence_number));
        dynamodb.insert("SizeBytes".into(), json!(change.size_bytes.unwrap_or(0)));
        dynamodb.insert(
            "StreamViewType".into(),
            json!(change.stream_view_type.as_ref().map(|v| v.as_str())),
        );
    }
    json!({
        "eventID": record.event_id,
        "eventName": record.event_name.as_ref().map(|n| n.as_str()),
        "eventVersion": record.event_version.clone().unwrap_or_else(|| "1.1".into()),
        "eventSource": "aws:dynamodb",
        "awsRegion": record.aws_region.clone().unwrap_or_else(|| "us-east-1".into()),
        "dynamodb": dynamodb,
        "eventSourceARN": stream_arn,
    })
}

/// An attribute value in DynamoDB's JSON.
fn attribute(value: &AttributeValue) -> Value {
    use base64::Engine as _;
    let b64 = |b: &aws_sdk_dynamodbstreams::primitives::Blob| {
        base64::engine::general_purpose::STANDARD.encode(b.as_ref())
    };
    match value {
        AttributeValue::S(s) => json!({ "S": s }),
        AttributeValue::N(n) => json!({ "N": n }),
        AttributeValue::Bool(b) => json!({ "BOOL": b }),
        AttributeValue::Null(_) => json!({ "NULL": true }),
        AttributeValue::Ss(v) => json!({ "SS": v }),
        AttributeValue::Ns(v) => json!({ "NS": v }),
        AttributeValue::B(b) => json!({ "B": b64(b) }),
        AttributeValue::Bs(v) => json!({ "BS": v.iter().map(b64).collect::<Vec<_>>() }),
        AttributeValue::L(items) => json!({ "L": items.iter().map(attribute).collect::<Vec<_>>() }),
        AttributeValue::M(map) => json!({
            "M": map.iter().map(|(k, v)| (k.clone(), attribute(v))).collect::<Map<_, _>>()
        }),
        _ => json!({ "NULL": true }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_the_templates() {
        let template =
            std::fs::read_to_string(crate::project_root().join("template.yaml")).unwrap();
        for filter in OBSERVER_FILTERS {
            assert!(
                template.contains(&format!("- Pattern: '{filter}'")),
                "template.yaml lacks the filter {filter}"
            );
        }
    }

    #[test]
    fn the_syncs_own_writes_and_imports_are_filtered_out() {
        let record = |name: &str, writer: Option<&str>| {
            let mut new = json!({ "pk": { "S": "ACCOUNT#a" } });
            if let Some(w) = writer {
                new["writer"] = json!({ "S": w });
            }
            json!({ "eventName": name, "dynamodb": { "NewImage": new } })
        };
        assert!(passes_filters(&record("MODIFY", Some("dyer"))));
        assert!(passes_filters(&record("INSERT", Some("dyer"))));
        assert!(!passes_filters(&record("MODIFY", Some("sync"))));
        assert!(!passes_filters(&record("INSERT", Some("import"))));
        assert!(!passes_filters(&record("MODIFY", None)));
        assert!(passes_filters(
            &json!({ "eventName": "REMOVE", "dynamodb": {} })
        ));
    }
}
