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

/// Resolved settings of a job.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Source location.
    pub source: String,
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
}

impl Settings {
    /// Resolves a job file (CLI values already merged in).
    pub fn resolve(f: JobFile) -> Result<Settings> {
        let need = |v: Option<String>, key: &str| {
            v.ok_or_else(|| Error::config(format!("`{key}` is required (flag --{key} or key `{key}` in the job file)")))
        };
        let source = need(f.source, "source")?;
        let (db, table) = meta::split_table(&need(f.table, "table")?)?;
        let fe_text = f.fe.unwrap_or_else(|| "http://127.0.0.1:8030".into());
        let fe = url::Url::parse(&fe_text).map_err(|e| Error::config(format!("bad FE URL `{fe_text}`: {e}")))?;
        if !matches!(fe.scheme(), "http" | "https") || !fe.username().is_empty() || fe.password().is_some() {
            return Err(Error::config(format!("FE URL `{fe_text}` must be http(s)://host:port, without credentials")));
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
            ) {
                return Err(Error::config(format!("header `{k}` is set by starload and cannot be overridden")));
            }
            crate::client::header("extra", v)?;
        }
        let parallel = f.parallel.unwrap_or(DEFAULT_PARALLEL);
        if parallel == 0 || parallel > 256 {
            return Err(Error::config("parallel must be between 1 and 256"));
        }
        Ok(Settings {
            source,
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
            batch_size: f.batch_size.unwrap_or(8192).max(1),
            max_retries: f.max_retries.unwrap_or(8),
            transform: Transform { select: f.transform.select, filter: f.transform.filter },
            partition_types,
            store: StoreOptions { s3: f.s3 },
            ca_file: f.ca_file,
            headers: f.headers.into_iter().collect(),
            per_be_parallel: f.per_be_parallel,
        })
    }
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
    /// Encoder.
    pub encoder: Arc<Encoder>,
}

/// Lists, plans and checks a job. Sends nothing.
pub async fn prepare(settings: Settings) -> Result<Prepared> {
    let loc = source::open(&settings.source, &settings.store)?;
    let listing = source::list_nonempty(&loc, None).await?;
    // The target schema first: a mismatch is reported before anything else.
    let mut meta = Meta::connect(&settings.mysql, &settings.user, &settings.password).await?;
    let target = meta.table(&settings.db, &settings.table).await?;
    meta.close().await;
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
        ],
    };
    let plan = Arc::new(plan::build(loc, listing, &inputs, &settings.label_prefix).await?);
    let scanner = Arc::new(
        Scanner::new(plan.clone(), &settings.partition_types, settings.transform.clone(), settings.batch_size).await?,
    );
    let mapping = encode::map_columns(scanner.output_schema(), &target, settings.zone)?;
    let encoder = Arc::new(Encoder::new(mapping.columns.clone(), settings.zone));
    Ok(Prepared { settings, plan, scanner, mapping, target, encoder })
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
    /// Journal path.
    pub journal: String,
}

/// Runs a prepared job.
pub async fn run(p: Prepared, progress: Arc<dyn Fn(Progress) + Send + Sync>) -> Result<Report> {
    let s = &p.settings;
    let header = JobHeader {
        fingerprint: p.plan.fingerprint.clone(),
        target: format!("{}.{}", s.db, s.table),
        source: p.plan.location.display.clone(),
        chunks: p.plan.chunks.len(),
        schema: schema_digest(&p.target),
    };
    let jpath = journal::path_for(&s.state_dir, &p.plan.fingerprint);
    let journal = Journal::open(&jpath, header)?;
    // Inputs must not have changed since listing.
    source::check_unchanged(&p.plan.location, &p.plan.files.iter().map(|f| f.file.clone()).collect::<Vec<_>>()).await?;
    let client = Client::new(HttpSettings {
        fe: s.fe.clone(),
        user: s.user.clone(),
        password: s.password.clone(),
        ca_file: s.ca_file.clone(),
        connect_timeout: Duration::from_secs(30),
    })?;
    let options = LoadOptions {
        parallel: s.parallel,
        max_retries: s.max_retries,
        extra_headers: s.headers.clone(),
        filtered: s.transform.filter.as_deref().is_some_and(|w| !w.trim().is_empty()),
        per_be: s.per_be_parallel.unwrap_or(s.parallel),
        ..LoadOptions::default()
    };
    let job = Arc::new(Job {
        scanner: p.scanner.clone(),
        encoder: p.encoder.clone(),
        client,
        db: s.db.clone(),
        table: s.table.clone(),
        journal: Arc::new(Mutex::new(journal)),
        options,
        progress,
        chunks: p.plan.chunks.clone(),
        limiter: crate::limit::Limiter::new(s.parallel),
        be_limiters: Mutex::new(Default::default()),
    });
    let load = load::run(job).await?;
    let secs = load.seconds.max(1e-9);
    Ok(Report {
        status: "ok".into(),
        job: p.plan.fingerprint.clone(),
        source: p.plan.location.display.clone(),
        target: format!("{}.{}", s.db, s.table),
        files: p.plan.files.len(),
        source_rows: p.plan.rows(),
        rows_per_sec: load.rows_sent as f64 / secs,
        mib_per_sec: load.bytes_sent as f64 / secs / (1 << 20) as f64,
        load,
        journal: jpath.display().to_string(),
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
                    .map(|s| format!("{}[{}..{}]", p.plan.file_name(s.file), s.row_groups.start, s.row_groups.end))
                    .collect(),
            })
            .collect(),
        format: if p.encoder.csv_capable() { "csv".into() } else { "json".into() },
        rows: p.plan.rows(),
        bytes: p.plan.input_bytes(),
    }
}
