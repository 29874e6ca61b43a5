//! A small blocking client for a node's HTTP JSON API. Responses are untrusted: bodies are
//! size-limited and every answer is re-checked by the caller (hashes recomputed, signatures and
//! proofs verified locally).

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;
use std::io::Read;
use std::time::Duration;

/// Largest response body read, in bytes.
pub const MAX_RESPONSE_BYTES: u64 = 64 * 1024 * 1024;

/// Why a call failed.
#[derive(Debug)]
pub enum HttpError {
    /// The node answered with an error (`{"error": ..., "message": ...}`).
    Api { url: String, status: u16, error: String, message: String },
    /// No usable answer (connection, timeout, malformed body).
    Transport { url: String, reason: String },
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Api { url, status, error, message } => {
                write!(f, "{url}: the node answered {status} ({error}): {message}")
            }
            HttpError::Transport { url, reason } => write!(f, "{url}: {reason}"),
        }
    }
}

impl std::error::Error for HttpError {}

/// A node's API at one base URL.
#[derive(Clone)]
pub struct Http {
    base: String,
    client: reqwest::blocking::Client,
}

impl Http {
    /// A client for `url` (`http://HOST:PORT`, optionally with a path prefix).
    pub fn new(url: &str) -> anyhow::Result<Self> {
        let base = url.trim().trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) || base.len() <= "http://".len() {
            anyhow::bail!("--url {url:?}: expected http://HOST:PORT");
        }
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| anyhow::anyhow!("building the HTTP client: {e}"))?;
        Ok(Http { base, client })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// GET `path` and decode the JSON answer.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, HttpError> {
        let url = format!("{}{path}", self.base);
        let resp = self.client.get(&url).send().map_err(|e| transport(&url, e))?;
        decode(&url, resp)
    }

    /// GET `path`; a 404 is `None`.
    pub fn get_opt<T: DeserializeOwned>(&self, path: &str) -> Result<Option<T>, HttpError> {
        match self.get(path) {
            Ok(v) => Ok(Some(v)),
            Err(HttpError::Api { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// POST `body` as JSON to `path` and decode the JSON answer.
    pub fn post<B: Serialize + ?Sized, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T, HttpError> {
        let url = format!("{}{path}", self.base);
        let resp = self.client.post(&url).json(body).send().map_err(|e| transport(&url, e))?;
        decode(&url, resp)
    }
}

fn transport(url: &str, e: reqwest::Error) -> HttpError {
    let reason = if e.is_connect() {
        "cannot connect (is the node running at this address?)".to_string()
    } else if e.is_timeout() {
        "timed out".to_string()
    } else {
        e.to_string()
    };
    HttpError::Transport { url: url.to_string(), reason }
}

fn decode<T: DeserializeOwned>(url: &str, resp: reqwest::blocking::Response) -> Result<T, HttpError> {
    let status = resp.status().as_u16();
    let mut body = Vec::new();
    resp.take(MAX_RESPONSE_BYTES.saturating_add(1))
        .read_to_end(&mut body)
        .map_err(|e| HttpError::Transport { url: url.to_string(), reason: format!("reading the answer: {e}") })?;
    if body.len() as u64 > MAX_RESPONSE_BYTES {
        return Err(HttpError::Transport {
            url: url.to_string(),
            reason: format!("answer larger than {MAX_RESPONSE_BYTES} bytes"),
        });
    }
    if !(200..300).contains(&status) {
        #[derive(serde::Deserialize)]
        struct ApiError {
            error: String,
            message: String,
        }
        let (error, message) = match serde_json::from_slice::<ApiError>(&body) {
            Ok(e) => (e.error, e.message),
            Err(_) => ("http".to_string(), String::from_utf8_lossy(&body).chars().take(500).collect()),
        };
        return Err(HttpError::Api { url: url.to_string(), status, error, message });
    }
    serde_json::from_slice(&body)
        .map_err(|e| HttpError::Transport { url: url.to_string(), reason: format!("unexpected answer: {e}") })
}
