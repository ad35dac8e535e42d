//! The harness shared by the simulator's integration tests.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;

use serde_json::{Map, Value, json};
use shopify_sim::{RunningSimulator, SimConfig, SimControl};

pub const TOKEN: &str = "shpat_test_token";

/// A running simulator and clients for both of its APIs.
pub struct Harness {
    pub sim: RunningSimulator,
    pub http: reqwest::Client,
    pub control: SimControl,
}

impl Harness {
    pub async fn start() -> Harness {
        Harness::start_with(SimConfig::default()).await
    }

    pub async fn start_with(mut config: SimConfig) -> Harness {
        config.access_token = TOKEN.to_owned();
        let sim = RunningSimulator::start(config)
            .await
            .expect("the simulator starts");
        let control = SimControl::new(sim.base_url());
        Harness {
            sim,
            http: reqwest::Client::new(),
            control,
        }
    }

    /// Posts a document; gives the HTTP status and the JSON answer.
    pub async fn post(&self, query: &str, variables: Value) -> (u16, Value) {
        let response = self
            .http
            .post(self.sim.graphql_url())
            .header("X-Shopify-Access-Token", TOKEN)
            .json(&json!({"query": query, "variables": variables}))
            .send()
            .await
            .expect("the request is answered");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Posts a document that must be answered with HTTP 200.
    pub async fn gql(&self, query: &str, variables: Value) -> Value {
        let (status, body) = self.post(query, variables).await;
        assert_eq!(status, 200, "unexpected status, body: {body}");
        body
    }

    /// The id of the shop's first location.
    pub async fn first_location(&self) -> String {
        let state = self.control.state().await.expect("state");
        state["locations"][0]["id"]
            .as_str()
            .expect("a location")
            .to_owned()
    }

    /// All location ids, in order.
    pub async fn locations(&self) -> Vec<String> {
        let state = self.control.state().await.expect("state");
        state["locations"]
            .as_array()
            .expect("locations")
            .iter()
            .map(|location| location["id"].as_str().expect("id").to_owned())
            .collect()
    }
}

/// A recorded capture from `../shared/shopify/recorded/`.
pub fn recorded(relative: &str) -> Value {
    let path = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/shopify/recorded/"
    ))
    .join(relative);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    serde_json::from_str(&text).expect("recorded captures are JSON")
}

/// A document from `tests/fixtures/`.
pub fn fixture(name: &str) -> String {
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures")).join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()))
}

/// Replaces every string found in `ids` (recorded ids → simulator ids).
pub fn rewrite_ids(value: &Value, ids: &HashMap<String, String>) -> Value {
    match value {
        Value::String(text) => {
            Value::String(ids.get(text).cloned().unwrap_or_else(|| text.clone()))
        }
        Value::Array(items) => {
            Value::Array(items.iter().map(|item| rewrite_ids(item, ids)).collect())
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, item)| (key.clone(), rewrite_ids(item, ids)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Drops keys (at any depth) the simulator does not model.
pub fn without(value: &Value, keys: &[&str]) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.iter().map(|item| without(item, keys)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(key, _)| !keys.contains(&key.as_str()))
                .map(|(key, item)| (key.clone(), without(item, keys)))
                .collect::<Map<_, _>>(),
        ),
        other => other.clone(),
    }
}

/// Same keys at every level, same array lengths, objects where objects are.
pub fn assert_same_shape(actual: &Value, expected: &Value) {
    let mut problems = Vec::new();
    shape(actual, expected, "$", &mut problems, false);
    assert!(
        problems.is_empty(),
        "shape differs:\n{}\nactual: {actual:#}",
        problems.join("\n")
    );
}

/// Same shape and same values, except GIDs (same kind) and timestamps.
pub fn assert_parity(actual: &Value, expected: &Value) {
    let mut problems = Vec::new();
    shape(actual, expected, "$", &mut problems, true);
    assert!(
        problems.is_empty(),
        "answers differ:\n{}\nactual: {actual:#}",
        problems.join("\n")
    );
}

fn gid_kind(text: &str) -> Option<&str> {
    text.strip_prefix("gid://shopify/")?.split('/').next()
}

fn shape(actual: &Value, expected: &Value, at: &str, problems: &mut Vec<String>, values: bool) {
    let key = at.rsplit('.').next().unwrap_or(at);
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => {
            let mut a_keys: Vec<&String> = a.keys().collect();
            let mut e_keys: Vec<&String> = e.keys().collect();
            a_keys.sort();
            e_keys.sort();
            if a_keys != e_keys {
                problems.push(format!("{at}: keys {a_keys:?} != {e_keys:?}"));
                return;
            }
            for (name, item) in e {
                shape(&a[name], item, &format!("{at}.{name}"), problems, values);
            }
        }
        (Value::Array(a), Value::Array(e)) => {
            if a.len() != e.len() {
                problems.push(format!("{at}: {} items != {}", a.len(), e.len()));
                return;
            }
            for (index, (x, y)) in a.iter().zip(e).enumerate() {
                shape(x, y, &format!("{at}[{index}]"), problems, values);
            }
        }
        (Value::Object(_) | Value::Array(_), _) | (_, Value::Object(_) | Value::Array(_)) => {
            problems.push(format!("{at}: {actual} is not shaped like {expected}"));
        }
        (a, e) if values => {
            let same = match (a, e) {
                (Value::String(x), Value::String(y)) if y.starts_with("gid://") => {
                    gid_kind(x) == gid_kind(y)
                }
                _ if matches!(
                    key,
                    "createdAt"
                        | "updatedAt"
                        | "compareDigest"
                        | "cursor"
                        | "startCursor"
                        | "endCursor"
                ) =>
                {
                    a.is_null() == e.is_null()
                }
                _ => a == e,
            };
            if !same {
                problems.push(format!("{at}: {a} != {e}"));
            }
        }
        _ => {}
    }
}

/// Codes and fields of the userErrors of a payload.
pub fn user_errors(payload: &Value) -> Vec<(Value, Value)> {
    payload["userErrors"]
        .as_array()
        .expect("userErrors")
        .iter()
        .map(|error| (error["field"].clone(), error["code"].clone()))
        .collect()
}

/// `extensions.cost` requested and actual figures.
pub fn cost(body: &Value) -> (Value, Value) {
    let cost = &body["extensions"]["cost"];
    (
        cost["requestedQueryCost"].clone(),
        cost["actualQueryCost"].clone(),
    )
}

/// Learns recorded id → simulator id from two answers of the same shape.
pub fn learn_ids(actual: &Value, expected: &Value, ids: &mut HashMap<String, String>) {
    match (actual, expected) {
        (Value::String(a), Value::String(e)) if e.starts_with("gid://") => {
            ids.insert(e.clone(), a.clone());
        }
        (Value::Array(a), Value::Array(e)) => {
            for (x, y) in a.iter().zip(e) {
                learn_ids(x, y, ids);
            }
        }
        (Value::Object(a), Value::Object(e)) => {
            for (key, y) in e {
                if let Some(x) = a.get(key) {
                    learn_ids(x, y, ids);
                }
            }
        }
        _ => {}
    }
}
