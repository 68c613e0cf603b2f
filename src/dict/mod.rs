//! Global dictionaries: stable `u64` ids for the values of BITMAP columns.
//!
//! A dictionary belongs to a target table and column ([`DictKey`]). It maps
//! every distinct non-NULL source value to an id:
//!
//! - ids start at 1 and an existing id never changes;
//! - the new values of one build get the next ids in byte-wise sorted order
//!   of their canonical bytes, so the same inputs always give the same
//!   dictionary, whatever their order or the machine (an imported
//!   dictionary, [`DictStore::import`], keeps the ids it came with);
//! - NULL is never in a dictionary (it stays NULL); the empty string is a
//!   value like any other;
//! - a build whose new values would pass `u64::MAX` is refused, as is a
//!   build or load whose source [`ValueType`] differs from the dictionary's,
//!   and a dictionary whose manifest names another table or column.
//!
//! Values are stored as bytes: a string's or binary's own bytes, other types
//! as a canonical text (see [`values`](ValueType) and [`canonical_values`]).
//!
//! # Storage
//!
//! On any object store URL (local directory, `s3://`, `hdfs://`), a
//! dictionary lives in `<root>/<db>.<table>/<column>/`:
//!
//! ```text
//! lock.json                            build lease (owner, token, expires_at)
//! versions/v00000001.json              manifest of version 1
//! versions/v00000002.json              manifest of version 2 …
//! data/v00000001-<fingerprint>.parquet the new values of version 1 (value: Binary, id: UInt64), in id order
//! data/v00000002-<fingerprint>.parquet …
//! ```
//!
//! Version N is the union of the delta files of versions 1..=N; its manifest
//! ([`Version`]) lists them all with sizes and blake3 checksums. Delta files
//! are immutable; their name carries a fingerprint of their content, so two
//! builders never overwrite each other's different files. The manifest is
//! written last with a conditional create: that is the atomic publish. A
//! reader takes the highest manifest and so always sees a complete version;
//! a build that crashes before publishing leaves the previous version
//! intact (its delta file is an orphan, removed by [`DictStore::cleanup`]).
//! A delta file that is missing or does not match its checksum is an error,
//! never a silent rebuild with new ids.
//!
//! # Builds
//!
//! A build deduplicates its input in memory ([`Distinct`]; hash-sharded
//! arenas, in parallel on rayon) before taking the lease, then takes the
//! lease, reads the latest version, streams its delta files past the set to
//! drop the values that already exist, sorts the new values (parallel sample
//! sort), writes them as a delta file (row groups encoded in parallel,
//! streamed to the store) and publishes the manifest.
//!
//! Concurrent builders of one dictionary are serialised by a lease,
//! `lock.json`, created with a conditional create and renewed while the
//! build runs; a second builder polls until it is free (up to
//! [`BuildOptions::lock_wait`]) or fails naming the holder. An expired
//! lease (a crashed holder) is taken over; the holder's token is recorded in
//! `crashed.json` and its data file kept (see `record_crashed`). If two
//! builders ever both hold it
//! (a holder paused for longer than the lease), the conditional create of
//! the manifest lets exactly one publish version N; the other fails clearly.
//!
//! # Conditional create per store (object_store 0.13)
//!
//! | store | `PutMode::Create` | `PutMode::Update` | lease takeover |
//! |---|---|---|---|
//! | local (`LocalFileSystem`) | yes: a staged file is hard-linked to the name, `AlreadyExists` if taken | no (`NotImplemented`) | delete + create |
//! | S3 (`AmazonS3`) | yes: `If-None-Match: *`, when `conditional_put` is `etag` (object_store's default; `disabled` makes builds refuse to run) | yes: `If-Match: <etag>` | conditional update |
//! | HDFS (`hdfs-native-object-store` 0.16) | yes: written to a temporary file, renamed without overwrite (atomic on the NameNode) | no | delete + create |
//!
//! SeaweedFS (the S3 used by the tests) honours both conditions; the
//! integration tests run the concurrency checks against it.

pub(crate) mod delta;
mod import;
mod lease;
mod lookup;
mod set;
mod shard;
mod values;

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, AsArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use futures::{Stream, StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutPayload};
use serde::{Deserialize, Serialize};

pub use import::Pairs;
pub use lease::LeaseInfo;
pub use lookup::Lookup;
pub use set::Distinct;
pub use values::{ValueType, canonical_values};

use crate::error::{Error, Result};
use crate::source::{Location, StoreOptions};

use delta::{DeltaReader, Read};
use lease::{Lease, LeaseSettings};

/// The manifest format this code writes and reads.
pub const FORMAT: u32 = 1;

/// A dictionary's identity: the target table (`db.table`) and column.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DictKey {
    /// `db.table`.
    pub table: String,
    /// The target column, lower-cased (StarRocks column names are
    /// case-insensitive; one column must never get two dictionaries).
    pub column: String,
}

impl DictKey {
    /// The dictionary of `column` in `table` (`db.table`).
    pub fn new(table: &str, column: &str) -> Result<DictKey> {
        let ok = |s: &str| !s.is_empty() && !s.contains(['/', '\\']) && !s.chars().any(char::is_control);
        match table.split_once('.') {
            Some((db, t)) if ok(db) && ok(t) && !t.contains('.') => {}
            _ => return Err(Error::config(format!("a dictionary's table must be `db.table`, not `{table}`"))),
        }
        let column = column.trim();
        if !ok(column) {
            return Err(Error::config(format!("bad dictionary column name `{column}`")));
        }
        Ok(DictKey { table: table.to_string(), column: column.to_lowercase() })
    }
}

impl std::fmt::Display for DictKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.table, self.column)
    }
}

/// One delta file of a version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeltaFile {
    /// Path inside the dictionary's directory (`data/v00000003-….parquet`).
    pub path: String,
    /// The version that added it.
    pub version: u64,
    /// Its first id; its values have ids `first_id..first_id + count`.
    pub first_id: u64,
    /// Number of values.
    pub count: u64,
    /// Size in bytes.
    pub size: u64,
    /// blake3 of the whole file, hex.
    pub blake3: String,
}

/// A published version: the content of `versions/vNNNNNNNN.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    /// Manifest format ([`FORMAT`]).
    pub format: u32,
    /// The version number (1, 2, …).
    pub version: u64,
    /// `db.table`.
    pub table: String,
    /// Target column.
    pub column: String,
    /// The source value type.
    pub value_type: ValueType,
    /// The Arrow type of the build that created this version (information).
    pub source_type: String,
    /// The highest id.
    pub max_id: u64,
    /// Number of values.
    pub count: u64,
    /// The delta files of versions 1..=version, in order.
    pub files: Vec<DeltaFile>,
    /// When it was published (RFC 3339).
    pub created_at: String,
    /// Who built it.
    pub builder: String,
}

impl Version {
    /// Total size of the delta files.
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// Checks a manifest read from `path` for version `n` of `key`.
    fn validate(&self, key: &DictKey, n: u64, path: &str) -> Result<()> {
        let bad = |why: String| {
            Error::data(format!(
                "manifest {path} of dictionary {key} is corrupt ({why}); restore it — a dictionary is never rebuilt \
                 with new ids"
            ))
        };
        if self.format != FORMAT {
            return Err(Error::config(format!(
                "manifest {path} has format {}, this starload reads format {FORMAT}; use a matching starload",
                self.format
            )));
        }
        if self.table != key.table || self.column != key.column {
            return Err(Error::config(format!(
                "the dictionary at {path} belongs to {}/{}, not {key}: a dictionary from another table or column is \
                 refused",
                self.table, self.column
            )));
        }
        if self.version != n {
            return Err(bad(format!("it says version {}", self.version)));
        }
        if self.files.len() as u64 != n {
            return Err(bad(format!("{} delta files for version {n}", self.files.len())));
        }
        let mut prev_last: Option<u64> = None;
        let mut count = 0u64;
        for (i, f) in self.files.iter().enumerate() {
            if f.version != i as u64 + 1 {
                return Err(bad(format!("delta file {} is listed as version {}", i + 1, f.version)));
            }
            let name = f.path.strip_prefix("data/").unwrap_or("");
            if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
                return Err(bad(format!("bad delta path `{}`", f.path)));
            }
            let follows = prev_last.is_none_or(|p| p.checked_add(1) == Some(f.first_id));
            let last = f.first_id.checked_add(f.count.wrapping_sub(1));
            match last {
                Some(last) if f.count > 0 && f.first_id > 0 && follows => prev_last = Some(last),
                _ => return Err(bad(format!("delta file {} has ids {}+{}", f.path, f.first_id, f.count))),
            }
            count += f.count;
        }
        let max = prev_last.unwrap_or(0);
        if max != self.max_id || count != self.count {
            return Err(bad(format!(
                "max_id {} and count {} do not match its files ({max}, {count})",
                self.max_id, self.count
            )));
        }
        Ok(())
    }
}

/// A summary of a dictionary (`starload dict show`).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The dictionary.
    pub key: DictKey,
    /// Where it lives.
    pub location: String,
    /// Every published version number.
    pub versions: Vec<u64>,
    /// The latest version.
    pub version: u64,
    /// Its value type.
    pub value_type: ValueType,
    /// Number of values.
    pub count: u64,
    /// The highest id.
    pub max_id: u64,
    /// Delta files.
    pub files: Vec<DeltaFile>,
    /// Their total size.
    pub total_bytes: u64,
    /// When the latest version was published.
    pub created_at: String,
    /// Who built it.
    pub builder: String,
    /// The build lease, if someone holds it now.
    pub lease: Option<LeaseInfo>,
}

/// Simulated failures for tests.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Write the delta file, then stop as a crash would: no manifest, the
    /// lease left to expire.
    CrashBeforePublish,
}

/// How a build runs.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Who builds (recorded in the lease and the manifest); default
    /// `host:pid`.
    pub owner: String,
    /// How long to wait for another builder's lease; default 5 minutes.
    pub lock_wait: Duration,
    /// How long a lease lasts without renewal (it is renewed every third of
    /// this while the build runs); default 60 s.
    pub lease_ttl: Duration,
    /// How often a waiting builder looks at the lease; default 500 ms.
    pub poll: Duration,
    #[doc(hidden)]
    pub fault: Option<Fault>,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            owner: default_owner(),
            lock_wait: Duration::from_secs(300),
            lease_ttl: Duration::from_secs(60),
            poll: Duration::from_millis(500),
            fault: None,
        }
    }
}

/// `host:pid`.
pub fn default_owner() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!("{host}:{}", std::process::id())
}

/// Where a build's time went.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct BuildTimings {
    /// Deduplicating the input.
    pub dedupe: Duration,
    /// Waiting for the lease.
    pub lease_wait: Duration,
    /// Reading the current version and dropping existing values.
    pub existing: Duration,
    /// Ordering the new values.
    pub sort: Duration,
    /// Writing the delta file.
    pub write: Duration,
    /// Everything, publishing included.
    pub total: Duration,
}

/// What a build did.
#[derive(Debug, Clone, Serialize)]
pub struct BuildReport {
    /// The dictionary.
    pub key: DictKey,
    /// The latest version after the build: the new one if `published`, the
    /// unchanged current one (or none) otherwise.
    pub version: Option<Version>,
    /// Whether a new version was published (false: no new values).
    pub published: bool,
    /// Input rows, NULLs included.
    pub input_rows: u64,
    /// NULL input rows (never in a dictionary).
    pub null_rows: u64,
    /// Distinct non-NULL input values.
    pub distinct_values: u64,
    /// Values that got new ids.
    pub new_values: u64,
    /// The first new id, if any.
    pub first_new_id: Option<u64>,
    /// Where the time went.
    pub timings: BuildTimings,
}

/// What a build publishes: its data, or an imported dictionary.
enum Input {
    Build(Distinct),
    Import(Pairs),
}

/// A new version to write and publish: number `n`, ids from `base + 1`,
/// after the delta files of the versions before.
struct Publish {
    n: u64,
    base: u64,
    vt: ValueType,
    source_type: String,
    sorted: set::Sorted,
    files: Vec<DeltaFile>,
}

/// Dictionaries on one object store location.
#[derive(Debug, Clone)]
pub struct DictStore {
    loc: Location,
}

fn join_error(e: tokio::task::JoinError) -> Error {
    Error::internal(format!("dictionary worker failed: {e}"))
}

fn store_error(what: impl std::fmt::Display, e: object_store::Error) -> Error {
    Error::infra(format!("{what}: {}", crate::source::describe_store_error(&e)))
}

impl DictStore {
    /// Dictionaries under `url` (a local directory, `s3://bucket/prefix`,
    /// `hdfs://nn/path`; see [`crate::source::open`] for options).
    pub fn open(url: &str, opts: &StoreOptions) -> Result<DictStore> {
        let mut loc = crate::source::open(url, opts)?;
        // Dictionaries published before sources took bucket and HDFS paths
        // literally live under the percent-encoded root (`~` as `%7E`): a
        // dictionary that is not found is built anew, with new ids.
        if loc.store_url != datafusion::execution::object_store::ObjectStoreUrl::local_filesystem() {
            loc.root = Path::from(loc.root.as_ref());
        }
        Ok(DictStore { loc })
    }

    /// Dictionaries under `root` of an already opened store.
    pub fn from_store(store: Arc<dyn ObjectStore>, root: Path, display: &str) -> DictStore {
        let store_url = datafusion::execution::object_store::ObjectStoreUrl::parse("dict://store")
            .unwrap_or_else(|_| datafusion::execution::object_store::ObjectStoreUrl::local_filesystem());
        DictStore { loc: Location { store, store_url, root, display: display.to_string() } }
    }

    /// The object store.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.loc.store
    }

    /// The directory of a dictionary.
    pub fn dir(&self, key: &DictKey) -> Path {
        self.loc.root.clone().join(key.table.as_str()).join(key.column.as_str())
    }

    fn manifest_path(&self, key: &DictKey, n: u64) -> Path {
        self.dir(key).join("versions").join(format!("v{n:08}.json"))
    }

    fn data_path(&self, key: &DictKey, rel: &str) -> Path {
        rel.split('/').fold(self.dir(key), |p, part| p.join(part))
    }

    fn lock_path(&self, key: &DictKey) -> Path {
        self.dir(key).join("lock.json")
    }

    /// The lease tokens of builders whose lapsed leases were taken over.
    fn crashed_path(&self, key: &DictKey) -> Path {
        self.dir(key).join("crashed.json")
    }

    /// A path for messages.
    fn show(&self, p: &Path) -> String {
        let url = self.loc.store_url.as_str().trim_end_matches('/');
        if url == "file:" || url == "file://" {
            format!("/{p}")
        } else if url == "dict://store" {
            format!("{}:{p}", self.loc.display)
        } else {
            format!("{url}/{p}")
        }
    }

    fn what(&self, key: &DictKey) -> String {
        format!("{key} (at {})", self.show(&self.dir(key)))
    }

    /// The objects under `prefix` (none if it does not exist).
    async fn list_under(&self, prefix: &Path, what: impl Fn() -> String) -> Result<Vec<object_store::ObjectMeta>> {
        match self.loc.store.list(Some(prefix)).try_collect().await.map_err(norm) {
            Ok(l) => Ok(l),
            Err(object_store::Error::NotFound { .. }) => Ok(Vec::new()),
            Err(e) => Err(store_error(what(), e)),
        }
    }

    /// Published version numbers, ascending.
    pub async fn versions(&self, key: &DictKey) -> Result<Vec<u64>> {
        let listed = self
            .list_under(&self.dir(key).join("versions"), || {
                format!("cannot list the versions of dictionary {}", self.what(key))
            })
            .await?;
        let mut out: Vec<u64> = listed
            .iter()
            .filter_map(|m| m.location.filename())
            .filter_map(|n| n.strip_prefix('v')?.strip_suffix(".json")?.parse().ok())
            .collect();
        out.sort_unstable();
        Ok(out)
    }

    /// The latest version, if any was published.
    pub async fn current(&self, key: &DictKey) -> Result<Option<Version>> {
        match self.versions(key).await?.last() {
            Some(&n) => Ok(Some(self.version(key, n).await?)),
            None => Ok(None),
        }
    }

    /// Version `n`.
    pub async fn version(&self, key: &DictKey, n: u64) -> Result<Version> {
        let path = self.manifest_path(key, n);
        let shown = self.show(&path);
        let raw = match self.loc.store.get(&path).await {
            Ok(g) => g.bytes().await,
            Err(e) => Err(e),
        };
        let raw = match raw.map_err(norm) {
            Ok(b) => b,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(Error::data(format!("version {n} of dictionary {key} does not exist ({shown})")));
            }
            Err(e) => return Err(store_error(format!("cannot read {shown}"), e)),
        };
        let v: Version = serde_json::from_slice(&raw).map_err(|e| {
            Error::data(format!(
                "manifest {shown} of dictionary {key} is corrupt ({e}); restore it — a dictionary is never rebuilt \
                 with new ids"
            ))
        })?;
        v.validate(key, n, &shown)?;
        Ok(v)
    }

    /// A summary of the latest version, if any.
    pub async fn summary(&self, key: &DictKey) -> Result<Option<Summary>> {
        let versions = self.versions(key).await?;
        let Some(&n) = versions.last() else { return Ok(None) };
        let v = self.version(key, n).await?;
        let lease = lease::holder(&self.loc.store, &self.lock_path(key)).await?;
        Ok(Some(Summary {
            key: key.clone(),
            location: self.show(&self.dir(key)),
            versions,
            version: v.version,
            value_type: v.value_type,
            count: v.count,
            max_id: v.max_id,
            total_bytes: v.total_bytes(),
            files: v.files,
            created_at: v.created_at,
            builder: v.builder,
            lease,
        }))
    }

    /// Refuses a build of `vt` values into `key` when the latest version
    /// holds another type (cheap; done again under the lease).
    pub async fn check_type(&self, key: &DictKey, vt: ValueType) -> Result<()> {
        if let Some(v) = self.current(key).await? {
            type_matches(key, &v, vt)?;
        }
        Ok(())
    }

    /// Builds a new version from record batches of one column (the source
    /// expression's values over the job's inputs) of Arrow type
    /// `value_type`.
    pub async fn build(
        &self,
        key: &DictKey,
        value_type: &DataType,
        batches: Vec<RecordBatch>,
        opts: &BuildOptions,
    ) -> Result<BuildReport> {
        let start = Instant::now();
        let mut d = Distinct::new(value_type)?;
        self.check_type(key, d.value_type()).await?;
        let d = tokio::task::spawn_blocking(move || -> Result<Distinct> {
            for b in &batches {
                d.push_batch(b)?;
            }
            d.flush()?;
            Ok(d)
        })
        .await
        .map_err(join_error)??;
        self.finish_build(key, Input::Build(d), opts, start, start.elapsed()).await
    }

    /// [`DictStore::build`] from a stream of batches (a DataFusion
    /// `SendableRecordBatchStream`, for one); reading overlaps
    /// deduplication.
    pub async fn build_stream<S, E>(
        &self,
        key: &DictKey,
        value_type: &DataType,
        mut stream: S,
        opts: &BuildOptions,
    ) -> Result<BuildReport>
    where
        S: Stream<Item = std::result::Result<RecordBatch, E>> + Unpin,
        Error: From<E>,
    {
        const BLOCK: usize = 1 << 20;
        let start = Instant::now();
        let first = Distinct::new(value_type)?;
        self.check_type(key, first.value_type()).await?;
        let mut d = Some(first);
        let mut inflight: Option<tokio::task::JoinHandle<Result<Distinct>>> = None;
        loop {
            let mut block = Vec::new();
            let mut rows = 0;
            while rows < BLOCK {
                match stream.next().await {
                    Some(b) => {
                        let b = b?;
                        rows += b.num_rows();
                        block.push(b);
                    }
                    None => break,
                }
            }
            let end = block.is_empty();
            if let Some(h) = inflight.take() {
                d = Some(h.await.map_err(join_error)??);
            }
            if end {
                break;
            }
            let mut set = d.take().ok_or_else(|| Error::internal("dictionary set lost"))?;
            inflight = Some(tokio::task::spawn_blocking(move || {
                for b in &block {
                    set.push_batch(b)?;
                }
                Ok(set)
            }));
        }
        let mut d = d.ok_or_else(|| Error::internal("dictionary set lost"))?;
        let d = tokio::task::spawn_blocking(move || d.flush().map(|_| d)).await.map_err(join_error)??;
        self.finish_build(key, Input::Build(d), opts, start, start.elapsed()).await
    }

    /// Builds a new version from an already deduplicated input.
    pub async fn build_from(&self, key: &DictKey, distinct: Distinct, opts: &BuildOptions) -> Result<BuildReport> {
        let start = Instant::now();
        let mut d = distinct;
        let d = tokio::task::spawn_blocking(move || d.flush().map(|_| d)).await.map_err(join_error)??;
        self.finish_build(key, Input::Build(d), opts, start, start.elapsed()).await
    }

    /// Publishes an existing dictionary's `(value, id)` pairs (a Spark Load
    /// global dictionary) as version 1, into a store that holds no version
    /// of `key` yet. The pairs must hold ids 1..=n, each once, and every
    /// value once; nothing is published otherwise.
    pub async fn import(&self, key: &DictKey, pairs: Pairs, opts: &BuildOptions) -> Result<BuildReport> {
        let start = Instant::now();
        self.finish_build(key, Input::Import(pairs), opts, start, Duration::ZERO).await
    }

    async fn finish_build(
        &self,
        key: &DictKey,
        d: Input,
        opts: &BuildOptions,
        start: Instant,
        dedupe: Duration,
    ) -> Result<BuildReport> {
        let what = self.what(key);
        let settings = LeaseSettings {
            owner: opts.owner.clone(),
            ttl: opts.lease_ttl.max(Duration::from_millis(100)),
            wait: opts.lock_wait,
            poll: opts.poll.max(Duration::from_millis(10)),
        };
        let lease = Lease::acquire(self.loc.store.clone(), self.lock_path(key), &what, &settings).await?;
        let mut timings = BuildTimings { dedupe, lease_wait: lease.waited, ..Default::default() };
        let r = self.build_locked(key, d, opts, &lease, &mut timings).await;
        if opts.fault == Some(Fault::CrashBeforePublish) {
            lease.abandon();
        } else {
            lease.release().await;
        }
        let mut r = r?;
        timings.total = start.elapsed();
        r.timings = timings;
        Ok(r)
    }

    async fn build_locked(
        &self,
        key: &DictKey,
        input: Input,
        opts: &BuildOptions,
        lease: &Lease,
        timings: &mut BuildTimings,
    ) -> Result<BuildReport> {
        let what = self.what(key);
        let cur = self.current(key).await?;
        let d = match input {
            Input::Build(d) => d,
            Input::Import(pairs) => return self.import_locked(key, pairs, cur, opts, lease, timings).await,
        };
        if let Some(c) = &cur {
            type_matches(key, c, d.value_type())?;
        }
        // Also when this build has nothing new to publish.
        let crashed = self.record_crashed(key, lease).await?;
        // One listing serves both: orphans are below the next version, the
        // check looks at it and past.
        let files = self.data_files(key).await?;
        self.remove_orphans(key, cur.as_ref(), &files, lease).await?;
        let (input_rows, null_rows, distinct_values) = (d.rows(), d.nulls(), d.len());
        let source_type = d.source_type().to_string();

        // Drop the values the current version holds.
        let t = Instant::now();
        let mut d = d;
        if let Some(c) = &cur {
            for f in &c.files {
                let mut rd = DeltaReader::open(
                    self.loc.store.clone(),
                    self.data_path(key, &f.path),
                    self.file_what(key, f),
                    f,
                    Read::Views,
                )
                .await?;
                while let Some(groups) = rd.next_window().await? {
                    let arrays: Vec<ArrayRef> = groups.into_iter().map(|g| g.values).collect();
                    d = tokio::task::spawn_blocking(move || d.mark_existing(&arrays).map(|_| d))
                        .await
                        .map_err(join_error)??;
                }
            }
        }
        timings.existing = t.elapsed();
        let new = d.new_count();
        let base = cur.as_ref().map_or(0, |c| c.max_id);
        let report = BuildReport {
            key: key.clone(),
            version: cur.clone(),
            published: false,
            input_rows,
            null_rows,
            distinct_values,
            new_values: new,
            first_new_id: None,
            timings: BuildTimings::default(),
        };
        if new == 0 {
            return Ok(report);
        }
        if base.checked_add(new).is_none() {
            return Err(Error::data(format!(
                "dictionary {what}: {new} new values after id {base} would pass the largest id {}; refused",
                u64::MAX
            )));
        }
        let n = cur.as_ref().map_or(1, |c| c.version + 1);
        let vt = d.value_type();
        self.check_unpublished(key, n, &files, &crashed)?;

        let t = Instant::now();
        let sorted = tokio::task::spawn_blocking(move || d.into_sorted()).await.map_err(join_error)??;
        timings.sort = t.elapsed();
        let files = cur.map(|c| c.files).unwrap_or_default();
        let new = Publish { n, base, vt, source_type, sorted, files };
        self.write_and_publish(key, new, opts, lease, timings, report).await
    }

    /// [`Self::import`] under the lease.
    async fn import_locked(
        &self,
        key: &DictKey,
        pairs: Pairs,
        cur: Option<Version>,
        opts: &BuildOptions,
        lease: &Lease,
        timings: &mut BuildTimings,
    ) -> Result<BuildReport> {
        let what = self.what(key);
        if let Some(c) = &cur {
            return Err(Error::config(format!(
                "dictionary {what} already has version {} ({} values); an import creates the first version, in a \
                 store that holds none of this dictionary",
                c.version, c.count
            )));
        }
        let crashed = self.record_crashed(key, lease).await?;
        let files = self.data_files(key).await?;
        self.remove_orphans(key, None, &files, lease).await?;
        self.check_unpublished(key, 1, &files, &crashed)?;
        let (vt, source_type, read) = (pairs.value_type(), pairs.source_type().to_string(), pairs.len());
        let t = Instant::now();
        let sorted = tokio::task::spawn_blocking(move || pairs.finish()).await.map_err(join_error)??;
        timings.sort = t.elapsed();
        // Pairs read twice count once.
        let new = sorted.count;
        let report = BuildReport {
            key: key.clone(),
            version: None,
            published: false,
            input_rows: read,
            null_rows: 0,
            distinct_values: new,
            new_values: new,
            first_new_id: None,
            timings: BuildTimings::default(),
        };
        let new = Publish { n: 1, base: 0, vt, source_type, sorted, files: Vec::new() };
        self.write_and_publish(key, new, opts, lease, timings, report).await
    }

    /// Writes the delta file of version `new.n` and publishes the version.
    async fn write_and_publish(
        &self,
        key: &DictKey,
        new: Publish,
        opts: &BuildOptions,
        lease: &Lease,
        timings: &mut BuildTimings,
        mut report: BuildReport,
    ) -> Result<BuildReport> {
        let what = self.what(key);
        let Publish { n, base, vt, source_type, sorted, files } = new;
        let new = sorted.count;
        let t = Instant::now();
        // The lease token in the name: a build that takes over this one's
        // lease after a crash knows which files are its leftovers.
        let rel = format!("data/v{n:08}-{}-{}.parquet", fingerprint(key, vt, n, base, &sorted), lease.token());
        let (size, blake3) = delta::write(&self.loc.store, &self.data_path(key, &rel), sorted, base + 1)
            .await
            .map_err(|e| e.context(format!("writing dictionary {what}")))?;
        timings.write = t.elapsed();
        if opts.fault == Some(Fault::CrashBeforePublish) {
            return Err(Error::internal("simulated crash before publishing"));
        }

        let mut files = files;
        files.push(DeltaFile { path: rel, version: n, first_id: base + 1, count: new, size, blake3 });
        let v = Version {
            format: FORMAT,
            version: n,
            table: key.table.clone(),
            column: key.column.clone(),
            value_type: vt,
            source_type,
            max_id: base + new,
            count: files.iter().map(|f| f.count).sum(),
            files,
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            builder: opts.owner.clone(),
        };
        let published = match lease.check(&what).await {
            Ok(()) => self.publish(key, &v).await,
            Err(e) => Err(e),
        };
        if let Err(e) = published {
            // Still ours and certainly not published: remove the data file
            // so the next build does not take it for a removed version.
            let manifest = self.loc.store.head(&self.manifest_path(key, n)).await.map_err(norm);
            if matches!(manifest, Err(object_store::Error::NotFound { .. })) && lease.check(&what).await.is_ok() {
                let _ = self.loc.store.delete(&self.data_path(key, &v.files[v.files.len() - 1].path)).await;
            }
            return Err(e);
        }
        report.version = Some(v);
        report.published = true;
        report.first_new_id = Some(base + 1);
        Ok(report)
    }

    /// The dictionary's data files.
    async fn data_files(&self, key: &DictKey) -> Result<Vec<Path>> {
        let prefix = self.dir(key).join("data");
        let listed = self.list_under(&prefix, || format!("cannot list {}", self.show(&prefix))).await?;
        Ok(listed.into_iter().map(|m| m.location).collect())
    }

    /// Before version `n` is written: a data file of version `n` or later
    /// that no builder whose lease was taken over wrote (`crashed`, see
    /// [`Self::record_crashed`]) belongs to a version whose manifest was
    /// deleted — its ids may be in StarRocks tables already, so building `n`
    /// again would give other values those ids: refused.
    fn check_unpublished(&self, key: &DictKey, n: u64, files: &[Path], crashed: &[String]) -> Result<()> {
        let Some((m, first)) = files
            .iter()
            .filter_map(|p| data_version(p).filter(|&v| v >= n).map(|v| (v, p)))
            .filter(|(_, p)| !written_by(p, crashed))
            .min()
        else {
            return Ok(());
        };
        Err(Error::data(format!(
            "dictionary {}: {} holds version {m}, but no manifest publishes it (the newest is {}). Its manifest \
             {} was removed, or a build failed after writing it. Restore the manifest if it was published — loads \
             may use its ids, and a dictionary is never rebuilt with new ids; delete the file only if no load \
             used version {m}",
            self.what(key),
            self.show(first),
            match n - 1 {
                0 => "none".to_string(),
                c => format!("version {c}"),
            },
            self.show(&self.manifest_path(key, m)),
        )))
    }

    /// Records the builders whose lapsed leases led to `lease` (the lease
    /// carries the chain) in `crashed.json`, and returns every builder
    /// recorded there. Their data files are not removed: a builder that was
    /// only paused past its lease may still publish its version (the
    /// manifest's conditional create then decides), and removing its file
    /// could leave a published version without its data. A file of a
    /// version some other builder published is an orphan [`Self::cleanup`]
    /// removes; one past the newest version waits for that.
    async fn record_crashed(&self, key: &DictKey, lease: &Lease) -> Result<Vec<String>> {
        let path = self.crashed_path(key);
        let mut known: Vec<String> = match self.loc.store.get(&path).await.map_err(norm) {
            Ok(g) => {
                let b = g.bytes().await.map_err(|e| store_error(format!("cannot read {}", self.show(&path)), e))?;
                serde_json::from_slice(&b)
                    .map_err(|e| Error::data(format!("{} is not a list of lease tokens: {e}", self.show(&path))))?
            }
            Err(object_store::Error::NotFound { .. }) => Vec::new(),
            Err(e) => return Err(store_error(format!("cannot read {}", self.show(&path)), e)),
        };
        let new: Vec<&String> = lease.took_over.iter().filter(|t| !known.contains(t)).collect();
        if new.is_empty() {
            return Ok(known);
        }
        known.extend(new.into_iter().cloned());
        let body = serde_json::to_vec_pretty(&known).map_err(|e| Error::internal(e.to_string()))?;
        // Written under the lease: builders take turns.
        self.loc
            .store
            .put(&path, PutPayload::from(body))
            .await
            .map_err(|e| store_error(format!("cannot write {}", self.show(&path)), e))?;
        Ok(known)
    }

    fn file_what(&self, key: &DictKey, f: &DeltaFile) -> String {
        format!("delta file {} of dictionary {key} (version {})", self.show(&self.data_path(key, &f.path)), f.version)
    }

    /// Writes a manifest with a conditional create.
    async fn publish(&self, key: &DictKey, v: &Version) -> Result<()> {
        let path = self.manifest_path(key, v.version);
        let body = serde_json::to_vec_pretty(v).map_err(|e| Error::internal(e.to_string()))?;
        match self.loc.store.put_opts(&path, PutPayload::from(body), PutMode::Create.into()).await {
            Ok(_) => Ok(()),
            Err(object_store::Error::AlreadyExists { .. }) => Err(Error::infra(format!(
                "version {} of dictionary {} was published by another builder meanwhile; this build published \
                 nothing — re-run it to extend the new version",
                v.version,
                self.what(key)
            ))),
            Err(object_store::Error::NotImplemented { .. }) => Err(Error::config(format!(
                "the dictionary store {} does not support conditional create (put-if-not-exists), which \
                 dictionaries need to publish safely; for S3 set the option conditional_put=etag",
                self.loc.store
            ))),
            Err(e) => Err(store_error(format!("cannot publish {}", self.show(&path)), e)),
        }
    }

    /// Loads a version for lookups (checksums verified).
    pub async fn lookup(&self, key: &DictKey, version: &Version) -> Result<Lookup> {
        self.check_belongs(key, version)?;
        let mut lk = Lookup::new(key.clone(), version);
        for f in &version.files {
            let what = self.file_what(key, f);
            let mut rd = DeltaReader::open(
                self.loc.store.clone(),
                self.data_path(key, &f.path),
                what.clone(),
                f,
                Read::ViewsAndIds,
            )
            .await?;
            while let Some(groups) = rd.next_window().await? {
                let (first, what) = (f.first_id, what.clone());
                lk = tokio::task::spawn_blocking(move || lk.insert(&groups, first, &what).map(|_| lk))
                    .await
                    .map_err(join_error)??;
            }
        }
        if lk.len() != version.count {
            return Err(Error::data(format!(
                "dictionary {} version {} holds {} values, its manifest says {}",
                self.what(key),
                version.version,
                lk.len(),
                version.count
            )));
        }
        Ok(lk)
    }

    fn check_belongs(&self, key: &DictKey, v: &Version) -> Result<()> {
        if v.table != key.table || v.column != key.column {
            return Err(Error::config(format!(
                "version {} belongs to dictionary {}/{}, not {key}: a dictionary from another table or column is \
                 refused",
                v.version, v.table, v.column
            )));
        }
        Ok(())
    }

    /// The schema of exported batches: `id UInt64`, `value Utf8` (`Binary`
    /// for binary dictionaries).
    pub fn export_schema(vt: ValueType) -> SchemaRef {
        let value = if vt.is_text() { DataType::Utf8 } else { DataType::Binary };
        Arc::new(Schema::new(vec![Field::new("id", DataType::UInt64, false), Field::new("value", value, false)]))
    }

    /// Calls `f` with `(id, value)` batches of a version, in id order
    /// (checksums verified).
    pub async fn export_each(
        &self,
        key: &DictKey,
        version: &Version,
        mut f: impl FnMut(RecordBatch) -> Result<()>,
    ) -> Result<()> {
        self.check_belongs(key, version)?;
        let schema = Self::export_schema(version.value_type);
        for file in &version.files {
            let what = self.file_what(key, file);
            let mut rd = DeltaReader::open(
                self.loc.store.clone(),
                self.data_path(key, &file.path),
                what.clone(),
                file,
                Read::BinaryAndIds,
            )
            .await?;
            while let Some(groups) = rd.next_window().await? {
                for g in groups {
                    let ids = g.ids.ok_or_else(|| Error::internal("export needs ids"))?;
                    let base = file.first_id + g.first_row;
                    if ids.values().iter().enumerate().any(|(i, id)| *id != base + i as u64) {
                        return Err(Error::data(format!("{what} is corrupt (its ids do not run on)")));
                    }
                    let value: ArrayRef = if version.value_type.is_text() {
                        let (offsets, data, nulls) = g
                            .values
                            .as_binary_opt::<i32>()
                            .ok_or_else(|| Error::internal("export reads values as Binary"))?
                            .clone()
                            .into_parts();
                        Arc::new(
                            StringArray::try_new(offsets, data, nulls)
                                .map_err(|e| Error::data(format!("{what} is corrupt (a value is not UTF-8: {e})")))?,
                        )
                    } else {
                        g.values
                    };
                    f(RecordBatch::try_new(schema.clone(), vec![Arc::new(ids), value])?)?;
                }
            }
        }
        Ok(())
    }

    /// `(id, value)` batches of a version, in id order.
    pub async fn export(&self, key: &DictKey, version: &Version) -> Result<Vec<RecordBatch>> {
        let mut out = Vec::new();
        self.export_each(key, version, |b| {
            out.push(b);
            Ok(())
        })
        .await?;
        Ok(out)
    }

    /// Removes delta files no published version references (left by crashed
    /// builds), holding the build lease. Returns what was removed.
    pub async fn cleanup(&self, key: &DictKey, opts: &BuildOptions) -> Result<Vec<String>> {
        let what = self.what(key);
        let settings =
            LeaseSettings { owner: opts.owner.clone(), ttl: opts.lease_ttl, wait: opts.lock_wait, poll: opts.poll };
        let lease = Lease::acquire(self.loc.store.clone(), self.lock_path(key), &what, &settings).await?;
        let r = async {
            let cur = self.current(key).await?;
            let files = self.data_files(key).await?;
            self.remove_orphans(key, cur.as_ref(), &files, &lease).await
        }
        .await;
        lease.release().await;
        r
    }

    /// Removes the data files below version `cur` that it does not name,
    /// holding `lease`. Files past the newest version are kept: a published
    /// version whose manifest was removed, or the file of a builder paused
    /// past its lease that may still publish it (see `record_crashed`).
    /// Below it, a file the newest version does not name can never be
    /// published (its version's manifest exists).
    async fn remove_orphans(
        &self,
        key: &DictKey,
        cur: Option<&Version>,
        files: &[Path],
        lease: &Lease,
    ) -> Result<Vec<String>> {
        let what = self.what(key);
        let next = cur.map_or(1, |v| v.version + 1);
        let keep: std::collections::HashSet<&str> =
            cur.map(|v| v.files.iter().map(|f| f.path.as_str()).collect()).unwrap_or_default();
        let mut removed = Vec::new();
        for p in files {
            let Some(name) = p.filename() else { continue };
            let rel = format!("data/{name}");
            let past_newest = data_version(p).is_none_or(|n| n >= next);
            if keep.contains(rel.as_str()) || past_newest {
                continue;
            }
            lease.check(&what).await?;
            tracing::warn!("removing {}, written by a build whose version another build published", self.show(p));
            match self.loc.store.delete(p).await.map_err(norm) {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => removed.push(self.show(p)),
                Err(e) => return Err(store_error(format!("cannot remove {}", self.show(p)), e)),
            }
        }
        removed.extend(self.remove_staged(key, next, lease).await?);
        Ok(removed)
    }

    /// On a local store, removes the staging files (`<data file>#<n>`, which
    /// the store writes and then renames, and does not list) that a build
    /// killed while writing left behind, by the same rule as
    /// [`Self::remove_orphans`]: only below version `next`, whose data file
    /// can never be published. (Object stores keep no such files: an
    /// unfinished multipart upload is not an object.)
    async fn remove_staged(&self, key: &DictKey, next: u64, lease: &Lease) -> Result<Vec<String>> {
        if self.loc.store_url != datafusion::execution::object_store::ObjectStoreUrl::local_filesystem() {
            return Ok(Vec::new());
        }
        let prefix = self.dir(key).join("data");
        // The store's own mapping (it decodes what the path percent-encodes).
        let dir = object_store::local::LocalFileSystem::new()
            .path_to_filesystem(&prefix)
            .map_err(|e| store_error(format!("cannot locate {}", self.show(&prefix)), e))?;
        let mut entries = match tokio::fs::read_dir(&dir).await {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::infra(format!("cannot list {}: {e}", dir.display()))),
        };
        let mut removed = Vec::new();
        while let Some(entry) =
            entries.next_entry().await.map_err(|e| Error::infra(format!("cannot list {}: {e}", dir.display())))?
        {
            let name = entry.file_name();
            let Some((file, n)) = name.to_str().and_then(|n| n.rsplit_once('#')) else { continue };
            if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            if data_version(&Path::from(file)).is_none_or(|v| v >= next) {
                continue;
            }
            lease.check(&self.what(key)).await?;
            let path = entry.path();
            tracing::warn!("removing {}, left by a build killed while writing it", path.display());
            match tokio::fs::remove_file(&path).await {
                Ok(()) => removed.push(path.display().to_string()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::infra(format!("cannot remove {}: {e}", path.display()))),
            }
        }
        Ok(removed)
    }
}

/// The version of a data file (`data/v00000002-….parquet`).
fn data_version(p: &Path) -> Option<u64> {
    p.filename()?.strip_prefix('v')?.split('-').next()?.parse().ok()
}

/// Whether a data file was written by one of the builders holding `tokens`
/// (its name ends with the token of its builder's lease).
fn written_by(p: &Path, tokens: &[String]) -> bool {
    p.filename().is_some_and(|f| tokens.iter().any(|t| f.ends_with(&format!("-{t}.parquet"))))
}

/// Store errors that mean "not found" as `NotFound` (HDFS reports a file
/// removed between two calls as a generic `FileNotFoundException`).
pub(crate) fn norm(e: object_store::Error) -> object_store::Error {
    match e {
        object_store::Error::Generic { store, source } => {
            let msg = source.to_string();
            if msg.contains("FileNotFoundException") || msg.contains("File does not exist") {
                object_store::Error::NotFound { path: String::new(), source }
            } else {
                object_store::Error::Generic { store, source }
            }
        }
        e => e,
    }
}

fn type_matches(key: &DictKey, v: &Version, vt: ValueType) -> Result<()> {
    if v.value_type != vt {
        return Err(Error::config(format!(
            "dictionary {key} holds {} values (version {}), the source values are {vt}; a dictionary's value type \
             cannot change (cast the source expression, or use another dictionary)",
            v.value_type, v.version
        )));
    }
    Ok(())
}

/// A name for a delta file: the same for the same new values of the same
/// version of the same dictionary.
fn fingerprint(key: &DictKey, vt: ValueType, n: u64, base: u64, s: &set::Sorted) -> String {
    let mut h = blake3::Hasher::new();
    for part in [b"starload-dict-delta-1".as_slice(), key.table.as_bytes(), key.column.as_bytes(), vt.name().as_bytes()]
    {
        h.update(&(part.len() as u64).to_le_bytes());
        h.update(part);
    }
    for x in [n, base, s.count, s.bytes, s.set_hash.0, s.set_hash.1] {
        h.update(&x.to_le_bytes());
    }
    h.finalize().to_hex()[..16].to_string()
}

#[cfg(test)]
mod tests;
