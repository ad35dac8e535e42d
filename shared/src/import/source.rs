//! Where an export is read from: an S3 object (in Lambda), or anything that
//! can be opened twice as a reader (tests, benchmarks, local tools).

use std::io::Read;
use std::sync::Arc;

use aws_sdk_s3::Client as S3Client;
use aws_sdk_s3::error::ProvideErrorMetadata;
use tokio::sync::Mutex;
use tokio_util::io::SyncIoBridge;

use super::ImportError;
use crate::domain::AccountId;

type Opener = dyn Fn() -> std::io::Result<Box<dyn Read + Send>> + Send + Sync;

/// An export that can be read from the start more than once.
#[derive(Clone)]
pub enum Source {
    /// An object in S3. The second read asks for the same ETag, so a file
    /// replaced between the passes is not half-imported.
    S3 {
        client: S3Client,
        bucket: String,
        key: String,
        etag: Arc<Mutex<Option<String>>>,
    },
    /// Anything else, opened afresh by a closure.
    Reader { label: String, open: Arc<Opener> },
}

impl Source {
    pub fn s3(client: S3Client, bucket: impl Into<String>, key: impl Into<String>) -> Self {
        Self::S3 {
            client,
            bucket: bucket.into(),
            key: key.into(),
            etag: Arc::default(),
        }
    }

    pub fn reader(
        label: impl Into<String>,
        open: impl Fn() -> std::io::Result<Box<dyn Read + Send>> + Send + Sync + 'static,
    ) -> Self {
        Self::Reader {
            label: label.into(),
            open: Arc::new(open),
        }
    }

    /// A file on disk.
    pub fn file(path: impl Into<std::path::PathBuf>) -> Self {
        let path = path.into();
        let label = path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        Self::reader(label, move || {
            let file = std::fs::File::open(&path)?;
            Ok(Box::new(std::io::BufReader::with_capacity(64 * 1024, file))
                as Box<dyn Read + Send>)
        })
    }

    pub fn label(&self) -> String {
        match self {
            Self::S3 { key, .. } => key.clone(),
            Self::Reader { label, .. } => label.clone(),
        }
    }

    /// Opens the export and runs `work` on it on a blocking thread: the CSV
    /// reader is synchronous, and S3's stream is bridged into it.
    pub async fn read_blocking<T, F>(&self, work: F) -> Result<T, ImportError>
    where
        T: Send + 'static,
        F: FnOnce(Box<dyn Read + Send>) -> T + Send + 'static,
    {
        let input: Box<dyn Read + Send> = match self {
            Self::Reader { open, .. } => {
                let open = open.clone();
                return tokio::task::spawn_blocking(move || open().map(work))
                    .await
                    .map_err(|e| ImportError::Source(format!("the reading task failed: {e}")))?
                    .map_err(|e| ImportError::Source(e.to_string()));
            }
            Self::S3 {
                client,
                bucket,
                key,
                etag,
            } => {
                let mut etag = etag.lock().await;
                let mut request = client.get_object().bucket(bucket).key(key);
                if let Some(expected) = etag.as_ref() {
                    request = request.if_match(expected);
                }
                let object = request.send().await.map_err(|e| {
                    let code = e
                        .as_service_error()
                        .and_then(|s| s.code())
                        .unwrap_or_default()
                        .to_owned();
                    if code == "PreconditionFailed" {
                        ImportError::SourceChanged
                    } else if code == "NoSuchKey" {
                        ImportError::Missing(format!("s3://{bucket}/{key}"))
                    } else {
                        let detail = e
                            .as_service_error()
                            .and_then(|s| s.message())
                            .map(str::to_owned)
                            .unwrap_or_else(|| e.to_string());
                        ImportError::Source(format!("s3://{bucket}/{key}: {code} {detail}"))
                    }
                })?;
                if etag.is_none() {
                    *etag = object.e_tag.clone();
                }
                Box::new(SyncIoBridge::new(object.body.into_async_read()))
            }
        };
        tokio::task::spawn_blocking(move || work(input))
            .await
            .map_err(|e| ImportError::Source(format!("the reading task failed: {e}")))
    }
}

/// The account and the object key of an S3 notification record.
///
/// Keys arrive URL-encoded, a space as `+`; exports are uploaded under
/// `imports/<account id>/`.
pub fn object_key_from_event(encoded_key: &str) -> Result<(AccountId, String), ImportError> {
    let spaced = encoded_key.replace('+', " ");
    let key = percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map_err(|_| ImportError::BadKey(encoded_key.to_owned()))?
        .into_owned();
    let mut parts = key.splitn(3, '/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("imports"), Some(account), Some(name)) if !name.is_empty() => {
            let account = account
                .parse::<AccountId>()
                .map_err(|_| ImportError::BadKey(key.clone()))?;
            Ok((account, key))
        }
        _ => Err(ImportError::BadKey(key)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_decoded_as_s3_encodes_them() {
        let (account, key) =
            object_key_from_event("imports/acct-1/My+Shop+export%282%29.csv").unwrap();
        assert_eq!(account.as_str(), "acct-1");
        assert_eq!(key, "imports/acct-1/My Shop export(2).csv");
    }

    #[test]
    fn keys_outside_imports_are_refused() {
        assert!(matches!(
            object_key_from_event("other/acct-1/x.csv"),
            Err(ImportError::BadKey(_))
        ));
        assert!(matches!(
            object_key_from_event("imports/acct-1/"),
            Err(ImportError::BadKey(_))
        ));
        assert!(matches!(
            object_key_from_event("imports/a%23b/x.csv"),
            Err(ImportError::BadKey(_))
        ));
    }
}
