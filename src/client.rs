//! The Stream Load HTTP client: FE redirect, BE upload, label state, error
//! logs, and the one classifier of outcomes (protocol §3–§5).

use std::fmt;
use std::time::Duration;

use base64::Engine;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value as Json;

use crate::error::{Error, Result};

/// A password that never prints.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The secret itself; only for authentication.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Connection settings for the FE HTTP endpoint.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// FE base URL (`http://host:8030`).
    pub fe: url::Url,
    /// User name.
    pub user: String,
    /// Password.
    pub password: Secret,
    /// PEM file with extra CA certificates for HTTPS.
    pub ca_file: Option<std::path::PathBuf>,
    /// Connect timeout.
    pub connect_timeout: Duration,
}

/// A Stream Load client.
#[derive(Debug, Clone)]
pub struct Client {
    settings: HttpSettings,
    http: reqwest::Client,
    auth: HeaderValue,
}

/// What a Stream Load reply said (protocol §3.1 and §3.3), parsed by key name.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct LoadReply {
    /// `Status` (or `status`).
    pub status: String,
    /// `Message` / `msg` / `message`.
    pub message: String,
    /// `ExistingJobStatus`, with `Label Already Exists`.
    pub existing_job_status: Option<String>,
    /// `TxnId`.
    pub txn_id: Option<i64>,
    /// `NumberTotalRows`.
    pub total_rows: Option<u64>,
    /// `NumberLoadedRows`.
    pub loaded_rows: Option<u64>,
    /// `NumberFilteredRows`.
    pub filtered_rows: Option<u64>,
    /// `NumberUnselectedRows`.
    pub unselected_rows: Option<u64>,
    /// `LoadBytes`.
    pub load_bytes: Option<u64>,
    /// `ErrorURL`.
    pub error_url: Option<String>,
}

impl LoadReply {
    /// Parses a reply body; `None` if it is not a JSON object.
    pub fn parse(body: &[u8]) -> Option<LoadReply> {
        let v: Json = serde_json::from_slice(body).ok()?;
        let o = v.as_object()?;
        let get = |names: &[&str]| -> Option<&Json> {
            names.iter().find_map(|n| o.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v))
        };
        let s = |names: &[&str]| get(names).and_then(|v| v.as_str().map(str::to_string));
        let n =
            |names: &[&str]| get(names).and_then(|v| v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok())));
        Some(LoadReply {
            status: s(&["Status"])?,
            message: s(&["Message", "msg"]).unwrap_or_default(),
            existing_job_status: s(&["ExistingJobStatus"]),
            txn_id: get(&["TxnId"]).and_then(|v| v.as_i64()),
            total_rows: n(&["NumberTotalRows"]),
            loaded_rows: n(&["NumberLoadedRows"]),
            filtered_rows: n(&["NumberFilteredRows"]),
            unselected_rows: n(&["NumberUnselectedRows"]),
            load_bytes: n(&["LoadBytes"]),
            error_url: s(&["ErrorURL"]),
        })
    }
}

/// The classifier's verdict on one attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The data is committed (`Success`, `Publish Timeout`, or the label was
    /// already FINISHED).
    Committed {
        /// True when an earlier attempt committed it (`Label Already Exists`
        /// + `FINISHED`): this reply carries no row counts.
        earlier: bool,
    },
    /// Unknown: resolve through `get_load_state` before doing anything else.
    Ambiguous(String),
    /// Not committed; retry with the same label right away.
    Retry(String),
    /// Not committed; the server is throttling: shrink concurrency, back off,
    /// then retry with the same label.
    Throttled(String),
    /// Rows were rejected (`too many filtered rows`): a data error.
    DataError(String),
    /// Retrying cannot help (credentials, schema, privileges).
    Fatal(String),
}

/// Message fragments that mean "the server is overloaded, back off".
const THROTTLE: &[&str] = &[
    "too many versions",
    "current running txns on db",
    "larger than limit",
    "memory of process exceed limit",
    "mem usage has exceed the limit",
    "mem_limit_exceeded",
    "exceed http cuncurrent limit",
    "exceed http concurrent limit",
    "service is shutting down",
    "no backend alive",
    "no backend or compute node alive",
    "backend node not found",
    "please try again later",
    "too many tasks",
];

/// Messages for which retrying cannot help.
const FATAL: &[&str] = &[
    "access denied",
    "unknown database",
    "unknown table",
    "does not exist",
    "primary key size exceed the limit",
    "only primary key table support partial update",
    "data size exceeds quota",
    "label format error",
    "is too long",
    "exceed limit",
    "exceed the max size",
    "no such column",
    "unknown column",
    "column count",
    "invalid ",
    "require the function return type",
    "can not specify both",
    "unknown data format",
    "unsupported compression type",
    "there is no 100-continue header",
    "has no default value",
];

/// Classifies a parsed Stream Load reply.
pub fn classify(reply: &LoadReply) -> Verdict {
    let status = reply.status.to_ascii_lowercase();
    let msg = reply.message.to_ascii_lowercase();
    match status.as_str() {
        "success" | "ok" => return Verdict::Committed { earlier: false },
        "publish timeout" | "publish_timeout" => return Verdict::Committed { earlier: false },
        "label already exists" | "label_already_exists" => {
            return match reply.existing_job_status.as_deref().map(str::to_ascii_uppercase).as_deref() {
                Some("FINISHED") => Verdict::Committed { earlier: true },
                _ => Verdict::Ambiguous(format!("label is still in use: {}", reply.message)),
            };
        }
        _ => {}
    }
    if msg.contains("too many filtered rows") {
        return Verdict::DataError(reply.message.clone());
    }
    if msg.contains("transaction status unknown") || msg.contains("you can retry with same label") {
        return Verdict::Ambiguous(reply.message.clone());
    }
    if THROTTLE.iter().any(|t| msg.contains(t)) {
        return Verdict::Throttled(reply.message.clone());
    }
    if FATAL.iter().any(|t| msg.contains(t)) {
        return Verdict::Fatal(reply.message.clone());
    }
    Verdict::Retry(if reply.message.is_empty() { reply.status.clone() } else { reply.message.clone() })
}

/// Transaction state from `get_load_state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelState {
    /// Never seen, or forgotten.
    Unknown,
    /// PREPARE / PREPARED: still in flight.
    Running,
    /// COMMITTED / VISIBLE.
    Committed,
    /// ABORTED: the label can be reused.
    Aborted,
}

/// Result of one upload attempt.
#[derive(Debug)]
pub enum Attempt {
    /// The server replied.
    Reply(LoadReply),
    /// No usable reply: the outcome is unknown.
    Lost(String),
    /// The request was refused before any transaction could begin (FE-level
    /// failure, HTTP error status).
    Refused(Verdict),
}

impl Client {
    /// A client for the given FE.
    pub fn new(settings: HttpSettings) -> Result<Client> {
        let mut b = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(settings.connect_timeout)
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(30));
        if let Some(ca) = &settings.ca_file {
            let pem =
                std::fs::read(ca).map_err(|e| Error::config(format!("cannot read CA file `{}`: {e}", ca.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| Error::config(format!("bad CA file `{}`: {e}", ca.display())))?;
            if certs.is_empty() {
                return Err(Error::config(format!(
                    "bad CA file `{}`: it holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)",
                    ca.display()
                )));
            }
            for cert in certs {
                b = b.add_root_certificate(cert);
            }
        }
        let http = b.build().map_err(|e| Error::config(format!("cannot build HTTP client: {e}")))?;
        let token = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            settings.user,
            settings.password.expose()
        ));
        let mut auth = HeaderValue::from_str(&format!("Basic {token}"))
            .map_err(|_| Error::config("user name or password holds characters not allowed in HTTP headers"))?;
        auth.set_sensitive(true);
        Ok(Client { settings, http, auth })
    }

    /// A TLS handshake that failed because the server's certificate could
    /// not be verified: retrying cannot help, the CA must be configured.
    fn untrusted(&self, e: &reqwest::Error) -> Option<String> {
        if !e.is_connect() {
            return None;
        }
        let chain = err_chain(e);
        chain.to_ascii_lowercase().contains("certificate").then(|| {
            format!(
                "cannot verify the TLS certificate of FE {} ({chain}); name the CA that signed it in `ca_file`",
                self.settings.fe
            )
        })
    }

    /// The FE base URL.
    pub fn fe(&self) -> &url::Url {
        &self.settings.fe
    }

    fn fe_url(&self, path: &str) -> Result<url::Url> {
        self.settings.fe.join(path).map_err(|e| Error::config(format!("bad FE URL: {e}")))
    }

    /// Asks the FE where to send a load: returns the BE URL of the 307, or
    /// the FE's refusal.
    pub async fn redirect(
        &self,
        db: &str,
        table: &str,
        headers: &HeaderMap,
    ) -> Result<std::result::Result<url::Url, Attempt>> {
        let url = self.fe_url(&format!("/api/{}/{}/_stream_load", enc(db), enc(table)))?;
        let resp = self
            .http
            .put(url.clone())
            .headers(headers.clone())
            .header(reqwest::header::AUTHORIZATION, self.auth.clone())
            .header(reqwest::header::EXPECT, "100-continue")
            .header(reqwest::header::CONTENT_LENGTH, "0")
            .timeout(Duration::from_secs(60))
            .send()
            .await;
        let resp = match resp {
            Ok(r) => r,
            Err(e) if self.untrusted(&e).is_some() => {
                return Ok(Err(Attempt::Refused(Verdict::Fatal(self.untrusted(&e).unwrap_or_default()))));
            }
            // Nothing was begun on the server: the FE starts no transaction.
            // An FE that is down or restarting is a failed attempt, within
            // `max_retries` (not the much longer throttling budget).
            Err(e) => {
                return Ok(Err(Attempt::Refused(Verdict::Retry(format!(
                    "FE {} did not answer: {}",
                    self.settings.fe,
                    err_chain(&e)
                )))));
            }
        };
        let status = resp.status();
        if status == reqwest::StatusCode::TEMPORARY_REDIRECT {
            let loc = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| Error::infra("FE sent a redirect without a Location"))?;
            let be = url.join(loc).map_err(|e| {
                Error::infra(format!("FE sent a bad redirect `{}`: {e}", crate::config::redact_url(loc)))
            })?;
            return Ok(Ok(be));
        }
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Ok(Err(Attempt::Refused(Verdict::Fatal(format!(
                "FE {} rejected the credentials of user `{}` (HTTP 401)",
                self.settings.fe, self.settings.user
            )))));
        }
        let body = resp.bytes().await.unwrap_or_default();
        if !status.is_success() {
            let v = if status.is_server_error() { Verdict::Throttled } else { Verdict::Fatal };
            return Ok(Err(Attempt::Refused(v(format!("FE answered HTTP {status}: {}", snippet(&body))))));
        }
        match LoadReply::parse(&body) {
            Some(r) => Ok(Err(Attempt::Reply(r))),
            None => {
                Ok(Err(Attempt::Refused(Verdict::Retry(format!("FE sent an unreadable reply: {}", snippet(&body))))))
            }
        }
    }

    /// Uploads a body to the BE the FE chose.
    pub async fn upload(&self, be: url::Url, headers: &HeaderMap, body: reqwest::Body, timeout: Duration) -> Attempt {
        let resp = self
            .http
            .put(be.clone())
            .headers(headers.clone())
            .header(reqwest::header::AUTHORIZATION, self.auth.clone())
            .timeout(timeout)
            .body(body)
            .send()
            .await;
        let resp = match resp {
            Ok(r) => r,
            // No connection to the BE: nothing reached it, so no transaction
            // began (the FE's redirect begins none). Known, not unknown: a
            // load StarRocks never saw must not wait on its label's state.
            Err(e) if e.is_connect() => {
                return Attempt::Refused(Verdict::Retry(format!(
                    "cannot connect to BE {}: {}",
                    host_of(&be),
                    err_chain(&e)
                )));
            }
            Err(e) => return Attempt::Lost(format!("upload to {} failed: {}", host_of(&be), err_chain(&e))),
        };
        let status = resp.status();
        let body = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => return Attempt::Lost(format!("reply from {} was cut: {}", host_of(&be), err_chain(&e))),
        };
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Attempt::Refused(Verdict::Fatal(format!(
                "BE {} rejected the credentials (HTTP 401)",
                host_of(&be)
            )));
        }
        if !status.is_success() {
            // A 5xx from a proxy or a BE in trouble: the outcome is unknown.
            return Attempt::Lost(format!("BE {} answered HTTP {status}: {}", host_of(&be), snippet(&body)));
        }
        match LoadReply::parse(&body) {
            Some(r) => Attempt::Reply(r),
            None => Attempt::Lost(format!("BE {} sent an unreadable reply: {}", host_of(&be), snippet(&body))),
        }
    }

    /// `GET /api/{db}/get_load_state?label=`.
    pub async fn label_state(&self, db: &str, label: &str) -> Result<LabelState> {
        let mut url = self.fe_url(&format!("/api/{}/get_load_state", enc(db)))?;
        url.query_pairs_mut().append_pair("label", label);
        let mut next = url;
        for _ in 0..3 {
            let resp = self
                .http
                .get(next.clone())
                .header(reqwest::header::AUTHORIZATION, self.auth.clone())
                .timeout(Duration::from_secs(30))
                .send()
                .await
                .map_err(|e| Error::infra(format!("get_load_state for `{label}` failed: {}", err_chain(&e))))?;
            let status = resp.status();
            if status == reqwest::StatusCode::TEMPORARY_REDIRECT {
                let loc = resp.headers().get(reqwest::header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("");
                next = next.join(loc).map_err(|e| Error::infra(format!("bad redirect from get_load_state: {e}")))?;
                continue;
            }
            if status == reqwest::StatusCode::UNAUTHORIZED {
                return Err(Error::config(format!("FE {} rejected the credentials (HTTP 401)", self.settings.fe)));
            }
            let body = resp.bytes().await.map_err(|e| Error::infra(format!("get_load_state reply cut: {e}")))?;
            if !status.is_success() {
                return Err(Error::infra(format!("get_load_state answered HTTP {status}: {}", snippet(&body))));
            }
            let v: Json = serde_json::from_slice(&body)
                .map_err(|_| Error::infra(format!("get_load_state sent an unreadable reply: {}", snippet(&body))))?;
            let field = |k: &str| {
                v.as_object()
                    .and_then(|o| o.iter().find(|(n, _)| n.eq_ignore_ascii_case(k)))
                    .and_then(|(_, v)| v.as_str())
                    .map(str::to_string)
            };
            if let Some(state) = field("state") {
                return Ok(match state.to_ascii_uppercase().as_str() {
                    "VISIBLE" | "COMMITTED" => LabelState::Committed,
                    "PREPARE" | "PREPARED" => LabelState::Running,
                    "ABORTED" => LabelState::Aborted,
                    _ => LabelState::Unknown,
                });
            }
            let msg = field("msg").or_else(|| field("message")).unwrap_or_default();
            return Err(Error::infra(format!("get_load_state for `{label}` failed: {msg}")));
        }
        Err(Error::infra("get_load_state redirected too often"))
    }

    /// A transaction-interface call (`/api/transaction/{op}`): asks the FE,
    /// follows its 307 to the BE (re-sending credentials), and returns the
    /// reply. `body` is only sent to the BE, for `load`.
    pub async fn txn(&self, op: &str, headers: &HeaderMap, body: Option<reqwest::Body>, timeout: Duration) -> Attempt {
        let url = match self.fe_url(&format!("/api/transaction/{op}")) {
            Ok(u) => u,
            Err(e) => return Attempt::Refused(Verdict::Fatal(e.to_string())),
        };
        let method = if op == "load" { reqwest::Method::PUT } else { reqwest::Method::POST };
        let resp = self
            .http
            .request(method.clone(), url.clone())
            .headers(headers.clone())
            .header(reqwest::header::AUTHORIZATION, self.auth.clone())
            .header(reqwest::header::EXPECT, "100-continue")
            .header(reqwest::header::CONTENT_LENGTH, "0")
            .timeout(Duration::from_secs(60))
            .send()
            .await;
        let resp = match resp {
            Ok(r) => r,
            Err(e) => {
                // A failed handshake sent nothing: no transaction exists.
                if let Some(why) = self.untrusted(&e) {
                    return Attempt::Refused(Verdict::Fatal(why));
                }
                return Attempt::Lost(format!("FE {} did not answer: {}", self.settings.fe, err_chain(&e)));
            }
        };
        let status = resp.status();
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Attempt::Refused(Verdict::Fatal(format!(
                "FE {} rejected the credentials of user `{}` (HTTP 401)",
                self.settings.fe, self.settings.user
            )));
        }
        let target = if status == reqwest::StatusCode::TEMPORARY_REDIRECT {
            match resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|l| url.join(l).ok())
            {
                Some(u) => u,
                None => return Attempt::Lost("FE sent a redirect without a usable Location".into()),
            }
        } else {
            // The FE answered itself (commit/rollback of a prepared or
            // finished transaction, or an error).
            let body = resp.bytes().await.unwrap_or_default();
            return match LoadReply::parse(&body) {
                Some(r) => Attempt::Reply(r),
                None => Attempt::Lost(format!("FE sent an unreadable reply (HTTP {status}): {}", snippet(&body))),
            };
        };
        let mut req = self
            .http
            .request(method, target.clone())
            .headers(headers.clone())
            .header(reqwest::header::AUTHORIZATION, self.auth.clone())
            .timeout(timeout);
        req = match body {
            Some(b) => req.body(b),
            None => req.header(reqwest::header::CONTENT_LENGTH, "0"),
        };
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return Attempt::Lost(format!("{op} on {} failed: {}", host_of(&target), err_chain(&e))),
        };
        let status = resp.status();
        let body = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => return Attempt::Lost(format!("{op} reply from {} was cut: {}", host_of(&target), err_chain(&e))),
        };
        if !status.is_success() {
            return Attempt::Lost(format!("{op} on {} answered HTTP {status}: {}", host_of(&target), snippet(&body)));
        }
        match LoadReply::parse(&body) {
            Some(r) => Attempt::Reply(r),
            None => Attempt::Lost(format!("{op} on {} sent an unreadable reply: {}", host_of(&target), snippet(&body))),
        }
    }

    /// [`Client::label_state`], retrying transient failures (an FE that does
    /// not answer for a while) for up to `patience`.
    pub async fn label_state_patiently(&self, db: &str, label: &str, patience: Duration) -> Result<LabelState> {
        let start = std::time::Instant::now();
        let mut wait = Duration::from_millis(200);
        loop {
            match self.label_state(db, label).await {
                Ok(s) => return Ok(s),
                Err(e) if e.kind() == crate::error::ErrorKind::Infra && start.elapsed() < patience => {
                    tracing::warn!("get_load_state for `{label}` failed, retrying: {e}");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Fetches the first lines of a load's error log.
    pub async fn error_log(&self, url: &str, max_bytes: usize) -> Option<String> {
        let resp = self.http.get(url).timeout(Duration::from_secs(30)).send().await.ok()?;
        let body = resp.bytes().await.ok()?;
        let text = String::from_utf8_lossy(&body[..body.len().min(max_bytes)]).into_owned();
        Some(text)
    }
}

/// Builds a header value, refusing anything that could inject into HTTP.
pub fn header(name: &'static str, value: &str) -> Result<(HeaderName, HeaderValue)> {
    if value.bytes().any(|b| b < 0x20 && b != b'\t' || b == 0x7f) {
        return Err(Error::config(format!("header `{name}` holds control characters")));
    }
    let v =
        HeaderValue::from_str(value).map_err(|_| Error::config(format!("header `{name}` holds invalid characters")))?;
    Ok((HeaderName::from_static(name), v))
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>().replace('+', "%20")
}

fn host_of(u: &url::Url) -> String {
    format!("{}:{}", u.host_str().unwrap_or("?"), u.port_or_known_default().unwrap_or(0))
}

fn snippet(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(&b[..b.len().min(300)]);
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The error and its causes, on one line.
pub fn err_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: &str, msg: &str, existing: Option<&str>) -> LoadReply {
        LoadReply {
            status: status.into(),
            message: msg.into(),
            existing_job_status: existing.map(str::to_string),
            ..Default::default()
        }
    }

    #[test]
    fn classifies_outcomes_per_protocol() {
        assert_eq!(classify(&reply("Success", "OK", None)), Verdict::Committed { earlier: false });
        assert_eq!(classify(&reply("Publish Timeout", "", None)), Verdict::Committed { earlier: false });
        assert_eq!(
            classify(&reply("Label Already Exists", "Label [x] has already been used.", Some("FINISHED"))),
            Verdict::Committed { earlier: true }
        );
        assert!(matches!(classify(&reply("Label Already Exists", "", Some("RUNNING"))), Verdict::Ambiguous(_)));
        assert!(matches!(classify(&reply("Fail", "too many filtered rows", None)), Verdict::DataError(_)));
        assert!(matches!(
            classify(&reply("Fail", "current running txns on db 10 is 100, larger than limit 100", None)),
            Verdict::Throttled(_)
        ));
        assert!(matches!(
            classify(&reply(
                "Fail",
                "Failed to load data into tablet 1, because of too many versions, current/limit: 1001/1000",
                None
            )),
            Verdict::Throttled(_)
        ));
        assert!(matches!(classify(&reply("Fail", "Access denied for user 'x'", None)), Verdict::Fatal(_)));
        assert!(matches!(
            classify(&reply(
                "Fail",
                "Commit transaction fail cause Transaction status unknown, you can retry with same label.",
                None
            )),
            Verdict::Ambiguous(_)
        ));
        assert!(matches!(
            classify(&reply("Fail", "receive body don't equal with body bytes", None)),
            Verdict::Retry(_)
        ));
    }

    #[test]
    fn parses_replies_by_key_name() {
        let r = LoadReply::parse(br#"{"TxnId": 3, "Label": "l", "Status": "Success", "Message": "OK", "NumberTotalRows": 10, "NumberLoadedRows": 10, "NumberFilteredRows": 0, "LoadBytes": 99}"#).unwrap();
        assert_eq!(r.status, "Success");
        assert_eq!(r.loaded_rows, Some(10));
        assert_eq!(r.txn_id, Some(3));
        let r =
            LoadReply::parse(br#"{"status":"FAILED","code":"1","msg":"no backend","message":"no backend"}"#).unwrap();
        assert_eq!(r.status, "FAILED");
        assert_eq!(r.message, "no backend");
        assert!(LoadReply::parse(b"<html>").is_none());
    }

    /// A BE nothing listens on: the upload never reached StarRocks, which
    /// is known (refused, to be retried), not an unknown outcome.
    #[tokio::test]
    async fn an_upload_that_cannot_connect_is_refused_not_lost() {
        let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = dead.local_addr().unwrap().port();
        drop(dead);
        let c = Client::new(HttpSettings {
            fe: url::Url::parse("http://127.0.0.1:1").unwrap(),
            user: "root".into(),
            password: Secret::new(""),
            ca_file: None,
            connect_timeout: Duration::from_secs(5),
        })
        .unwrap();
        let be = url::Url::parse(&format!("http://127.0.0.1:{port}/api/db/t/_stream_load")).unwrap();
        match c.upload(be, &HeaderMap::new(), reqwest::Body::from("1\n"), Duration::from_secs(5)).await {
            Attempt::Refused(Verdict::Retry(m)) => assert!(m.contains("cannot connect"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "*** \"***\"");
    }

    #[test]
    fn headers_refuse_injection() {
        assert!(header("label", "ok_label").is_ok());
        assert!(header("label", "a\r\nX-Evil: 1").is_err());
    }
}
