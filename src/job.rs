//! A whole job: resolve settings, plan, check the target schema, load,
//! report. The binary and the tests both drive jobs through here.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use crate::client::{Client, HttpSettings, Secret};
use crate::config::{JobFile, partition_type, read_password};
use crate::encode::{self, Encoder, Mapping, Zone};
use crate::error::{Error, Result};
use crate::journal::{self, JobHeader, Journal};
use crate::load::{self, Job, LoadOptions, LoadReport, Progress};
use crate::meta::{self, Meta, TargetTable};
use crate::plan::{self, FingerprintInputs, Plan};
use crate::scan::{Scanner, Transform};
use crate::source::{self, StoreOptions};

/// Default chunk size (estimated encoded bytes).
pub const DEFAULT_CHUNK_BYTES: u64 = 256 << 20;
/// Default loads in flight.
pub const DEFAULT_PARALLEL: usize = 4;
/// The longest timeout a job may set.
const MAX_TIMEOUT_SECS: u64 = 366 * 24 * 3600;

/// Resolved settings of a job.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Source location (a path or URL), unless `hive_table`.
    pub source: Option<String>,
    /// A Hive table (`db.table`) to read through the metastore.
    pub hive_table: Option<String>,
    /// The metastore URI (`thrift://host:9083`).
    pub metastore: Option<String>,
    /// Target database.
    pub db: String,
    /// Target table.
    pub table: String,
    /// FE HTTP URL.
    pub fe: url::Url,
    /// FE MySQL address.
    pub mysql: String,
    /// User.
    pub user: String,
    /// Password.
    pub password: Secret,
    /// State directory.
    pub state_dir: PathBuf,
    /// Label prefix.
    pub label_prefix: String,
    /// Chunk size.
    pub chunk_bytes: u64,
    /// Loads in flight.
    pub parallel: usize,
    /// Time zone.
    pub zone: Zone,
    /// Whether the job named its time zone (not the default UTC).
    pub zone_given: bool,
    /// Rows per batch.
    pub batch_size: usize,
    /// Retries per chunk.
    pub max_retries: u32,
    /// Transform.
    pub transform: Transform,
    /// Partition column types.
    pub partition_types: Vec<(String, arrow::datatypes::DataType)>,
    /// Store options.
    pub store: StoreOptions,
    /// CA file.
    pub ca_file: Option<PathBuf>,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Loads in flight per BE (default: `parallel`).
    pub per_be_parallel: Option<usize>,
    /// Load mode.
    pub mode: Mode,
    /// Partial update (Primary Key tables).
    pub partial_update: bool,
    /// Merge condition column (Primary Key tables).
    pub merge_condition: Option<String>,
    /// Largest atomic job.
    pub max_txn_bytes: u64,
    /// Start a new job even if an earlier one with other inputs exists.
    pub new_job: bool,
    /// Let an overwrite with no rows empty an unpartitioned table.
    pub allow_empty: bool,
    /// Answers for loads of unknown outcome whose labels StarRocks forgot.
    pub unknown_loads: std::collections::BTreeMap<String, crate::load::UnknownLoad>,
    /// HTTP timeout of one Stream Load.
    pub http_timeout: Option<Duration>,
    /// Body compression.
    pub compress: crate::compress::Compression,
    /// First retry delay.
    pub retry_base: Duration,
    /// This process loads shard `i` of `n` of the chunk plan.
    pub shard: Option<(usize, usize)>,
    /// Where dictionaries live (a path or URL).
    pub dict_store: String,
    /// Merge rows with equal keys into one bitmap per chunk.
    pub preaggregate: bool,
}

/// How a job changes the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// One Stream Load per chunk part; rows appear as chunks commit.
    Append,
    /// All rows in one transaction (begin, loads, prepare, commit).
    Atomic,
    /// The partitions the job touches are replaced at once (temporary
    /// partitions, then `REPLACE PARTITION`; a shadow table and `SWAP` for
    /// unpartitioned tables).
    Overwrite,
}

impl Mode {
    /// Parses `append`, `atomic`, `overwrite`.
    pub fn parse(s: &str) -> Result<Mode> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "append" => Mode::Append,
            "atomic" => Mode::Atomic,
            "overwrite" => Mode::Overwrite,
            other => return Err(Error::config(format!("unknown mode `{other}` (append, atomic or overwrite)"))),
        })
    }
    /// The name.
    pub fn name(&self) -> &'static str {
        match self {
            Mode::Append => "append",
            Mode::Atomic => "atomic",
            Mode::Overwrite => "overwrite",
        }
    }
}

impl Settings {
    /// Resolves a job file (CLI values already merged in).
    pub fn resolve(f: JobFile) -> Result<Settings> {
        let need = |v: Option<String>, key: &str| {
            v.ok_or_else(|| Error::config(format!("`{key}` is required (flag --{key} or key `{key}` in the job file)")))
        };
        match (&f.source, &f.hive_table) {
            (None, None) => return Err(Error::config("`source` or `hive_table` is required")),
            (Some(_), Some(_)) => return Err(Error::config("give either `source` or `hive_table`, not both")),
            _ => {}
        }
        for (key, url) in [
            ("source", &f.source),
            ("metastore", &f.metastore),
            ("dict_store", &f.dict_store),
            ("metrics_pushgateway", &f.metrics_pushgateway),
        ] {
            if let Some(u) = url {
                crate::config::check_no_password(key, u)?;
            }
        }
        // Endpoints (`[s3] endpoint`) are echoed by the store's errors.
        for (section, map) in [("s3", &f.s3), ("hdfs", &f.hdfs)] {
            for (k, v) in map {
                crate::config::check_no_password(&format!("[{section}] {k}"), v)?;
            }
        }
        let (db, table) = meta::split_table(&need(f.table, "table")?)?;
        let fe_text = f.fe.unwrap_or_else(|| "http://127.0.0.1:8030".into());
        let shown = crate::config::redact_url(&fe_text);
        let fe = url::Url::parse(&fe_text).map_err(|e| Error::config(format!("bad FE URL `{shown}`: {e}")))?;
        if !matches!(fe.scheme(), "http" | "https") || !fe.username().is_empty() || fe.password().is_some() {
            return Err(Error::config(format!("FE URL `{shown}` must be http(s)://host:port, without credentials")));
        }
        if let Some(m) = &f.mysql {
            crate::config::check_mysql_address(m)?;
        }
        let mysql = f.mysql.unwrap_or_else(|| format!("{}:9030", fe.host_str().unwrap_or("127.0.0.1")));
        let label_prefix = f.label_prefix.unwrap_or_else(|| "starload".into());
        plan::check_label_prefix(&label_prefix)?;
        let zone = Zone::parse(f.timezone.as_deref().unwrap_or("UTC"))?;
        let partition_types =
            f.partition_types.iter().map(|(k, v)| Ok((k.clone(), partition_type(v)?))).collect::<Result<Vec<_>>>()?;
        for (k, v) in &f.headers {
            let lower = k.to_ascii_lowercase();
            if matches!(
                lower.as_str(),
                "label"
                    | "format"
                    | "columns"
                    | "column_separator"
                    | "row_delimiter"
                    | "strict_mode"
                    | "max_filter_ratio"
                    | "authorization"
                    | "expect"
                    | "timeout"
                    | "strip_outer_array"
                    | "ignore_json_size"
                    | "jsonpaths"
                    | "json_root"
                    | "partial_update"
                    | "partial_update_mode"
                    | "merge_condition"
                    | "temporary_partitions"
                    | "partitions"
                    | "where"
                    | "db"
                    | "table"
                    | "transaction_id"
            ) {
                return Err(Error::config(format!("header `{k}` is set by starload and cannot be overridden")));
            }
            // Headers that would make the BE read other values than were sent.
            if matches!(lower.as_str(), "trim_space" | "enclose" | "escape" | "skip_header" | "null_marker") {
                return Err(Error::config(format!(
                    "header `{k}` changes how the BE reads the body starload writes; it cannot be set"
                )));
            }
            crate::client::header("extra", v)?;
        }
        if let Some(l) = f.log_format.as_deref()
            && !l.eq_ignore_ascii_case("text")
            && !l.eq_ignore_ascii_case("json")
        {
            return Err(Error::config(format!("log_format `{l}` must be `text` or `json`")));
        }
        for (name, v) in [("http_timeout_secs", f.http_timeout_secs), ("source_timeout_secs", f.source_timeout_secs)] {
            if v == Some(0) {
                return Err(Error::config(format!("{name} must be at least 1")));
            }
            // A deadline that far off overflows the clock.
            if v.is_some_and(|v| v > MAX_TIMEOUT_SECS) {
                return Err(Error::config(format!("{name} must be at most {MAX_TIMEOUT_SECS} (a year)")));
            }
        }
        if f.batch_size == Some(0) {
            return Err(Error::config("batch_size must be at least 1"));
        }
        let dict_default = f.state_dir.clone().unwrap_or_else(|| PathBuf::from(".starload"));
        let parallel = f.parallel.unwrap_or(DEFAULT_PARALLEL);
        if parallel == 0 || parallel > 256 {
            return Err(Error::config("parallel must be between 1 and 256"));
        }
        // 0 would silently mean 1 (the limiter's floor).
        if f.per_be_parallel.is_some_and(|n| n == 0 || n > 256) {
            return Err(Error::config("per_be_parallel must be between 1 and 256"));
        }
        Ok(Settings {
            source: f.source,
            hive_table: f.hive_table,
            metastore: f.metastore,
            db,
            table,
            fe,
            mysql,
            user: f.user.unwrap_or_else(|| "root".into()),
            password: read_password(f.password_file.as_deref())?,
            state_dir: f.state_dir.unwrap_or_else(|| PathBuf::from(".starload")),
            label_prefix,
            chunk_bytes: f.chunk_bytes.map(|b| b.0).unwrap_or(DEFAULT_CHUNK_BYTES),
            parallel,
            zone,
            zone_given: f.timezone.is_some(),
            batch_size: f.batch_size.unwrap_or(8192),
            max_retries: f.max_retries.unwrap_or(8),
            transform: Transform {
                select: f.transform.select,
                filter: f.transform.filter,
                delete_when: f.delete_when,
                dicts: bitmap_dicts(&f.bitmap_dict)?,
                clock: f.transform.clock.as_deref().map(parse_clock).transpose()?,
            },
            partition_types,
            store: StoreOptions { s3: f.s3, hdfs: f.hdfs, timeout: f.source_timeout_secs.map(Duration::from_secs) },
            ca_file: f.ca_file,
            headers: f.headers.into_iter().collect(),
            per_be_parallel: f.per_be_parallel,
            mode: Mode::parse(f.mode.as_deref().unwrap_or("append"))?,
            partial_update: f.partial_update.unwrap_or(false),
            merge_condition: f.merge_condition,
            max_txn_bytes: f.max_txn_bytes.map(|b| b.0).unwrap_or(10 << 30),
            new_job: f.new_job.unwrap_or(false),
            allow_empty: f.allow_empty.unwrap_or(false),
            unknown_loads: f
                .unknown_loads
                .iter()
                .map(|(l, a)| Ok((l.clone(), crate::load::UnknownLoad::parse(l, a)?)))
                .collect::<Result<_>>()?,
            http_timeout: f.http_timeout_secs.map(Duration::from_secs),
            compress: crate::compress::Compression::parse(f.compress.as_deref().unwrap_or("none"))?,
            retry_base: Duration::from_millis(f.retry_base_ms.unwrap_or(500)),
            shard: f.shard.as_deref().map(parse_shard).transpose()?,
            dict_store: f.dict_store.unwrap_or_else(|| dict_default.join("dicts").display().to_string()),
            preaggregate: f.bitmap_preaggregate.unwrap_or(false),
        })
    }
}

/// Checks `bitmap_dict` entries: a column name and a non-empty expression.
fn bitmap_dicts(m: &std::collections::BTreeMap<String, String>) -> Result<Vec<(String, String)>> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (col, expr) in m {
        meta::check_ident("bitmap_dict column", col)?;
        if expr.trim().is_empty() {
            return Err(Error::config(format!("bitmap_dict `{col}` needs a source expression")));
        }
        if out.iter().any(|(c, _)| c.eq_ignore_ascii_case(col)) {
            return Err(Error::config(format!("bitmap_dict names column `{col}` twice")));
        }
        out.push((col.clone(), expr.trim().to_string()));
    }
    Ok(out)
}

/// A planned job, checked against the target table.
#[derive(Debug)]
pub struct Prepared {
    /// Settings.
    pub settings: Settings,
    /// The plan.
    pub plan: Arc<Plan>,
    /// The scanner.
    pub scanner: Arc<Scanner>,
    /// Column mapping.
    pub mapping: Mapping,
    /// Target table.
    pub target: TargetTable,
    /// Encoder (of the rows sent: the aggregated rows when
    /// pre-aggregating). Dictionary columns need
    /// [`crate::dictjob::attach`] before it can encode.
    pub encoder: Arc<Encoder>,
    /// Pre-aggregation of BITMAP_UNION rows.
    pub preagg: Option<Arc<crate::preagg::PreAggSpec>>,
    /// Seconds spent listing, reading footers and checking the table.
    pub plan_seconds: f64,
}

/// VARBINARY goes in CSV as base64, which the BE decodes since StarRocks
/// 3.2 (varbinary_converter.cpp, PR 26911); 3.0 and 3.1 read the field as
/// hex, so base64 made only of hex digits (`AAAA`, three zero bytes) would
/// be stored as other bytes without an error.
fn check_varbinary_server(version: Option<(u32, u32)>, column: &str) -> Result<()> {
    match version {
        Some(v) if v < (3, 2) => Err(Error::config(format!(
            "VARBINARY column `{column}`: StarRocks {}.{} reads VARBINARY in CSV as hex, not base64 (3.2 and later); \
             load it on 3.2 or later",
            v.0, v.1
        ))),
        Some(_) => Ok(()),
        None => {
            tracing::warn!(
                "could not tell the StarRocks version (SELECT current_version()); VARBINARY column `{column}` needs \
                 3.2 or later (earlier versions read its base64 as hex)"
            );
            Ok(())
        }
    }
}

/// Parses a `clock`: an RFC 3339 instant, as µs since 1970 UTC.
fn parse_clock(s: &str) -> Result<i64> {
    chrono::DateTime::parse_from_rfc3339(s.trim()).map(|t| t.timestamp_micros()).map_err(|e| {
        Error::config(format!(
            "clock `{s}` is not an RFC 3339 instant such as 2026-11-28T00:00:00Z or 2026-11-28T08:00:00+08:00 ({e})"
        ))
    })
}

/// Refuses, unless the job names its time zone, files whose INT96
/// timestamps Hive wrote from another zone than the job's: starload (like
/// Spark, and StarRocks' own Parquet reader) reads INT96 as UTC instants and
/// stores them as the job zone's wall-clock time, where Hive shows them in
/// the zone it wrote them from (`writer.time.zone`): left to the default,
/// every timestamp of a Hive table written in Asia/Shanghai would be stored
/// eight hours off what Hive shows.
fn check_int96_writer_zones(plan: &crate::plan::Plan, s: &Settings) -> Result<()> {
    // UTC named: the instants as they are, whichever zone wrote them.
    if s.zone_given && s.zone == Zone::Utc {
        return Ok(());
    }
    let utc_like = |z: &str| {
        matches!(
            z.trim().to_ascii_lowercase().as_str(),
            "utc"
                | "gmt"
                | "z"
                | "uct"
                | "zulu"
                | "universal"
                | "greenwich"
                | "gmt0"
                | "gmt+0"
                | "gmt-0"
                | "etc/utc"
                | "etc/gmt"
                | "etc/uct"
                | "etc/zulu"
                | "etc/universal"
                | "etc/greenwich"
                | "etc/gmt0"
                | "etc/gmt+0"
                | "etc/gmt-0"
                | "+00:00"
                | "-00:00"
        )
    };
    // Java names fixed offsets `GMT+08:00`, `UTC+8`: starload `+08:00`.
    let java = |z: &str| -> String {
        let t = z.trim();
        let rest = ["GMT", "UTC", "UT"].iter().find_map(|p| t.strip_prefix(p)).filter(|r| r.starts_with(['+', '-']));
        let Some(r) = rest else { return t.to_string() };
        let (sign, hm) = r.split_at(1);
        let (h, m) = hm.split_once(':').unwrap_or(if hm.len() == 4 { hm.split_at(2) } else { (hm, "0") });
        match (h.parse::<u32>(), m.parse::<u32>()) {
            (Ok(h), Ok(m)) if h <= 18 && m < 60 => format!("{sign}{h:02}:{m:02}"),
            _ => t.to_string(),
        }
    };
    let same = |z: &str| match s.zone {
        Zone::Utc => utc_like(z) || Zone::parse(&java(z)).is_ok_and(|w| w == Zone::Utc),
        _ => Zone::parse(&java(z)).is_ok_and(|w| w == s.zone),
    };
    // Every zone files were written from that is not the job's: a named
    // zone stores what Hive shows only for files written from it.
    let mut other: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();
    let mut zones = std::collections::BTreeSet::new();
    for (i, f) in plan.files.iter().enumerate() {
        if let Some(z) = f.int96_writer_zone.as_deref()
            && f.int96_columns.iter().any(|c| s.transform.may_read(c))
        {
            zones.insert(java(z));
            if !same(z) {
                other.entry(java(z)).or_insert_with(|| plan.file_name(i));
            }
        }
    }
    let Some((z, _)) = other.first_key_value() else { return Ok(()) };
    let written: Vec<String> = other.iter().map(|(z, f)| format!("`{f}` from `{z}`")).collect();
    Err(Error::config(format!(
        "Hive wrote INT96 timestamps this job reads from another time zone than {} (writer.time.zone: {}{}) and shows \
         them as that zone's wall-clock times; this job would store them as {} times. Name the zone: {} stores what \
         Hive shows, --timezone UTC the instants as they are",
        s.zone.name(),
        written.join(", "),
        if zones.len() > 1 { "; load the files of each zone with its own --timezone" } else { "" },
        s.zone.name(),
        if zones.len() > 1 { "--timezone <the files' zone>".to_string() } else { format!("--timezone {z}") },
    )))
}

/// Refuses shards (and their `finalize`) of a transform that reads the
/// clock without a clock given: each shard would start its own, on its own
/// machine (and `finalize` would look for another job's journals).
fn check_shard_clock(p: &Prepared) -> Result<()> {
    match (p.scanner.clock_function(), p.settings.transform.clock) {
        (Some(f), None) => Err(Error::config(format!(
            "the transform calls {f}, and shards start at different times on different machines: give every shard \
             and `finalize` the same `--clock` (an RFC 3339 instant, e.g. Airflow's {{{{ data_interval_end }}}})"
        ))),
        _ => Ok(()),
    }
}

/// Parses `i/n` (0-based shard `i` of `n`).
pub fn parse_shard(s: &str) -> Result<(usize, usize)> {
    let bad = || Error::config(format!("shard `{s}` must be i/n with 0 <= i < n"));
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let (i, n): (usize, usize) = (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
    if n == 0 || i >= n {
        return Err(bad());
    }
    Ok((i, n))
}

/// The Arrow type of a Hive partition column: a string for the types
/// without one of their own (`varchar(n)`, `char(n)`).
fn hive_partition_type(t: &str) -> arrow::datatypes::DataType {
    crate::config::partition_type(t).unwrap_or(arrow::datatypes::DataType::Utf8)
}

/// Gives each partition key without a type in the job its metastore type;
/// returns the keys conditions on which may be pushed to the metastore. A
/// key the job gives another type is compared as that type by the pruner
/// and the scan (`region = '7'` as int matches `007`), but the metastore
/// would compare its own type: not pushed.
fn metastore_types(
    keys: &[crate::hms::HiveColumn],
    types: &mut Vec<(String, arrow::datatypes::DataType)>,
) -> Vec<crate::hms::HiveColumn> {
    let mut pushable = Vec::new();
    for c in keys {
        let own = hive_partition_type(&c.hive_type);
        match types.iter().find(|(k, _)| k.eq_ignore_ascii_case(&c.name)) {
            Some((_, ty)) if *ty != own => continue,
            Some(_) => {}
            None => types.push((c.name.clone(), own)),
        }
        pushable.push(c.clone());
    }
    pushable
}

/// Lists the source: a path or URL (Hive layout, pruned by the where
/// clause), or a Hive table through its metastore (partitions filtered in the
/// metastore, then pruned). Fills partition types from the metastore.
///
/// Conjuncts reading a key in `unpruned` do not prune (keys the files also
/// store: their rows are filtered on the files' typed values).
async fn list_source(
    settings: &mut Settings,
    unpruned: &[String],
    prune: bool,
) -> Result<(source::Location, source::Listing)> {
    let timeout = settings.store.op_timeout();
    let filter = settings.transform.filter.clone().filter(|_| prune);
    let pruner_of = |types: &[(String, arrow::datatypes::DataType)]| -> Result<Option<crate::prune::Pruner>> {
        Ok(crate::prune::Pruner::new(filter.as_deref(), types)?.map(|p| p.without(unpruned)))
    };
    if let Some(ht) = settings.hive_table.clone() {
        let (hdb, htable) = ht
            .split_once('.')
            .ok_or_else(|| Error::config(format!("hive_table `{ht}` must be written as db.table")))?;
        let uri = settings
            .metastore
            .clone()
            .ok_or_else(|| Error::config("`metastore` (thrift://host:9083) is required with hive_table"))?;
        let mut ms = crate::hms::Metastore::connect(&uri, timeout).await?;
        let t = ms.table(hdb, htable).await?;
        crate::hms::check_plain_parquet(&t)?;
        let loc = source::open(&t.location, &settings.store)?;
        let keys: Vec<String> = t.partition_keys.iter().map(|c| c.name.clone()).collect();
        let pushable = metastore_types(&t.partition_keys, &mut settings.partition_types);
        let pruner = pruner_of(&settings.partition_types)?;
        let parts = if keys.is_empty() {
            vec![(loc.root.clone(), vec![])]
        } else {
            let pushed = filter
                .as_deref()
                .filter(|_| unpruned.is_empty())
                .and_then(|w| crate::hms::partition_filter(w, &pushable));
            let mut out = Vec::new();
            for p in ms.partitions(hdb, htable, pushed.as_deref()).await? {
                let values: Vec<Option<String>> = p
                    .values
                    .iter()
                    .map(|v| if v == "__HIVE_DEFAULT_PARTITION__" { None } else { Some(v.clone()) })
                    .collect();
                let named: Vec<(String, Option<String>)> = keys.iter().cloned().zip(values.iter().cloned()).collect();
                if pruner.as_ref().is_none_or(|pr| pr.matches(&named)) {
                    p.check_plain_parquet(&t, &keys)?;
                    out.push((source::path_in(&loc, &p.location_in(&t, &keys)?, &settings.store)?, values));
                }
            }
            out
        };
        let mut listing = source::list_partitions(&loc, keys, parts, timeout).await?;
        source::check_distinct_files(&loc, &listing.partition_keys, &listing.files)?;
        // (A metastore that lists no columns leaves the files' own.)
        listing.columns = (!t.columns.is_empty()).then(|| t.columns.iter().map(|c| c.name.clone()).collect());
        return Ok((loc, listing));
    }
    let src = settings.source.clone().ok_or_else(|| Error::config("`source` or `hive_table` is required"))?;
    let loc = source::open(&src, &settings.store)?;
    let pruner = pruner_of(&settings.partition_types)?;
    let f = |parts: &[(String, Option<String>)]| pruner.as_ref().is_none_or(|p| p.matches(parts));
    let listing = source::list(&loc, Some(&f), timeout).await?;
    source::check_distinct_files(&loc, &listing.partition_keys, &listing.files)?;
    Ok((loc, listing))
}

/// A scanner of `settings`' source under its transform, with no target
/// table (for inputs that are not loaded, as `dict import` reads).
pub(crate) async fn scan_source(settings: &mut Settings) -> Result<Arc<Scanner>> {
    let (loc, listing) = list_source(settings, &[], true).await?;
    if listing.files.is_empty() {
        return Err(no_data_files(settings, &loc));
    }
    let inputs = FingerprintInputs {
        target: String::new(),
        transform: settings.transform.fingerprint_text(),
        chunk_bytes: settings.chunk_bytes,
        extra: Vec::new(),
    };
    let plan = plan::build(loc, listing, &inputs, &settings.label_prefix, settings.store.op_timeout()).await?;
    let scanner = Scanner::new(
        Arc::new(plan),
        &settings.partition_types,
        settings.transform.clone(),
        settings.batch_size,
        &settings.zone,
    )
    .await?;
    Ok(Arc::new(scanner))
}

/// The error of a source (after pruning) without data files.
fn no_data_files(settings: &Settings, loc: &source::Location) -> Error {
    match &settings.hive_table {
        Some(ht) => Error::config(format!("Hive table `{ht}` holds no data files (after partition pruning)")),
        None if settings.transform.filter.is_some() => Error::config(format!(
            "source `{}` holds no data files in the partitions the where clause keeps",
            loc.display
        )),
        None => Error::config(format!("source `{}` holds no data files", loc.display)),
    }
}

pub async fn prepare(mut settings: Settings) -> Result<Prepared> {
    let started = std::time::Instant::now();
    let (mut loc, mut listing) = list_source(&mut settings, &[], true).await?;
    // Pruned to nothing: maybe on a key the files also store (below), if
    // the first file of the unpruned source stores one (one footer tells;
    // a where naming a partition that does not exist yet fails at once).
    let mut emptied = false;
    if listing.files.is_empty() {
        let (all_loc, all) = list_source(&mut settings, &[], false).await?;
        if let Some(first) = all.files.first() {
            let probe = source::Listing { files: vec![first.clone()], ..all.clone() };
            let stores_a_key =
                plan::read_footers(&all_loc, &probe, settings.store.op_timeout()).await.is_ok_and(|(_, schema, _)| {
                    all.partition_keys.iter().any(|k| schema.fields().iter().any(|f| f.name().eq_ignore_ascii_case(k)))
                });
            if stores_a_key {
                (loc, listing, emptied) = (all_loc, all, true);
            }
        }
    }
    if listing.files.is_empty() {
        return Err(no_data_files(&settings, &loc));
    }
    // The target schema first: a mismatch is reported before anything else.
    let mut meta = Meta::connect(&settings.mysql, &settings.user, &settings.password).await?;
    let target = meta.table(&settings.db, &settings.table).await?;
    // Asked now, on this connection; needed once the job's columns are known.
    let version = if target.columns.iter().any(|c| c.ty.holds_varbinary()) { meta.version().await } else { None };
    meta.close().await;
    check_keyed_options(&settings, &target)?;
    let inputs = FingerprintInputs {
        target: format!("{}.{}", settings.db, settings.table),
        transform: settings.transform.fingerprint_text(),
        chunk_bytes: settings.chunk_bytes,
        extra: vec![
            format!("timezone={}", settings.zone.name()),
            format!(
                "partition_types={}",
                settings.partition_types.iter().map(|(k, v)| format!("{k}:{v}")).collect::<Vec<_>>().join(",")
            ),
            format!("mode={}", settings.mode.name()),
            format!("partial_update={}", settings.partial_update),
            format!("merge_condition={:?}", settings.merge_condition),
        ],
    };
    let mut plan = plan::build(loc, listing, &inputs, &settings.label_prefix, settings.store.op_timeout()).await?;
    // Keys the files also store are file columns: the where clause filters
    // their typed values, so the directories' text must not have pruned.
    let stored = plan.stored_partition_keys.clone();
    let pruned_on_stored = crate::prune::Pruner::new(settings.transform.filter.as_deref(), &settings.partition_types)?
        .is_some_and(|p| p.reads_any(&stored));
    if emptied && !pruned_on_stored {
        return Err(no_data_files(&settings, &plan.location));
    }
    if pruned_on_stored {
        let (loc, listing) = list_source(&mut settings, &stored, true).await?;
        plan = plan::build(loc, listing, &inputs, &settings.label_prefix, settings.store.op_timeout()).await?;
    }
    check_int96_writer_zones(&plan, &settings)?;
    let plan = Arc::new(plan);
    let scanner = Arc::new(
        Scanner::new(
            plan.clone(),
            &settings.partition_types,
            settings.transform.clone(),
            settings.batch_size,
            &settings.zone,
        )
        .await?,
    );
    // Columns only the delete predicate reads are not loaded.
    // So are source columns only dictionary expressions read.
    let ignore: Vec<String> = settings
        .transform
        .delete_columns()
        .into_iter()
        .chain(settings.transform.dict_input_columns())
        .filter(|c| target.column(c).is_none())
        .collect();
    let mapping = encode::map_columns(
        scanner.output_schema(),
        &target,
        settings.zone,
        &encode::MapOptions {
            ignore,
            partial_update: settings.partial_update,
            delete_flag: settings.transform.delete_when.as_deref().is_some_and(|d| !d.trim().is_empty()),
        },
    )?;
    // Only the columns the job sends, at any depth (base64 inside ARRAY,
    // MAP and STRUCT text too).
    if let Some(c) = mapping.columns.iter().find(|c| c.ty.holds_varbinary()) {
        check_varbinary_server(version, &c.target)?;
    }
    if !mapping.defaulted.is_empty() && !settings.partial_update {
        tracing::warn!(
            "no source column maps to {} of `{}.{}`: {} the column's default (NULL if it has none) in every row; \
             `starload plan` shows the mapping",
            mapping.defaulted.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", "),
            settings.db,
            settings.table,
            if mapping.defaulted.len() == 1 { "it gets" } else { "they get" }
        );
    }
    if settings.partial_update {
        // A key not stored yet becomes a new row: StarRocks fills a NOT NULL
        // column without a default with its type's zero (0, '').
        let zeroed: Vec<String> = mapping
            .defaulted
            .iter()
            .filter(|c| target.column(c).is_some_and(|t| !t.nullable && t.default.is_none()))
            .map(|c| format!("`{c}`"))
            .collect();
        if !zeroed.is_empty() {
            tracing::warn!(
                "partial update of `{}.{}`: a key not stored yet becomes a row whose {} (NOT NULL, no default) \
                 StarRocks fills with the type's zero (0, '')",
                settings.db,
                settings.table,
                zeroed.join(", ")
            );
        }
    }
    for (col, _) in &settings.transform.dicts {
        match target.column(col) {
            Some(c) if c.ty == crate::srtype::SrType::Bitmap => {}
            Some(c) => {
                return Err(Error::config(format!(
                    "bitmap_dict names column `{}`, which is {}, not BITMAP",
                    c.name, c.ty
                )));
            }
            None => {
                return Err(Error::config(format!(
                    "bitmap_dict names column `{col}`, which `{}.{}` does not have",
                    settings.db, settings.table
                )));
            }
        }
    }
    let encoder = Arc::new(Encoder::new(mapping.columns.clone(), settings.zone));
    let preagg = if settings.preaggregate {
        if settings.mode == Mode::Atomic {
            return Err(Error::config("bitmap_preaggregate is not supported in atomic mode"));
        }
        Some(Arc::new(crate::preagg::PreAggSpec::new(encoder.clone(), &target, scanner.output_schema())?))
    } else {
        None
    };
    let encoder = preagg.as_ref().map_or(encoder, |p| p.output.clone());
    if !encoder.csv_capable() {
        check_json_bodies(&plan, &mapping, settings.chunk_bytes)?;
    }
    Ok(Prepared {
        settings,
        plan,
        scanner,
        mapping,
        target,
        encoder,
        preagg,
        plan_seconds: started.elapsed().as_secs_f64(),
    })
}

/// The largest JSON body a chunk may be estimated at. StarRocks reads a
/// JSON body whole into one buffer (stream_load.cpp) and simdjson refuses a
/// document of 4 GiB or more; the estimate (the chunk's uncompressed Parquet
/// bytes plus every row's keys) is rough, hence the margin.
const JSON_BODY_LIMIT: u64 = 3 << 30;

/// A target whose rows all go as JSON: refuses a plan with a chunk whose
/// JSON body would be too large for StarRocks, before anything is sent
/// (it would fail that chunk hours into the load).
fn check_json_bodies(plan: &plan::Plan, mapping: &encode::Mapping, chunk_bytes: u64) -> Result<()> {
    let keys: u64 = mapping.columns.iter().map(|c| c.target.len() as u64 + 6).sum();
    let est = |c: &plan::Chunk| c.est_bytes.saturating_add(c.rows.saturating_mul(keys));
    let Some(big) = plan.chunks.iter().max_by_key(|c| est(c)) else { return Ok(()) };
    let bytes = est(big);
    let first = big.slices.first().map(|s| plan.file_name(s.file)).unwrap_or_default();
    // Tests lower the limit through a file's name; debug builds only.
    let limit = if cfg!(debug_assertions) && first.contains("__starload_test_json_body_limit__") {
        1 << 10
    } else {
        JSON_BODY_LIMIT
    };
    if bytes <= limit {
        return Ok(());
    }
    let mib = |b: u64| (b >> 20).max(1);
    let smaller = (chunk_bytes as f64 * limit as f64 / bytes as f64 / 2.0) as u64;
    Err(Error::config(format!(
        "chunk {} (`{first}`…) would be a JSON body of about {} MiB (every row of this table goes as JSON), \
         more than the {} MiB starload sends in one: StarRocks reads a JSON body whole and refuses 4 GiB or more. \
         Lower chunk_bytes (to {} MiB, say); a row group without a page index is split only past 8 GiB, so such \
         files need smaller row groups",
        big.index,
        mib(bytes),
        mib(limit),
        mib(smaller)
    )))
}

fn check_keyed_options(s: &Settings, t: &TargetTable) -> Result<()> {
    let pk = t.keys == crate::meta::KeysType::Primary;
    let name = format!("{}.{}", t.db, t.table);
    if !pk {
        if s.transform.delete_when.is_some() {
            return Err(Error::config(format!("delete_when needs a Primary Key table; `{name}` is {}", t.keys.name())));
        }
        if s.partial_update {
            return Err(Error::config(format!(
                "partial_update needs a Primary Key table; `{name}` is {}",
                t.keys.name()
            )));
        }
        if s.merge_condition.is_some() {
            return Err(Error::config(format!(
                "merge_condition needs a Primary Key table; `{name}` is {}",
                t.keys.name()
            )));
        }
    }
    if let Some(mc) = &s.merge_condition {
        match t.column(mc) {
            None => return Err(Error::config(format!("merge_condition column `{mc}` is not a column of `{name}`"))),
            Some(c) if c.is_key => return Err(Error::config(format!("merge_condition column `{mc}` is a key column"))),
            _ => {}
        }
    }
    if s.mode == Mode::Overwrite && s.transform.delete_when.is_some() {
        return Err(Error::config(
            "delete_when cannot be combined with --mode overwrite (the replaced partitions start empty)",
        ));
    }
    if s.mode == Mode::Overwrite && s.partial_update {
        return Err(Error::config(
            "--partial-update cannot be combined with --mode overwrite: the replaced partitions start empty, so the \
             columns the load leaves out would be lost",
        ));
    }
    // Rows that replace each other by key are applied in commit order, not
    // source order, across chunks and across a chunk's loads.
    let replaces = matches!(t.keys, crate::meta::KeysType::Primary | crate::meta::KeysType::Unique)
        || t.columns.iter().any(|c| c.agg.as_deref().is_some_and(|a| a.to_ascii_uppercase().starts_with("REPLACE")));
    if replaces && s.merge_condition.is_none() && !(s.mode == Mode::Atomic && s.parallel == 1) {
        tracing::warn!(
            "`{name}` keeps one row per key: if the source holds several rows with one key, which of them stays depends on \
             the order chunks commit (and, within a chunk, its plain, escaped and JSON loads), not on the source order; give a version column as merge_condition (Primary Key \
             tables), or use --mode atomic --parallel 1 (docs/modes.md)"
        );
    }
    Ok(())
}

/// A digest of the target schema, stored in the journal.
pub fn schema_digest(t: &TargetTable) -> String {
    let text: Vec<String> = t.columns.iter().map(|c| format!("{}:{}:{}", c.name, c.ty, c.nullable)).collect();
    blake3::hash(format!("{}|{}", t.keys.name(), text.join(",")).as_bytes()).to_hex()[..16].to_string()
}

/// The final report of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `ok`.
    pub status: String,
    /// Job fingerprint.
    pub job: String,
    /// Load mode.
    pub mode: String,
    /// Source.
    pub source: String,
    /// Target.
    pub target: String,
    /// Source files.
    pub files: usize,
    /// Source rows.
    pub source_rows: u64,
    /// Load figures.
    #[serde(flatten)]
    pub load: LoadReport,
    /// Rows per second sent.
    pub rows_per_sec: f64,
    /// MiB per second of body sent.
    pub mib_per_sec: f64,
    /// Seconds spent planning (listing, footers, table check).
    pub plan_seconds: f64,
    /// Journal path.
    pub journal: String,
    /// The dictionaries the job built and used.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dictionaries: Vec<crate::dictjob::DictReport>,
}

/// What stays the same across runs of "one job" whose inputs may change:
/// target, source, transform and mode. Not the label prefix: labels are how
/// StarRocks refuses a load twice, so a job re-run under another prefix is
/// the same job loading its rows again, which only the journals can see.
fn identity(p: &Prepared) -> String {
    identity_in(p, p.settings.mode)
}

/// [`identity`] as if the job ran in `mode` (the journals of the same job
/// in another mode live there).
fn identity_in(p: &Prepared, mode: Mode) -> String {
    identity_of(p, mode, None)
}

/// [`identity_in`] as earlier versions computed it, with the label prefix: the
/// journals they wrote live there.
fn legacy_identity_in(p: &Prepared, mode: Mode) -> String {
    identity_of(p, mode, Some(&p.settings.label_prefix))
}

fn identity_of(p: &Prepared, mode: Mode, label_prefix: Option<&str>) -> String {
    let s = &p.settings;
    let mut text =
        format!("{}.{}|{}|{}|{}", s.db, s.table, p.plan.location.display, s.transform.fingerprint_text(), mode.name());
    if let Some(prefix) = label_prefix {
        text = format!("{text}|{prefix}");
    }
    blake3::hash(text.as_bytes()).to_hex()[..16].to_string()
}

/// Refuses to start when an earlier job with the same identity but other
/// inputs is unfinished, or finished in a mode that appends: re-running would
/// load its rows twice.
fn check_earlier_jobs(
    p: &Prepared,
    jobs: &std::path::Path,
    files: &[(String, String)],
    dirs: &[(String, String)],
) -> Result<()> {
    // An overwrite replaces whatever earlier jobs loaded.
    if p.settings.mode == Mode::Overwrite {
        return Ok(());
    }
    // The same job in another mode (append, then atomic) is an earlier job
    // too: its rows are in the table.
    let mut own = Vec::new();
    for mode in [Mode::Append, Mode::Atomic, Mode::Overwrite] {
        check_earlier_jobs_in(p, &jobs.join(identity_in(p, mode)), mode)?;
        check_earlier_jobs_in(p, &jobs.join(legacy_identity_in(p, mode)), mode)?;
        own.extend([identity_in(p, mode), legacy_identity_in(p, mode)]);
    }
    check_other_transforms(p, jobs, &own, files, dirs)
}

/// The files the plan reads rows from (its chunks' files), with the digest
/// of each path a journal header keeps.
fn read_files(p: &Prepared) -> Vec<(String, String)> {
    let mut idx: Vec<usize> = p.plan.chunks.iter().flat_map(|c| c.slices.iter().map(|s| s.file)).collect();
    idx.sort_unstable();
    idx.dedup();
    idx.into_iter()
        .map(|i| {
            let path = p.plan.file_name(i);
            let d = journal::path_digest(&path);
            (path, d)
        })
        .collect()
}

/// The Hive partition directories of the files the plan reads, with the
/// digest of each a journal header keeps (a source's root is no partition:
/// new files added beside loaded ones are told apart by their paths).
fn partition_dirs(p: &Prepared) -> Vec<(String, String)> {
    let mut dirs: Vec<String> = p
        .plan
        .chunks
        .iter()
        .flat_map(|c| c.slices.iter().map(|s| s.file))
        .filter(|&i| !p.plan.files[i].file.partition_values.is_empty())
        .filter_map(|i| p.plan.file_name(i).rsplit_once('/').map(|(d, _)| d.to_string()))
        .collect();
    dirs.sort_unstable();
    dirs.dedup();
    dirs.into_iter()
        .map(|d| {
            let digest = journal::path_digest(&format!("{d}/"));
            (d, digest)
        })
        .collect()
}

/// A where clause in one spelling: unquoted words lower-cased (SQL
/// keywords and identifiers are case-insensitive), whitespace dropped,
/// literals and quoted names as written; empty without one.
fn normalized_where(w: Option<&str>) -> String {
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
    let Some(w) = w.map(str::trim).filter(|w| !w.is_empty()) else { return String::new() };
    match Tokenizer::new(&GenericDialect {}, w).tokenize() {
        Ok(tokens) => tokens
            .iter()
            .filter(|t| !matches!(t, Token::Whitespace(_)))
            .map(|t| match t {
                Token::Word(word) if word.quote_style.is_none() => word.value.to_lowercase(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(" "),
        Err(_) => w.to_string(),
    }
}

/// `w` (a where clause, or a journal's [`normalized_where`] of one) in a
/// form two spellings of one predicate share: outer parentheses dropped,
/// conjuncts in order, `'x' = c` as `c = 'x'`, `c IN ('x')` as `c = 'x'`,
/// then [`normalized_where`]'s case and spacing. Not every equivalent
/// clause meets (two different forms are taken to pick different rows).
/// `None` for a clause that does not parse as one expression to its end
/// (a journal's token form loses the escapes of `'O''Brien'`).
fn canonical_where(w: &str) -> Option<String> {
    use datafusion::sql::sqlparser::ast::{BinaryOperator as Op, Expr};
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::parser::Parser;
    fn unwrap(e: Expr) -> Expr {
        match e {
            Expr::Nested(inner) => unwrap(*inner),
            other => other,
        }
    }
    fn conjuncts(e: Expr, out: &mut Vec<Expr>) {
        match unwrap(e) {
            Expr::BinaryOp { left, op: Op::And, right } => {
                conjuncts(*left, out);
                conjuncts(*right, out);
            }
            other => out.push(other),
        }
    }
    fn conjunct(e: Expr) -> Expr {
        match e {
            Expr::BinaryOp { left, op: op @ (Op::Eq | Op::NotEq), right }
                if matches!(*left, Expr::Value(_)) && !matches!(*right, Expr::Value(_)) =>
            {
                Expr::BinaryOp { left: right, op, right: left }
            }
            Expr::InList { expr, mut list, negated } if list.len() == 1 => Expr::BinaryOp {
                left: expr,
                op: if negated { Op::NotEq } else { Op::Eq },
                right: Box::new(list.remove(0)),
            },
            other => other,
        }
    }
    use datafusion::sql::sqlparser::tokenizer::Token;
    let w = w.trim();
    if w.is_empty() {
        return Some(String::new());
    }
    let e = Parser::new(&GenericDialect {})
        .try_with_sql(w)
        .and_then(|mut p| {
            let e = p.parse_expr()?;
            Ok((e, p.peek_token().token == Token::EOF))
        })
        .ok()
        .and_then(|(e, whole)| whole.then_some(e))?;
    let mut parts = Vec::new();
    conjuncts(e, &mut parts);
    // Each conjunct in parentheses: `(a OR b) AND c` is not `a OR b AND c`.
    let mut parts: Vec<String> = parts
        .into_iter()
        .map(|c| format!("( {} )", normalized_where(Some(&conjunct(unwrap(c)).to_string()))))
        .collect();
    parts.sort();
    parts.dedup();
    Some(parts.join(" and "))
}

/// Whether a where clause and a journal's normalized one are the same
/// clause: the same text (as journals have always compared them), or the
/// same canonical form ([`canonical_where`]).
fn same_where(w: Option<&str>, stored: &str, stored_canonical: Option<&str>) -> bool {
    let mine = normalized_where(w);
    if mine == stored {
        return true;
    }
    let Some(c) = canonical_where(w.unwrap_or("")) else { return false };
    match stored_canonical {
        Some(s) => c == s,
        None => canonical_where(stored).is_some_and(|s| s == c),
    }
}

/// Refuses a job whose files an earlier job over the same source and table
/// loaded rows from under another transform with the same where clause (in
/// any spelling: a select changed to CAST a value after a data error), or
/// where one of the two has no where clause (the whole files): the transform
/// is part of a job's identity, so the check above cannot see it, and the
/// committed rows would be loaded again. Two different where clauses are
/// taken to pick different rows (the nightly `where dt = <day>`, also over
/// files that are not partitioned by day).
fn check_other_transforms(
    p: &Prepared,
    jobs: &std::path::Path,
    own: &[String],
    mine: &[(String, String)],
    my_dirs: &[(String, String)],
) -> Result<()> {
    let Ok(dirs) = std::fs::read_dir(jobs) else { return Ok(()) };
    let filter = normalized_where(p.settings.transform.filter.as_deref());
    let target = format!("{}.{}", p.settings.db, p.settings.table);
    for d in dirs.flatten() {
        let dir = d.path();
        if own.iter().any(|o| dir.file_name().is_some_and(|n| n.to_string_lossy() == *o)) {
            continue;
        }
        let Ok(rd) = std::fs::read_dir(&dir) else { continue };
        for e in rd.flatten() {
            let path = e.path();
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if !name.ends_with(".journal") || name.contains(".finalize.") {
                continue;
            }
            // Any source: the same files reached through another path (a
            // partition directory, or one file, of an earlier job's source)
            // have the same digests.
            let Some(h) = journal::read_header(&path) else { continue };
            if h.target != target {
                continue;
            }
            if h.files.is_empty() {
                if h.source != p.plan.location.display {
                    continue;
                }
                // Written before journals kept their files.
                if journal::read(&path).is_ok_and(|v| rows_visible(&v, &path)) {
                    tracing::warn!(
                        "job {} loaded rows of this source into `{target}` under another transform (journal `{}`, \
                         written before journals recorded their files): if this job reads the same rows, they load \
                         again",
                        h.fingerprint,
                        path.display()
                    );
                }
                continue;
            }
            if !(filter.is_empty()
                || h.filter.is_empty()
                || same_where(p.settings.transform.filter.as_deref(), &h.filter, h.filter_canonical.as_deref()))
            {
                continue;
            }
            let theirs: std::collections::HashSet<&str> = h.files.iter().map(String::as_str).collect();
            let their_dirs: std::collections::HashSet<&str> = h.dirs.iter().map(String::as_str).collect();
            let conflict = if let Some((shared, _)) = mine.iter().find(|(_, d)| theirs.contains(d.as_str())) {
                format!(
                    "job {} loaded rows of `{shared}` (and maybe other files this job reads) into `{target}` under \
                     another select/where/delete_when (journal `{}`): running this job would load them again. Use \
                     --mode overwrite to replace what it loaded, or --new-job if the two jobs pick different rows",
                    h.fingerprint,
                    path.display()
                )
            } else if let Some((dir, _)) = my_dirs.iter().find(|(_, d)| their_dirs.contains(d.as_str())) {
                // Other files of a partition it loaded: the partition was
                // rewritten under new names (as Spark writes), or files were
                // added to it; either way its loaded rows may be among them.
                format!(
                    "job {} loaded rows of partition `{dir}` into `{target}` from other files than this job reads \
                     there (journal `{}`): if the partition was rewritten since, running this job would load its \
                     rows again. Use --mode overwrite to replace the partition, or --new-job if its new files hold \
                     only new rows",
                    h.fingerprint,
                    path.display()
                )
            } else {
                continue;
            };
            let Ok(v) = journal::read(&path) else { continue };
            if rows_visible(&v, &path) {
                return Err(Error::config(conflict));
            }
        }
    }
    Ok(())
}

/// Whether the job of journal `path` (read as `v`) made rows visible in
/// the table: an append committed a chunk; an atomic job committed; an
/// overwrite swapped, or sent a swap whose outcome it never learned (a
/// sharded overwrite's shards load into temporary partitions, labelled
/// `…_os_<chunk>`, and its finalize journal records the swap).
fn rows_visible(v: &journal::JournalView, path: &std::path::Path) -> bool {
    use journal::ModeRecord as M;
    let swapped = |v: &journal::JournalView| {
        v.modes.iter().enumerate().any(|(i, m)| match m {
            M::OverwriteSwapped { .. } => true,
            M::OverwriteSwapping { epoch, .. } => {
                !v.modes[i..].iter().any(|n| matches!(n, M::OverwriteAborted { epoch: e, .. } if e == epoch))
            }
            _ => false,
        })
    };
    let fp = &v.header.fingerprint;
    if v.done.values().any(|d| d.label.contains(&format!("_{fp}_os_"))) {
        let finalize = path.with_file_name(format!("{fp}.finalize.journal"));
        return journal::read(&finalize).is_ok_and(|f| swapped(&f));
    }
    if v.modes.iter().any(|m| matches!(m, M::OverwriteStarted { .. })) {
        return swapped(v);
    }
    // A commit sent may have happened.
    let committing = |v: &journal::JournalView| {
        v.modes.iter().any(|m| matches!(m, M::AtomicCommitted { .. } | M::AtomicCommitting { .. }))
    };
    if v.modes
        .iter()
        .any(|m| matches!(m, M::AtomicFormat { .. } | M::AtomicCommitted { .. } | M::AtomicCommitting { .. }))
    {
        return committing(v);
    }
    appended_any(v)
}

/// Whether an append may have committed rows: a chunk done, a part
/// committed, or a load sent whose outcome the journal never learned (one
/// StarRocks refused is recorded as rejected, so that fixing the transform
/// after a data error and running again is not refused).
fn appended_any(v: &journal::JournalView) -> bool {
    !v.done.is_empty() || !v.committed.is_empty() || !v.started.is_empty()
}

fn check_earlier_jobs_in(p: &Prepared, dir: &std::path::Path, mode: Mode) -> Result<()> {
    let same_mode = mode == p.settings.mode;
    let Ok(rd) = std::fs::read_dir(dir) else { return Ok(()) };
    for e in rd.flatten() {
        let path = e.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if !name.ends_with(".journal") {
            continue;
        }
        if same_mode && name.starts_with(&p.plan.fingerprint) {
            // This job's own journal: its chunks are done only under this
            // run's labels; under another prefix StarRocks sees new labels.
            // A load sent without learning its outcome (the run was killed)
            // may have committed too.
            let ours = format!("{}_{}", p.settings.label_prefix, p.plan.fingerprint);
            if let Ok(v) = journal::read(&path)
                && let Some(label) = v
                    .done
                    .values()
                    .map(|d| &d.label)
                    .chain(v.committed.keys())
                    .chain(v.started.keys())
                    .find(|l| !l.starts_with(&ours))
            {
                return Err(Error::config(format!(
                    "job {} loaded this source into `{}` under other labels (`{}`; journal `{}`): under the label \
                     prefix `{}` StarRocks would see new labels and load its rows again. Run it with the prefix it \
                     was loaded with, or --new-job to load anyway",
                    v.header.fingerprint,
                    v.header.target,
                    label,
                    path.display(),
                    p.settings.label_prefix
                )));
            }
            continue;
        }
        let Ok(v) = journal::read(&path) else { continue };
        // A shard's journal covers chunks k with k mod n == i.
        let shard = name.split(".shard-").nth(1).and_then(|r| r.strip_suffix(".journal")).and_then(|r| {
            let (i, n) = r.split_once("-of-")?;
            Some((i.parse::<usize>().ok()?, n.parse::<usize>().ok()?))
        });
        let owned = match shard {
            Some((i, n)) => (0..v.header.chunks).filter(|k| k % n == i).count(),
            None => v.header.chunks,
        };
        if name.contains(".finalize.") {
            continue;
        }
        let finished = match mode {
            Mode::Atomic => v.modes.iter().any(|m| matches!(m, journal::ModeRecord::AtomicCommitted { .. })),
            _ => v.done.len() >= owned,
        };
        if !same_mode {
            // Rows of the job in another mode are in the table once an append
            // committed (or sent without learning the outcome) a load, an atomic
            // job sent its commit, or an overwrite finished.
            let visible = match mode {
                Mode::Append => appended_any(&v),
                Mode::Atomic => {
                    finished || v.modes.iter().any(|m| matches!(m, journal::ModeRecord::AtomicCommitting { .. }))
                }
                _ => finished,
            };
            if !visible {
                continue;
            }
        }
        let state = if finished {
            "finished".to_string()
        } else {
            format!("unfinished, {}/{} chunks committed", v.done.len(), v.header.chunks)
        };
        let how = if same_mode { "with other inputs".to_string() } else { format!("in {} mode", mode.name()) };
        return Err(Error::config(format!(
            "job {} loaded this source into `{}` {how} ({state}; journal `{}`); its files or settings changed since, \
             so running this job would load its rows again. Use --mode overwrite to replace them, a where clause to load only new \
             partitions, or --new-job to load anyway",
            v.header.fingerprint,
            v.header.target,
            path.display()
        )));
    }
    Ok(())
}

/// Everything the load modes share.
pub(crate) struct RunCtx {
    pub(crate) stats: Arc<crate::load::StageStats>,
    pub(crate) prepared: Prepared,
    pub(crate) client: Client,
    pub(crate) journal: Arc<Mutex<Journal>>,
    pub(crate) options: LoadOptions,
    pub(crate) progress: Arc<dyn Fn(Progress) + Send + Sync>,
}

impl RunCtx {
    /// A chunk-loading job into `table` with extra headers.
    pub(crate) fn job(&self, table: &str, chunks: Vec<crate::plan::Chunk>, extra: &[(String, String)]) -> Arc<Job> {
        let s = &self.prepared.settings;
        let mut options = self.options.clone();
        options.extra_headers.extend(extra.iter().cloned());
        // Counted before they become visible, and a load sent twice shows in
        // the count: an unsharded overwrite of a duplicate-key table (keyed
        // tables count distinct keys, which a repeat does not change; a
        // sharded one's count is finalize's, which cannot start over).
        options.counted = s.mode == Mode::Overwrite
            && s.shard.is_none()
            && self.prepared.target.keys == crate::meta::KeysType::Duplicate;
        options.overwrite_attempt = s.mode == Mode::Overwrite && s.shard.is_none();
        Arc::new(Job {
            scanner: self.prepared.scanner.clone(),
            encoder: self.prepared.encoder.clone(),
            client: self.client.clone(),
            db: s.db.clone(),
            table: table.to_string(),
            journal: self.journal.clone(),
            options,
            progress: self.progress.clone(),
            chunks,
            limiter: crate::limit::Limiter::new(s.parallel),
            be_limiters: Mutex::new(Default::default()),
            stats: self.stats.clone(),
            preagg: self.prepared.preagg.clone(),
        })
    }

    /// A MySQL connection to the FE.
    pub(crate) async fn meta(&self) -> Result<Meta> {
        let s = &self.prepared.settings;
        Meta::connect(&s.mysql, &s.user, &s.password).await
    }
}

/// The journal file of a job (or of one shard of it).
fn journal_name(fingerprint: &str, shard: Option<(usize, usize)>) -> String {
    match shard {
        None => format!("{fingerprint}.journal"),
        Some((i, n)) => format!("{fingerprint}.shard-{i}-of-{n}.journal"),
    }
}

/// The chunks of one shard: chunk `k` belongs to shard `k mod n`, so the
/// shards of a plan are disjoint, cover it, and keep the labels a single run
/// would use.
pub fn shard_chunks(chunks: &[crate::plan::Chunk], shard: Option<(usize, usize)>) -> Vec<crate::plan::Chunk> {
    match shard {
        None => chunks.to_vec(),
        Some((i, n)) => chunks.iter().filter(|c| c.index % n == i).cloned().collect(),
    }
}

/// What `finalize` found.
#[derive(Debug, Clone, Serialize)]
pub struct FinalizeReport {
    /// `ok`.
    pub status: String,
    /// Job fingerprint.
    pub job: String,
    /// Chunks in the plan.
    pub chunks: usize,
    /// Chunks verified committed (by the shards' journals, or label states).
    pub chunks_verified: usize,
    /// How: `journals` or `label states`.
    pub verified_by: String,
    /// Rows the shards reported loaded.
    pub rows: u64,
    /// Overwrite: partitions swapped in.
    pub partitions_replaced: Vec<String>,
}

/// Completes a job run as `n` shards: checks that every chunk is committed
/// (from the shards' journals under the state directory when shared, else
/// from StarRocks' label states) and, in overwrite mode, verifies the
/// temporary partitions' counts and swaps them in.
pub async fn finalize(p: Prepared, shards: usize) -> Result<FinalizeReport> {
    let s = p.settings.clone();
    if s.mode == Mode::Atomic {
        return Err(Error::config("atomic jobs cannot be sharded (one transaction is one process)"));
    }
    check_shard_clock(&p)?;
    let dir = s.state_dir.join("jobs").join(identity(&p));
    let fp = p.plan.fingerprint.clone();
    let mut done: std::collections::BTreeMap<usize, u64> = Default::default();
    let mut journals = 0;
    for i in 0..shards {
        let path = dir.join(journal_name(&fp, Some((i, shards))));
        if let Ok(v) = journal::read(&path) {
            journals += 1;
            for (idx, d) in v.done {
                if p.plan.chunks.get(idx).is_some_and(|c| d.label.starts_with(&c.label)) || s.mode == Mode::Overwrite {
                    done.insert(idx, d.rows);
                }
            }
        }
    }
    let client = http_client(&s)?;
    let verified_by;
    let chunks = if s.mode == Mode::Overwrite {
        crate::modes::relabel_for_shards(&p.plan.chunks)
    } else {
        p.plan.chunks.clone()
    };
    if journals == shards {
        verified_by = "journals".to_string();
        let missing: Vec<usize> = chunks.iter().map(|c| c.index).filter(|i| !done.contains_key(i)).collect();
        if !missing.is_empty() {
            return Err(Error::verify(format!(
                "{} of {} chunks are not committed (first: chunk {}); re-run the shard that owns them (chunk k belongs to shard k mod {shards})",
                missing.len(),
                chunks.len(),
                missing[0]
            )));
        }
    } else {
        // Journals are not shared: one of a chunk's loads (plain, escaped
        // `_b`, JSON `_j`) must be committed and none of them in flight or
        // aborted (a part tried and not committed). A part that was never
        // started is unknown to StarRocks, as is a part the chunk never
        // needed: only the shards' journals tell those apart.
        verified_by = "label states".to_string();
        for c in &chunks {
            let mut committed = false;
            let mut unfinished: Option<(String, &str)> = None;
            for suffix in ["", "_b", "_j"] {
                let label = format!("{}{suffix}", c.label);
                match client.label_state_patiently(&s.db, &label, Duration::from_secs(60)).await? {
                    crate::client::LabelState::Committed => committed = true,
                    crate::client::LabelState::Running => unfinished = unfinished.or(Some((label, "still running"))),
                    crate::client::LabelState::Aborted => unfinished = unfinished.or(Some((label, "aborted"))),
                    crate::client::LabelState::Unknown => {}
                }
            }
            // Not a mismatch: the shard's work is not done yet (retryable
            // once it is re-run).
            if let Some((label, state)) = unfinished {
                return Err(Error::infra(format!(
                    "chunk {}: its load `{label}` is {state}; re-run shard {} of {shards}",
                    c.index,
                    c.index % shards
                )));
            }
            if !committed {
                return Err(Error::infra(format!(
                    "chunk {} (label `{}`) is not committed; re-run shard {} of {shards}",
                    c.index,
                    c.label,
                    c.index % shards
                )));
            }
        }
    }
    let rows = done.values().sum();
    let mut partitions_replaced = Vec::new();
    if s.mode == Mode::Overwrite {
        let jpath = dir.join(format!("{fp}.finalize.journal"));
        let header = JobHeader {
            fingerprint: fp.clone(),
            target: format!("{}.{}", s.db, s.table),
            source: p.plan.location.display.clone(),
            chunks: p.plan.chunks.len(),
            schema: schema_digest(&p.target),
            partitions: p.plan.partition_digest.clone(),
            files: vec![],
            filter: String::new(),
            filter_canonical: None,
            dirs: vec![],
            clock: None,
        };
        let lock = crate::journal::lock_job(&dir, &fp, false)?;
        let mut journal = Journal::open(&jpath, header)?;
        journal.hold(lock);
        let options = LoadOptions { parallel: s.parallel, ..LoadOptions::default() };
        let ctx = RunCtx {
            stats: Default::default(),
            prepared: p,
            client,
            journal: Arc::new(Mutex::new(journal)),
            options,
            progress: Arc::new(|_| {}),
        };
        partitions_replaced = crate::modes::finalize_overwrite(&ctx).await?;
    }
    Ok(FinalizeReport {
        status: "ok".into(),
        job: fp,
        chunks: chunks.len(),
        chunks_verified: chunks.len(),
        verified_by,
        rows,
        partitions_replaced,
    })
}

/// Runs a prepared job.
pub async fn run(mut p: Prepared, progress: Arc<dyn Fn(Progress) + Send + Sync>) -> Result<Report> {
    let s = p.settings.clone();
    let files = read_files(&p);
    let dirs = partition_dirs(&p);
    let header = JobHeader {
        fingerprint: p.plan.fingerprint.clone(),
        target: format!("{}.{}", s.db, s.table),
        source: p.plan.location.display.clone(),
        chunks: p.plan.chunks.len(),
        schema: schema_digest(&p.target),
        partitions: p.plan.partition_digest.clone(),
        files: files.iter().map(|(_, d)| d.clone()).collect(),
        filter: normalized_where(p.settings.transform.filter.as_deref()),
        filter_canonical: p.settings.transform.filter.as_deref().and_then(canonical_where).filter(|c| !c.is_empty()),
        dirs: dirs.iter().map(|(_, d)| d.clone()).collect(),
        clock: Some(p.scanner.clock().timestamp_micros()),
    };
    if s.mode == Mode::Atomic && s.shard.is_some() {
        return Err(Error::config("atomic jobs cannot be sharded (one transaction is one process)"));
    }
    if s.shard.is_some() {
        check_shard_clock(&p)?;
    }
    let dir = s.state_dir.join("jobs").join(identity(&p));
    if !s.new_job {
        check_earlier_jobs(&p, &s.state_dir.join("jobs"), &files, &dirs)?;
    }
    let jpath = dir.join(journal_name(&p.plan.fingerprint, s.shard));
    let lock = crate::journal::lock_job(&dir, &p.plan.fingerprint, s.shard.is_some())?;
    let mut journal = Journal::open(&jpath, header)?;
    journal.hold(lock);
    // A resumed job reads the clock its first run read.
    if let Some(us) = journal.clock() {
        p.scanner.pin_clock(us)?;
    }
    // Inputs must not have changed since listing.
    source::check_unchanged(&p.plan.location, &p.plan.files.iter().map(|f| f.file.clone()).collect::<Vec<_>>()).await?;
    // Dictionaries: extended over the inputs (unless every chunk is already
    // loaded, or this is a shard: shards only read them), then loaded.
    let dictionaries = if s.transform.dicts.is_empty() {
        Vec::new()
    } else {
        let pending = shard_chunks(&p.plan.chunks, s.shard).iter().any(|c| journal.chunk_done(c.index).is_none());
        let built = if pending && s.shard.is_none() {
            crate::dictjob::build(&p, &crate::dict::BuildOptions::default()).await?
        } else {
            Vec::new()
        };
        crate::dictjob::attach(&mut p, &built).await?
    };
    let client = http_client(&s)?;
    let mut extra = s.headers.clone();
    if s.partial_update {
        extra.push(("partial_update".into(), "true".into()));
    }
    if let Some(mc) = &s.merge_condition {
        extra.push(("merge_condition".into(), mc.clone()));
    }
    let options = LoadOptions {
        parallel: s.parallel,
        max_retries: s.max_retries,
        extra_headers: extra,
        filtered: s.transform.filter.as_deref().is_some_and(|w| !w.trim().is_empty()),
        per_be: s.per_be_parallel.unwrap_or(s.parallel),
        http_timeout: s.http_timeout,
        compress: s.compress,
        backoff_base: s.retry_base,
        unknown_loads: s.unknown_loads.clone(),
        ..LoadOptions::default()
    };
    let fingerprint = p.plan.fingerprint.clone();
    let source_display = p.plan.location.display.clone();
    let files = p.plan.files.len();
    let source_rows = p.plan.rows();
    let plan_seconds = p.plan_seconds;
    let ctx = RunCtx {
        stats: Default::default(),
        prepared: p,
        client,
        journal: Arc::new(Mutex::new(journal)),
        options,
        progress,
    };
    let load = match s.mode {
        Mode::Append => {
            let job = ctx.job(&s.table, shard_chunks(&ctx.prepared.plan.chunks, s.shard), &[]);
            load::run(job).await?
        }
        Mode::Overwrite if s.shard.is_some() => crate::modes::overwrite_shard(&ctx).await?,
        Mode::Overwrite => crate::modes::overwrite(&ctx).await?,
        Mode::Atomic => crate::modes::atomic(&ctx).await?,
    };
    let secs = load.seconds.max(1e-9);
    Ok(Report {
        status: "ok".into(),
        job: fingerprint,
        mode: s.mode.name().into(),
        source: source_display,
        target: format!("{}.{}", s.db, s.table),
        files,
        source_rows,
        rows_per_sec: load.rows_sent as f64 / secs,
        mib_per_sec: load.bytes_sent as f64 / secs / (1 << 20) as f64,
        load,
        plan_seconds,
        journal: jpath.display().to_string(),
        dictionaries,
    })
}

/// What `plan` prints, as data.
#[derive(Debug, Clone, Serialize)]
pub struct PlanView {
    /// Job fingerprint.
    pub job: String,
    /// Source.
    pub source: String,
    /// Target.
    pub target: String,
    /// Key model.
    pub table_model: String,
    /// Time zone for tz-aware timestamps.
    pub timezone: String,
    /// Partition keys.
    pub partition_keys: Vec<String>,
    /// Files.
    pub files: Vec<PlanFile>,
    /// Column mapping.
    pub columns: Vec<PlanColumn>,
    /// Target columns left to their default.
    pub defaulted: Vec<String>,
    /// Chunks.
    pub chunks: Vec<PlanChunk>,
    /// Initial wire format.
    pub format: String,
    /// Source rows.
    pub rows: u64,
    /// Input bytes.
    pub bytes: u64,
}

/// A file in the plan view.
#[derive(Debug, Clone, Serialize)]
pub struct PlanFile {
    /// Path.
    pub path: String,
    /// Size.
    pub bytes: u64,
    /// Rows.
    pub rows: u64,
    /// Row groups.
    pub row_groups: usize,
    /// Partition values.
    pub partition: Vec<Option<String>>,
}

/// A column in the plan view.
#[derive(Debug, Clone, Serialize)]
pub struct PlanColumn {
    /// Source column.
    pub source: String,
    /// Source Arrow type.
    pub source_type: String,
    /// Target column.
    pub target: String,
    /// Target type.
    pub target_type: String,
}

/// A chunk in the plan view.
#[derive(Debug, Clone, Serialize)]
pub struct PlanChunk {
    /// Index.
    pub index: usize,
    /// Label.
    pub label: String,
    /// Rows.
    pub rows: u64,
    /// Estimated bytes.
    pub est_bytes: u64,
    /// `file[row groups]` slices.
    pub slices: Vec<String>,
}

/// The plan as data.
pub fn plan_view(p: &Prepared) -> PlanView {
    let schema = p.scanner.output_schema();
    PlanView {
        job: p.plan.fingerprint.clone(),
        source: p.plan.location.display.clone(),
        target: format!("{}.{}", p.settings.db, p.settings.table),
        table_model: p.target.keys.name().into(),
        timezone: p.settings.zone.name(),
        partition_keys: p.plan.partition_keys.clone(),
        files: p
            .plan
            .files
            .iter()
            .map(|f| PlanFile {
                path: p.plan.location.display_path(&f.file.path),
                bytes: f.file.size,
                rows: f.rows(),
                row_groups: f.row_groups.len(),
                partition: f.file.partition_values.clone(),
            })
            .collect(),
        columns: p
            .mapping
            .columns
            .iter()
            .map(|c| PlanColumn {
                source: c.source_name.clone(),
                source_type: schema.field(c.source).data_type().to_string(),
                target: c.target.clone(),
                target_type: c.ty.to_string(),
            })
            .collect(),
        defaulted: p.mapping.defaulted.clone(),
        chunks: p
            .plan
            .chunks
            .iter()
            .map(|c| PlanChunk {
                index: c.index,
                label: c.label.clone(),
                rows: c.rows,
                est_bytes: c.est_bytes,
                slices: c
                    .slices
                    .iter()
                    .map(|s| {
                        let name = p.plan.file_name(s.file);
                        let (a, b) = (s.row_groups.start, s.row_groups.end);
                        if s.is_part(&p.plan.files[s.file]) {
                            format!("{name}[{a}..{b}] rows {}..{}", s.first_row, s.first_row + s.rows)
                        } else {
                            format!("{name}[{a}..{b}]")
                        }
                    })
                    .collect(),
            })
            .collect(),
        format: match (p.encoder.csv_capable(), p.settings.compress) {
            (false, _) => "json".into(),
            (true, crate::compress::Compression::None) => "csv".into(),
            (true, crate::compress::Compression::Lz4) => "csv as LZ4 frames (lz4)".into(),
        },
        rows: p.plan.rows(),
        bytes: p.plan.input_bytes(),
    }
}

/// The Stream Load client for the job's FE and credentials.
fn http_client(s: &Settings) -> Result<Client> {
    Client::new(HttpSettings {
        fe: s.fe.clone(),
        user: s.user.clone(),
        password: s.password.clone(),
        ca_file: s.ca_file.clone(),
        connect_timeout: Duration::from_secs(30),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_where_clause_meet() {
        // As an earlier version's journal keeps b (its token form only), and
        // as this one's does (with its canonical form).
        let one = |a: &str, b: &str| {
            same_where(Some(a), &normalized_where(Some(b)), None)
                && same_where(Some(a), &normalized_where(Some(b)), canonical_where(b).as_deref())
        };
        let stored = |a: &str| normalized_where(Some(a));
        for (a, b) in [
            ("dt = '2024-01-01'", "DT='2024-01-01'"),
            ("dt = '2024-01-01'", "(dt = '2024-01-01')"),
            ("dt = '2024-01-01'", "'2024-01-01' = dt"),
            ("dt = '2024-01-01'", "dt IN ('2024-01-01')"),
            ("dt = '2024-01-01'", "((dt = '2024-01-01'))"),
            ("dt <> 'x'", "dt NOT IN ('x')"),
            ("a = 1 AND b = 2", "(b = 2) and (a = 1)"),
            ("a = 1 AND (b = 2 AND c = 3)", "c = 3 AND a = 1 AND b = 2"),
        ] {
            assert!(one(a, b) && one(b, a), "{a} | {b}: {:?} vs {:?}", canonical_where(a), canonical_where(b));
        }
        // A journal keeps the token form, whose quotes lose their escapes:
        // the same clause still meets (by its text), a clause it misreads
        // as does not.
        let obrien = "name = 'O''Brien'";
        assert!(same_where(Some(obrien), &stored(obrien), None));
        assert!(same_where(Some("NAME='O''Brien'"), &stored(obrien), None));
        assert!(!same_where(Some("code = 'x'"), &stored("code = 'x''y''z'"), None));
        // With the canonical form kept, respellings of it meet too.
        let kept = canonical_where(obrien);
        assert!(same_where(Some("'O''Brien' = name"), &stored(obrien), kept.as_deref()));
        assert!(same_where(Some("(name IN ('O''Brien'))"), &stored(obrien), kept.as_deref()));
        assert!(!same_where(Some("name = 'O''Brian'"), &stored(obrien), kept.as_deref()));
        for (a, b) in [
            ("dt = '2024-01-01'", "dt = '2024-01-02'"),
            ("dt = 'A'", "dt = 'a'"),
            ("\"Dt\" = 'a'", "dt = 'a'"),
            ("a = 1 OR b = 2 AND c = 3", "(a = 1 OR b = 2) AND c = 3"),
            ("dt IN ('a', 'b')", "dt = 'a'"),
            ("dt = '2024-01-01'", "dt >= '2024-01-01'"),
        ] {
            assert!(!one(a, b) && !one(b, a), "{a} | {b}: both {:?}", canonical_where(a));
        }
        assert_eq!(canonical_where("").as_deref(), Some(""));
    }

    #[test]
    fn hive_partition_types_that_have_an_arrow_type_keep_it() {
        use arrow::datatypes::{DataType as D, TimeUnit};
        for (hive, arrow) in [
            ("int", D::Int32),
            ("BIGINT", D::Int64),
            ("decimal(6,2)", D::Decimal128(6, 2)),
            ("decimal( 38 , 10 )", D::Decimal128(38, 10)),
            ("decimal", D::Decimal128(10, 0)),
            ("double", D::Float64),
            ("float", D::Float32),
            ("timestamp", D::Timestamp(TimeUnit::Microsecond, None)),
            ("date", D::Date32),
            ("string", D::Utf8),
            ("varchar(10)", D::Utf8),
            ("char(4)", D::Utf8),
        ] {
            assert_eq!(hive_partition_type(hive), arrow, "{hive}");
        }
    }
    use arrow::datatypes::DataType;

    /// Keys the job re-types are not pushed to the metastore (which would
    /// compare them as its own type); the others get the metastore's type.
    #[test]
    fn retyped_partition_keys_are_not_pushed() {
        let col = |n: &str, t: &str| crate::hms::HiveColumn { name: n.into(), hive_type: t.into() };
        let keys = vec![col("region", "string"), col("dt", "string"), col("n", "int")];
        let mut types = vec![("REGION".to_string(), DataType::Int32), ("n".to_string(), DataType::Int32)];
        let pushable = metastore_types(&keys, &mut types);
        let names: Vec<&str> = pushable.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["dt", "n"]);
        assert_eq!(types.len(), 3);
        assert_eq!(types[2], ("dt".to_string(), DataType::Utf8));
        assert_eq!(
            crate::hms::partition_filter("region = '7' AND dt = 'a'", &pushable).as_deref(),
            Some(r#"dt = "a""#)
        );
    }
}
