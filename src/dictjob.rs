//! The dictionary phase of a job: build (extend) the global dictionary of
//! every `bitmap_dict` column over the job's inputs, then load the current
//! versions for the encoders.
//!
//! A build reads only the columns the dictionary expressions need, in as
//! many concurrent scans as there are encode threads, and deduplicates while
//! it reads; [`crate::dict`] then publishes a new version with the values it
//! did not have. Ids never change, so a job that resumes after another job
//! extended a dictionary sends the same ids as before: the version is not
//! part of the job's fingerprint (its labels), only the expressions are.

use std::sync::Arc;
use std::time::Instant;

use arrow::array::RecordBatch;
use serde::Serialize;

use crate::dict::{BuildOptions, DictKey, DictStore, Distinct, Lookup, ValueType};
use crate::encode::{Encoder, dict_source_column};
use crate::error::{Error, Result};
use crate::job::{Prepared, Settings};

/// What the job did with one dictionary.
#[derive(Debug, Clone, Serialize)]
pub struct DictReport {
    /// Target column.
    pub column: String,
    /// The source expression.
    pub expression: String,
    /// Where the dictionary lives.
    pub location: String,
    /// The version the load used.
    pub version: u64,
    /// Values in that version.
    pub values: u64,
    /// Its highest id.
    pub max_id: u64,
    /// Whether this job built (extended) it.
    pub built: bool,
    /// Distinct non-NULL values of the job's inputs (when built).
    pub distinct_values: u64,
    /// Values this job added (when built).
    pub new_values: u64,
    /// Seconds spent building.
    pub build_seconds: f64,
    /// Seconds spent loading the version for lookups.
    pub lookup_seconds: f64,
}

/// The dictionaries of a job's settings.
pub fn store(s: &Settings) -> Result<DictStore> {
    DictStore::open(&s.dict_store, &s.store)
}

/// The dictionary of one target column.
pub fn key(s: &Settings, column: &str) -> Result<DictKey> {
    DictKey::new(&format!("{}.{}", s.db, s.table), column)
}

/// What [`build`] did per column.
#[derive(Debug, Clone)]
pub struct Built {
    /// Target column.
    pub column: String,
    /// The build's report.
    pub report: crate::dict::BuildReport,
    /// Seconds, the scan included.
    pub seconds: f64,
}

/// Extends every dictionary of the job with the values of its inputs (one
/// scan for all of them).
pub async fn build(p: &Prepared, opts: &BuildOptions) -> Result<Vec<Built>> {
    let s = &p.settings;
    if s.transform.dicts.is_empty() {
        return Ok(Vec::new());
    }
    let start = Instant::now();
    let dstore = store(s)?;
    check_new_dictionaries(s, &dstore).await?;
    let schema = p.scanner.output_schema().clone();
    let mut sets = Vec::new();
    let mut select = Vec::new();
    for (col, _) in &s.transform.dicts {
        let name = dict_source_column(col);
        let field = schema.field_with_name(&name).map_err(|_| Error::internal(format!("no column {name}")))?;
        let d = Distinct::new(field.data_type()).map_err(|e| e.context(format!("bitmap_dict `{col}`")))?;
        dstore.check_type(&key(s, col)?, d.value_type()).await?;
        sets.push(d);
        select.push(format!("\"{}\"", name.replace('"', "\"\"")));
    }
    let sets = match distinct_values(p, sets, &select).await {
        Ok(sets) => sets,
        Err(e) => return Err(locate_failure(p, e).await),
    };
    let mut out = Vec::new();
    for ((col, _), d) in s.transform.dicts.iter().zip(sets) {
        let report = dstore.build_from(&key(s, col)?, d, opts).await?;
        out.push(Built { column: col.clone(), report, seconds: start.elapsed().as_secs_f64() });
    }
    Ok(out)
}

/// Reads the job's inputs once into `sets` (one per dictionary column, in
/// the order of `select`).
async fn distinct_values(p: &Prepared, sets: Vec<Distinct>, select: &[String]) -> Result<Vec<Distinct>> {
    let ways = rayon::current_num_threads().max(1);
    let mut rx = p.scanner.stream_all(&format!("SELECT {} FROM {{t}}", select.join(", ")), ways);
    // Deduplication of one block overlaps reading the next.
    const BLOCK_ROWS: usize = 1 << 20;
    let mut inflight: Option<tokio::task::JoinHandle<Result<Vec<Distinct>>>> = None;
    let mut sets = Some(sets);
    loop {
        let mut block: Vec<RecordBatch> = Vec::new();
        let mut rows = 0;
        while rows < BLOCK_ROWS {
            match rx.recv().await {
                Some(b) => {
                    let b = b.map_err(|e| e.context("building dictionaries"))?;
                    rows += b.num_rows();
                    block.push(b);
                }
                None => break,
            }
        }
        if let Some(h) = inflight.take() {
            sets = Some(h.await.map_err(|e| Error::internal(format!("dictionary worker failed: {e}")))??);
        }
        if block.is_empty() {
            break;
        }
        let mut current = sets.take().ok_or_else(|| Error::internal("dictionary sets lost"))?;
        inflight = Some(tokio::task::spawn_blocking(move || {
            for b in &block {
                for (i, d) in current.iter_mut().enumerate() {
                    d.push(b.column(i).clone())?;
                }
            }
            Ok(current)
        }));
    }
    let mut sets = sets.ok_or_else(|| Error::internal("dictionary sets lost"))?;
    // Values still buffered are converted now: their errors belong here.
    tokio::task::spawn_blocking(move || {
        for d in &mut sets {
            d.flush()?;
        }
        Ok(sets)
    })
    .await
    .map_err(|e| Error::internal(format!("dictionary worker failed: {e}")))?
}

/// Names the file, row and column of what failed a dictionary build (the
/// build reads every file at once, in no order): the files are read again
/// one at a time, as a load reads them, and the failing batch's rows one
/// by one. Only after a failure; `e` is returned unchanged when the
/// second reading does not fail.
async fn locate_failure(p: &Prepared, e: Error) -> Error {
    use futures::StreamExt;
    // Only a data error is the input's: an outage is reported as it came.
    if e.kind() != crate::error::ErrorKind::Data {
        return e;
    }
    let data = |x: Error| if x.kind() == crate::error::ErrorKind::Data { Some(x) } else { None };
    let plan = p.scanner.plan();
    let name = |file: usize| plan.file_name(file);
    let columns: Vec<(String, String)> =
        p.settings.transform.dicts.iter().map(|(col, _)| (col.clone(), dict_source_column(col))).collect();
    for (i, f) in plan.files.iter().enumerate() {
        if f.row_groups.is_empty() {
            continue;
        }
        let slices = [crate::plan::Slice { file: i, row_groups: 0..f.row_groups.len(), first_row: 0, rows: f.rows() }];
        let mut stream = match p.scanner.scan(&slices).await {
            Ok(s) => s,
            Err(x) => return data(x).map_or(e, |x| x.context(format!("file `{}`", name(i)))),
        };
        let mut seen = 0u64;
        while let Some(b) = stream.next().await {
            let b = match b {
                Ok(b) => b,
                Err(x) => {
                    if let Some(r) = crate::scan::KeptRowRefusal::of(&x) {
                        return Error::data(format!("{}: {}", file_row(p, &slices, r.row, &r.column).await, r.why));
                    }
                    return data(Error::from(x))
                        .map_or(e, |x| x.context(format!("reading file `{}` for the dictionaries", name(i))));
                }
            };
            for (col, source) in &columns {
                let Some(a) = b.column_by_name(source) else { continue };
                let fails = |a: arrow::array::ArrayRef| {
                    let mut d = Distinct::new(a.data_type())?;
                    d.push(a)?;
                    d.flush()
                };
                if fails(a.clone()).is_ok() {
                    continue;
                }
                for r in 0..a.len() {
                    if let Err(why) = fails(a.slice(r, 1)) {
                        let at = file_row(p, &slices, seen + r as u64, col).await;
                        return Error::new(why.kind(), format!("{at}: {}", why.message()));
                    }
                }
            }
            seen += b.num_rows() as u64;
        }
    }
    e
}

/// `file …, row …, column …` of the `row`-th row (from 0) the transform
/// kept of `slices`.
async fn file_row(p: &Prepared, slices: &[crate::plan::Slice], row: u64, column: &str) -> String {
    match p.scanner.file_row(slices, row, column).await {
        Some(at) => at,
        None => format!("row {} of the rows kept, column `{column}`", row + 1),
    }
}

/// A dictionary is created only for a column that holds no ids yet. Ids in
/// the table and no dictionary in the store mean the store is not the one
/// that gave them (wiped, another URL, another machine's default under its
/// state directory): a new dictionary would give the same values other ids,
/// and every count across the two would be wrong without an error.
async fn check_new_dictionaries(s: &Settings, dstore: &DictStore) -> Result<()> {
    let mut meta = None;
    for (col, _) in &s.transform.dicts {
        let k = key(s, col)?;
        if let Some(v) = dstore.current(&k).await? {
            check_ids_seen(s, &k, v.max_id)?;
            continue;
        }
        let m = match &mut meta {
            Some(m) => m,
            None => meta.insert(crate::meta::Meta::connect(&s.mysql, &s.user, &s.password).await?),
        };
        let q = crate::encode::quote_ident;
        let sql =
            format!("SELECT 1 FROM {}.{} WHERE bitmap_count({}) > 0 LIMIT 1", q(&s.db), q(&s.table), q(&k.column));
        let holds_ids = !m.query(&sql).await.map_err(|e| e.context(format!("checking `{col}` for ids")))?.is_empty();
        if holds_ids {
            return Err(Error::config(format!(
                "column `{col}` of {}.{} already holds bitmap ids, but {} has no dictionary {k}: it is not the store \
                 whose dictionary gave those ids, and a new dictionary would give the same values other ids. Point \
                 dict_store at that dictionary (shared by every machine that loads the table), or empty the column \
                 first",
                s.db,
                s.table,
                crate::config::redact_url(&s.dict_store)
            )));
        }
    }
    if let Some(m) = meta {
        m.close().await;
    }
    Ok(())
}

/// Loads the current version of every dictionary of the job and gives the
/// encoders their lookups. A dictionary without a version is an error: it
/// is never created implicitly here (a shard, for one, must not build).
pub async fn attach(p: &mut Prepared, built: &[Built]) -> Result<Vec<DictReport>> {
    let s = p.settings.clone();
    if s.transform.dicts.is_empty() {
        return Ok(Vec::new());
    }
    let dstore = store(&s)?;
    let mut lookups: Vec<(String, Arc<Lookup>)> = Vec::new();
    let mut reports = Vec::new();
    for (col, expr) in &s.transform.dicts {
        let k = key(&s, col)?;
        let t = Instant::now();
        let version = dstore.current(&k).await?.ok_or_else(|| {
            Error::config(format!(
                "dictionary {} of column `{col}` has no version in {}; build it first (`starload dict build`) — a \
                 sharded load never builds",
                k,
                crate::config::redact_url(&s.dict_store)
            ))
        })?;
        check_ids_seen(&s, &k, version.max_id)?;
        let lookup = Arc::new(dstore.lookup(&k, &version).await?);
        record_ids_seen(&s, &k, version.max_id)?;
        let b = built.iter().find(|b| b.column == *col);
        reports.push(DictReport {
            column: col.clone(),
            expression: expr.clone(),
            location: s.dict_store.clone(),
            version: version.version,
            values: version.count,
            max_id: version.max_id,
            built: b.is_some(),
            distinct_values: b.map_or(0, |b| b.report.distinct_values),
            new_values: b.map_or(0, |b| b.report.new_values),
            build_seconds: b.map_or(0.0, |b| b.seconds),
            lookup_seconds: t.elapsed().as_secs_f64(),
        });
        lookups.push((col.clone(), lookup));
    }
    let base = Encoder::new(p.mapping.columns.clone(), s.zone).with_dictionaries(&lookups)?;
    if s.preaggregate {
        let spec = crate::preagg::PreAggSpec::new(Arc::new(base), &p.target, p.scanner.output_schema())?;
        p.encoder = spec.output.clone();
        p.preagg = Some(Arc::new(spec));
    } else {
        p.encoder = Arc::new(base);
    }
    Ok(reports)
}

/// Where the state directory keeps the largest id its loads of a
/// dictionary's column used (`<state_dir>/dict-ids/<digest of db.table/column>`,
/// holding the key and the id).
fn ids_seen_path(s: &Settings, k: &DictKey) -> std::path::PathBuf {
    let digest = blake3::hash(k.to_string().as_bytes()).to_hex();
    s.state_dir.join("dict-ids").join(&digest[..16])
}

fn ids_seen(s: &Settings, k: &DictKey) -> u64 {
    std::fs::read_to_string(ids_seen_path(s, k))
        .ok()
        .and_then(|t| t.lines().nth(1).and_then(|n| n.trim().parse().ok()))
        .unwrap_or(0)
}

/// Refuses a dictionary whose newest version ends below ids that loads from
/// this state directory already put in the table: the store is older than
/// the table (restored from a backup, or its newest versions deleted), and
/// extending it would give new values those ids again.
fn check_ids_seen(s: &Settings, k: &DictKey, max_id: u64) -> Result<()> {
    let seen = ids_seen(s, k);
    if max_id < seen {
        return Err(Error::config(format!(
            "dictionary {k} in {} ends at id {max_id}, but loads from this state directory used ids up to {seen}: the \
             store is older than the table (restored from a backup, or its newest versions removed), and new values \
             would get ids the table already holds. Point dict_store at the newest dictionary (`{}` records the ids \
             used)",
            crate::config::redact_url(&s.dict_store),
            ids_seen_path(s, k).display()
        )));
    }
    Ok(())
}

/// Records that a load used a dictionary version ending at `max_id`.
fn record_ids_seen(s: &Settings, k: &DictKey, max_id: u64) -> Result<()> {
    if max_id <= ids_seen(s, k) {
        return Ok(());
    }
    let path = ids_seen_path(s, k);
    let write = || -> std::io::Result<()> {
        let dir = path.parent().expect("a file under dict-ids");
        std::fs::create_dir_all(dir)?;
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, format!("{k}\n{max_id}\n"))?;
        std::fs::rename(&tmp, &path)
    };
    write().map_err(|e| Error::infra(format!("cannot record the ids of dictionary {k} in `{}`: {e}", path.display())))
}

/// The dictionaries named by a job file, without planning the job: its
/// target table, its dictionary store and its `bitmap_dict` columns.
pub fn from_job_file(f: &crate::config::JobFile) -> Result<(DictStore, String, String)> {
    let table = f.table.clone().ok_or_else(|| Error::config("`table` is required (the dictionaries' table)"))?;
    let (db, t) = crate::meta::split_table(&table)?;
    let state = f.state_dir.clone().unwrap_or_else(|| std::path::PathBuf::from(".starload"));
    let location = f.dict_store.clone().unwrap_or_else(|| state.join("dicts").display().to_string());
    crate::config::check_no_password("dict_store", &location)?;
    let opts = crate::source::StoreOptions {
        s3: f.s3.clone(),
        hdfs: f.hdfs.clone(),
        timeout: f.source_timeout_secs.map(std::time::Duration::from_secs),
    };
    Ok((DictStore::open(&location, &opts)?, format!("{db}.{t}"), location))
}

/// Writes version `version` (default: the current one) of a dictionary as
/// Parquet (`id UInt64`, `value`) under
/// `<state_dir>/exports/<db.table>/<column>/v<N>-text/`, once: a complete export
/// of a version is reused, so loading it again sends the same files (and
/// labels). Returns the directory and the version.
pub async fn export_files(
    dstore: &DictStore,
    key: &DictKey,
    version: Option<u64>,
    state_dir: &std::path::Path,
    zone: crate::encode::Zone,
) -> Result<(std::path::PathBuf, crate::dict::Version)> {
    let v = match version {
        Some(n) => {
            let have = dstore.versions(key).await?;
            if !have.contains(&n) {
                return Err(Error::config(format!(
                    "dictionary {key} has no version {n} (published: {})",
                    if have.is_empty() {
                        "none".to_string()
                    } else {
                        have.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
                    }
                )));
            }
            dstore.version(key, n).await?
        }
        None => dstore
            .current(key)
            .await?
            .ok_or_else(|| Error::config(format!("dictionary {key} has no version to export")))?,
    };
    // `-text`: decimals and timestamps as SQL text (exports of earlier
    // versions held their canonical bytes, and are not reused).
    let dir = state_dir.join("exports").join(&key.table).join(&key.column).join(format!("v{:08}-text", v.version));
    if dir.join("_complete").exists() {
        return Ok((dir, v));
    }
    let io = |what: &str, e: std::io::Error| Error::infra(format!("{what}: {e}"));
    let tmp = dir.with_extension(format!("tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| io(&format!("cannot create {}", tmp.display()), e))?;
    let file_path = tmp.join("part-00000.parquet");
    let file =
        std::fs::File::create(&file_path).map_err(|e| io(&format!("cannot create {}", file_path.display()), e))?;
    let props = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::SNAPPY)
        .set_max_row_group_row_count(Some(1 << 20))
        .build();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, DictStore::export_schema(v.value_type), Some(props))?;
    let vt = v.value_type;
    dstore.export_each(key, &v, |b| Ok(w.write(&as_sql_text(b, vt, zone)?)?)).await?;
    w.close()?;
    std::fs::write(tmp.join("_complete"), format!("{}\n", v.version))
        .map_err(|e| io(&format!("cannot write {}", tmp.display()), e))?;
    std::fs::create_dir_all(dir.parent().unwrap_or(state_dir)).map_err(|e| io("cannot create export directory", e))?;
    match std::fs::rename(&tmp, &dir) {
        Ok(()) => {}
        // Another export of the same version won: use it.
        Err(_) if dir.join("_complete").exists() => {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        Err(e) => return Err(io(&format!("cannot move the export to {}", dir.display()), e)),
    }
    Ok((dir, v))
}

/// An export batch with its values as the text SQL users compare them
/// with: a decimal's canonical bytes (`150@2`) as `1.50`, a timestamp's
/// (microseconds since the epoch) as `YYYY-MM-DD HH:MM:SS[.ffffff]` — wall
/// clock, an instant in `zone` — which load into DECIMAL, DATETIME and
/// VARCHAR columns. Other types' canonical text is already that.
fn as_sql_text(b: RecordBatch, vt: ValueType, zone: crate::encode::Zone) -> Result<RecordBatch> {
    use arrow::array::{Array, AsArray, StringArray};
    let text = |f: &dyn Fn(&str) -> Option<String>| -> Result<RecordBatch> {
        let values = b.column(1).as_string::<i32>();
        let out: StringArray = (0..values.len())
            .map(|i| {
                let v = values.value(i);
                f(v).ok_or_else(|| Error::data(format!("dictionary value `{v}` is not a canonical {vt}"))).map(Some)
            })
            .collect::<Result<_>>()?;
        Ok(RecordBatch::try_new(b.schema(), vec![b.column(0).clone(), Arc::new(out)])?)
    };
    match vt {
        ValueType::Decimal { scale } => text(&|v| {
            let (digits, s) = v.split_once('@')?;
            (s.parse::<i8>().ok()? == scale && scale >= 0).then(|| decimal_text(digits, scale as usize))?
        }),
        ValueType::Timestamp => text(&|v| Some(crate::value::format_datetime(v.parse().ok()?))),
        ValueType::TimestampTz => text(&|v| {
            let us: i64 = v.parse().ok()?;
            Some(crate::value::format_datetime(us.checked_add(zone.offset_secs(us).checked_mul(1_000_000)?)?))
        }),
        _ => Ok(b),
    }
}

/// `-205` at scale 2 as `-2.05`.
fn decimal_text(unscaled: &str, scale: usize) -> Option<String> {
    let (neg, digits) = unscaled.strip_prefix('-').map_or((false, unscaled), |d| (true, d));
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    let sign = if neg { "-" } else { "" };
    Some(if scale == 0 { format!("{sign}{int}") } else { format!("{sign}{int}.{frac}") })
}

/// The job `f` over `source` instead of its own, without what only its own
/// load uses (its select and where, dictionaries, pre-aggregation, key
/// options, shard, partition types): `dict export` and `dict import` read
/// other files with the job's FE, credentials and store settings. (The
/// job's where clause over the pairs would drop pairs from an export.)
fn over_source(f: crate::config::JobFile, source: String) -> crate::config::JobFile {
    crate::config::JobFile {
        source: Some(source),
        transform: Default::default(),
        hive_table: None,
        metastore: None,
        bitmap_dict: Default::default(),
        bitmap_preaggregate: None,
        delete_when: None,
        partial_update: None,
        merge_condition: None,
        shard: None,
        partition_types: Default::default(),
        ..f
    }
}

/// A column name in the scan's SQL (DataFusion): in double quotes.
fn df_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Column `name` of `schema`: the one spelled so, else the one column
/// equal to it but for case.
fn source_column(schema: &arrow::datatypes::Schema, name: &str) -> Result<String> {
    if schema.field_with_name(name).is_ok() {
        return Ok(name.to_string());
    }
    let all: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    match all.iter().filter(|n| n.eq_ignore_ascii_case(name)).collect::<Vec<_>>().as_slice() {
        [one] => Ok(one.to_string()),
        [] => {
            Err(Error::config(format!("the dictionary source has no column `{name}`; its columns: {}", all.join(", "))))
        }
        several => Err(Error::config(format!(
            "the dictionary source has columns {} that differ only in case; name one exactly",
            several.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// What `dict import` did.
#[derive(Debug, Clone, Serialize)]
pub struct Imported {
    /// The dictionary (`db.table/column`).
    pub dictionary: String,
    /// Values imported (ids 1..=values).
    pub values: u64,
    /// The version published (1).
    pub version: u64,
    /// The highest id the table's column held (none when it held none).
    pub table_max_id: Option<u64>,
    /// Wall seconds.
    pub seconds: f64,
}

/// Takes over an existing dictionary — a Spark Load global dictionary's
/// `(dict_key, dict_value)` pairs, as Parquet at `from` (`filter` picks its
/// column's, e.g. `dict_column = 'uid'`) — as version 1 of the dictionary of
/// `column` of the job's table, so that loads give every value the id the
/// table already holds. Refused when the store already holds a version,
/// when the pairs are not ids 1..=n each once with every value once, and
/// when the table's column holds an id above n (not this column's
/// dictionary, or not all of it).
pub async fn import(
    f: crate::config::JobFile,
    column: &str,
    from: &str,
    key_column: &str,
    id_column: &str,
    filter: Option<&str>,
) -> Result<Imported> {
    let start = Instant::now();
    let (dstore, table, _) = from_job_file(&f)?;
    let key = DictKey::new(&table, column)?;
    let q = crate::encode::quote_ident;
    // The pairs, read as a job over `from` (the job's own source plays no
    // part): every column, the pair columns picked once the source's schema
    // is known.
    let pairs_job = crate::config::JobFile {
        transform: crate::config::TransformFile {
            select: None,
            filter: filter.map(str::to_string),
            clock: f.transform.clock.clone(),
        },
        ..over_source(f, from.to_string())
    };
    let mut settings = Settings::resolve(pairs_job)?;
    let (db, tbl) = (settings.db.clone(), settings.table.clone());
    let mut meta = crate::meta::Meta::connect(&settings.mysql, &settings.user, &settings.password).await?;
    let read = async {
        // The table's column: a BITMAP, whose ids must all be the
        // dictionary's.
        let target = meta.table(&db, &tbl).await?;
        match target.column(column) {
            Some(c) if matches!(c.ty, crate::srtype::SrType::Bitmap) => {}
            Some(c) => {
                return Err(Error::config(format!(
                    "column `{column}` of {db}.{tbl} is {}, not BITMAP: a dictionary maps values to the ids of a \
                     BITMAP column",
                    c.ty
                )));
            }
            None => return Err(Error::config(format!("{db}.{tbl} has no column `{column}`"))),
        }
        let scanner = crate::job::scan_source(&mut settings).await?;
        // The pair columns as the source spells them (Hive's names are not
        // case-sensitive; `dict_key` given as `DICT_KEY`).
        let schema = scanner.output_schema();
        let (key_column, id_column) = (source_column(schema, key_column)?, source_column(schema, id_column)?);
        let key_type = schema.field_with_name(&key_column).map_err(|e| Error::internal(e.to_string()))?.data_type();
        let mut pairs = crate::dict::Pairs::new(key_type)?;
        let sql = format!("SELECT {} AS value, {} AS id FROM {{t}}", df_ident(&key_column), df_ident(&id_column));
        let mut rx = scanner.stream_all(&sql, 2);
        while let Some(b) = rx.recv().await {
            let b = b?;
            pairs.push(b.column(0).as_ref(), b.column(1).as_ref())?;
        }
        let sql = format!("SELECT max(bitmap_max({})) FROM {}.{}", q(column), q(&db), q(&tbl));
        let rows = meta.query(&sql).await.map_err(|e| e.context(format!("reading the ids of `{column}`")))?;
        let table_max_id = match rows.first().and_then(|r| r.first().cloned().flatten()) {
            None => None,
            Some(t) => Some(t.trim().parse::<u64>().map_err(|_| Error::infra(format!("`{sql}` returned `{t}`")))?),
        };
        Ok((pairs, table_max_id))
    }
    .await;
    meta.close().await;
    let (pairs, table_max_id) = read?;
    if let Some(m) = table_max_id
        && m > pairs.len()
    {
        return Err(Error::config(format!(
            "column `{column}` of {db}.{tbl} holds id {m}, but the dictionary to import has {} ids: it is not this \
             column's dictionary, or not all of it; new values would get ids the table already uses",
            pairs.len()
        )));
    }
    let r = dstore.import(&key, pairs, &BuildOptions::default()).await?;
    Ok(Imported {
        dictionary: key.to_string(),
        values: r.new_values,
        version: r.version.as_ref().map_or(0, |v| v.version),
        table_max_id,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// Loads a dictionary's `(id, value)` pairs into the StarRocks table `to`
/// through the normal load path (chunks, labels, journal, verification).
/// `f` supplies the FE, credentials, dictionary store and the dictionary's
/// table; its source, transform and `bitmap_dict` are replaced. Appending is
/// refused unless `to` is a PRIMARY KEY or UNIQUE KEY table (a later
/// version's export then upserts); `mode = "overwrite"` replaces the table.
pub async fn export(
    f: crate::config::JobFile,
    column: &str,
    to: &str,
    version: Option<u64>,
    progress: Arc<dyn Fn(crate::load::Progress) + Send + Sync>,
) -> Result<crate::job::Report> {
    let (dstore, table, _) = from_job_file(&f)?;
    let key = DictKey::new(&table, column)?;
    let state = f.state_dir.clone().unwrap_or_else(|| std::path::PathBuf::from(".starload"));
    let zone = crate::encode::Zone::parse(f.timezone.as_deref().unwrap_or("UTC"))?;
    let (dir, _) = export_files(&dstore, &key, version, &state, zone).await?;
    let job = crate::config::JobFile { table: Some(to.to_string()), ..over_source(f, dir.display().to_string()) };
    let settings = Settings::resolve(job)?;
    let p = crate::job::prepare(settings).await?;
    let keyed = matches!(p.target.keys, crate::meta::KeysType::Primary | crate::meta::KeysType::Unique);
    if p.settings.mode == crate::job::Mode::Append && !keyed {
        return Err(Error::config(format!(
            "export into a PRIMARY KEY or UNIQUE KEY table keyed by id (`{to}` is {}), so exporting a later version \
             updates it; or use mode overwrite",
            p.target.keys.name()
        )));
    }
    crate::job::run(p, progress).await
}
