//! The load coordinator: one labelled Stream Load per chunk, many in flight,
//! bodies encoded while they are sent, every outcome classified, ambiguous
//! ones resolved through the label's state, verdicts journaled.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use reqwest::header::HeaderMap;
use tokio::sync::{mpsc, oneshot};

use crate::client::{self, Attempt, Client, LabelState, Verdict};
use crate::compress::{Compression, Lz4Body};
use crate::encode::{EncodeError, Encoded, Encoder, Part, WireFormat};
use crate::error::{Error, ErrorKind, Result};
use crate::journal::{DoneRecord, Journal, PartRecord};
use crate::limit::Limiter;
use crate::plan::Chunk;
use crate::preagg::{PreAgg, PreAggSpec};
use crate::scan::Scanner;

/// Tuning of the coordinator.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Loads in flight.
    pub parallel: usize,
    /// Retries of one chunk after a failed attempt (not counting throttling).
    pub max_retries: u32,
    /// Retries of one chunk while the server throttles.
    pub max_throttle_retries: u32,
    /// First backoff delay.
    pub backoff_base: Duration,
    /// Longest backoff delay.
    pub backoff_max: Duration,
    /// Expected server throughput per load, used for the `timeout` header.
    pub expected_bytes_per_sec: u64,
    /// Extra Stream Load headers (already validated).
    pub extra_headers: Vec<(String, String)>,
    /// Whether the transform filters rows (row numbers in errors are then
    /// positions among the kept rows).
    pub filtered: bool,
    /// Loads in flight per BE.
    pub per_be: usize,
    /// HTTP timeout of an upload, when set (else the load timeout + 2 min).
    pub http_timeout: Option<Duration>,
    /// Body compression (CSV bodies only).
    pub compress: crate::compress::Compression,
    /// The user's answers for loads of unknown outcome whose labels
    /// StarRocks forgot, by label (see [`forgotten_in_flight`]).
    pub unknown_loads: std::collections::BTreeMap<String, UnknownLoad>,
    /// The rows go where they are counted before they become visible (an
    /// overwrite's temporary partitions or shadow table): a load counted
    /// twice fails that check, so a forgotten one is simply sent again.
    pub counted: bool,
    /// The rows go to an unsharded overwrite's temporary partitions or
    /// shadow table, which a failed run drops (the next starts a new
    /// attempt).
    pub overwrite_attempt: bool,
}

/// The user's answer for a load an earlier run sent without learning its
/// outcome, when StarRocks no longer knows its label and nothing shows it
/// never committed (without one the run stops and names it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownLoad {
    /// Send it again: the table lacks its rows.
    Resend,
    /// Take it as committed: the table holds its rows.
    Committed,
}

impl UnknownLoad {
    /// Parses the answer `resend` or `committed` for `label`.
    pub fn parse(label: &str, s: &str) -> Result<UnknownLoad> {
        match s.trim().to_ascii_lowercase().as_str() {
            "resend" => Ok(UnknownLoad::Resend),
            "committed" => Ok(UnknownLoad::Committed),
            _ => Err(Error::config(format!("unknown_loads: `{label}` = `{s}` must be resend or committed"))),
        }
    }
}

impl LoadOptions {
    /// The HTTP timeout of an upload whose `timeout` header is `secs`: always
    /// longer than the server's, so a reply is never cut short.
    pub fn upload_timeout(&self, secs: u64) -> Duration {
        self.http_timeout.unwrap_or(Duration::from_secs(secs + 120))
    }
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            parallel: 4,
            max_retries: 8,
            max_throttle_retries: 60,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(60),
            expected_bytes_per_sec: 4 << 20,
            extra_headers: Vec::new(),
            filtered: false,
            per_be: 4,
            http_timeout: None,
            compress: Default::default(),
            unknown_loads: Default::default(),
            counted: false,
            overwrite_attempt: false,
        }
    }
}

/// Progress events for displays.
#[derive(Debug, Clone)]
pub enum Progress {
    /// A chunk was committed (or found committed).
    Committed {
        /// Chunk index.
        index: usize,
        /// Rows in it (as sent or journaled).
        rows: u64,
        /// Body bytes.
        bytes: u64,
        /// True when an earlier run committed it.
        skipped: bool,
    },
    /// A retry or a throttle backoff.
    Retry {
        /// Chunk index.
        index: usize,
        /// Why.
        reason: String,
    },
}

/// What happened to a job.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct LoadReport {
    /// Chunks in the plan.
    pub chunks: usize,
    /// Chunks loaded by this run.
    pub chunks_loaded: usize,
    /// Chunks already committed before this run (journal or label).
    pub chunks_skipped: usize,
    /// Chunks the where clause left without rows (nothing to send).
    pub chunks_empty: usize,
    /// Chunks with rows that went as JSON.
    pub chunks_json: usize,
    /// Chunks with rows that went as CSV with base64 strings.
    pub chunks_base64: usize,
    /// Rows sent by this run.
    pub rows_sent: u64,
    /// Rows StarRocks reported loaded for this run's chunks.
    pub rows_loaded: u64,
    /// Rows of chunks committed by earlier runs.
    pub rows_skipped: u64,
    /// Body bytes sent by this run (committed attempts), as text.
    pub bytes_sent: u64,
    /// Body bytes this run's chunk loads put on the wire, every attempt
    /// counted: LZ4 frames when `compress = "lz4"`.
    pub bytes_on_wire: u64,
    /// Retries (all causes).
    pub retries: u64,
    /// Throttling replies met.
    pub throttled: u64,
    /// Seconds.
    pub seconds: f64,
    /// Time per stage.
    pub stages: Stages,
}

/// Everything a job run needs.
pub struct Job {
    /// The scanner over the plan.
    pub scanner: Arc<Scanner>,
    /// The encoder for the target.
    pub encoder: Arc<Encoder>,
    /// Stream Load client.
    pub client: Client,
    /// Target database.
    pub db: String,
    /// Target table.
    pub table: String,
    /// The journal.
    pub journal: Arc<Mutex<Journal>>,
    /// Options.
    pub options: LoadOptions,
    /// Progress callback.
    pub progress: Arc<dyn Fn(Progress) + Send + Sync>,
    /// Chunks to load (a shard of the plan, or all of it).
    pub chunks: Vec<Chunk>,
    /// Loads in flight, adapting to throttling.
    pub limiter: Arc<Limiter>,
    /// Loads in flight per BE.
    pub be_limiters: Mutex<std::collections::HashMap<String, Arc<Limiter>>>,
    /// Time per stage.
    pub stats: Arc<StageStats>,
    /// Pre-aggregation of BITMAP_UNION rows; `encoder` then encodes the
    /// aggregated rows.
    pub preagg: Option<Arc<PreAggSpec>>,
}

/// Time spent per stage, summed over every chunk (so it can exceed the
/// wall time when stages overlap).
#[derive(Debug, Default)]
pub struct StageStats {
    /// Waiting for DataFusion's next batch (reading and decoding Parquet,
    /// the transform).
    pub decode_ns: AtomicU64,
    /// Encoding on the rayon pool.
    pub encode_ns: AtomicU64,
    /// Waiting for an upload to take the next buffer (network, server).
    pub send_ns: AtomicU64,
    /// Body bytes handed to uploads.
    pub wire_bytes: AtomicU64,
    /// Batches handed to the rayon pool and not encoded yet (a batch is
    /// split across threads only when it is alone).
    pub(crate) encoding: std::sync::atomic::AtomicUsize,
}

/// [`StageStats`] in seconds.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Stages {
    /// See [`StageStats::decode_ns`].
    pub decode_seconds: f64,
    /// See [`StageStats::encode_ns`].
    pub encode_seconds: f64,
    /// See [`StageStats::send_ns`].
    pub send_wait_seconds: f64,
}

impl StageStats {
    /// In seconds.
    pub fn seconds(&self) -> Stages {
        let s = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64 / 1e9;
        Stages {
            decode_seconds: s(&self.decode_ns),
            encode_seconds: s(&self.encode_ns),
            send_wait_seconds: s(&self.send_ns),
        }
    }
}

impl Job {
    /// The limiter of the BE at `be`.
    fn be_limiter(&self, be: &url::Url) -> Arc<Limiter> {
        let key = format!("{}:{}", be.host_str().unwrap_or(""), be.port_or_known_default().unwrap_or(0));
        self.be_limiters.lock().unwrap().entry(key).or_insert_with(|| Limiter::new(self.options.per_be)).clone()
    }
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").field("db", &self.db).field("table", &self.table).finish()
    }
}

#[derive(Default)]
struct Counters {
    report: Mutex<LoadReport>,
}

/// Runs the job: every chunk ends committed, or the run fails with the first
/// error that retries could not fix (other chunks in flight are abandoned;
/// re-running resumes).
pub async fn run(job: Arc<Job>) -> Result<LoadReport> {
    let start = Instant::now();
    let counters = Arc::new(Counters::default());
    counters.report.lock().unwrap().chunks = job.chunks.len();
    // Loads an earlier run left unsettled are not this run's to settle: a
    // label StarRocks has forgotten (days later) may have committed.
    let unsettled = job.journal.lock().unwrap().unsettled();
    let earlier: std::collections::HashSet<String> = unsettled.iter().map(|(l, _)| l.clone()).collect();
    // Loads of unknown outcome: those StarRocks no longer knows are
    // resolved here, before anything is sent, and the outcome recorded (so
    // a chunk does not decide again, after its run's own loads may have
    // pushed the witness out); those nothing resolves are named all at
    // once (the user answers each). A load still running is left to its
    // chunk.
    let mut unresolved = Vec::new();
    for (label, index) in &unsettled {
        let Some((chunk, part)) = job
            .chunks
            .iter()
            .filter(|c| c.index == *index)
            .find_map(|c| Part::ALL.into_iter().find(|&p| part_label(c, p) == *label).map(|p| (c, p)))
        else {
            continue; // another chunk plan's label (another label prefix)
        };
        match job.client.label_state(&job.db, label).await? {
            LabelState::Committed => commit_part(&job, chunk, part, Commit::default())?,
            LabelState::Aborted => job.journal.lock().unwrap().rejected(chunk.index, label)?,
            LabelState::Running => {}
            LabelState::Unknown => match forgotten_answer(&job, label).await? {
                Some(LabelState::Committed) => commit_part(&job, chunk, part, Commit::default())?,
                Some(_) => job.journal.lock().unwrap().rejected(chunk.index, label)?,
                None => unresolved.push((label.clone(), chunk)),
            },
        }
    }
    if !unresolved.is_empty() {
        return Err(forgotten_error(&job, &unresolved));
    }
    use futures::TryStreamExt;
    let result = futures::stream::iter(job.chunks.clone().into_iter().map(Ok::<_, Error>))
        .try_for_each_concurrent(job.options.parallel.max(1), |chunk| {
            let job = job.clone();
            let counters = counters.clone();
            async move { load_chunk(&job, &chunk, &counters).await }
        })
        .await;
    // Not when StarRocks is out of reach: its answers could not come.
    if result.as_ref().is_err_and(|e| e.kind() != ErrorKind::Infra) {
        settle_abandoned(&job, &earlier).await;
    }
    let mut report = counters.report.lock().unwrap().clone();
    report.seconds = start.elapsed().as_secs_f64();
    report.stages = job.stats.seconds();
    report.bytes_on_wire = job.stats.wire_bytes.load(Ordering::Relaxed);
    result.map(|_| report)
}

/// After a failure, the loads abandoned in flight: one StarRocks aborted,
/// or never began (its request was dropped before it reached a BE), put no
/// rows in the table, and the journal now says so; otherwise a re-run with
/// a fixed transform would be refused for rows that are not there. A load
/// that committed, or whose state cannot be learned, stays unsettled (it
/// may hold rows). The requests are dropped by now, so their connections
/// are closed; the grace lets one already on its way reach its BE and
/// begin its transaction before the FE is asked.
async fn settle_abandoned(job: &Job, earlier: &std::collections::HashSet<String>) {
    let mut labels = job.journal.lock().unwrap().unsettled();
    labels.retain(|(l, _)| !earlier.contains(l));
    if labels.is_empty() {
        return;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    // One budget for them all: the failure is not held up for long.
    let until = Instant::now() + Duration::from_secs(30);
    for (label, index) in labels {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        match settle(job, &label, left).await {
            Ok(LabelState::Aborted | LabelState::Unknown) => {
                if let Err(e) = job.journal.lock().unwrap().rejected(index, &label) {
                    tracing::warn!("cannot record that `{label}` holds no rows: {e}");
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!("the state of abandoned load `{label}` is unknown: {e}");
                return;
            }
        }
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn backoff(opts: &LoadOptions, attempt: u32, throttled: bool) -> Duration {
    let base = if throttled { opts.backoff_base * 4 } else { opts.backoff_base };
    let exp = base.saturating_mul(1u32 << attempt.min(16));
    let cap = exp.min(opts.backoff_max);
    // Full jitter in [cap/2, cap].
    let nanos = cap.as_nanos() as u64;
    let jitter = if nanos > 1 { fastrand_u64() % (nanos / 2 + 1) } else { 0 };
    Duration::from_nanos(nanos / 2 + jitter)
}

fn fastrand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(Instant::now().elapsed().as_nanos() as u64);
    h.finish()
}

/// The `timeout` header for a chunk: generous, from its size.
fn load_timeout(opts: &LoadOptions, chunk: &Chunk) -> u64 {
    let secs = chunk.est_bytes / opts.expected_bytes_per_sec.max(1);
    (600 + secs * 2).clamp(600, 259_200)
}

/// The label of a part of a chunk: the chunk's label plus the part's suffix.
fn part_label(chunk: &Chunk, part: Part) -> String {
    format!("{}{}", chunk.label, part.suffix())
}

fn headers(job: &Job, label: &str, part: Part, timeout: u64) -> Result<HeaderMap> {
    let format = part.format();
    let mut h = HeaderMap::new();
    let mut put = |name: &'static str, v: &str| -> Result<()> {
        let (n, v) = client::header(name, v)?;
        h.insert(n, v);
        Ok(())
    };
    put("label", label)?;
    put("format", wire_format_name(format, job.options.compress))?;
    put("columns", &job.encoder.columns_header(part))?;
    put("strict_mode", "true")?;
    put("max_filter_ratio", "0")?;
    put("timeout", &timeout.to_string())?;
    match format {
        WireFormat::Csv => {
            put("column_separator", "\\x01")?;
            put("row_delimiter", "\\x02")?;
        }
        WireFormat::Json => {
            put("strip_outer_array", "true")?;
            put("ignore_json_size", "true")?;
        }
    }
    for (k, v) in &job.options.extra_headers {
        let name = reqwest::header::HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| Error::config(format!("bad header name `{k}`")))?;
        let (_, val) = client::header("extra", v)?;
        h.insert(name, val);
    }
    Ok(h)
}

/// Whether bodies of `format` go compressed: CSV with `compress = "lz4"`
/// (JSON bodies never do).
fn lz4_body(format: WireFormat, compress: Compression) -> bool {
    matches!((format, compress), (WireFormat::Csv, Compression::Lz4))
}

/// The `format` header of a body: LZ4-compressed CSV is `lz4`.
pub(crate) fn wire_format_name(format: WireFormat, compress: Compression) -> &'static str {
    if lz4_body(format, compress) { "lz4" } else { format.name() }
}

/// A compressor for a body of `format`, when bodies of that format are compressed.
pub(crate) fn body_compressor(format: WireFormat, compress: Compression) -> Option<Lz4Body> {
    lz4_body(format, compress).then(Lz4Body::new)
}

type BodyTx = mpsc::Sender<std::result::Result<Bytes, std::io::Error>>;

/// What one upload of one part ended with.
#[derive(Debug)]
struct Upload {
    part: Part,
    attempt: Attempt,
}

/// What a pass over a chunk ended with.
#[derive(Debug)]
enum Produced {
    /// Every row was encoded and handed to its part's body.
    Done { rows: [u64; 3], bytes: [u64; 3] },
    /// An upload ended before its body was complete (refused, failed): the
    /// uploads' outcomes say why.
    Interrupted,
    /// A failure that is the data's fault (or a read error).
    Failed(Error),
}

/// A part's upload, started when its first row is encoded.
struct Sink {
    tx: BodyTx,
    handle: tokio::task::JoinHandle<Upload>,
    /// Set once every row was handed over. A body whose sender goes away
    /// before (the pass abandoned, its task aborted) ends in an error, so
    /// the request is cut off and the server can never commit a partial
    /// chunk under the chunk's label.
    complete: Arc<std::sync::atomic::AtomicBool>,
    /// The body's LZ4 frame, when it is compressed.
    lz4: Option<Lz4Body>,
    part: Part,
}

impl Sink {
    /// Ends the body normally and waits for the server's reply.
    async fn finish(mut self, stats: &StageStats) -> std::result::Result<Upload, tokio::task::JoinError> {
        if let Some(lz4) = self.lz4.take() {
            match lz4.finish() {
                // A send fails only when the upload already ended: its
                // outcome says why.
                Ok(rest) => {
                    stats.wire_bytes.fetch_add(rest.len() as u64, Ordering::Relaxed);
                    drop(self.tx.send(Ok(Bytes::from(rest))).await)
                }
                // The body stays incomplete: the upload is cut off.
                Err(e) => {
                    self.handle.abort();
                    let _ = self.handle.await;
                    return Ok(Upload { part: self.part, attempt: Attempt::Lost(e.to_string()) });
                }
            }
        }
        self.complete.store(true, Ordering::SeqCst);
        drop(self.tx);
        self.handle.await
    }
}

fn start_upload(job: &Arc<Job>, chunk: &Chunk, part: Part, timeout: u64, be: &url::Url) -> Result<Sink> {
    let label = part_label(chunk, part);
    job.journal.lock().unwrap().started(chunk.index, &label)?;
    let hdrs = headers(job, &label, part, timeout)?;
    let (tx, mut rx) = mpsc::channel::<std::result::Result<Bytes, std::io::Error>>(4);
    let lz4 = body_compressor(part.format(), job.options.compress);
    let job = job.clone();
    let be = be.clone();
    let complete = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done = complete.clone();
    let handle = tokio::spawn(async move {
        let mut cut = false;
        let body = reqwest::Body::wrap_stream(futures::stream::poll_fn(move |cx| match rx.poll_recv(cx) {
            std::task::Poll::Ready(None) if !done.load(Ordering::SeqCst) && !cut => {
                cut = true;
                std::task::Poll::Ready(Some(Err(std::io::Error::other("the body was abandoned before its end"))))
            }
            other => other,
        }));
        Upload { part, attempt: job.client.upload(be, &hdrs, body, job.options.upload_timeout(timeout)).await }
    });
    Ok(Sink { tx, handle, complete, lz4, part })
}

/// Scans and encodes a chunk once, streaming each part's rows to its own
/// Stream Load (parts in `skip` are already committed: their rows are
/// encoded and dropped). All parts of a pass go to the BE the FE picks for
/// the pass, within the total and per-BE limits. Returns the producer's
/// verdict and the uploads.
async fn run_pass(job: &Arc<Job>, chunk: &Chunk, skip: [bool; 3], timeout: u64) -> (Produced, Vec<Upload>) {
    let _total = job.limiter.acquire().await;
    // The FE's redirect has no side effects: ask once per pass.
    let hdrs = match headers(job, &part_label(chunk, Part::Csv), Part::Csv, timeout) {
        Ok(h) => h,
        Err(e) => return (Produced::Failed(e), vec![]),
    };
    let be = match job.client.redirect(&job.db, &job.table, &hdrs).await {
        Err(e) => return (Produced::Failed(e), vec![]),
        Ok(Err(attempt)) => return (Produced::Interrupted, vec![Upload { part: Part::Csv, attempt }]),
        Ok(Ok(be)) => be,
    };
    let be_limiter = job.be_limiter(&be);
    let _per_be = be_limiter.acquire().await;
    let mut sinks: [Option<Sink>; 3] = [None, None, None];
    let produced = produce(job, chunk, skip, timeout, &be, &mut sinks).await;
    let mut uploads = Vec::new();
    for (i, s) in sinks.into_iter().enumerate() {
        let Some(s) = s else { continue };
        let result = if matches!(produced, Produced::Done { .. }) {
            if Part::ALL[i] == Part::Json {
                job.stats.wire_bytes.fetch_add(1, Ordering::Relaxed);
                let _ = s.tx.send(Ok(Bytes::from_static(b"]"))).await;
            }
            s.finish(&job.stats).await
        } else {
            // Abort the upload before its body ends: the server never sees a
            // complete request and cannot commit it.
            s.handle.abort();
            let r = s.handle.await;
            drop(s.tx);
            r
        };
        match result {
            Ok(u) => uploads.push(u),
            Err(e) => uploads.push(Upload {
                part: Part::ALL[i],
                attempt: Attempt::Lost(if e.is_cancelled() {
                    "upload aborted".into()
                } else {
                    format!("upload task failed: {e}")
                }),
            }),
        }
    }
    // Feed the limits.
    for u in &uploads {
        if let Attempt::Reply(r) = &u.attempt {
            match client::classify(r) {
                Verdict::Throttled(_) => {
                    job.limiter.throttled();
                    be_limiter.throttled();
                }
                Verdict::Committed { .. } => {
                    job.limiter.success();
                    be_limiter.success();
                }
                _ => {}
            }
        }
    }
    (produced, uploads)
}

/// A chunk whose encode task panicked (its sender dropped unsent).
fn encoder_panicked(chunk: &Chunk) -> Produced {
    Produced::Failed(Error::internal(format!(
        "chunk {}: the encoder panicked (a bug; its message is in the log)",
        chunk.index
    )))
}

async fn produce(
    job: &Arc<Job>,
    chunk: &Chunk,
    skip: [bool; 3],
    timeout: u64,
    be: &url::Url,
    sinks: &mut [Option<Sink>; 3],
) -> Produced {
    // A file that changed since planning must not be half-loaded.
    let plan = job.scanner.plan();
    let files: Vec<crate::source::SourceFile> = chunk.slices.iter().map(|s| plan.files[s.file].file.clone()).collect();
    if let Err(e) = crate::source::check_unchanged(&plan.location, &files).await {
        return Produced::Failed(e);
    }
    let mut stream = match job.scanner.scan(&chunk.slices).await {
        Ok(s) => s,
        Err(e) => return Produced::Failed(e.context(format!("chunk {}", chunk.index))),
    };
    // DataFusion decodes on the task that polls its stream: give every
    // chunk's scan its own task, so chunks in flight decode on every runtime
    // worker (and ahead of the encoder), not all on the task driving them.
    let (btx, mut batches) = mpsc::channel(2);
    // Tests make a reader panic (as arrow-rs does on some files) through
    // a file's name; debug builds only.
    #[cfg(debug_assertions)]
    let panic_at: Option<u64> = chunk
        .slices
        .iter()
        .position(|s| plan.files[s.file].file.path.as_ref().contains("__starload_test_reader_panic__"))
        .map(|i| chunk.slices[..i].iter().map(|s| s.rows).sum());
    // And an encoder panic (a bug) the same way.
    #[cfg(debug_assertions)]
    let encoder_panics =
        chunk.slices.iter().any(|s| plan.files[s.file].file.path.as_ref().contains("__starload_test_encoder_panic__"));
    let mut reader = tokio::spawn(async move {
        #[cfg(debug_assertions)]
        let mut sent = 0u64;
        while let Some(b) = stream.next().await {
            #[cfg(debug_assertions)]
            {
                if panic_at.is_some_and(|at| sent >= at) {
                    panic!("injected reader panic");
                }
                sent += b.as_ref().map_or(0, |b| b.num_rows() as u64);
            }
            let failed = b.is_err();
            if btx.send(b).await.is_err() || failed {
                break;
            }
        }
    });
    let _reader = AbortOnDrop(reader.abort_handle());
    let mut out = Output { rows: [0; 3], bytes: [0; 3], skip, timeout, be, sinks };
    let mut dispatched = 0u64;
    // Pre-aggregation: the chunk's groups, passed from one encode task to
    // the next (one task at a time per chunk).
    let mut agg = match &job.preagg {
        Some(spec) => match spec.start() {
            Ok(a) => Some(a),
            Err(e) => return Produced::Failed(e),
        },
        None => None,
    };
    type Enc = (std::result::Result<Encoded, EncodeError>, Option<PreAgg>);
    let mut pending: Option<(oneshot::Receiver<Enc>, u64)> = None;
    loop {
        let t = Instant::now();
        let next = batches.recv().await;
        job.stats.decode_ns.fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
        if let Some((rx, base)) = pending.take() {
            let enc = match rx.await {
                Ok((Ok(e), a)) => {
                    agg = a;
                    e
                }
                Ok((Err(EncodeError::Value { column, row, msg }), _)) => {
                    let enc = job.preagg.as_ref().map_or(&job.encoder, |p| &p.input);
                    let col = enc.columns()[column].display_name();
                    return Produced::Failed(Error::data(format!(
                        "{}: {msg}",
                        locate(job, chunk, base + row as u64, col).await
                    )));
                }
                Err(_) => return encoder_panicked(chunk),
            };
            if let Some(p) = out.send(job, chunk, enc).await {
                return p;
            }
        }
        let batch = match next {
            None => {
                // The channel also closes when the reader panics (arrow-rs
                // does on some valid files): that is no end of the chunk.
                if let Err(e) = (&mut reader).await {
                    let why = match e.try_into_panic() {
                        Ok(p) => crate::error::panic_text(p.as_ref()),
                        Err(e) => e.to_string(),
                    };
                    // The file it was in: the one holding the first row not
                    // read (unless a where clause dropped rows).
                    let files: Vec<String> = match crate::plan::slice_at(&chunk.slices, dispatched) {
                        Some((s, _)) if !job.options.filtered => vec![job.scanner.plan().file_name(s.file)],
                        _ => chunk.slices.iter().map(|s| job.scanner.plan().file_name(s.file)).collect(),
                    };
                    return Produced::Failed(Error::data(format!(
                        "reading chunk {} ({}): the Parquet reader failed: {why}",
                        chunk.index,
                        summarize_files(&files)
                    )));
                }
                // Every row of the chunk's row groups, unless a where clause
                // dropped some: rows cannot vanish unnoticed.
                let planned: u64 = chunk.slices.iter().map(|s| s.rows).sum();
                if dispatched > planned || (!job.options.filtered && dispatched != planned) {
                    return Produced::Failed(Error::internal(format!(
                        "chunk {} read {dispatched} rows where its row groups hold {planned}",
                        chunk.index
                    )));
                }
                // Tests rewrite a file while it is read through its name
                // (a new modification time); debug builds only.
                #[cfg(debug_assertions)]
                for f in files.iter().filter(|f| f.path.as_ref().contains("__starload_test_rewritten_while_read__")) {
                    let path = plan.location.display_path(&f.path);
                    let later = f.last_modified + std::time::Duration::from_secs(1);
                    let _ = std::fs::File::options()
                        .write(true)
                        .open(&path)
                        .and_then(|h| h.set_modified(std::time::SystemTime::from(later)));
                }
                // A file rewritten while it was read gave rows of two
                // versions: the bodies are not finished, so nothing commits.
                if let Err(e) = crate::source::check_unchanged(&plan.location, &files).await {
                    return Produced::Failed(e.context(format!("chunk {}, after reading it", chunk.index)));
                }
                break;
            }
            Some(Ok(b)) => b,
            Some(Err(e)) => {
                if let Some(r) = crate::scan::KeptRowRefusal::of(&e) {
                    return Produced::Failed(Error::data(format!(
                        "{}: {}",
                        locate(job, chunk, r.row, &r.column).await,
                        r.why
                    )));
                }
                let e = Error::from(e);
                if e.message().to_ascii_lowercase().contains("utf-8")
                    && let Some((file, row, column)) = job.scanner.find_invalid_utf8(&chunk.slices).await
                {
                    return Produced::Failed(Error::data(format!(
                        "file `{}`, row {row}, column `{column}`: the string is not valid UTF-8 (StarRocks strings \
                         must be); cast the column to binary in the transform to load it into VARBINARY",
                        job.scanner.plan().file_name(file)
                    )));
                }
                let files: Vec<String> = chunk.slices.iter().map(|s| job.scanner.plan().file_name(s.file)).collect();
                // Only a data error is the file's: an outage would make
                // every slice's read wait out its timeout.
                let located =
                    if e.kind() == crate::error::ErrorKind::Data { failing_slice(job, chunk).await } else { None };
                let at = match located {
                    Some(s) => format!(
                        "file `{}`, rows {}–{}",
                        job.scanner.plan().file_name(s.file),
                        s.first_row + 1,
                        s.first_row + s.rows
                    ),
                    None => summarize_files(&files),
                };
                return Produced::Failed(Error::new(
                    e.kind(),
                    format!("reading chunk {} ({at}): {}", chunk.index, e.message()),
                ));
            }
        };
        let (etx, erx) = oneshot::channel();
        let encoder = job.encoder.clone();
        let spec = job.preagg.clone();
        let mut a = agg.take();
        let base = dispatched;
        dispatched += batch.num_rows() as u64;
        let stats = job.stats.clone();
        stats.encoding.fetch_add(1, Ordering::Relaxed);
        rayon::spawn(move || {
            let t = Instant::now();
            // A panic (a bug) fails the chunk: the sender is dropped and the
            // chunk ends with an internal error, where a panic in a rayon
            // task would abort the process.
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match (&spec, &mut a) {
                #[cfg(debug_assertions)]
                _ if encoder_panics => panic!("injected encoder panic"),
                (Some(spec), Some(a)) => a.push(spec, &batch, base).map(|_| Encoded::default()),
                _ => {
                    let mut out = Encoded::default();
                    // Other chunks' batches waiting: they keep the other
                    // threads busy, so this one is not split.
                    let alone = stats.encoding.load(Ordering::Relaxed) <= 1;
                    encoder.encode_split(&batch, &mut out, alone).map(|_| out)
                }
            }));
            stats.encoding.fetch_sub(1, Ordering::Relaxed);
            stats.encode_ns.fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
            if let Ok(r) = r {
                let _ = etx.send((r, a));
            }
        });
        pending = Some((erx, base));
    }
    if let (Some(spec), Some(mut a)) = (job.preagg.clone(), agg) {
        // The chunk's groups, encoded and sent in id-stable order.
        let batches = match a.finish(&spec, 65_536) {
            Ok(b) => b,
            Err(e) => return Produced::Failed(e),
        };
        for (first_group, batch) in batches {
            let (etx, erx) = oneshot::channel();
            let enc = spec.output.clone();
            let stats = job.stats.clone();
            rayon::spawn(move || {
                let t = Instant::now();
                // As above: a panic fails the chunk, not the process.
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let mut out = Encoded::default();
                    enc.encode(&batch, &mut out).map(|_| out)
                }));
                stats.encode_ns.fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
                if let Ok(r) = r {
                    let _ = etx.send(r);
                }
            });
            let enc = match erx.await {
                Ok(Ok(e)) => e,
                Ok(Err(EncodeError::Value { column, row, msg })) => {
                    // A key value: name the group's first source row.
                    let at = a.first_row(first_group + row);
                    return Produced::Failed(Error::data(format!(
                        "{}: {msg}",
                        locate(job, chunk, at, spec.source_name(column)).await
                    )));
                }
                Err(_) => return encoder_panicked(chunk),
            };
            if let Some(p) = out.send(job, chunk, enc).await {
                return p;
            }
        }
    }
    let Output { rows, mut bytes, skip, .. } = out;
    if rows[Part::Json as usize] > 0 && !skip[Part::Json as usize] {
        bytes[Part::Json as usize] += 1; // the closing `]`, sent by run_pass
    }
    Produced::Done { rows, bytes }
}

/// Where a pass's encoded rows go: each part's body, started on its first
/// row.
struct Output<'a> {
    rows: [u64; 3],
    bytes: [u64; 3],
    skip: [bool; 3],
    timeout: u64,
    be: &'a url::Url,
    sinks: &'a mut [Option<Sink>; 3],
}

impl Output<'_> {
    /// Hands encoded rows to their parts' bodies; `Some` ends the pass.
    async fn send(&mut self, job: &Arc<Job>, chunk: &Chunk, enc: Encoded) -> Option<Produced> {
        for (i, buf) in enc.parts.into_iter().enumerate() {
            let part = Part::ALL[i];
            let (data, n) = (buf.data, buf.rows);
            if n == 0 {
                continue;
            }
            let first = self.rows[i] == 0;
            self.rows[i] += n as u64;
            if self.skip[i] {
                continue;
            }
            if self.sinks[i].is_none() {
                match start_upload(job, chunk, part, self.timeout, self.be) {
                    Ok(s) => self.sinks[i] = Some(s),
                    Err(e) => return Some(Produced::Failed(e)),
                }
            }
            let sink = self.sinks[i].as_mut().expect("sink started");
            let body = if part == Part::Json {
                let mut buf = Vec::with_capacity(data.len() + 1);
                buf.push(if first { b'[' } else { b',' });
                buf.extend_from_slice(&data);
                buf
            } else {
                data
            };
            self.bytes[i] += body.len() as u64;
            let body = match sink.lz4.as_mut() {
                None => crate::bufpool::bytes(body),
                Some(lz4) => {
                    let piece = lz4.push(&body);
                    crate::bufpool::give(body);
                    match piece {
                        Ok(Some(p)) => Bytes::from(p),
                        Ok(None) => continue,
                        Err(e) => return Some(Produced::Failed(e)),
                    }
                }
            };
            job.stats.wire_bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
            let t = Instant::now();
            let sent = sink.tx.send(Ok(body)).await;
            job.stats.send_ns.fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
            if sent.is_err() {
                return Some(Produced::Interrupted);
            }
        }
        None
    }
}

fn summarize_files(files: &[String]) -> String {
    match files {
        [one] => format!("`{one}`"),
        [first, rest @ ..] => format!("`{first}` and {} more", rest.len()),
        [] => "no files".into(),
    }
}

/// The slice of a chunk of several whose reading fails, each read alone
/// (only after the chunk failed: the error of a chunk of small files packed
/// together named the first file, not the one that failed).
async fn failing_slice<'c>(job: &Job, chunk: &'c Chunk) -> Option<&'c crate::plan::Slice> {
    if chunk.slices.len() < 2 {
        return None;
    }
    for s in &chunk.slices {
        let read = async {
            let mut stream = job.scanner.scan(std::slice::from_ref(s)).await?;
            while let Some(b) = stream.next().await {
                b?;
            }
            Ok::<(), Error>(())
        };
        if read.await.is_err() {
            return Some(s);
        }
    }
    None
}

/// Names the file and row of the `row`-th row of a chunk's output (after a
/// where clause, found by reading the chunk again).
async fn locate(job: &Job, chunk: &Chunk, row: u64, column: &str) -> String {
    match job.scanner.file_row(&chunk.slices, row, column).await {
        Some(at) => at,
        None if job.options.filtered => {
            format!("chunk {} (row {} after the where clause), column `{column}`", chunk.index, row + 1)
        }
        None => format!("chunk {}, row {}, column `{column}`", chunk.index, row + 1),
    }
}

/// Waits until a label leaves the running state.
async fn settle(job: &Job, label: &str, deadline: Duration) -> Result<LabelState> {
    let start = Instant::now();
    let mut n = 0u64;
    loop {
        match job.client.label_state(&job.db, label).await {
            Ok(LabelState::Running) => {}
            Ok(s) => return Ok(s),
            Err(e) if e.kind() == ErrorKind::Config => return Err(e),
            Err(e) => {
                if start.elapsed() > deadline {
                    return Err(e);
                }
            }
        }
        if start.elapsed() > deadline {
            return Err(Error::infra(format!(
                "label `{label}` is still in flight after {} s; re-run the job to resolve it",
                deadline.as_secs()
            )));
        }
        n += 1;
        tokio::time::sleep(Duration::from_millis((100 * n).min(5000))).await;
    }
}

/// A load an earlier run sent without learning its outcome, whose label
/// StarRocks does not know: never received, or committed and forgotten
/// since (StarRocks keeps the labels of a database's last
/// `label_keep_max_num` finished loads, 1000 by default, for at most
/// `label_keep_max_second`). It is sent again when a label the job
/// committed before it was started is still known (StarRocks forgets the
/// oldest first, so it would still know this one had it committed), or when
/// its rows are counted before they become visible (overwrite); else as the
/// user answered for it (`--unknown-loads LABEL=…`). `None`: no answer, the
/// run must stop rather than maybe load the rows twice.
async fn forgotten_answer(job: &Job, label: &str) -> Result<Option<LabelState>> {
    let witness = job.journal.lock().unwrap().witness(label).map(str::to_string);
    if let Some(w) = &witness
        && job.client.label_state(&job.db, w).await? == LabelState::Committed
    {
        return Ok(Some(LabelState::Aborted));
    }
    if job.options.counted {
        return Ok(Some(LabelState::Aborted));
    }
    Ok(match job.options.unknown_loads.get(label) {
        Some(UnknownLoad::Resend) => {
            tracing::warn!(label, "sending again a load StarRocks no longer knows, as answered");
            Some(LabelState::Aborted)
        }
        Some(UnknownLoad::Committed) => {
            tracing::warn!(label, "taking a load StarRocks no longer knows as committed, as answered");
            Some(LabelState::Committed)
        }
        None => None,
    })
}

/// The loads of unknown outcome a run stops on (see [`forgotten_answer`]),
/// each as its label and the rows it carries.
fn forgotten_error(job: &Job, loads: &[(String, &Chunk)]) -> Error {
    let list: Vec<String> = loads
        .iter()
        .map(|(label, chunk)| {
            let rows: Vec<String> = chunk
                .slices
                .iter()
                .map(|s| {
                    format!("{} rows {}..{}", job.scanner.plan().file_name(s.file), s.first_row, s.first_row + s.rows)
                })
                .collect();
            format!("`{label}` (chunk {}: {})", chunk.index, rows.join(", "))
        })
        .collect();
    if job.options.overwrite_attempt {
        return Error::verify(format!(
            "an earlier run of this overwrite sent {} and StarRocks no longer knows {}: sending it again could count \
             its rows twice in a table whose keys hide it. This attempt is given up (its temporary partitions or \
             shadow table are dropped, the live table is unchanged); run again to start a new one",
            loads.iter().map(|(l, _)| format!("`{l}`")).collect::<Vec<_>>().join(", "),
            if loads.len() == 1 { "its label" } else { "their labels" },
        ));
    }
    Error::verify(format!(
        "an earlier run sent {} and never learned {}, and StarRocks no longer knows {} nor any label the job committed \
         before: each may have committed and been forgotten, so sending it again could load its rows twice. Check \
         whether `{}.{}` holds the rows named, and run again with --unknown-loads LABEL=resend for a load whose rows \
         are not there, --unknown-loads LABEL=committed for one whose rows are",
        if list.len() == 1 { format!("load {}", list[0]) } else { format!("loads {}", list.join("; ")) },
        if list.len() == 1 { "its outcome" } else { "their outcomes" },
        if list.len() == 1 { "its label" } else { "their labels" },
        job.db,
        job.table,
    ))
}

/// What a committed part's record says beyond its label.
#[derive(Debug, Default)]
struct Commit {
    txn_id: Option<i64>,
    rows: Option<u64>,
    loaded: Option<u64>,
    bytes: u64,
    visible: bool,
}

/// Records a committed part in the journal.
fn commit_part(job: &Job, chunk: &Chunk, part: Part, c: Commit) -> Result<()> {
    job.journal.lock().unwrap().committed(PartRecord {
        index: chunk.index,
        label: part_label(chunk, part),
        txn_id: c.txn_id,
        rows: c.rows,
        loaded: c.loaded,
        bytes: c.bytes,
        format: part.name().into(),
        visible: c.visible,
    })
}

async fn load_chunk(job: &Arc<Job>, chunk: &Chunk, counters: &Counters) -> Result<()> {
    if let Some(done) = job.journal.lock().unwrap().chunk_done_as(chunk.index, &chunk.label).cloned() {
        let mut r = counters.report.lock().unwrap();
        r.chunks_skipped += 1;
        r.rows_skipped += done.rows;
        drop(r);
        (job.progress)(Progress::Committed { index: chunk.index, rows: done.rows, bytes: done.bytes, skipped: true });
        return Ok(());
    }
    // A part StarRocks committed with other rows than were sent stays wrong:
    // every run fails on it until the table is repaired (and the journal
    // moved aside).
    let mismatch = {
        let j = job.journal.lock().unwrap();
        Part::ALL.iter().find_map(|&p| j.mismatched(&part_label(chunk, p)).map(str::to_string))
    };
    if let Some(msg) = mismatch {
        return Err(Error::verify(format!(
            "{msg} (recorded by an earlier run in journal `{}`: the chunk's rows in StarRocks differ from its source; \
             repair the table, then run with --mode overwrite or a new state directory)",
            job.journal.lock().unwrap().path().display()
        )));
    }
    let timeout = load_timeout(&job.options, chunk);
    let settle_deadline = Duration::from_secs(timeout + 120);
    // Parts an earlier run sent without recording a verdict.
    for part in Part::ALL {
        let label = part_label(chunk, part);
        let in_flight = job.journal.lock().unwrap().in_flight(&label);
        if in_flight {
            let state = match settle(job, &label, settle_deadline).await? {
                LabelState::Unknown => forgotten_answer(job, &label)
                    .await?
                    .ok_or_else(|| forgotten_error(job, &[(label.clone(), chunk)]))?,
                s => s,
            };
            if state == LabelState::Committed {
                commit_part(job, chunk, part, Commit::default())?;
            }
        }
    }
    // A chunk the journal knows nothing of may have been committed by a run
    // whose journal is gone, or by a shard: ask for its labels before
    // sending a body for the BE to refuse. (The BE answers "Label Already
    // Exists" before reading the body and closes; when that reply is lost
    // the outcome reads as this run's own commit, and the chunk was counted
    // as loaded.) Every part's: a chunk's JSON or base64 part is as likely
    // committed as its CSV part. A failed question changes nothing: the
    // label still guards the upload.
    let known = {
        let j = job.journal.lock().unwrap();
        Part::ALL.iter().any(|&p| {
            let label = part_label(chunk, p);
            j.part(&label).is_some() || j.in_flight(&label)
        })
    };
    if !known {
        for part in Part::ALL {
            if let Ok(LabelState::Committed) = job.client.label_state(&job.db, &part_label(chunk, part)).await {
                commit_part(job, chunk, part, Commit::default())?;
            }
        }
    }
    let mut retries = 0u32;
    let mut throttles = 0u32;
    // Parts this run committed (as opposed to earlier runs).
    let mut fresh = [false; 3];
    // Labels an attempt of this run left of unknown outcome: a later
    // attempt refused before it began does not make them refused.
    let mut unknown_here: std::collections::HashSet<String> = std::collections::HashSet::new();
    loop {
        let skip = {
            let j = job.journal.lock().unwrap();
            Part::ALL.map(|p| j.part(&part_label(chunk, p)).is_some())
        };
        let (produced, uploads) = run_pass(job, chunk, skip, timeout).await;
        // Settle every upload first: committed ones go to the journal
        // whatever else happened.
        let mut failure: Option<Verdict> = None;
        let mut data_error: Option<(Verdict, Option<client::LoadReply>, String)> = None;
        let sent_rows = match &produced {
            Produced::Done { rows, .. } => Some(*rows),
            _ => None,
        };
        let sent_bytes = match &produced {
            Produced::Done { bytes, .. } => *bytes,
            _ => [0, 0, 0],
        };
        for u in uploads {
            let label = part_label(chunk, u.part);
            let rows = sent_rows.map(|r| r[u.part as usize]);
            let (verdict, reply) = match &u.attempt {
                Attempt::Reply(r) => (client::classify(r), Some(r.clone())),
                Attempt::Lost(m) => (Verdict::Ambiguous(m.clone()), None),
                Attempt::Refused(v) => (v.clone(), None),
            };
            match verdict {
                Verdict::Committed { earlier: was_earlier } => {
                    let r = reply.unwrap_or_default();
                    let loaded = if was_earlier { None } else { r.loaded_rows };
                    if let (Some(l), Some(sent)) = (loaded, rows)
                        && (l != sent || r.filtered_rows.unwrap_or(0) != 0)
                    {
                        let msg = format!(
                            "chunk {} (label `{label}`): sent {sent} rows, StarRocks loaded {l} (filtered {})",
                            chunk.index,
                            r.filtered_rows.unwrap_or(0)
                        );
                        // A re-run finds the label committed: it must fail
                        // the same way rather than count the chunk as loaded.
                        job.journal.lock().unwrap().mismatch(chunk.index, &label, &msg)?;
                        return Err(Error::verify(msg));
                    }
                    if rows.is_none() && !was_earlier {
                        // A reply of success for a body we aborted cannot be.
                        return Err(Error::internal(format!(
                            "label `{label}` committed although its body was aborted"
                        )));
                    }
                    fresh[u.part as usize] |= !was_earlier;
                    let visible = !was_earlier && r.status.eq_ignore_ascii_case("success");
                    let bytes = sent_bytes[u.part as usize];
                    commit_part(job, chunk, u.part, Commit { txn_id: r.txn_id, rows, loaded, bytes, visible })?;
                }
                Verdict::Ambiguous(why) => {
                    tracing::warn!(chunk = chunk.index, label = %label, "outcome unknown ({why}); checking the label's state");
                    match settle(job, &label, settle_deadline).await? {
                        LabelState::Committed => {
                            // An aborted body cannot commit: when this pass's
                            // body was incomplete, an earlier run committed it.
                            fresh[u.part as usize] |= rows.is_some();
                            let bytes = sent_bytes[u.part as usize];
                            commit_part(job, chunk, u.part, Commit { rows, bytes, ..Commit::default() })?;
                        }
                        state => {
                            if state == LabelState::Aborted {
                                job.journal.lock().unwrap().rejected(chunk.index, &label)?;
                                unknown_here.remove(&label);
                            } else {
                                unknown_here.insert(label.clone());
                            }
                            failure = failure.or(Some(Verdict::Retry(why)))
                        }
                    }
                }
                v @ (Verdict::DataError(_) | Verdict::Fatal(_)) => {
                    // The BE's answer: the load's transaction is aborted.
                    job.journal.lock().unwrap().rejected(chunk.index, &label)?;
                    data_error = Some((v, reply, label.clone()))
                }
                v @ (Verdict::Retry(_) | Verdict::Throttled(_)) => {
                    if !unknown_here.contains(&label) {
                        job.journal.lock().unwrap().rejected(chunk.index, &label)?;
                    }
                    // Throttling outranks a plain retry: back off longer.
                    if !matches!(failure, Some(Verdict::Throttled(_))) {
                        failure = Some(v);
                    }
                }
            }
        }
        if let Produced::Failed(e) = produced {
            // Let aborted uploads settle so their labels are free for a
            // later run, then fail.
            for part in Part::ALL {
                let label = part_label(chunk, part);
                if job.journal.lock().unwrap().in_flight(&label) {
                    let _ = settle(job, &label, Duration::from_secs(30)).await;
                }
            }
            return Err(e);
        }
        if let Some((v, reply, label)) = data_error {
            let failed = Failed { reply: reply.as_ref(), label: &label };
            return handle_failure(job, chunk, v, &mut retries, &mut throttles, counters, Some(failed)).await;
        }
        if let Produced::Done { rows, bytes } = produced {
            let j = job.journal.lock().unwrap();
            let complete = Part::ALL.iter().all(|&p| rows[p as usize] == 0 || j.part(&part_label(chunk, p)).is_some());
            drop(j);
            if complete {
                let labels: Vec<String> =
                    Part::ALL.iter().filter(|&&p| rows[p as usize] > 0).map(|&p| part_label(chunk, p)).collect();
                let total_rows: u64 = rows.iter().sum();
                let total_bytes: u64 = bytes.iter().sum();
                job.journal.lock().unwrap().done(DoneRecord {
                    index: chunk.index,
                    label: chunk.label.clone(),
                    rows: total_rows,
                    bytes: total_bytes,
                    labels,
                })?;
                let fresh_rows: u64 = Part::ALL.iter().filter(|&&p| fresh[p as usize]).map(|&p| rows[p as usize]).sum();
                let fresh_bytes: u64 =
                    Part::ALL.iter().filter(|&&p| fresh[p as usize]).map(|&p| bytes[p as usize]).sum();
                let skipped = !fresh.iter().any(|&f| f) && total_rows > 0;
                let mut r = counters.report.lock().unwrap();
                if total_rows == 0 {
                    r.chunks_empty += 1;
                } else if skipped {
                    r.chunks_skipped += 1;
                    r.rows_skipped += total_rows;
                } else {
                    r.chunks_loaded += 1;
                    r.rows_sent += fresh_rows;
                    r.rows_loaded += fresh_rows;
                    r.rows_skipped += total_rows - fresh_rows;
                    r.bytes_sent += fresh_bytes;
                    if fresh[Part::Json as usize] {
                        r.chunks_json += 1;
                    }
                    if fresh[Part::Csv64 as usize] {
                        r.chunks_base64 += 1;
                    }
                }
                drop(r);
                (job.progress)(Progress::Committed {
                    index: chunk.index,
                    rows: total_rows,
                    bytes: total_bytes,
                    skipped,
                });
                return Ok(());
            }
        }
        let v = failure.unwrap_or_else(|| Verdict::Retry("an upload ended early".into()));
        handle_failure(job, chunk, v, &mut retries, &mut throttles, counters, None).await?;
    }
}

async fn retry_wait(
    job: &Job,
    chunk: &Chunk,
    retries: &mut u32,
    throttles: &mut u32,
    throttled: bool,
    why: &str,
    counters: &Counters,
) -> Result<()> {
    let opts = &job.options;
    let (n, max) = if throttled {
        *throttles += 1;
        (*throttles, opts.max_throttle_retries)
    } else {
        *retries += 1;
        (*retries, opts.max_retries)
    };
    if n > max {
        return Err(Error::infra(format!(
            "chunk {} (label `{}`) failed after {} attempts: {why}",
            chunk.index, chunk.label, n
        )));
    }
    {
        let mut r = counters.report.lock().unwrap();
        r.retries += 1;
        if throttled {
            r.throttled += 1;
        }
    }
    (job.progress)(Progress::Retry { index: chunk.index, reason: why.to_string() });
    tracing::warn!(chunk = chunk.index, attempt = n, "retrying: {why}");
    tokio::time::sleep(backoff(opts, n - 1, throttled)).await;
    Ok(())
}

/// The load a data error came from.
struct Failed<'a> {
    reply: Option<&'a client::LoadReply>,
    label: &'a str,
}

async fn handle_failure(
    job: &Job,
    chunk: &Chunk,
    verdict: Verdict,
    retries: &mut u32,
    throttles: &mut u32,
    counters: &Counters,
    failed: Option<Failed<'_>>,
) -> Result<()> {
    let reply = failed.as_ref().and_then(|f| f.reply);
    let label = failed.as_ref().map_or(chunk.label.as_str(), |f| f.label);
    match verdict {
        Verdict::Retry(m) | Verdict::Ambiguous(m) => {
            retry_wait(job, chunk, retries, throttles, false, &m, counters).await
        }
        Verdict::Throttled(m) => retry_wait(job, chunk, retries, throttles, true, &m, counters).await,
        Verdict::DataError(m) => {
            let mut msg = format!("StarRocks rejected rows of chunk {} (label `{label}`): {m}", chunk.index);
            if let Some(url) = reply.and_then(|r| r.error_url.as_deref())
                && let Some(log) = job.client.error_log(url, 2000).await
            {
                let first = log.lines().next().unwrap_or("").trim();
                msg.push_str(&format!("; first rejected row: {first}"));
            }
            Err(Error::data(msg))
        }
        Verdict::Fatal(m) => Err(Error::config(format!("StarRocks refused chunk {}: {m}", chunk.index))),
        Verdict::Committed { .. } => Ok(()),
    }
}
