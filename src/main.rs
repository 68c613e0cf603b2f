//! The `starload` command line.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use starload::config::{ByteSize, JobFile, TransformFile, parse_bytes};
use starload::error::{Error, ErrorKind, Result};
use starload::job::{self, Settings};
use starload::journal::JournalRole;
use starload::load::Progress;

#[derive(Parser, Debug)]
#[command(name = "starload", version, about = "Load Hive/Parquet datasets into StarRocks, exactly once.")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
    /// Log as JSON lines on stderr.
    #[arg(long, global = true)]
    log_json: bool,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Load a dataset into a table.
    Load(JobArgs),
    /// Print the plan (files, partitions, column mapping, chunks, labels); send nothing.
    Plan(JobArgs),
    /// After `load --shard i/n` ran for every i: verify every chunk and, in
    /// overwrite mode, swap the new partitions in.
    Finalize(FinalizeArgs),
    /// Global dictionaries of BITMAP columns: build, show, export.
    #[command(subcommand)]
    Dict(DictCmd),
    /// Run the StarRocks simulator.
    Sim(SimArgs),
    /// Show a job's chunks and verdicts from its journal.
    Status(StatusArgs),
    /// Run a SQL statement over the MySQL protocol and print the rows.
    Sql(SqlArgs),
    /// Write the demo dataset and its simulator tables file.
    DemoData(DemoArgs),
}

#[derive(Args, Debug, Clone)]
struct JobArgs {
    /// Job file (TOML); flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Source directory or URL (local path, file://, s3://, hdfs://, viewfs://).
    #[arg(long)]
    source: Option<String>,
    /// Or a Hive table, db.table, read through --metastore.
    #[arg(long)]
    hive_table: Option<String>,
    /// Hive Metastore URI, thrift://host:9083.
    #[arg(long)]
    metastore: Option<String>,
    /// Target table, db.table.
    #[arg(long)]
    table: Option<String>,
    /// FE HTTP URL, e.g. http://127.0.0.1:8030.
    #[arg(long)]
    fe: Option<String>,
    /// FE MySQL address, host:port.
    #[arg(long)]
    mysql: Option<String>,
    /// StarRocks user (password: STARROCKS_PASSWORD or password_file in the job file).
    #[arg(long)]
    user: Option<String>,
    /// State directory for journals.
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Label prefix.
    #[arg(long)]
    label_prefix: Option<String>,
    /// Target chunk size (e.g. 256MiB).
    #[arg(long, value_parser = parse_size)]
    chunk_bytes: Option<u64>,
    /// Loads in flight.
    #[arg(long)]
    parallel: Option<usize>,
    /// Retries of one chunk after failures (default 8).
    #[arg(long)]
    max_retries: Option<u32>,
    /// Loads in flight per BE (default: --parallel).
    #[arg(long)]
    per_be_parallel: Option<usize>,
    /// Body compression: none (default) or lz4 (CSV bodies as LZ4 frames, for a slow network).
    #[arg(long)]
    compress: Option<String>,
    /// Longest wait for one listing, footer read or metastore call, seconds (default 60).
    #[arg(long)]
    source_timeout_secs: Option<u64>,
    /// Largest job --mode atomic accepts (one transaction), e.g. 10GiB.
    #[arg(long, value_parser = parse_size)]
    max_txn_bytes: Option<u64>,
    /// Time zone for timestamps with a zone (default UTC).
    #[arg(long)]
    timezone: Option<String>,
    /// SQL select list over `source`.
    #[arg(long)]
    select: Option<String>,
    /// SQL where clause over source and partition columns.
    #[arg(long = "where")]
    filter: Option<String>,
    /// The instant now() and current_date() read in --select/--where (RFC 3339, e.g.
    /// 2026-11-28T00:00:00Z); default: when the job starts (a resumed job keeps its first).
    #[arg(long)]
    clock: Option<String>,
    /// append (default), atomic (one transaction) or overwrite (replace the partitions the job touches).
    #[arg(long)]
    mode: Option<String>,
    /// Primary Key tables: source rows matching this SQL predicate delete their key.
    #[arg(long)]
    delete_when: Option<String>,
    /// Primary Key tables: update only the loaded columns.
    #[arg(long)]
    partial_update: bool,
    /// Primary Key tables: apply a row only if this column's new value is not smaller.
    #[arg(long)]
    merge_condition: Option<String>,
    /// Start although an earlier job with the same source, table and transform had other inputs.
    #[arg(long)]
    new_job: bool,
    /// Overwrite: let a source with no rows empty an unpartitioned table.
    #[arg(long)]
    allow_empty: bool,
    /// A load an earlier run never learned the outcome of, whose label StarRocks forgot (a run stops and names it): LABEL=resend (the table lacks its rows) or LABEL=committed (it holds them); repeatable.
    #[arg(long = "unknown-loads", value_name = "LABEL=ANSWER")]
    unknown_loads: Vec<String>,
    /// Load only shard i of n of the chunk plan (e.g. 0/4); run `finalize` after all shards.
    #[arg(long)]
    shard: Option<String>,
    /// Print a JSON report instead of text.
    #[arg(long)]
    json: bool,
    /// Print the resolved settings (secrets redacted) and exit.
    #[arg(long)]
    print_config: bool,
    /// BITMAP column loaded through a global dictionary: COLUMN=SOURCE_EXPRESSION (repeatable).
    #[arg(long = "bitmap-dict", value_name = "COLUMN=EXPR")]
    bitmap_dict: Vec<String>,
}

/// `println!` that ends the process quietly (exit 0) when the reader of
/// stdout went away (`starload status | head -1`), like other Unix tools,
/// instead of panicking; any other write error is an error.
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout(), $($t)*) {
            return Err(stdout_error(e));
        }
    }};
}

/// `print!` with [`outln!`]'s broken-pipe handling.
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = write!(std::io::stdout(), $($t)*) {
            return Err(stdout_error(e));
        }
    }};
}

fn stdout_error(e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    Error::internal(format!("cannot write to stdout: {e}"))
}

fn parse_size(s: &str) -> std::result::Result<u64, String> {
    parse_bytes(s)
}

#[derive(Args, Debug)]
struct FinalizeArgs {
    #[command(flatten)]
    job: JobArgs,
    /// The number of shards the job ran as.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    shards: u32,
}

#[derive(Subcommand, Debug)]
enum DictCmd {
    /// Build (extend) the job's dictionaries over its inputs; loads nothing.
    /// Run it before sharded loads.
    Build(JobArgs),
    /// Show the job's dictionaries: versions, values, ids, the build lease.
    Show(DictShowArgs),
    /// Load a dictionary's (id, value) pairs into a StarRocks table.
    Export(DictExportArgs),
    /// Take over an existing dictionary (a Spark Load global dictionary's
    /// dict_key, dict_value pairs, as Parquet) as version 1.
    Import(DictImportArgs),
}

#[derive(Args, Debug)]
struct DictImportArgs {
    #[command(flatten)]
    job: JobArgs,
    /// The BITMAP column whose dictionary this is.
    #[arg(long)]
    column: String,
    /// The pairs: Parquet files (a directory or URL, as --source).
    #[arg(long)]
    from: String,
    /// The column of the values.
    #[arg(long, default_value = "dict_key")]
    key_column: String,
    /// The column of the ids.
    #[arg(long, default_value = "dict_value")]
    id_column: String,
    /// Which pairs (SQL over the files), e.g. "dict_column = 'uid'" for a
    /// Spark Load dictionary table, which holds every column's.
    #[arg(long)]
    from_where: Option<String>,
    /// Where dictionaries live (default: <state_dir>/dicts).
    #[arg(long)]
    dict_store: Option<String>,
}

#[derive(Args, Debug)]
struct DictShowArgs {
    #[command(flatten)]
    job: JobArgs,
    /// A dictionary column (repeatable; default: the job's bitmap_dict columns).
    #[arg(long)]
    column: Vec<String>,
    /// Where dictionaries live (default: <state_dir>/dicts).
    #[arg(long)]
    dict_store: Option<String>,
}

#[derive(Args, Debug)]
struct DictExportArgs {
    #[command(flatten)]
    job: JobArgs,
    /// The dictionary column.
    #[arg(long)]
    column: String,
    /// Target table, db.table (PRIMARY KEY on id, unless --mode overwrite).
    #[arg(long)]
    to: String,
    /// Version to export (default: the current one).
    #[arg(long)]
    version: Option<u64>,
    /// Where dictionaries live (default: <state_dir>/dicts).
    #[arg(long)]
    dict_store: Option<String>,
}

#[derive(Args, Debug)]
struct SimArgs {
    /// Tables file (TOML or JSON).
    #[arg(long)]
    tables: PathBuf,
    /// FE HTTP port.
    #[arg(long, default_value_t = 8030)]
    fe_port: u16,
    /// BE HTTP port (repeat for several BEs).
    #[arg(long, default_values_t = vec![8040u16])]
    be_port: Vec<u16>,
    /// MySQL port.
    #[arg(long, default_value_t = 9030)]
    mysql_port: u16,
    /// Only count rows and bytes.
    #[arg(long)]
    discard: bool,
    /// User name (password from STARLOAD_SIM_PASSWORD, default empty).
    #[arg(long, default_value = "root")]
    user: String,
    /// Faults file (TOML, `[[faults]]`).
    #[arg(long)]
    faults: Option<PathBuf>,
    /// Serve FE and BE over HTTPS with this PEM certificate chain.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of `--tls-cert`.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct StatusArgs {
    /// State directory.
    #[arg(long, default_value = ".starload")]
    state_dir: PathBuf,
    /// Job fingerprint (default: every job).
    #[arg(long)]
    job: Option<String>,
    /// JSON output.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct SqlArgs {
    /// MySQL address, host:port.
    #[arg(long, default_value = "127.0.0.1:9030")]
    mysql: String,
    /// User (password: STARROCKS_PASSWORD).
    #[arg(long, default_value = "root")]
    user: String,
    /// The statement.
    statement: String,
}

#[derive(Args, Debug)]
struct DemoArgs {
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// Rows.
    #[arg(long, default_value_t = 20_000)]
    rows: usize,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The job file may ask for JSON logs.
    let file_json = match &cli.cmd {
        Cmd::Load(a) | Cmd::Plan(a) => a.config.as_ref().and_then(|p| JobFile::load(p).ok()).and_then(|f| f.log_format),
        Cmd::Finalize(a) => a.job.config.as_ref().and_then(|p| JobFile::load(p).ok()).and_then(|f| f.log_format),
        _ => None,
    }
    .is_some_and(|f| f.eq_ignore_ascii_case("json"));
    init_logging(cli.log_json || file_json);
    // STARLOAD_THREADS caps both the I/O runtime and the encoder pool (for
    // benchmarks and shared machines); by default both use every core.
    let threads = std::env::var("STARLOAD_THREADS").ok().and_then(|t| t.parse::<usize>().ok()).filter(|&t| t > 0);
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(t) = threads {
        builder.worker_threads(t);
        let _ = rayon::ThreadPoolBuilder::new().num_threads(t).build_global();
    }
    starload::error::install_panic_hook();
    let rt = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("starload: cannot start runtime: {e}");
            return ExitCode::from(1);
        }
    };
    // The simulator stops cleanly on those signals itself.
    let serves = matches!(cli.cmd, Cmd::Sim(_));
    // A caller that asked for JSON gets its failure as JSON on stdout too.
    let json = job_args(&cli.cmd).is_some_and(|a| a.json) || matches!(&cli.cmd, Cmd::Status(a) if a.json);
    match rt.block_on(async {
        tokio::select! {
            r = run(cli.cmd) => r,
            code = interrupted(), if !serves => {
                // The journal is safe at any instant (as after kill -9):
                // leave at once, saying how to go on.
                eprintln!(
                    "starload: interrupted; chunks already committed stay committed — re-run the same command \
                     to resume"
                );
                std::process::exit(code);
            }
        }
    }) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("starload: {e}");
            let code = exit_code(e.kind());
            if json {
                let kind = match e.kind() {
                    ErrorKind::Config => "config",
                    ErrorKind::Data => "data",
                    ErrorKind::Infra => "infrastructure",
                    ErrorKind::Verify => "verification",
                    _ => "internal",
                };
                let v = serde_json::json!({"error": {"kind": kind, "exit_code": code, "message": e.to_string()}});
                use std::io::Write as _;
                let _ = writeln!(std::io::stdout(), "{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            }
            ExitCode::from(code)
        }
    }
}

/// Waits for SIGINT or SIGTERM; the exit code a shell gives for it.
async fn interrupted() -> i32 {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => 130,
        _ = term.recv() => 143,
    }
}

/// Exit codes (stable): 0 success, 2 configuration, 3 data, 4 infrastructure
/// (retryable; re-run to resume), 5 verification, 1 internal.
fn exit_code(k: ErrorKind) -> u8 {
    match k {
        ErrorKind::Config => 2,
        ErrorKind::Data => 3,
        ErrorKind::Infra => 4,
        ErrorKind::Verify => 5,
        _ => 1,
    }
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("STARLOAD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,starload=info,datafusion=warn"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none());
    if json {
        b.json().init();
    } else {
        b.compact().init();
    }
}

async fn dict(cmd: DictCmd) -> Result<()> {
    let json_out = |v: &dyn erased::Json| -> Result<()> {
        outln!("{}", v.to_json()?);
        Ok(())
    };
    match cmd {
        DictCmd::Build(a) => {
            let settings = Settings::resolve(job_file(&a)?)?;
            if settings.transform.dicts.is_empty() {
                return Err(Error::config("the job has no bitmap_dict columns (--bitmap-dict COLUMN=EXPRESSION)"));
            }
            let p = job::prepare(settings).await?;
            if let (Some(f), None) = (p.scanner.clock_function(), p.settings.transform.clock) {
                tracing::warn!(
                    "the transform calls {f}: this build reads the time it starts; give it (and the shards that use \
                     the dictionary) one --clock so that they keep the same rows"
                );
            }
            let built = starload::dictjob::build(&p, &starload::dict::BuildOptions::default()).await?;
            if a.json {
                let reports: Vec<_> = built.iter().map(|b| &b.report).collect();
                return json_out(&reports);
            }
            for b in &built {
                let r = &b.report;
                let v = r.version.as_ref();
                outln!(
                    "{}: {} distinct values in {} rows ({} NULL), {} new{}; version {} holds {} values (ids 1..={}) [{:.1} s]",
                    b.column,
                    r.distinct_values,
                    r.input_rows,
                    r.null_rows,
                    r.new_values,
                    r.first_new_id.map(|i| format!(" from id {i}")).unwrap_or_default(),
                    v.map_or(0, |v| v.version),
                    v.map_or(0, |v| v.count),
                    v.map_or(0, |v| v.max_id),
                    b.seconds
                );
            }
            Ok(())
        }
        DictCmd::Show(a) => {
            let mut f = job_file(&a.job)?;
            if a.dict_store.is_some() {
                f.dict_store = a.dict_store.clone();
            }
            let (store, table, location) = starload::dictjob::from_job_file(&f)?;
            let columns: Vec<String> =
                if a.column.is_empty() { f.bitmap_dict.keys().cloned().collect() } else { a.column.clone() };
            if columns.is_empty() {
                return Err(Error::config("name a dictionary: --column COLUMN, or a job with bitmap_dict"));
            }
            let mut out = Vec::new();
            for c in &columns {
                let key = starload::dict::DictKey::new(&table, c)?;
                match store.summary(&key).await? {
                    Some(s) => out.push(s),
                    None => return Err(Error::config(format!("dictionary {key} has no version in {location}"))),
                }
            }
            if a.job.json {
                return json_out(&out);
            }
            for s in &out {
                outln!(
                    "{}: version {} of {:?}, {} values of type {}, ids 1..={}, {} files, {}, built {} by {}{}",
                    s.key,
                    s.version,
                    s.versions,
                    s.count,
                    s.value_type.name(),
                    s.max_id,
                    s.files.len(),
                    human_bytes(s.total_bytes),
                    s.created_at,
                    s.builder,
                    s.lease
                        .as_ref()
                        .map(|l| format!(
                            "; being built by `{}` since {} (lease until {})",
                            l.owner, l.acquired_at, l.expires_at
                        ))
                        .unwrap_or_default()
                );
            }
            Ok(())
        }
        DictCmd::Import(a) => {
            let mut f = job_file(&a.job)?;
            if a.dict_store.is_some() {
                f.dict_store = a.dict_store.clone();
            }
            let r =
                starload::dictjob::import(f, &a.column, &a.from, &a.key_column, &a.id_column, a.from_where.as_deref())
                    .await?;
            if a.job.json {
                return json_out(&r);
            }
            outln!(
                "imported {} values as version {} of dictionary {} (ids 1..={}); {}",
                r.values,
                r.version,
                r.dictionary,
                r.values,
                r.table_max_id.map_or("the table's column held no ids".to_string(), |m| format!(
                    "the table's column held ids up to {m}"
                ))
            );
            Ok(())
        }
        DictCmd::Export(a) => {
            let mut f = job_file(&a.job)?;
            if a.dict_store.is_some() {
                f.dict_store = a.dict_store.clone();
            }
            let r = starload::dictjob::export(f, &a.column, &a.to, a.version, Arc::new(|_| {})).await?;
            if a.job.json {
                return json_out(&r);
            }
            outln!(
                "exported {} of the {} values of the dictionary of `{}` into {} ({} chunks loaded, {} already committed)",
                r.load.rows_sent,
                r.source_rows,
                a.column,
                r.target,
                r.load.chunks_loaded,
                r.load.chunks_skipped
            );
            Ok(())
        }
    }
}

mod erased {
    /// Anything printable as JSON.
    pub trait Json {
        fn to_json(&self) -> starload::Result<String>;
    }
    impl<T: serde::Serialize> Json for T {
        fn to_json(&self) -> starload::Result<String> {
            serde_json::to_string_pretty(self).map_err(|e| starload::Error::internal(e.to_string()))
        }
    }
}

async fn load(a: &JobArgs, f: JobFile) -> Result<job::Report> {
    let settings = Settings::resolve(f)?;
    let p = job::prepare(settings).await?;
    let total_rows = p.plan.rows();
    let chunks = p.plan.chunks.len();
    let bar = if std::io::stderr().is_terminal() && !a.json {
        let b = indicatif::ProgressBar::new(total_rows);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:40} {human_pos}/{human_len} rows  {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Some(b)
    } else {
        None
    };
    let bar2 = bar.clone();
    let done = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let bytes = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let progress: Arc<dyn Fn(Progress) + Send + Sync> = Arc::new(move |ev| {
        if let (Some(b), Progress::Committed { rows, bytes: n, .. }) = (&bar2, &ev) {
            b.inc(*rows);
            let c = done.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            let t = bytes.fetch_add(*n, std::sync::atomic::Ordering::SeqCst) + n;
            b.set_message(format!("{c}/{chunks} chunks, {} sent", human_bytes(t)));
        }
    });
    let report = job::run(p, progress).await;
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let report = report?;
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&report).map_err(|e| Error::internal(e.to_string()))?);
    } else if report.load.chunks_loaded == 0 && report.load.chunks_skipped > 0 {
        outln!(
            "nothing to load: all {} chunks of job {} were already committed ({} rows in {})",
            report.load.chunks,
            report.job,
            report.load.rows_skipped,
            report.target
        );
    } else {
        outln!(
            "loaded {} rows in {} chunks into {} ({} chunks already committed, {} retries) in {:.1} s: {:.0} rows/s, {:.1} MiB/s",
            report.load.rows_loaded,
            report.load.chunks_loaded,
            report.target,
            report.load.chunks_skipped,
            report.load.retries,
            report.load.seconds,
            report.rows_per_sec,
            report.mib_per_sec
        );
    }
    Ok(report)
}

fn job_file(a: &JobArgs) -> Result<JobFile> {
    let cli = JobFile {
        source: a.source.clone(),
        hive_table: a.hive_table.clone(),
        metastore: a.metastore.clone(),
        table: a.table.clone(),
        fe: a.fe.clone(),
        mysql: a.mysql.clone(),
        user: a.user.clone(),
        state_dir: a.state_dir.clone(),
        label_prefix: a.label_prefix.clone(),
        chunk_bytes: a.chunk_bytes.map(ByteSize),
        parallel: a.parallel,
        per_be_parallel: a.per_be_parallel,
        compress: a.compress.clone(),
        max_retries: a.max_retries,
        source_timeout_secs: a.source_timeout_secs,
        max_txn_bytes: a.max_txn_bytes.map(ByteSize),
        timezone: a.timezone.clone(),
        transform: TransformFile { select: a.select.clone(), filter: a.filter.clone(), clock: a.clock.clone() },
        mode: a.mode.clone(),
        delete_when: a.delete_when.clone(),
        partial_update: a.partial_update.then_some(true),
        merge_condition: a.merge_condition.clone(),
        new_job: a.new_job.then_some(true),
        allow_empty: a.allow_empty.then_some(true),
        unknown_loads: {
            let mut m = std::collections::BTreeMap::new();
            for d in &a.unknown_loads {
                let (k, v) =
                    d.split_once('=').map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).ok_or_else(|| {
                        Error::config(format!("--unknown-loads `{d}` must be LABEL=resend or LABEL=committed"))
                    })?;
                if let Some(old) = m.insert(k.clone(), v.clone())
                    && !old.eq_ignore_ascii_case(&v)
                {
                    return Err(Error::config(format!("--unknown-loads answers `{k}` twice (`{old}` and `{v}`)")));
                }
            }
            m
        },
        shard: a.shard.clone(),
        bitmap_dict: {
            let mut m = std::collections::BTreeMap::new();
            for d in &a.bitmap_dict {
                let (k, v) = d
                    .split_once('=')
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                    .ok_or_else(|| Error::config(format!("--bitmap-dict `{d}` must be COLUMN=EXPRESSION")))?;
                if let Some(old) = m.insert(k.clone(), v) {
                    return Err(Error::config(format!(
                        "--bitmap-dict names column `{k}` twice (`{old}` and `{}`)",
                        m[&k]
                    )));
                }
            }
            m
        },
        ..JobFile::default()
    };
    let file = match &a.config {
        Some(p) => JobFile::load(p)?,
        None => JobFile::default(),
    };
    Ok(cli.or(file))
}

/// The job arguments of a command that has them.
fn job_args(cmd: &Cmd) -> Option<&JobArgs> {
    match cmd {
        Cmd::Load(a) | Cmd::Plan(a) | Cmd::Dict(DictCmd::Build(a)) => Some(a),
        Cmd::Finalize(a) => Some(&a.job),
        Cmd::Dict(DictCmd::Show(a)) => Some(&a.job),
        Cmd::Dict(DictCmd::Export(a)) => Some(&a.job),
        Cmd::Dict(DictCmd::Import(a)) => Some(&a.job),
        _ => None,
    }
}

async fn run(cmd: Cmd) -> Result<()> {
    // `--print-config` prints and exits, whatever the command.
    if let Some(a) = job_args(&cmd)
        && a.print_config
    {
        out!("{}", job_file(a)?.redacted_toml());
        return Ok(());
    }
    match cmd {
        Cmd::Plan(a) => {
            let settings = Settings::resolve(job_file(&a)?)?;
            let p = job::prepare(settings).await?;
            let view = job::plan_view(&p);
            if a.json {
                outln!("{}", serde_json::to_string_pretty(&view).map_err(|e| Error::internal(e.to_string()))?);
            } else {
                print_plan(&view)?;
            }
            Ok(())
        }
        Cmd::Load(a) => {
            let f = job_file(&a)?;
            let (metrics_file, pushgateway) = (f.metrics_file.clone(), f.metrics_pushgateway.clone());
            let labels = starload::metrics::RunLabels {
                target: f.table.clone().unwrap_or_default(),
                mode: f.mode.clone().unwrap_or_else(|| "append".into()),
                job: String::new(),
            };
            let started = std::time::Instant::now();
            let result = load(&a, f).await;
            if metrics_file.is_some() || pushgateway.is_some() {
                let (report, code) = match &result {
                    Ok(r) => (Some(r), 0),
                    Err(e) => (None, exit_code(e.kind())),
                };
                let labels =
                    starload::metrics::RunLabels { job: report.map(|r| r.job.clone()).unwrap_or_default(), ..labels };
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs_f64())
                    .unwrap_or(0.0);
                let text = starload::metrics::render(&labels, report, code, started.elapsed().as_secs_f64(), now);
                if let Some(p) = &metrics_file
                    && let Err(e) = starload::metrics::write_file(p, &text)
                {
                    tracing::warn!("{e}");
                }
                if let Some(u) = &pushgateway
                    && let Err(e) = starload::metrics::push(u, &labels.target, &text).await
                {
                    tracing::warn!("{e}");
                }
            }
            result.map(|_| ())
        }
        Cmd::Finalize(a) => {
            let mut f = job_file(&a.job)?;
            f.shard = None;
            let settings = Settings::resolve(f)?;
            let p = job::prepare(settings).await?;
            let r = job::finalize(p, a.shards as usize).await?;
            if a.job.json {
                outln!("{}", serde_json::to_string_pretty(&r).map_err(|e| Error::internal(e.to_string()))?);
            } else {
                outln!(
                    "job {}: all {} chunks committed (checked by {}){}",
                    r.job,
                    r.chunks,
                    r.verified_by,
                    if r.partitions_replaced.is_empty() {
                        String::new()
                    } else {
                        format!("; replaced {}", r.partitions_replaced.join(", "))
                    }
                );
            }
            Ok(())
        }
        Cmd::Dict(d) => dict(d).await,
        Cmd::Sim(a) => {
            let tables = starload::sim::tables::load_file(&a.tables)?;
            let faults = match &a.faults {
                None => Vec::new(),
                Some(p) => load_faults(p)?,
            };
            let password = std::env::var("STARLOAD_SIM_PASSWORD").unwrap_or_default();
            let cfg = starload::sim::SimConfig {
                tables,
                users: vec![(a.user.clone(), password)],
                discard: a.discard,
                fe_port: a.fe_port,
                be_ports: a.be_port.clone(),
                mysql_port: a.mysql_port,
                faults,
                tls: match (&a.tls_cert, &a.tls_key) {
                    (Some(cert), Some(key)) => Some(starload::sim::TlsFiles { cert: cert.clone(), key: key.clone() }),
                    _ => None,
                },
                ..Default::default()
            };
            let scheme = if cfg.tls.is_some() { "https" } else { "http" };
            let sim = starload::sim::Sim::start(cfg).await?;
            eprintln!(
                "starload simulator ready: FE {} BE {} MySQL {}{}",
                sim.fe_url(),
                sim.bes.iter().map(|b| format!("{scheme}://{b}")).collect::<Vec<_>>().join(","),
                sim.mysql,
                if a.discard { " (discard mode)" } else { "" }
            );
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate() => {}
            }
            drop(sim);
            Ok(())
        }
        Cmd::Status(a) => status(a),
        Cmd::Sql(a) => {
            starload::config::check_mysql_address(&a.mysql)?;
            let password = starload::config::read_password(None)?;
            let mut m = starload::meta::Meta::connect(&a.mysql, &a.user, &password).await?;
            let (names, rows) = m.user_statement(&a.statement).await?;
            if !names.is_empty() {
                outln!("{}", names.join("\t"));
            }
            for r in rows {
                outln!(
                    "{}",
                    r.iter().map(|v| v.clone().unwrap_or_else(|| "NULL".into())).collect::<Vec<_>>().join("\t")
                );
            }
            m.close().await;
            Ok(())
        }
        Cmd::DemoData(a) => starload::demo::write(&a.out, a.rows),
    }
}

async fn terminate() {
    #[cfg(unix)]
    {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
            return;
        }
    }
    std::future::pending::<()>().await
}

fn load_faults(p: &std::path::Path) -> Result<Vec<starload::sim::FaultRule>> {
    #[derive(serde::Deserialize)]
    struct F {
        #[serde(default)]
        faults: Vec<starload::sim::faults::FaultSpec>,
    }
    let text = std::fs::read_to_string(p).map_err(|e| Error::config(format!("cannot read `{}`: {e}", p.display())))?;
    let f: F = toml::from_str(&text).map_err(|e| Error::config(format!("faults file `{}`: {e}", p.display())))?;
    f.faults.into_iter().map(|s| s.into_rule().map_err(Error::config)).collect()
}

fn status(a: StatusArgs) -> Result<()> {
    let dir = a.state_dir.join("jobs");
    let mut paths: Vec<PathBuf> = Vec::new();
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return Err(Error::config(format!("no journals under `{}`", dir.display())));
    };
    // jobs/<identity>/<fingerprint>.journal
    for e in rd.flatten() {
        let p = e.path();
        let inner: Vec<PathBuf> = if p.is_dir() {
            std::fs::read_dir(&p).into_iter().flatten().flatten().map(|f| f.path()).collect()
        } else {
            vec![p]
        };
        paths.extend(inner.into_iter().filter(|p| p.extension().is_some_and(|e| e == "journal")));
    }
    paths.sort();
    if let Some(j) = &a.job {
        paths.retain(|p| p.file_stem().is_some_and(|s| s.to_string_lossy().starts_with(j.as_str())));
        if paths.is_empty() {
            return Err(Error::config(format!("no journal for job `{j}` under `{}`", dir.display())));
        }
    }
    let mut out = Vec::new();
    for p in paths {
        // A journal torn where its header should be (a crash right after it
        // was created) holds nothing yet: shown, not fatal to the others.
        let v = match starload::journal::read(&p) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("{}: unreadable ({e}); a load of that job recovers it", p.display());
                continue;
            }
        };
        // An atomic job records its one transaction, not its chunks.
        let atomic = v.modes.iter().rev().find_map(|m| match m {
            starload::journal::ModeRecord::AtomicCommitted { rows, .. } => Some(*rows),
            _ => None,
        });
        let rows: u64 = atomic.unwrap_or_else(|| v.done.values().map(|c| c.rows).sum());
        let chunks_done = if atomic.is_some() { v.header.chunks } else { v.done.len() };
        // A shard's journal counts the chunks it owns; finalize's, none.
        let role = p.file_name().and_then(|n| n.to_str()).and_then(JournalRole::of).unwrap_or(JournalRole::Job);
        let owned = role.chunks_owned(v.header.chunks);
        let state = v.mode_state();
        // The instant the job's now() and current_date() read.
        let clock = v
            .header
            .clock
            .and_then(chrono::DateTime::from_timestamp_micros)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true));
        if a.json {
            out.push(serde_json::json!({
                "job": v.header.fingerprint,
                "target": v.header.target,
                "source": v.header.source,
                "chunks": v.header.chunks,
                "run": role,
                "chunks_owned": owned,
                "chunks_done": chunks_done,
                "rows": rows,
                "state": state,
                "clock": clock,
                "done": v.done.values().collect::<Vec<_>>(),
                "committed": v.committed.values().collect::<Vec<_>>(),
                "in_flight": v.started.iter().map(|(l, i)| serde_json::json!({"index": i, "label": l})).collect::<Vec<_>>(),
                "mismatched": v.mismatched.iter().map(|(l, m)| serde_json::json!({"label": l, "error": m})).collect::<Vec<_>>(),
            }));
        } else {
            let (fp, target, source) = (&v.header.fingerprint, &v.header.target, &v.header.source);
            match role {
                JournalRole::Job => outln!(
                    "job {fp} -> {target} from {source}: {chunks_done}/{owned} chunks done ({rows} rows), {} labels in flight",
                    v.started.len()
                ),
                JournalRole::Shard { index, of } => outln!(
                    "job {fp} shard {index}/{of} -> {target} from {source}: {}/{owned} of its chunks done ({rows} \
                     rows; the job has {}), {} labels in flight",
                    v.done.len(),
                    v.header.chunks,
                    v.started.len()
                ),
                JournalRole::Finalize => outln!("job {fp} finalize -> {target} from {source}"),
            }
            if let Some(st) = &state {
                outln!("  {st}");
            }
            if let Some(c) = &clock {
                outln!("  clock {c} (what now() and current_date() read)");
            }
            for (i, d) in &v.done {
                outln!("  chunk {i:>5}  done       rows={} bytes={}  {}", d.rows, d.bytes, d.labels.join(" "));
            }
            for (l, c) in &v.committed {
                if !v.done.contains_key(&c.index) {
                    outln!("  chunk {:>5}  part committed  {l}  format={}", c.index, c.format);
                }
            }
            for (l, i) in &v.started {
                outln!("  chunk {i:>5}  in flight  {l}  (resolved through get_load_state on the next run)");
            }
            for (l, m) in &v.mismatched {
                outln!("  mismatch   {l}  {m}");
            }
        }
    }
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&out).map_err(|e| Error::internal(e.to_string()))?);
    }
    Ok(())
}

fn human_bytes(n: u64) -> String {
    let f = n as f64;
    if f >= (1u64 << 30) as f64 {
        format!("{:.2} GiB", f / (1u64 << 30) as f64)
    } else if f >= (1u64 << 20) as f64 {
        format!("{:.1} MiB", f / (1u64 << 20) as f64)
    } else {
        format!("{:.1} KiB", f / 1024.0)
    }
}

fn print_plan(v: &job::PlanView) -> Result<()> {
    outln!("job        {}", v.job);
    outln!("source     {}", v.source);
    outln!("target     {} ({})", v.target, v.table_model);
    outln!("timezone   {} (timestamps with a zone are converted to it)", v.timezone);
    outln!("partitions {}", if v.partition_keys.is_empty() { "(none)".into() } else { v.partition_keys.join(", ") });
    outln!("rows       {} in {} files, {}", v.rows, v.files.len(), human_bytes(v.bytes));
    outln!("format     {} (JSON for chunks holding values CSV cannot carry)", v.format);
    outln!("\ncolumns:");
    for c in &v.columns {
        outln!("  {:<24} {:<40} -> {:<24} {}", c.source, c.source_type, c.target, c.target_type);
    }
    for d in &v.defaulted {
        outln!("  {:<24} {:<40} -> {:<24} (default)", "-", "-", d);
    }
    outln!("\nfiles:");
    for f in &v.files {
        let parts: Vec<String> = v
            .partition_keys
            .iter()
            .zip(&f.partition)
            .map(|(k, p)| format!("{k}={}", p.as_deref().unwrap_or("NULL")))
            .collect();
        outln!(
            "  {}  {} rows, {} row groups, {}  {}",
            f.path,
            f.rows,
            f.row_groups,
            human_bytes(f.bytes),
            parts.join(" ")
        );
    }
    outln!("\nchunks:");
    for c in &v.chunks {
        outln!("  {:>5}  {}  {} rows, ~{}", c.index, c.label, c.rows, human_bytes(c.est_bytes));
        for s in &c.slices {
            outln!("         {s}");
        }
    }
    Ok(())
}
