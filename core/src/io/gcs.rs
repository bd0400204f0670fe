//! Writes to Google Cloud Storage through the JSON API's media upload
//! (`POST /upload/storage/v1/b/BUCKET/o?uploadType=media&name=KEY`), the way
//! gcsfs and Google's own clients upload. Google serves it, and so does
//! fake-gcs-server, which does not take the XML API's object PUT that
//! object_store's GCS client sends. Reads stay with object_store.

use object_store::gcp::GoogleCloudStorage;
use std::sync::Arc;

/// Uploads objects into one bucket.
#[derive(Clone)]
pub(crate) struct Uploader {
    bucket: String,
    base_url: String,
    store: Arc<GoogleCloudStorage>,
    http: reqwest::Client,
}

/// The service's address: `GOOGLE_BASE_URL`, else the `gcs_base_url` of the
/// service-account key (`GOOGLE_SERVICE_ACCOUNT_KEY`, or the file named by
/// `GOOGLE_SERVICE_ACCOUNT` / `GOOGLE_APPLICATION_CREDENTIALS`), else Google's.
fn base_url() -> String {
    if let Ok(url) = std::env::var("GOOGLE_BASE_URL") {
        return url;
    }
    let key = std::env::var("GOOGLE_SERVICE_ACCOUNT_KEY")
        .ok()
        .or_else(|| {
            ["GOOGLE_SERVICE_ACCOUNT", "GOOGLE_APPLICATION_CREDENTIALS"]
                .iter()
                .find_map(|var| std::fs::read_to_string(std::env::var(var).ok()?).ok())
        });
    key.and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|json| json["gcs_base_url"].as_str().map(String::from))
        .unwrap_or_else(|| "https://storage.googleapis.com".to_string())
}

/// Percent-encodes a query value.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Uploader {
    pub(crate) fn new(bucket: &str, store: Arc<GoogleCloudStorage>) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Uploader {
            bucket: bucket.to_string(),
            base_url: base_url().trim_end_matches('/').to_string(),
            store,
            http,
        })
    }

    /// Writes `bytes` as object `key`, replacing what was there.
    pub(crate) async fn upload(&self, key: &str, bytes: Vec<u8>) -> Result<(), String> {
        let token = self
            .store
            .credentials()
            .get_credential()
            .await
            .map_err(|e| e.to_string())?;
        let url = format!(
            "{}/upload/storage/v1/b/{}/o?uploadType=media&name={}",
            self.base_url,
            encode(&self.bucket),
            encode(key)
        );
        let mut request = self
            .http
            .post(url)
            .header("Content-Type", "application/octet-stream")
            .body(bytes);
        if !token.bearer.is_empty() {
            request = request.bearer_auth(&token.bearer);
        }
        let response = request.send().await.map_err(|e| e.to_string())?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response.text().await.unwrap_or_default();
        Err(format!("upload failed with HTTP {status}: {body}"))
    }
}
