//! The build lease: `lock.json` in the dictionary's directory, created with
//! a conditional create (put-if-not-exists), renewed while the build runs,
//! deleted at the end. An expired lease (its holder crashed) is taken over
//! with a conditional update on its ETag where the store supports that (S3),
//! else by delete + conditional create (local, HDFS).
//!
//! The lease only serialises builders; correctness does not rest on it: a
//! version's manifest is itself published with a conditional create, so of
//! two builders that both believe they hold the lease (a takeover race, a
//! holder paused longer than the lease) exactly one publishes, and the other
//! fails clearly.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use serde::{Deserialize, Serialize};

use super::norm;
use crate::error::{Error, Result};

/// The content of `lock.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LeaseInfo {
    /// Who holds it (the build's `owner`).
    pub owner: String,
    /// A token unique to this acquisition.
    pub token: String,
    /// When it was taken (RFC 3339).
    pub acquired_at: String,
    /// When it lapses unless renewed (RFC 3339).
    pub expires_at: String,
    /// `expires_at` in milliseconds since the epoch.
    pub expires_at_ms: i64,
    /// Tokens of crashed builders whose lapsed leases led to this one (most
    /// recent last): their unpublished data files are leftovers to remove,
    /// even when a builder crashed again before removing them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub crashed: Vec<String>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A token no other acquisition shares.
fn new_token(owner: &str) -> String {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut h = blake3::Hasher::new();
    h.update(owner.as_bytes());
    h.update(&std::process::id().to_le_bytes());
    h.update(&SEQ.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    h.update(&t.as_nanos().to_le_bytes());
    h.finalize().to_hex()[..24].to_string()
}

/// Crashed builders remembered in a lease (a chain of crashes).
const MAX_CRASHED: usize = 16;

/// How to wait for and hold a lease.
#[derive(Debug, Clone)]
pub(crate) struct LeaseSettings {
    pub(crate) owner: String,
    pub(crate) ttl: Duration,
    pub(crate) wait: Duration,
    pub(crate) poll: Duration,
}

/// A held lease; renewed in the background until released.
#[derive(Debug)]
pub(crate) struct Lease {
    store: Arc<dyn ObjectStore>,
    path: Path,
    info: LeaseInfo,
    lost: Arc<AtomicBool>,
    renewer: tokio::task::JoinHandle<()>,
    /// Time spent waiting for it.
    pub(crate) waited: Duration,
    /// The tokens of the crashed builders whose lapsed leases led to this
    /// one: the data files they wrote carry them in their names.
    pub(crate) took_over: Vec<String>,
}

fn store_error(what: &str, e: object_store::Error) -> Error {
    Error::infra(format!("{what}: {}", crate::source::describe_store_error(&e)))
}

fn unsupported(store: &dyn ObjectStore) -> Error {
    Error::config(format!(
        "the dictionary store {store} does not support conditional create (put-if-not-exists), which dictionaries \
         need to publish safely; for S3 set the option conditional_put=etag (S3, MinIO, SeaweedFS and R2 support it)"
    ))
}

impl Lease {
    /// Waits for the lease at `path` (up to `s.wait`), then holds it.
    pub(crate) async fn acquire(
        store: Arc<dyn ObjectStore>,
        path: Path,
        what: &str,
        s: &LeaseSettings,
    ) -> Result<Lease> {
        let start = Instant::now();
        let deadline = start + s.wait;
        let ttl_ms = s.ttl.as_millis() as i64;
        loop {
            let info = LeaseInfo {
                owner: s.owner.clone(),
                token: new_token(&s.owner),
                acquired_at: rfc3339(now_ms()),
                expires_at: rfc3339(now_ms() + ttl_ms),
                expires_at_ms: now_ms() + ttl_ms,
                crashed: Vec::new(),
            };
            let body = PutPayload::from(serde_json::to_vec_pretty(&info).unwrap_or_default());
            match store.put_opts(&path, body.clone(), PutMode::Create.into()).await {
                Ok(_) => return Ok(Lease::hold(store, path, info, s, start.elapsed(), Vec::new())),
                Err(object_store::Error::AlreadyExists { .. }) => {}
                Err(object_store::Error::NotImplemented { .. }) => return Err(unsupported(store.as_ref())),
                Err(e) => return Err(store_error(&format!("cannot take the build lease of {what}"), e)),
            }
            // Someone holds it: read who, and until when.
            let got = match store.get(&path).await.map_err(norm) {
                Ok(g) => g,
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(store_error(&format!("cannot read the build lease of {what}"), e)),
            };
            let etag = got.meta.e_tag.clone();
            let modified_ms = got.meta.last_modified.timestamp_millis();
            let raw = match got.bytes().await.map_err(norm) {
                Ok(b) => b,
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(store_error(&format!("cannot read the build lease of {what}"), e)),
            };
            let holder: Option<LeaseInfo> = serde_json::from_slice(&raw).ok();
            // An unreadable lease file lapses a TTL after it was written.
            let expires_ms = holder.as_ref().map_or(modified_ms + ttl_ms, |h| h.expires_at_ms);
            if now_ms() > expires_ms {
                let mut info = info;
                if let Some(h) = &holder {
                    info.crashed = h.crashed.iter().chain([&h.token]).cloned().collect();
                    let excess = info.crashed.len().saturating_sub(MAX_CRASHED);
                    info.crashed.drain(..excess);
                }
                let body = PutPayload::from(serde_json::to_vec_pretty(&info).unwrap_or_default());
                if Lease::take_over(&store, &path, etag, &raw, body).await? {
                    tracing::warn!(
                        "took over the expired build lease of {what} from {}",
                        holder.as_ref().map_or("an unreadable lease file", |h| h.owner.as_str())
                    );
                    let crashed = info.crashed.clone();
                    return Ok(Lease::hold(store, path, info, s, start.elapsed(), crashed));
                }
                continue;
            }
            let now = Instant::now();
            if now >= deadline {
                let who = holder.as_ref().map_or("an unknown builder".to_string(), |h| format!("`{}`", h.owner));
                return Err(Error::infra(format!(
                    "dictionary {what} is being built by {who} (lease until {}); gave up after waiting {:.1} s \
                     (re-run when that build is done; a crashed build's lease lapses after its TTL)",
                    rfc3339(expires_ms),
                    s.wait.as_secs_f64()
                )));
            }
            tokio::time::sleep(s.poll.min(deadline - now)).await;
        }
    }

    /// Replaces an expired lease (whose content was `seen`) with `body`;
    /// false when someone else got there first.
    async fn take_over(
        store: &Arc<dyn ObjectStore>,
        path: &Path,
        etag: Option<String>,
        seen: &[u8],
        body: PutPayload,
    ) -> Result<bool> {
        if etag.is_some() {
            let mode = PutMode::Update(UpdateVersion { e_tag: etag, version: None });
            match store.put_opts(path, body.clone(), PutOptions::from(mode)).await.map_err(norm) {
                Ok(_) => return Ok(true),
                Err(object_store::Error::Precondition { .. })
                | Err(object_store::Error::AlreadyExists { .. })
                | Err(object_store::Error::NotFound { .. }) => return Ok(false),
                Err(object_store::Error::NotImplemented { .. }) => {}
                Err(e) => return Err(store_error("cannot take over an expired build lease", e)),
            }
        }
        // No conditional update: delete what we saw (if it is still that),
        // then create. Another builder doing the same at the same moment can
        // slip in between; the conditional manifest publish settles that.
        match store.get(path).await.map_err(norm) {
            Ok(g) => match g.bytes().await.map_err(norm) {
                Ok(b) if b.as_ref() == seen => {}
                Ok(_) => return Ok(false),
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(store_error("cannot read the build lease", e)),
            },
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(store_error("cannot read the build lease", e)),
        }
        match store.delete(path).await.map_err(norm) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(store_error("cannot remove an expired build lease", e)),
        }
        match store.put_opts(path, body, PutMode::Create.into()).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(store_error("cannot take the build lease", e)),
        }
    }

    fn hold(
        store: Arc<dyn ObjectStore>,
        path: Path,
        info: LeaseInfo,
        s: &LeaseSettings,
        waited: Duration,
        took_over: Vec<String>,
    ) -> Lease {
        let lost = Arc::new(AtomicBool::new(false));
        let renewer = tokio::spawn(renew(store.clone(), path.clone(), info.clone(), s.ttl, lost.clone()));
        Lease { store, path, info, lost, renewer, waited, took_over }
    }

    /// This acquisition's token (named in the data files it writes).
    pub(crate) fn token(&self) -> &str {
        &self.info.token
    }

    /// Checks that the lease is still ours (just before publishing).
    pub(crate) async fn check(&self, what: &str) -> Result<()> {
        let lost = || {
            Error::infra(format!(
                "lost the build lease of {what} (it expired and another builder took it over); nothing was \
                 published — re-run the build"
            ))
        };
        if self.lost.load(Ordering::SeqCst) {
            return Err(lost());
        }
        match read(&self.store, &self.path).await? {
            Some((h, _)) if h.token == self.info.token => Ok(()),
            _ => Err(lost()),
        }
    }

    /// Gives the lease up (if it is still ours).
    pub(crate) async fn release(self) {
        self.renewer.abort();
        if let Ok(Some((h, _))) = read(&self.store, &self.path).await
            && h.token == self.info.token
            && let Err(e) = self.store.delete(&self.path).await
        {
            tracing::warn!("cannot release the dictionary build lease {}: {e}", self.path);
        }
    }

    /// Leaves the lease in place, as a crashed builder would (tests).
    pub(crate) fn abandon(self) {
        self.renewer.abort();
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

/// The lease at `path`, with its ETag.
async fn read(store: &Arc<dyn ObjectStore>, path: &Path) -> Result<Option<(LeaseInfo, Option<String>)>> {
    match store.get(path).await.map_err(norm) {
        Ok(g) => {
            let etag = g.meta.e_tag.clone();
            match g.bytes().await.map_err(norm) {
                Ok(b) => Ok(serde_json::from_slice(&b).ok().map(|h| (h, etag))),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(store_error("cannot read the build lease", e)),
            }
        }
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(store_error("cannot read the build lease", e)),
    }
}

/// Who holds the lease at `path`, if anyone.
pub(crate) async fn holder(store: &Arc<dyn ObjectStore>, path: &Path) -> Result<Option<LeaseInfo>> {
    Ok(read(store, path).await?.map(|(h, _)| h))
}

/// Extends the lease every third of its TTL while it is ours.
async fn renew(store: Arc<dyn ObjectStore>, path: Path, mut info: LeaseInfo, ttl: Duration, lost: Arc<AtomicBool>) {
    let every = (ttl / 3).max(Duration::from_millis(50));
    loop {
        tokio::time::sleep(every).await;
        let etag = match read(&store, &path).await {
            Ok(Some((h, etag))) if h.token == info.token => etag,
            Ok(_) => {
                lost.store(true, Ordering::SeqCst);
                return;
            }
            Err(e) => {
                tracing::warn!("cannot renew the dictionary build lease {path}: {e}");
                continue;
            }
        };
        let exp = now_ms() + ttl.as_millis() as i64;
        info.expires_at_ms = exp;
        info.expires_at = rfc3339(exp);
        let body = PutPayload::from(serde_json::to_vec_pretty(&info).unwrap_or_default());
        let r = match etag {
            Some(e) => {
                let mode = PutMode::Update(UpdateVersion { e_tag: Some(e), version: None });
                match store.put_opts(&path, body.clone(), PutOptions::from(mode)).await {
                    Err(object_store::Error::NotImplemented { .. }) => store.put(&path, body).await.map(|_| ()),
                    Err(object_store::Error::Precondition { .. }) => {
                        lost.store(true, Ordering::SeqCst);
                        return;
                    }
                    r => r.map(|_| ()),
                }
            }
            None => store.put(&path, body).await.map(|_| ()),
        };
        if let Err(e) = r {
            tracing::warn!("cannot renew the dictionary build lease {path}: {e}");
        }
    }
}
