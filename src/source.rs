//! Sources: one URL scheme → one object store, and Hive-layout listing.
//!
//! A source is a directory (or a single file) on an object store. Files under
//! `k=v/` directories get the partition values `k = v`; names starting with
//! `_` or `.` and zero-byte files are skipped, as Hive and Spark do.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion::execution::object_store::ObjectStoreUrl;
use futures::stream::{self, StreamExt, TryStreamExt};
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use object_store::path::Path;

use crate::error::{Error, Result};

/// How many directory listings run at once.
const LIST_CONCURRENCY: usize = 32;

/// Options for opening object stores (credentials, endpoints).
#[derive(Debug, Clone, Default)]
pub struct StoreOptions {
    /// S3 options (object_store's `AmazonS3ConfigKey` names: `endpoint`,
    /// `region`, `access_key_id`, `secret_access_key`, `session_token`,
    /// `allow_http`, `virtual_hosted_style_request`, …) and `profile`.
    pub s3: BTreeMap<String, String>,
    /// Hadoop configuration for HDFS (`dfs.ha.namenodes.ns`, …), on top of
    /// `HADOOP_CONF_DIR`.
    pub hdfs: BTreeMap<String, String>,
    /// Longest wait for one listing or footer read (a NameNode or endpoint
    /// that does not answer); default 60 s.
    pub timeout: Option<std::time::Duration>,
}

impl StoreOptions {
    /// The per-operation timeout.
    pub fn op_timeout(&self) -> std::time::Duration {
        self.timeout.unwrap_or(std::time::Duration::from_secs(60))
    }
}

/// Runs a store operation with a deadline.
pub async fn with_timeout<T>(
    what: impl FnOnce() -> String,
    d: std::time::Duration,
    f: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(d, f).await {
        Ok(r) => r,
        Err(_) => Err(Error::infra(format!("{} did not answer within {} s", what(), d.as_secs()))),
    }
}

/// An opened source location.
#[derive(Clone)]
pub struct Location {
    /// The store holding the data.
    pub store: Arc<dyn ObjectStore>,
    /// The URL DataFusion knows the store by (`file://`, `s3://bucket`).
    pub store_url: ObjectStoreUrl,
    /// The path of the source directory (or file) inside the store.
    pub root: Path,
    /// The source as the user wrote it, for messages.
    pub display: String,
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Location").field("store_url", &self.store_url).field("root", &self.root).finish()
    }
}

impl Location {
    /// The user-facing name of a path in this store (`/data/x.parquet`,
    /// `s3://bucket/x.parquet`).
    pub fn display_path(&self, p: &Path) -> String {
        let base = self.store_url.as_str().trim_end_matches('/');
        if base == "file:" || base == "file://" { format!("/{p}") } else { format!("{base}/{p}") }
    }
}

/// Reads a profile's credentials from `~/.aws/credentials` and
/// `~/.aws/config` (or the files `AWS_SHARED_CREDENTIALS_FILE` and
/// `AWS_CONFIG_FILE` name): (access key, secret, session token, region).
fn aws_profile(profile: &str) -> Option<BTreeMap<String, String>> {
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from)?;
    let creds = std::env::var_os("AWS_SHARED_CREDENTIALS_FILE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| home.join(".aws/credentials"));
    let config =
        std::env::var_os("AWS_CONFIG_FILE").map(std::path::PathBuf::from).unwrap_or_else(|| home.join(".aws/config"));
    let section = |path: &std::path::Path, names: &[String]| -> BTreeMap<String, String> {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let mut out = BTreeMap::new();
        let mut inside = false;
        for line in text.lines() {
            let l = line.trim();
            if l.starts_with('[') && l.ends_with(']') {
                let name = l[1..l.len() - 1].trim();
                inside = names.iter().any(|n| n == name);
            } else if inside && let Some((k, v)) = l.split_once('=') {
                out.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        out
    };
    let mut out = BTreeMap::new();
    let c = section(&creds, &[profile.to_string()]);
    let f = section(&config, &[format!("profile {profile}"), profile.to_string()]);
    for (from, to) in [
        ("aws_access_key_id", "access_key_id"),
        ("aws_secret_access_key", "secret_access_key"),
        ("aws_session_token", "session_token"),
        ("region", "region"),
    ] {
        if let Some(v) = c.get(from).or_else(|| f.get(from)) {
            out.insert(to.to_string(), v.clone());
        }
    }
    if out.is_empty() { None } else { Some(out) }
}

/// Opens the store for a source URL or local path: `s3://` / `s3a://`
/// (object_store's AWS builder: environment, profile, instance role, or the
/// job's options), `hdfs://` / `viewfs://` (hdfs-native, `HADOOP_CONF_DIR`,
/// simple auth as `HADOOP_USER_NAME`, Kerberos from the ticket cache),
/// `file://` and bare paths.
pub fn open(source: &str, opts: &StoreOptions) -> Result<Location> {
    if let Some(rest) = source.strip_prefix("s3://").or_else(|| source.strip_prefix("s3a://")) {
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(Error::config(format!("source `{source}` has no bucket")));
        }
        let mut b = object_store::aws::AmazonS3Builder::from_env().with_bucket_name(bucket);
        // A named profile fills what the environment does not set.
        let profile = opts.s3.get("profile").cloned().or_else(|| std::env::var("AWS_PROFILE").ok());
        let has_env_keys = std::env::var_os("AWS_ACCESS_KEY_ID").is_some();
        if let Some(p) = profile
            && !has_env_keys
        {
            let found =
                aws_profile(&p).ok_or_else(|| Error::config(format!("AWS profile `{p}` not found in ~/.aws")))?;
            for (k, v) in found {
                let key: object_store::aws::AmazonS3ConfigKey =
                    k.parse().map_err(|_| Error::internal(format!("bad S3 key {k}")))?;
                b = b.with_config(key, v);
            }
        }
        for (k, v) in &opts.s3 {
            if k == "profile" {
                continue;
            }
            let key: object_store::aws::AmazonS3ConfigKey =
                k.parse().map_err(|_| Error::config(format!("unknown S3 option `{k}`")))?;
            b = b.with_config(key, v);
        }
        let store = b.build().map_err(|e| Error::config(format!("cannot configure S3 for `{source}`: {e}")))?;
        return Ok(Location {
            store: Arc::new(store),
            store_url: ObjectStoreUrl::parse(format!("s3://{bucket}")).map_err(Error::from)?,
            root: remote_path(source, key)?,
            display: source.to_string(),
        });
    }
    if let Some(scheme) = ["hdfs://", "viewfs://"].into_iter().find(|s| source.starts_with(s)) {
        let rest = &source[scheme.len()..];
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        if authority.is_empty() {
            return Err(Error::config(format!("source `{source}` has no NameNode or nameservice")));
        }
        let base = format!("{scheme}{authority}");
        let store = hdfs_native_object_store::HdfsObjectStoreBuilder::new()
            .with_url(base.clone())
            .with_config(opts.hdfs.clone())
            .build()
            .map_err(|e| Error::config(format!("cannot configure HDFS for `{source}`: {e}")))?;
        return Ok(Location {
            store: Arc::new(store),
            store_url: ObjectStoreUrl::parse(&base).map_err(Error::from)?,
            root: remote_path(source, path)?,
            display: source.to_string(),
        });
    }
    if let Some((scheme, _)) = source.split_once("://")
        && scheme != "file"
    {
        return Err(Error::config(format!("unsupported source scheme `{scheme}://` in `{source}`")));
    }
    // `file:///x`, `file://localhost/x` (RFC 8089), and Hive's `file:/x`.
    let local = match source.strip_prefix("file://") {
        Some(rest) if rest.starts_with('/') => rest,
        Some(rest) => match rest.split_once('/') {
            Some((host, path)) if host.eq_ignore_ascii_case("localhost") => &rest[rest.len() - path.len() - 1..],
            _ => {
                return Err(Error::config(format!(
                    "`{source}` names the host `{}`: a file URL reads this machine's files (`file:///path`, \
                     `file://localhost/path` or a plain path)",
                    rest.split('/').next().unwrap_or(rest)
                )));
            }
        },
        None => source.strip_prefix("file:").unwrap_or(source),
    };
    // Resolved (symlinks, `..`): one directory is one job whichever way it
    // is named, so a re-run through a symlink resumes instead of reloading.
    let abs = std::fs::canonicalize(local)
        .or_else(|_| std::path::absolute(local))
        .map_err(|e| Error::config(format!("bad source path `{source}`: {e}")))?;
    let root = Path::from_absolute_path(&abs)
        .map_err(|e| Error::config(format!("bad source path `{}`: {e}", abs.display())))?;
    Ok(Location {
        store: Arc::new(LocalFileSystem::new()),
        store_url: ObjectStoreUrl::local_filesystem(),
        root,
        display: abs.display().to_string(),
    })
}

/// The path in a bucket or file system, as written: a key or HDFS name is
/// taken literally, so `dt=10%3A00` (Hive's escape of `10:00`) names the
/// directory called that. (`Path::from` would percent-encode the `%`, and
/// list the non-existent `dt=10%253A00`: a metastore partition located
/// there silently held no rows.)
fn remote_path(source: &str, path: &str) -> Result<Path> {
    Path::parse(path.trim_end_matches('/')).map_err(|e| Error::config(format!("bad path in `{source}`: {e}")))
}

/// The path of `url` inside the store `loc` opened, if it lives there.
pub fn path_in(loc: &Location, url: &str, opts: &StoreOptions) -> Result<Path> {
    let other = open(url, opts)?;
    if other.store_url != loc.store_url {
        return Err(Error::config(format!(
            "`{url}` is on another store than `{}`; all partitions of a table must share one store",
            loc.display
        )));
    }
    Ok(other.root)
}

/// One input file.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Path inside the store.
    pub path: Path,
    /// Size in bytes.
    pub size: u64,
    /// ETag, when the store provides one.
    pub etag: Option<String>,
    /// Last modification time.
    pub last_modified: DateTime<Utc>,
    /// Hive partition values, in the order of [`Listing::partition_keys`];
    /// `None` is `__HIVE_DEFAULT_PARTITION__` (NULL).
    pub partition_values: Vec<Option<String>>,
}

impl SourceFile {
    /// The object store's description of the file, as the plan saw it.
    pub fn object_meta(&self) -> object_store::ObjectMeta {
        object_store::ObjectMeta {
            location: self.path.clone(),
            last_modified: self.last_modified,
            size: self.size,
            e_tag: self.etag.clone(),
            version: None,
        }
    }
}

/// The files of a source.
#[derive(Debug, Clone)]
pub struct Listing {
    /// Hive partition column names, outermost first.
    pub partition_keys: Vec<String>,
    /// Files, sorted by path.
    pub files: Vec<SourceFile>,
    /// The table's columns, when a metastore declares them: a file may lack
    /// one (added later: NULL in its rows), and a file's column not among
    /// them (dropped) is not read.
    pub columns: Option<Vec<String>>,
}

/// Partition values along a path: `(key, value)`, outermost first.
pub type PartitionValues = Vec<(String, Option<String>)>;

/// Decides, from the partition values known so far (a prefix of the keys),
/// whether a partition directory can hold matching rows.
pub type PartitionFilter<'a> = &'a (dyn Fn(&[(String, Option<String>)]) -> bool + Sync);

/// Lists a source: walks the directory tree level by level, skipping hidden
/// entries, pruning partition directories with `filter` before listing them.
pub async fn list(
    loc: &Location,
    filter: Option<PartitionFilter<'_>>,
    timeout: std::time::Duration,
) -> Result<Listing> {
    // A source naming a single object. In an object store a key may also be
    // the prefix of others: a trailing `/` names the directory, an empty
    // object is a directory marker, and a non-empty object with keys below
    // it is ambiguous (either reading would drop the other's rows).
    let head = async { Ok(object_store::ObjectStoreExt::head(loc.store.as_ref(), &loc.root).await) };
    let names_directory = loc.display.ends_with('/');
    if !loc.root.as_ref().is_empty()
        && !names_directory
        && let Ok(meta) = with_timeout(|| format!("`{}`", loc.display), timeout, head).await?
        && meta.size > 0
    {
        // (A file system, local or HDFS, cannot hold both.)
        let scheme = loc.store_url.as_str().split(':').next().unwrap_or_default();
        if !matches!(scheme, "file" | "hdfs" | "viewfs") {
            let below = async {
                loc.store.list_with_delimiter(Some(&loc.root)).await.map_err(|e| listing_error(loc, &loc.root, &e))
            };
            let below = with_timeout(|| format!("`{}`", loc.display), timeout, below).await?;
            if !below.objects.is_empty() || !below.common_prefixes.is_empty() {
                return Err(Error::config(format!(
                    "`{}` is both an object and the prefix of other objects: write `{}/` to load the directory \
                     below it, or move the object",
                    loc.display, loc.display
                )));
            }
        }
        return Ok(Listing {
            partition_keys: vec![],
            columns: None,
            files: vec![SourceFile {
                path: meta.location,
                size: meta.size,
                etag: meta.e_tag,
                last_modified: meta.last_modified,
                partition_values: vec![],
            }],
        });
    }

    let mut files: Vec<(PartitionValues, object_store::ObjectMeta)> = Vec::new();
    let mut level: Vec<(Path, PartitionValues)> = vec![(loc.root.clone(), vec![])];
    let mut first = true;
    while !level.is_empty() {
        let results: Vec<_> = stream::iter(level.into_iter().map(|(dir, parts)| {
            let store = loc.store.clone();
            async move {
                let prefix = if dir.as_ref().is_empty() { None } else { Some(dir.clone()) };
                let r = tokio::time::timeout(timeout, store.list_with_delimiter(prefix.as_ref())).await;
                (dir, parts, r)
            }
        }))
        .buffer_unordered(LIST_CONCURRENCY)
        .collect()
        .await;
        let mut next = Vec::new();
        for (dir, parts, r) in results {
            let listed = r
                .map_err(|_| {
                    Error::infra(format!(
                        "listing `{}` did not answer within {} s",
                        loc.display_path(&dir),
                        timeout.as_secs()
                    ))
                })?
                .map_err(|e| listing_error(loc, &dir, &e))?;
            if first && listed.objects.is_empty() && listed.common_prefixes.is_empty() {
                return Err(Error::config(format!("source `{}` does not exist or is empty", loc.display)));
            }
            // The local store's listing passes over a broken symbolic link:
            // a data file on an unmounted volume would be left out unseen.
            if loc.store_url == ObjectStoreUrl::local_filesystem() {
                for (name, link, target) in broken_links(&loc.display_path(&dir)) {
                    // A partition directory the where clause leaves out is
                    // not read anyway.
                    if let Some(part) = partition_part(&name)
                        && let Some(f) = filter
                    {
                        let mut parts = parts.clone();
                        parts.push(part);
                        if !f(&parts) {
                            continue;
                        }
                    }
                    return Err(broken_link_error(&link, &target));
                }
            }
            for obj in listed.objects {
                let name = obj.location.filename().unwrap_or_default();
                if is_hidden(name) || obj.size == 0 {
                    continue;
                }
                files.push((parts.clone(), obj));
            }
            for sub in listed.common_prefixes {
                let name = sub.filename().unwrap_or_default().to_string();
                if is_hidden(&name) {
                    continue;
                }
                let mut parts = parts.clone();
                if let Some(part) = partition_part(&name) {
                    parts.push(part);
                    if let Some(f) = filter
                        && !f(&parts)
                    {
                        continue;
                    }
                }
                next.push((sub, parts));
            }
        }
        first = false;
        level = next;
    }

    // Every file must sit under the same partition keys, in the same order.
    files.sort_by(|a, b| a.1.location.cmp(&b.1.location));
    let keys: Vec<String> = files.first().map(|(p, _)| p.iter().map(|(k, _)| k.clone()).collect()).unwrap_or_default();
    let mut out = Vec::with_capacity(files.len());
    for (parts, meta) in files {
        let these: Vec<&String> = parts.iter().map(|(k, _)| k).collect();
        if these.len() != keys.len() || these.iter().zip(&keys).any(|(a, b)| *a != b) {
            return Err(Error::config(format!(
                "inconsistent partition layout: `{}` is under partition keys [{}], other files under [{}]",
                loc.display_path(&meta.location),
                these.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
                keys.join(", ")
            )));
        }
        out.push(SourceFile {
            path: meta.location,
            size: meta.size,
            etag: meta.e_tag,
            last_modified: meta.last_modified,
            partition_values: parts.into_iter().map(|(_, v)| v).collect(),
        });
    }
    Ok(Listing { partition_keys: keys, files: out, columns: None })
}

/// The partition key and value a `key=value` directory name gives (Hive's
/// escapes decoded; `__HIVE_DEFAULT_PARTITION__` is NULL).
fn partition_part(name: &str) -> Option<(String, Option<String>)> {
    let (k, v) = name.split_once('=')?;
    let v = unescape_hive(v);
    Some((unescape_hive(k), (v != "__HIVE_DEFAULT_PARTITION__").then_some(v)))
}

/// The non-hidden entries of local directory `dir` that are symbolic links
/// whose targets cannot be read: (name, link, target).
fn broken_links(dir: &str) -> Vec<(String, String, String)> {
    let Ok(rd) = std::fs::read_dir(dir) else { return Vec::new() };
    rd.flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            if is_hidden(&name) || !e.file_type().is_ok_and(|t| t.is_symlink()) || std::fs::metadata(e.path()).is_ok() {
                return None;
            }
            let target = std::fs::read_link(e.path()).map(|t| t.display().to_string()).unwrap_or_default();
            Some((name, e.path().display().to_string(), target))
        })
        .collect()
}

fn broken_link_error(link: &str, target: &str) -> Error {
    Error::config(format!(
        "`{link}` is a symbolic link to `{target}`, which cannot be read; its rows would be left out. Mount or \
         restore it, or remove the link"
    ))
}

/// A failed listing: a name the store cannot represent (a control
/// character in a local file name) is the source's fault, not a passing
/// failure a re-run would get past.
fn listing_error(loc: &Location, dir: &Path, e: &object_store::Error) -> Error {
    let m = format!("cannot list `{}`: {}", loc.display_path(dir), describe_store_error(e));
    match e {
        object_store::Error::InvalidPath { .. } => {
            Error::config(format!("{m}; rename it (starload reads no names holding control characters)"))
        }
        // A bucket that does not exist, or credentials the store refuses:
        // the job's settings are wrong, and a re-run would fail the same way.
        object_store::Error::NotFound { .. } => Error::config(format!("{m} (does the bucket or directory exist?)")),
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. } => Error::config(m),
        _ if refused_by_settings(&e.to_string()) => Error::config(m),
        _ => Error::infra(m),
    }
}

/// Whether a store's generic error is a refusal no retry cures: S3 list
/// requests come back from object_store as generic errors holding the HTTP
/// status (404 NoSuchBucket, 403 a wrong secret or unknown key, 401), and
/// HDFS reports a refused permission as `AccessControlException`.
fn refused_by_settings(msg: &str) -> bool {
    let status = msg
        .find("non-2xx status code: ")
        .and_then(|i| msg.get(i + "non-2xx status code: ".len()..)?.get(..3)?.parse::<u16>().ok());
    matches!(status, Some(401 | 403 | 404)) || msg.contains("AccessControlException")
}

/// Files and directories Spark treats as hidden: `.x`, and `_x` unless it
/// is a partition directory `_key=value` (InMemoryFileIndex's
/// shouldFilterOutPathName).
pub fn is_hidden(name: &str) -> bool {
    (name.starts_with('_') && !name.contains('=')) || name.starts_with('.')
}

/// Decodes Hive's `%XX` escapes in partition directory names.
pub fn unescape_hive(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_string())
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// A one-line description of an object store error.
pub fn describe_store_error(e: &object_store::Error) -> String {
    match e {
        object_store::Error::NotFound { path, .. } => format!("not found: {path}"),
        object_store::Error::PermissionDenied { path, .. } => format!("permission denied: {path}"),
        object_store::Error::Unauthenticated { path, .. } => format!("unauthenticated (check credentials): {path}"),
        // On one line, and without the Java stack trace that follows an
        // HDFS NameNode's error.
        other => {
            let text = other.to_string();
            let cut = text.find("\n\tat ").or_else(|| text.find("\n    at ")).unwrap_or(text.len());
            text[..cut].split_whitespace().collect::<Vec<_>>().join(" ")
        }
    }
}

/// Reads every file's content fingerprint input: (path, size, etag or mtime).
pub fn fingerprint_input(f: &SourceFile) -> String {
    match &f.etag {
        Some(e) => format!("{}|{}|{}", f.path, f.size, e),
        None => format!("{}|{}|{}", f.path, f.size, f.last_modified.timestamp_micros()),
    }
}

/// Lists the files under explicit partition locations (from a metastore):
/// every non-hidden, non-empty file below each location, with the given
/// partition values.
pub async fn list_partitions(
    loc: &Location,
    keys: Vec<String>,
    partitions: Vec<(Path, Vec<Option<String>>)>,
    timeout: std::time::Duration,
) -> Result<Listing> {
    let results: Vec<Result<Vec<SourceFile>>> = stream::iter(partitions.into_iter().map(|(dir, values)| {
        let store = loc.store.clone();
        async move {
            let listed: Vec<object_store::ObjectMeta> =
                tokio::time::timeout(timeout, store.list(Some(&dir)).try_collect::<Vec<_>>())
                    .await
                    .map_err(|_| {
                        Error::infra(format!(
                            "listing `{}` did not answer within {} s",
                            loc.display_path(&dir),
                            timeout.as_secs()
                        ))
                    })?
                    .or_else(|e| match e {
                        // A partition the metastore knows whose directory is gone holds no rows.
                        object_store::Error::NotFound { .. } => Ok(Vec::new()),
                        e => Err(e),
                    })
                    .map_err(|e| listing_error(loc, &dir, &e))?;
            // As in a directory listing: a broken link is an error, not a
            // file left out (the partition's directory and those holding
            // its files are checked).
            if loc.store_url == ObjectStoreUrl::local_filesystem() {
                let mut dirs: Vec<String> = listed
                    .iter()
                    .map(|m| {
                        let p = loc.display_path(&m.location);
                        p.rsplit_once('/').map_or(p.clone(), |(d, _)| d.to_string())
                    })
                    .collect();
                dirs.push(loc.display_path(&dir));
                dirs.sort();
                dirs.dedup();
                if let Some((_, link, target)) = dirs.iter().flat_map(|d| broken_links(d)).next() {
                    return Err(broken_link_error(&link, &target));
                }
            }
            let prefix_len = dir.parts().count();
            Ok(listed
                .into_iter()
                .filter(|m| m.size > 0 && !m.location.parts().skip(prefix_len).any(|p| is_hidden(p.as_ref())))
                .map(|m| SourceFile {
                    path: m.location,
                    size: m.size,
                    etag: m.e_tag,
                    last_modified: m.last_modified,
                    partition_values: values.clone(),
                })
                .collect())
        }
    }))
    .buffer_unordered(LIST_CONCURRENCY)
    .collect()
    .await;
    let mut files = Vec::new();
    for r in results {
        files.extend(r?);
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Listing { partition_keys: keys, files, columns: None })
}

/// Refuses a listing that reaches one file twice: its rows would load
/// twice, or with whichever partition values came first. Two partitions of
/// a metastore whose locations overlap (one nested in the other, or shared)
/// list the same path; on a local file system a directory symlink inside
/// the source gives one file two paths.
pub fn check_distinct_files(loc: &Location, keys: &[String], files: &[SourceFile]) -> Result<()> {
    let local = loc.store_url == ObjectStoreUrl::local_filesystem();
    let mut seen: std::collections::HashMap<std::path::PathBuf, &SourceFile> = std::collections::HashMap::new();
    for f in files {
        let id = if local { std::fs::canonicalize(format!("/{}", f.path)).ok() } else { None };
        let id = id.unwrap_or_else(|| std::path::PathBuf::from(f.path.as_ref()));
        let Some(first) = seen.insert(id, f) else { continue };
        if first.path == f.path {
            let show = |f: &SourceFile| {
                keys.iter()
                    .zip(&f.partition_values)
                    .map(|(k, v)| format!("{k}={}", v.as_deref().unwrap_or("NULL")))
                    .collect::<Vec<_>>()
                    .join("/")
            };
            return Err(Error::config(format!(
                "`{}` lies in the locations of two partitions ({} and {}): partition locations must not overlap",
                loc.display_path(&f.path),
                show(first),
                show(f)
            )));
        }
        return Err(Error::config(format!(
            "`{}` and `{}` are the same file (through a symbolic link): its rows would load twice; remove the \
             link or point the source elsewhere",
            loc.display_path(&first.path),
            loc.display_path(&f.path)
        )));
    }
    Ok(())
}

/// Re-checks that files have not changed since they were listed.
pub async fn check_unchanged(loc: &Location, files: &[SourceFile]) -> Result<()> {
    stream::iter(files.iter().map(|f| {
        let store = loc.store.clone();
        async move {
            let meta = object_store::ObjectStoreExt::head(store.as_ref(), &f.path).await.map_err(|e| match e {
                object_store::Error::NotFound { .. } => {
                    Error::data(format!("`{}` disappeared since the job was planned", loc.display_path(&f.path)))
                }
                e => {
                    Error::infra(format!("cannot check `{}`: {}", loc.display_path(&f.path), describe_store_error(&e)))
                }
            })?;
            let same = meta.size == f.size
                && match (&f.etag, &meta.e_tag) {
                    (Some(a), Some(b)) => a == b,
                    _ => meta.last_modified == f.last_modified,
                };
            if same {
                Ok(())
            } else {
                Err(Error::data(format!(
                    "`{}` changed since the job was planned (size or modification time differs); re-plan the job",
                    loc.display_path(&f.path)
                )))
            }
        }
    }))
    .buffer_unordered(LIST_CONCURRENCY)
    .try_collect::<Vec<()>>()
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_urls_name_this_machines_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let opts = StoreOptions::default();
        for url in [
            root.display().to_string(),
            format!("file://{}", root.display()),
            format!("file://localhost{}", root.display()),
            format!("file:{}", root.display()),
        ] {
            assert_eq!(open(&url, &opts).unwrap().display, root.display().to_string(), "{url}");
        }
        let e = open(&format!("file://nas01{}", root.display()), &opts).unwrap_err();
        assert!(e.to_string().contains("host `nas01`"), "{e}");
    }

    /// Partitions whose locations overlap (a metastore allows any
    /// location) are refused, not deduplicated by listing order.
    #[tokio::test]
    async fn overlapping_partition_locations_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        for f in ["root.parquet", "dt=b/f.parquet", "common/c.parquet", "x/x.parquet"] {
            let p = root.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, b"PAR1").unwrap();
        }
        let opts = StoreOptions::default();
        let loc = open(root.to_str().unwrap(), &opts).unwrap();
        let at = |sub: &str| path_in(&loc, &format!("file://{}", root.join(sub).display()), &opts).unwrap();
        let v = |s: &str| vec![Some(s.to_string())];
        let keys = vec!["dt".to_string()];
        let t = std::time::Duration::from_secs(30);
        for parts in [
            // One partition at the table root, another below it.
            vec![(at(""), v("a")), (at("dt=b"), v("b"))],
            // Two partitions sharing one directory.
            vec![(at("common"), v("a")), (at("common"), v("b")), (at("x"), v("x"))],
        ] {
            let l = list_partitions(&loc, keys.clone(), parts, t).await.unwrap();
            let e = check_distinct_files(&loc, &keys, &l.files).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::Config, "{e}");
            assert!(e.to_string().contains("two partitions"), "{e}");
        }
        let ok = list_partitions(&loc, keys.clone(), vec![(at("common"), v("a")), (at("x"), v("x"))], t).await.unwrap();
        check_distinct_files(&loc, &keys, &ok.files).unwrap();
        assert_eq!(ok.files.len(), 2);
    }

    #[test]
    fn bucket_paths_are_taken_literally() {
        let l = open("s3://b/w/t/dt=10%3A00/", &StoreOptions::default()).unwrap();
        assert_eq!(l.root.as_ref(), "w/t/dt=10%3A00");
        let l = open("s3a://b/w/x~y}", &StoreOptions::default()).unwrap();
        assert_eq!(l.root.as_ref(), "w/x~y}");
        assert!(open("s3://b/w//t", &StoreOptions::default()).is_err());
    }

    #[test]
    fn hive_unescape() {
        assert_eq!(unescape_hive("ap%20south"), "ap south");
        assert_eq!(unescape_hive("a%3Ab%2Fc"), "a:b/c");
        assert_eq!(unescape_hive("100%"), "100%");
        assert_eq!(unescape_hive("x%2"), "x%2");
        assert_eq!(unescape_hive("%zz"), "%zz");
    }

    #[tokio::test]
    async fn lists_hive_layout_and_skips_hidden() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for p in ["dt=2024-01-01/region=eu", "dt=2024-01-02/region=ap%20south", "_tmp", ".hidden_dir"] {
            std::fs::create_dir_all(d.join(p)).unwrap();
        }
        std::fs::write(d.join("dt=2024-01-01/region=eu/a.parquet"), b"x").unwrap();
        std::fs::write(d.join("dt=2024-01-01/region=eu/_SUCCESS"), b"").unwrap();
        std::fs::write(d.join("dt=2024-01-01/region=eu/.a.crc"), b"x").unwrap();
        std::fs::write(d.join("dt=2024-01-01/region=eu/empty.parquet"), b"").unwrap();
        std::fs::write(d.join("dt=2024-01-02/region=ap%20south/b.parquet"), b"yy").unwrap();
        std::fs::write(d.join("_tmp/junk.parquet"), b"z").unwrap();
        std::fs::write(d.join(".hidden_dir/junk.parquet"), b"z").unwrap();
        std::fs::write(d.join("_SUCCESS"), b"").unwrap();
        let loc = open(d.to_str().unwrap(), &StoreOptions::default()).unwrap();
        let l = list(&loc, None, std::time::Duration::from_secs(10)).await.unwrap();
        assert_eq!(l.partition_keys, vec!["dt", "region"]);
        let got: Vec<_> =
            l.files.iter().map(|f| (f.path.filename().unwrap().to_string(), f.partition_values.clone())).collect();
        assert_eq!(
            got,
            vec![
                ("a.parquet".to_string(), vec![Some("2024-01-01".to_string()), Some("eu".to_string())]),
                ("b.parquet".to_string(), vec![Some("2024-01-02".to_string()), Some("ap south".to_string())]),
            ]
        );
        assert!(is_hidden("_temporary") && is_hidden("_SUCCESS") && is_hidden(".hive-staging_1"));
        // `_key=value` is a partition directory, as in Spark.
        assert!(!is_hidden("_batch=1"));
        // Pruning: a filter on dt never descends into other dates.
        let f = |parts: &[(String, Option<String>)]| parts[0].1.as_deref() == Some("2024-01-02");
        let l = list(&loc, Some(&f), std::time::Duration::from_secs(10)).await.unwrap();
        assert_eq!(l.files.len(), 1);
        assert!(l.files[0].path.as_ref().ends_with("b.parquet"));
    }

    #[tokio::test]
    async fn a_broken_symbolic_link_is_an_error_not_a_file_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("k=1")).unwrap();
        std::fs::write(d.join("k=1/a.parquet"), b"x").unwrap();
        std::os::unix::fs::symlink("/nonexistent/volume/b.parquet", d.join("k=1/b.parquet")).unwrap();
        let loc = open(d.to_str().unwrap(), &StoreOptions::default()).unwrap();
        let e = list(&loc, None, std::time::Duration::from_secs(10)).await.unwrap_err();
        assert!(e.to_string().contains("b.parquet") && e.to_string().contains("/nonexistent/volume"), "{e}");
        // Nor a partition directory the where clause leaves out.
        std::fs::remove_file(d.join("k=1/b.parquet")).unwrap();
        std::os::unix::fs::symlink("/nonexistent/volume/k=2", d.join("k=2")).unwrap();
        let keep_1 = |parts: &[(String, Option<String>)]| parts[0].1.as_deref() == Some("1");
        assert_eq!(list(&loc, Some(&keep_1), std::time::Duration::from_secs(10)).await.unwrap().files.len(), 1);
        assert!(list(&loc, None, std::time::Duration::from_secs(10)).await.is_err());
        std::fs::remove_file(d.join("k=2")).unwrap();
        std::os::unix::fs::symlink("/nonexistent/volume/b.parquet", d.join("k=1/b.parquet")).unwrap();
        // A metastore partition's directory too.
        let part = (Path::from_absolute_path(d.join("k=1")).unwrap(), vec![Some("1".to_string())]);
        let e =
            list_partitions(&loc, vec!["k".into()], vec![part], std::time::Duration::from_secs(10)).await.unwrap_err();
        assert!(e.to_string().contains("b.parquet"), "{e}");
        // A hidden one is not read anyway.
        std::fs::remove_file(d.join("k=1/b.parquet")).unwrap();
        std::os::unix::fs::symlink("/nonexistent/x", d.join("k=1/.b.parquet")).unwrap();
        assert_eq!(list(&loc, None, std::time::Duration::from_secs(10)).await.unwrap().files.len(), 1);
    }

    #[tokio::test]
    async fn missing_source_is_a_clear_error() {
        let loc = open("/nonexistent/starload/source", &StoreOptions::default()).unwrap();
        let e = list(&loc, None, std::time::Duration::from_secs(10)).await.unwrap_err();
        assert!(e.to_string().contains("/nonexistent/starload/source"), "{e}");
    }
}
