//! The storage bucket behind staged uploads and bulk results, served on the
//! simulator's own address.
//!
//! `POST /_storage/staged-uploads` takes a `multipart/form-data` form the
//! way Shopify's upload bucket does: the parameters of the staged target
//! first, the `file` field last (fields after the file are ignored, so a
//! parameter sent after it counts as missing), every parameter exactly as
//! issued, the file within the policy's size range. It answers `201` with a
//! `PostResponse` XML body when `success_action_status` is `201`, and XML
//! errors otherwise. Results are read with
//! `GET /_storage/bulk-operation-outputs/{name}`, no token needed, as a
//! signed URL is.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::Sha256;
use time::OffsetDateTime;
use time::macros::format_description;

use crate::app::{AppState, lock};

/// Where staged targets point.
pub const UPLOAD_PATH: &str = "/_storage/staged-uploads";

/// Where results files are read.
pub const OUTPUTS_PATH: &str = "/_storage/bulk-operation-outputs";

/// The bucket name Shopify's answers carry.
const BUCKET: &str = "shopify-staged-uploads";

/// One staged target: the parameters a form must echo.
#[derive(Debug, Clone)]
struct Target {
    parameters: Vec<(String, String)>,
    max_bytes: u64,
}

/// A file uploaded to a staged target, as the control API lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upload {
    pub key: String,
    pub bytes: usize,
    pub content_type: String,
}

/// Why a staged path cannot be run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileProblem {
    Missing,
    Invalid(String),
}

/// Staged targets, uploaded files and results files.
pub struct Storage {
    secret: [u8; 32],
    targets: HashMap<String, Target>,
    files: HashMap<String, (String, Vec<u8>)>,
    outputs: HashMap<String, String>,
}

impl Default for Storage {
    fn default() -> Self {
        Storage {
            secret: rand::rng().random(),
            targets: HashMap::new(),
            files: HashMap::new(),
            outputs: HashMap::new(),
        }
    }
}

impl Storage {
    /// Issues a target for `key`; gives its parameters in Shopify's order.
    pub fn issue(&mut self, key: &str, mime_type: &str, max_bytes: u64) -> Vec<(String, String)> {
        let now = OffsetDateTime::now_utc();
        let date = now
            .format(format_description!(
                "[year][month][day]T[hour][minute][second]Z"
            ))
            .unwrap_or_default();
        let day = date.get(..8).unwrap_or_default().to_owned();
        let credential = format!(
            "shopify-sim@fibermade-sim.iam.gserviceaccount.com/{day}/auto/storage/goog4_request"
        );
        let policy = json!({
            "conditions": [
                ["eq", "$key", key],
                ["eq", "$Content-Type", mime_type],
                ["eq", "$success_action_status", "201"],
                ["eq", "$acl", "private"],
                ["content-length-range", 1, max_bytes],
                {"bucket": BUCKET},
                {"x-goog-date": date},
                {"x-goog-credential": credential},
                {"x-goog-algorithm": "GOOG4-RSA-SHA256"},
            ],
            "expiration": (now + time::Duration::hours(1))
                .replace_nanosecond(0)
                .unwrap_or(now)
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
        });
        let policy = BASE64.encode(policy.to_string());
        let mut mac = <Hmac<Sha256>>::new_from_slice(&self.secret).expect("any key length");
        mac.update(policy.as_bytes());
        let signature: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        let parameters: Vec<(String, String)> = [
            ("key", key.to_owned()),
            ("Content-Type", mime_type.to_owned()),
            ("success_action_status", "201".to_owned()),
            ("acl", "private".to_owned()),
            ("policy", policy),
            ("x-goog-credential", credential),
            ("x-goog-algorithm", "GOOG4-RSA-SHA256".to_owned()),
            ("x-goog-date", date),
            ("x-goog-signature", signature),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect();
        self.targets.insert(
            key.to_owned(),
            Target {
                parameters: parameters.clone(),
                max_bytes,
            },
        );
        parameters
    }

    /// The uploaded file at `key`, read as JSONL variables: one JSON object
    /// a line; a final newline is allowed, empty lines elsewhere are not.
    pub fn variables(&self, key: &str) -> Result<Vec<Map<String, Value>>, FileProblem> {
        let (_, bytes) = self.files.get(key).ok_or(FileProblem::Missing)?;
        let text = std::str::from_utf8(bytes)
            .map_err(|_| FileProblem::Invalid("The JSONL file is not valid UTF-8.".to_owned()))?;
        let text = text.strip_suffix('\n').unwrap_or(text);
        if text.is_empty() {
            return Err(FileProblem::Invalid("The JSONL file is empty.".to_owned()));
        }
        text.split('\n')
            .enumerate()
            .map(|(index, line)| {
                let line = line.strip_suffix('\r').unwrap_or(line);
                match serde_json::from_str::<Value>(line) {
                    Ok(Value::Object(map)) => Ok(map),
                    _ => Err(FileProblem::Invalid(format!(
                        "The JSONL file is invalid: line {} is not a JSON object.",
                        index + 1
                    ))),
                }
            })
            .collect()
    }

    /// Stores a results file; gives its name under [`OUTPUTS_PATH`].
    pub fn put_output(&mut self, name: String, text: String) -> String {
        self.outputs.insert(name.clone(), text);
        name
    }

    pub fn uploads(&self) -> Vec<Upload> {
        let mut uploads: Vec<Upload> = self
            .files
            .iter()
            .map(|(key, (content_type, bytes))| Upload {
                key: key.clone(),
                bytes: bytes.len(),
                content_type: content_type.clone(),
            })
            .collect();
        uploads.sort_by(|a, b| a.key.cmp(&b.key));
        uploads
    }

    fn store(&mut self, key: String, content_type: String, bytes: Vec<u8>) {
        self.files.insert(key, (content_type, bytes));
    }
}

/// Routes of the storage bucket.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(UPLOAD_PATH, post(upload).layer(DefaultBodyLimit::disable()))
        .route(&format!("{OUTPUTS_PATH}/{{name}}"), get(output))
}

/// An XML error as the bucket answers it.
fn xml_error(status: StatusCode, code: &str, message: &str, details: &str) -> Response {
    let body = format!(
        "<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{message}</Message><Details>{}</Details></Error>",
        escape(details)
    );
    (
        status,
        [(header::CONTENT_TYPE, "application/xml; charset=UTF-8")],
        body,
    )
        .into_response()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The form's fields up to the file, and the file, read within a size cap.
struct Form {
    fields: Vec<(String, String)>,
    file: Option<(Vec<u8>, bool)>,
}

async fn read_form(mut multipart: Multipart, cap: u64) -> Result<Form, String> {
    let mut fields = Vec::new();
    let mut file = None;
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|error| error.body_text())?
    {
        let name = field.name().unwrap_or_default().to_owned();
        if file.is_some() {
            // The bucket ignores whatever follows the file; drain it.
            while field
                .chunk()
                .await
                .map_err(|error| error.body_text())?
                .is_some()
            {}
            continue;
        }
        if name == "file" {
            let mut bytes = Vec::new();
            let mut too_large = false;
            while let Some(chunk) = field.chunk().await.map_err(|error| error.body_text())? {
                if too_large || (bytes.len() + chunk.len()) as u64 > cap {
                    too_large = true;
                    bytes.clear();
                    continue;
                }
                bytes.extend_from_slice(&chunk);
            }
            file = Some((bytes, too_large));
        } else {
            let value = field.text().await.map_err(|error| error.body_text())?;
            fields.push((name, value));
        }
    }
    Ok(Form { fields, file })
}

async fn upload(State(app): State<Arc<AppState>>, multipart: Multipart) -> Response {
    // Read up to one byte past the largest file any target allows; the
    // target's own limit is checked once its key is known.
    let cap = app.bulk.config().max_file_bytes.saturating_add(1);
    let form = match read_form(multipart, cap).await {
        Ok(form) => form,
        Err(message) => {
            return xml_error(
                StatusCode::BAD_REQUEST,
                "InvalidArgument",
                "Invalid argument.",
                &message,
            );
        }
    };
    let field = |name: &str| {
        form.fields
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, value)| value.as_str())
    };
    let Some((bytes, too_large)) = form.file else {
        return xml_error(
            StatusCode::BAD_REQUEST,
            "InvalidArgument",
            "Invalid argument.",
            "POST object expects a file field, sent after every other field.",
        );
    };
    let Some(key) = field("key") else {
        return xml_error(
            StatusCode::BAD_REQUEST,
            "InvalidArgument",
            "Invalid argument.",
            "POST object requires a key field before the file.",
        );
    };
    let mut storage = lock(&app.bulk.storage);
    let Some(target) = storage.targets.get(key).cloned() else {
        return xml_error(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "Access denied.",
            "Invalid according to Policy: no staged target was issued for this key.",
        );
    };
    for (name, expected) in &target.parameters {
        if field(name) != Some(expected.as_str()) {
            return xml_error(
                StatusCode::FORBIDDEN,
                "AccessDenied",
                "Access denied.",
                &format!(
                    "Invalid according to Policy: Policy Condition failed: [\"eq\", \"${name}\", …] (missing, changed, or sent after the file)"
                ),
            );
        }
    }
    if too_large || bytes.len() as u64 > target.max_bytes {
        return xml_error(
            StatusCode::BAD_REQUEST,
            "EntityTooLarge",
            "Your proposed upload is larger than the maximum object size specified in your Policy Document.",
            "Content-length exceeds upper bound on range",
        );
    }
    if bytes.is_empty() {
        return xml_error(
            StatusCode::BAD_REQUEST,
            "EntityTooSmall",
            "Your proposed upload is smaller than the minimum object size specified in your Policy Document.",
            "Content-length is smaller than lower bound on range.",
        );
    }

    let content_type = field("Content-Type").unwrap_or_default().to_owned();
    let etag = format!("\"{:x}\"", content_tag(&bytes));
    let bytes_len = bytes.len();
    storage.store(key.to_owned(), content_type, bytes);
    drop(storage);
    tracing::info!(key, bytes = bytes_len, "staged upload stored");

    if field("success_action_status") == Some("201") {
        let location = format!("{}{UPLOAD_PATH}/{}", app.bulk.base_url(), escape(key));
        let body = format!(
            "<?xml version='1.0' encoding='UTF-8'?><PostResponse><Location>{location}</Location><Bucket>{BUCKET}</Bucket><Key>{}</Key><ETag>{etag}</ETag></PostResponse>",
            escape(key)
        );
        (
            StatusCode::CREATED,
            [(header::CONTENT_TYPE, "application/xml; charset=UTF-8")],
            body,
        )
            .into_response()
    } else {
        StatusCode::NO_CONTENT.into_response()
    }
}

/// A stable tag of the content for the ETag (not its MD5: nothing checks it).
fn content_tag(bytes: &[u8]) -> u128 {
    use sha2::Digest;
    let digest = Sha256::digest(bytes);
    let mut tag = [0u8; 16];
    tag.copy_from_slice(&digest[..16]);
    u128::from_be_bytes(tag)
}

async fn output(State(app): State<Arc<AppState>>, Path(name): Path<String>) -> Response {
    match lock(&app.bulk.storage).outputs.get(&name) {
        Some(text) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/jsonl")],
            text.clone(),
        )
            .into_response(),
        None => xml_error(
            StatusCode::NOT_FOUND,
            "NoSuchKey",
            "The specified key does not exist.",
            &format!("No such object: {BUCKET}/{name}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(text: &str) -> Storage {
        let mut storage = Storage::default();
        storage.store("k".into(), "text/jsonl".into(), text.as_bytes().to_vec());
        storage
    }

    #[test]
    fn variables_are_one_object_a_line_with_an_optional_final_newline() {
        let lines = stored("{\"a\":1}\n{\"a\":2}\n")
            .variables("k")
            .expect("valid");
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["a"], 2);
        assert_eq!(
            stored("{\"a\":1}\n\n{\"a\":2}").variables("k"),
            Err(FileProblem::Invalid(
                "The JSONL file is invalid: line 2 is not a JSON object.".into()
            ))
        );
        assert!(matches!(
            stored("[1]").variables("k"),
            Err(FileProblem::Invalid(_))
        ));
        assert_eq!(Storage::default().variables("k"), Err(FileProblem::Missing));
    }

    #[test]
    fn targets_list_the_parameters_in_shopifys_order() {
        let mut storage = Storage::default();
        let parameters = storage.issue("tmp/1/bulk/x/vars.jsonl", "text/jsonl", 10);
        let names: Vec<&str> = parameters.iter().map(|(name, _)| name.as_str()).collect();
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
                "x-goog-signature"
            ]
        );
    }
}
