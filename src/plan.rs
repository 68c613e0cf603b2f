//! The deterministic chunk plan: files → row groups → chunks → labels.
//!
//! A chunk is an ordered list of (file, row-group range) slices, cut to a
//! target size estimated from the row groups' uncompressed sizes. The job
//! fingerprint hashes everything that decides what a chunk holds, so the same
//! job always yields the same chunks and labels, and a changed input can never
//! be mistaken for a loaded one.

use std::ops::Range;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef};
use datafusion::datasource::physical_plan::parquet::metadata::DFParquetMetadata;
use futures::stream::{self, StreamExt};
use parquet::arrow::parquet_to_arrow_schema;
use parquet::file::metadata::PageIndexPolicy;

use crate::error::{Error, Result};
use crate::source::{Listing, Location, SourceFile, fingerprint_input, unescape_hive};

/// How many Parquet footers are read at once while planning.
const FOOTER_CONCURRENCY: usize = 32;

/// A row group's size, as the footer gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowGroupInfo {
    /// Rows in the row group.
    pub rows: u64,
    /// Uncompressed size in bytes (the estimate of its encoded size).
    pub bytes: u64,
    /// Every column chunk has an offset index (a page index), so part of
    /// the row group can be read without fetching the rest of its pages.
    pub paged: bool,
}

/// A row group estimated above this many chunk sizes is loaded in parts of
/// about one chunk size when it has a page index (a pandas or Hive file of
/// one multi-GB row group would otherwise be one Stream Load that large).
const SPLIT_FACTOR: u64 = 4;

/// Without a page index every part of a row group fetches all its column
/// chunks, so a row group is split only to keep each Stream Load body under
/// this, below the older default `streaming_load_max_mb` of 10 GiB.
const MAX_UNPAGED_PART_BYTES: u64 = 8 << 30;

impl RowGroupInfo {
    /// How many chunks the row group is loaded in.
    fn parts(&self, chunk_bytes: u64) -> u64 {
        let parts = if self.paged && self.bytes > SPLIT_FACTOR.saturating_mul(chunk_bytes) {
            self.bytes.div_ceil(chunk_bytes)
        } else if self.bytes > MAX_UNPAGED_PART_BYTES {
            self.bytes.div_ceil(MAX_UNPAGED_PART_BYTES)
        } else {
            1
        };
        parts.clamp(1, self.rows.max(1))
    }
}

/// A Parquet input file and its footer summary.
#[derive(Debug, Clone)]
pub struct FileInfo {
    /// The listed file.
    pub file: SourceFile,
    /// Row groups, in file order.
    pub row_groups: Vec<RowGroupInfo>,
    /// The file's own Arrow schema (columns may be in another order, or
    /// differ in nullability, from [`Plan::file_schema`]); files read with it
    /// are mapped to the common schema by name.
    pub schema: SchemaRef,
    /// Which of the file's values Spark wrote in the hybrid
    /// Julian/Gregorian calendar (see [`legacy_calendar`]).
    pub legacy_calendar: Legacy,
    /// The file has INT96 columns that may hold nanoseconds below a
    /// microsecond (any writer but Spark, whose timestamps are
    /// microseconds): the scan checks them, since it reads microseconds.
    pub int96_nanos: bool,
    /// Top-level columns holding a Parquet VARIANT (Spark 4), whose physical
    /// encoding (binary metadata and value, shredded fields) is not the
    /// document: a transform that reads one is refused.
    pub variant_columns: Vec<String>,
    /// Top-level columns of Parquet type UUID (read as 16-byte binaries).
    pub uuid_columns: Vec<String>,
    /// The file's page index (if any) can be used to skip pages: see
    /// [`pages_start_at_rows`]. When not, the scan never reads it.
    pub page_index_ok: bool,
    /// Top-level columns whose row group statistics must not prune: see
    /// [`untrusted_statistics`].
    pub untrusted_stats: Vec<String>,
    /// The zone Hive (3.1 and later) says it wrote the file's INT96
    /// timestamps from (`writer.time.zone`), if it has INT96 columns: Hive
    /// shows them as that zone's wall-clock times.
    pub int96_writer_zone: Option<String>,
    /// Top-level columns holding INT96 values.
    pub int96_columns: Vec<String>,
}

/// Top-level columns whose min/max a writer may have got wrong, which
/// Arrow C++ and StarRocks ignore (`ApplicationVersion::HasCorrectStatistics`)
/// and arrow-rs does not: parquet-mr before 1.10.0 and parquet-cpp before
/// 1.3.0 ordered byte arrays and unsigned integers as signed (PARQUET-686:
/// `a` and `é` give min `é`, max `a`), so did every writer of the deprecated
/// `min`/`max` fields, and parquet-mr before 1.8.0 could write wrong
/// byte-array statistics outright (PARQUET-251); a type without an order
/// has none. Statistics without a null count are not used either (the
/// format says the count is then unknown; arrow-rs reads it as zero). A
/// where clause on such a column prunes no row group (it still filters
/// every row).
pub fn untrusted_statistics(md: &parquet::file::metadata::ParquetMetaData) -> Vec<String> {
    use parquet::basic::{ColumnOrder, SortOrder, Type};
    let fm = md.file_metadata();
    let writer = fm.created_by().and_then(|c| {
        let (app, rest) = c.split_once(" version ")?;
        let mut v = rest.split(|ch: char| !ch.is_ascii_digit()).map(|n| n.parse::<u32>().unwrap_or(0));
        Some((app.to_string(), (v.next()?, v.next().unwrap_or(0), v.next().unwrap_or(0))))
    });
    let before = |app: &str, v: (u32, u32, u32)| writer.as_ref().is_some_and(|(a, w)| a == app && *w < v);
    let signed_writer = before("parquet-mr", (1, 10, 0)) || before("parquet-cpp", (1, 3, 0));
    let pre_251 = before("parquet-mr", (1, 8, 0));
    let mut out: Vec<String> = Vec::new();
    for (i, c) in fm.schema_descr().columns().iter().enumerate() {
        let order = ColumnOrder::sort_order_for_type(c.logical_type_ref(), c.converted_type(), c.physical_type());
        let bytes = matches!(c.physical_type(), Type::BYTE_ARRAY | Type::FIXED_LEN_BYTE_ARRAY);
        // Decimals are the byte arrays of signed order: their two's
        // complement bytes were compared as signed bytes too (min 1.28,
        // max 1.27).
        let misordered = order == SortOrder::UNSIGNED || (bytes && order == SortOrder::SIGNED);
        let wrong = md.row_groups().iter().any(|rg| {
            let Some(s) = rg.column(i).statistics() else { return false };
            let one_value = s.min_bytes_opt().is_some() && s.min_bytes_opt() == s.max_bytes_opt();
            order == SortOrder::UNDEFINED
                || (misordered && !one_value && (signed_writer || s.is_min_max_deprecated()))
                || (bytes && pre_251)
                // An unknown count would be read as none: `x IS NULL`
                // would skip the row group.
                || s.null_count_opt().is_none()
        });
        let top = &c.path().parts()[0];
        if wrong && !out.contains(top) {
            out.push(top.clone());
        }
    }
    out
}

/// Whether the file's pages start at rows, as reading part of a row group
/// through the offset index assumes (the format requires it of files with a
/// page index). arrow-rs writers before 42.0 could split a nested record
/// across two pages and still wrote an offset index (apache/arrow-rs#4327):
/// their nested files are read without it.
pub fn pages_start_at_rows(fm: &parquet::file::metadata::FileMetaData) -> bool {
    let nested = fm.schema_descr().columns().iter().any(|c| c.max_rep_level() > 0);
    let arrow_rs_major = || -> Option<u32> {
        let v = fm.created_by()?.strip_prefix("parquet-rs version ")?;
        v.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
    };
    !nested || arrow_rs_major().is_none_or(|major| major >= 42)
}

impl FileInfo {
    /// Rows in the file.
    pub fn rows(&self) -> u64 {
        self.row_groups.iter().map(|r| r.rows).sum()
    }

    /// The file's rows before row group `g`.
    pub fn group_first_row(&self, g: usize) -> u64 {
        self.row_groups[..g].iter().map(|r| r.rows).sum()
    }
}

/// A contiguous range of rows of one file: whole row groups, or a part of
/// one row group too large for one chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slice {
    /// Index into [`Plan::files`].
    pub file: usize,
    /// Row groups of that file holding the rows.
    pub row_groups: Range<usize>,
    /// Index of the slice's first row within its file.
    pub first_row: u64,
    /// Rows in the slice (before any `where`).
    pub rows: u64,
}

impl Slice {
    /// The rows of each of the slice's row groups it holds, as (row group,
    /// rows of the group before them, rows taken, the group's rows).
    pub fn group_rows<'a>(&'a self, file: &'a FileInfo) -> impl Iterator<Item = (usize, u64, u64, u64)> + 'a {
        let (lo, hi) = (self.first_row, self.first_row + self.rows);
        let mut first = if self.row_groups.is_empty() { 0 } else { file.group_first_row(self.row_groups.start) };
        self.row_groups.clone().map(move |g| {
            let n = file.row_groups[g].rows;
            let (a, b) = (lo.max(first), hi.min(first + n));
            let out = (g, a.saturating_sub(first), b.saturating_sub(a), n);
            first += n;
            out
        })
    }

    /// Whether the slice holds only part of a row group.
    pub fn is_part(&self, file: &FileInfo) -> bool {
        self.group_rows(file).any(|(_, skip, take, n)| skip > 0 || take < n)
    }
}

/// The slice holding row `row` of the rows `slices` hold back to back, and
/// that row's 1-based number in the slice's file.
pub fn slice_at(slices: &[Slice], row: u64) -> Option<(&Slice, u64)> {
    let mut left = row;
    for s in slices {
        if left < s.rows {
            return Some((s, s.first_row + left + 1));
        }
        left -= s.rows;
    }
    None
}

/// One Stream Load's worth of input.
#[derive(Debug, Clone)]
pub struct Chunk {
    /// Position in the plan.
    pub index: usize,
    /// The label this chunk is always loaded with.
    pub label: String,
    /// What it reads.
    pub slices: Vec<Slice>,
    /// Source rows (before any `where`).
    pub rows: u64,
    /// Estimated encoded size in bytes.
    pub est_bytes: u64,
}

/// Everything that decides the chunks and their content; hashed into the job
/// fingerprint.
#[derive(Debug, Clone)]
pub struct FingerprintInputs {
    /// `db.table`.
    pub target: String,
    /// The transform (select list and where clause) and any other setting
    /// that changes the rows sent.
    pub transform: String,
    /// Chunk target size.
    pub chunk_bytes: u64,
    /// Further settings that alter the bytes sent (time zone, dictionary
    /// versions, load mode…), as `key=value` strings.
    pub extra: Vec<String>,
}

/// The plan of a job.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Where the data is.
    pub location: Location,
    /// Hive partition keys.
    pub partition_keys: Vec<String>,
    /// Input files, sorted by path.
    pub files: Vec<FileInfo>,
    /// The schema of the Parquet files (partition columns not included).
    pub file_schema: SchemaRef,
    /// The chunks, in load order.
    pub chunks: Vec<Chunk>,
    /// The job fingerprint (hex).
    pub fingerprint: String,
    /// See [`partition_digest`].
    pub partition_digest: String,
    /// Partition keys the files also store (with the directories' values):
    /// file columns, not in `partition_keys`.
    pub stored_partition_keys: Vec<String>,
}

impl Plan {
    /// Total source rows.
    pub fn rows(&self) -> u64 {
        self.files.iter().map(FileInfo::rows).sum()
    }
    /// Total input bytes (file sizes).
    pub fn input_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.file.size).sum()
    }
    /// The user-facing name of a file.
    pub fn file_name(&self, idx: usize) -> String {
        self.location.display_path(&self.files[idx].file.path)
    }
}

/// Reads the footer of every file and returns the files with their row
/// groups, the common Arrow schema, and the partition keys (indices) the
/// files also store, with the directory's value in every row: those become
/// file columns (their values are dropped from the files' partition values).
/// A file that is not Parquet, is truncated, or whose schema differs from
/// the others is an error naming it.
pub async fn read_footers(
    loc: &Location,
    listing: &Listing,
    timeout: std::time::Duration,
) -> Result<(Vec<FileInfo>, SchemaRef, Vec<usize>)> {
    let keys = &listing.partition_keys;
    let results: Vec<Result<(FileInfo, SchemaRef, Vec<bool>)>> = stream::iter(listing.files.iter().cloned().map(|f| {
        let store = loc.store.clone();
        async move {
            let name = loc.display_path(&f.path);
            let meta = f.object_meta();
            let fetch =
                DFParquetMetadata::new(store.as_ref(), &meta).with_page_index_policy(Some(PageIndexPolicy::Skip));
            let md = tokio::time::timeout(timeout, fetch.fetch_metadata())
                .await
                .map_err(|_| {
                    Error::infra(format!(
                        "reading the footer of `{name}` did not answer within {} s",
                        timeout.as_secs()
                    ))
                })?
                .map_err(|e| {
                    let e = Error::from(e);
                    if e.kind() == crate::error::ErrorKind::Infra {
                        e.context(format!("reading `{name}`"))
                    } else {
                        Error::data(format!("`{name}` is not a readable Parquet file: {e}"))
                    }
                })?;
            let fm = md.file_metadata();
            let unsupported = |e| Error::data(format!("`{name}`: unsupported Parquet schema: {e}"));
            // arrow-ipc panics on some types an embedded Arrow schema may
            // declare (polars writes `Int128` as a 128-bit integer, which
            // pyarrow refuses too): a refusal naming the file, not a crash.
            let hinted = crate::error::catch_expected_panic(|| {
                parquet_to_arrow_schema(fm.schema_descr(), fm.key_value_metadata())
            })
            .map_err(|p| {
                let why = crate::error::panic_text(p.as_ref());
                Error::data(format!(
                    "`{name}`: its embedded Arrow schema (ARROW:schema) declares a type arrow-rs cannot read: {why}"
                ))
            })?
            .map_err(unsupported)?;
            if let Some((column, dt)) = hinted
                .fields()
                .iter()
                .find_map(|f| unreadable_dictionary(f.data_type()).map(|dt| (f.name().clone(), dt)))
            {
                return Err(Error::data(format!(
                    "`{name}`: column `{column}` is a dictionary of {dt} in the file's embedded Arrow schema \
                     (ARROW:schema), which the Parquet reader cannot build; write the file without dictionary-encoding \
                     that column, or without the Arrow schema (pyarrow: store_schema=False)"
                )));
            }
            let schema =
                int96_as_utc(fm.schema_descr(), zones_as_stored(fm.schema_descr(), hinted).map_err(unsupported)?)
                    .map_err(unsupported)?;
            let schema = reading_schema(&schema);
            let page_index_ok = pages_start_at_rows(fm);
            let untrusted_stats = untrusted_statistics(&md);
            let row_groups = md
                .row_groups()
                .iter()
                .map(|rg| RowGroupInfo {
                    rows: rg.num_rows().max(0) as u64,
                    bytes: rg.total_byte_size().max(0) as u64,
                    paged: page_index_ok && rg.columns().iter().all(|c| c.offset_index_offset().is_some()),
                })
                .collect();
            let has_int96 =
                fm.schema_descr().columns().iter().any(|c| c.physical_type() == parquet::basic::Type::INT96);
            // Zoned INT64 timestamps (Spark never rebases TIMESTAMP_NTZ).
            let has_zoned = fm.schema_descr().columns().iter().any(|c| match c.logical_type_ref() {
                Some(parquet::basic::LogicalType::Timestamp(t)) => t.is_adjusted_to_u_t_c,
                Some(_) => false,
                None => matches!(
                    c.converted_type(),
                    parquet::basic::ConvertedType::TIMESTAMP_MILLIS | parquet::basic::ConvertedType::TIMESTAMP_MICROS
                ),
            });
            let legacy_calendar = legacy_calendar(fm.key_value_metadata(), has_int96, has_zoned);
            let by_spark =
                fm.key_value_metadata().is_some_and(|kv| kv.iter().any(|e| e.key == "org.apache.spark.version"));
            let int96_nanos = !by_spark && has_int96;
            let mut int96_columns: Vec<String> = fm
                .schema_descr()
                .columns()
                .iter()
                .filter(|c| c.physical_type() == parquet::basic::Type::INT96)
                .map(|c| c.path().parts()[0].clone())
                .collect();
            int96_columns.dedup();
            let int96_writer_zone = has_int96
                .then(|| fm.key_value_metadata()?.iter().find(|e| e.key == "writer.time.zone")?.value.clone())
                .flatten();
            // Partition columns the writer also kept inside the file
            // (polars' `partition_by`): whether every row there holds the
            // directory's value, by the row groups' statistics.
            let agrees = keys
                .iter()
                .enumerate()
                .map(|(i, k)| {
                    schema.fields().iter().find(|fl| fl.name().eq_ignore_ascii_case(k)).is_some_and(|fl| {
                        stored_partition_agrees(&md, &schema, fl, f.partition_values.get(i).cloned().flatten())
                    })
                })
                .collect();
            let variant_columns = variant_columns(fm.schema_descr());
            let uuid_columns = fm
                .schema_descr()
                .root_schema()
                .get_fields()
                .iter()
                .filter(|f| matches!(f.get_basic_info().logical_type_ref(), Some(parquet::basic::LogicalType::Uuid)))
                .map(|f| f.name().to_string())
                .collect();
            let info = FileInfo {
                file: f,
                row_groups,
                schema: schema.clone(),
                legacy_calendar,
                int96_nanos,
                variant_columns,
                uuid_columns,
                page_index_ok,
                untrusted_stats,
                int96_writer_zone,
                int96_columns,
            };
            Ok((info, schema, agrees))
        }
    }))
    .buffered(FOOTER_CONCURRENCY)
    .collect()
    .await;

    let mut files: Vec<FileInfo> = Vec::with_capacity(results.len());
    let mut common: Option<(SchemaRef, String)> = None;
    let mut all_agree = vec![true; keys.len()];
    let mut disagrees: Vec<Option<String>> = vec![None; keys.len()];
    for r in results {
        let (mut info, schema, agrees) = r?;
        for (i, a) in agrees.into_iter().enumerate() {
            if !a && all_agree[i] {
                all_agree[i] = false;
                disagrees[i] = Some(loc.display_path(&info.file.path));
            }
        }
        let name = loc.display_path(&info.file.path);
        // A metastore's table: only its columns, each in any of the files.
        let schema = match &listing.columns {
            Some(declared) => Arc::new(declared_only(&schema, declared)),
            None => schema,
        };
        match &mut common {
            None => common = Some((schema, name)),
            Some((c, first)) if listing.columns.is_some() => *c = Arc::new(merge_declared(c, first, &schema, &name)?),
            Some((c, first)) => {
                check_same_schema(c, first, &schema, &name)?;
                // A column nullable in any file is nullable in the source.
                // (and a dictionary is kept only when every file has it).
                if let Some(w) = widen_schema(c, &schema) {
                    *c = Arc::new(w);
                }
            }
        }
        // Files with equal schemas share one.
        if let Some(same) = files.iter().rev().take(8).find(|f| f.schema == info.schema) {
            info.schema = same.schema.clone();
        }
        files.push(info);
    }
    let schema =
        common.map(|c| c.0).ok_or_else(|| Error::config(format!("source `{}` holds no data files", loc.display)))?;
    // In the metastore's order, whatever file came first.
    let schema = match &listing.columns {
        Some(declared) => {
            let at = |f: &FieldRef| declared.iter().position(|d| d.eq_ignore_ascii_case(f.name()));
            let mut fields: Vec<FieldRef> = schema.fields().iter().cloned().collect();
            fields.sort_by_key(at);
            Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
        }
        None => schema,
    };
    check_uuid_columns(&files, loc)?;
    let mut stored_keys = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        if schema.fields().iter().any(|f| f.name().eq_ignore_ascii_case(k)) {
            if !all_agree[i] {
                return Err(Error::config(format!(
                    "partition column `{k}` is also stored inside the Parquet files, and `{}` does not hold its \
                     directory's value in every row (or has no statistics that show it); rename one of them",
                    disagrees[i].as_deref().unwrap_or("a file")
                )));
            }
            tracing::info!(
                "partition column `{k}` is also stored inside the files, with the same values: loaded from there"
            );
            stored_keys.push(i);
        }
    }
    // Those keys are columns of the files now.
    if !stored_keys.is_empty() {
        for f in &mut files {
            for &i in stored_keys.iter().rev() {
                if i < f.file.partition_values.len() {
                    f.file.partition_values.remove(i);
                }
            }
        }
    }
    Ok((files, schema, stored_keys))
}

/// Whether the row groups' statistics show that column `field` holds `dir`
/// (the directory's value; `None`: NULL) in every row.
fn stored_partition_agrees(
    md: &parquet::file::metadata::ParquetMetaData,
    schema: &Schema,
    field: &Field,
    dir: Option<String>,
) -> bool {
    use arrow::array::Array;
    use datafusion::common::ScalarValue;
    use parquet::arrow::arrow_reader::statistics::StatisticsConverter;
    // Float statistics leave NaN out: min = max = 1.5 holds with a NaN row
    // (null counts still show an all-NULL column).
    if dir.is_some() && matches!(field.data_type(), DataType::Float16 | DataType::Float32 | DataType::Float64) {
        return false;
    }
    let Ok(conv) = StatisticsConverter::try_new(field.name(), schema, md.file_metadata().schema_descr()) else {
        return false;
    };
    let rgs = md.row_groups();
    let (Ok(nulls), Ok(mins), Ok(maxes)) =
        (conv.row_group_null_counts(rgs), conv.row_group_mins(rgs), conv.row_group_maxes(rgs))
    else {
        return false;
    };
    let want = match dir {
        None => None,
        Some(v) => match ScalarValue::try_from_string(v, field.data_type()) {
            Ok(w) if !w.is_null() => Some(w.to_string()),
            _ => return false,
        },
    };
    rgs.iter().enumerate().all(|(g, rg)| {
        let rows = rg.num_rows().max(0) as u64;
        if rows == 0 {
            return true;
        }
        if nulls.is_null(g) {
            return false;
        }
        let n = nulls.value(g);
        match &want {
            None => n == rows,
            Some(w) => {
                let text = |a: &arrow::array::ArrayRef| {
                    (!a.is_null(g)).then(|| ScalarValue::try_from_array(a, g).ok().map(|v| v.to_string())).flatten()
                };
                n == 0 && text(&mins).as_ref() == Some(w) && text(&maxes).as_ref() == Some(w)
            }
        }
    })
}

/// The value type of a dictionary, at any depth, that arrow-rs's Parquet
/// reader cannot produce although pyarrow writes it (booleans panic the
/// reader; decimals, float16 and fixed-size binaries fail mid-load).
fn unreadable_dictionary(dt: &DataType) -> Option<DataType> {
    match dt {
        DataType::Dictionary(_, v) => match v.as_ref() {
            DataType::Boolean
            | DataType::Float16
            | DataType::FixedSizeBinary(_)
            | DataType::Decimal32(..)
            | DataType::Decimal64(..)
            | DataType::Decimal128(..)
            | DataType::Decimal256(..) => Some(v.as_ref().clone()),
            other => unreadable_dictionary(other),
        },
        DataType::List(f)
        | DataType::LargeList(f)
        | DataType::ListView(f)
        | DataType::LargeListView(f)
        | DataType::FixedSizeList(f, _)
        | DataType::Map(f, _) => unreadable_dictionary(f.data_type()),
        DataType::Struct(fs) => fs.iter().find_map(|f| unreadable_dictionary(f.data_type())),
        _ => None,
    }
}

/// Top-level fields annotated VARIANT, or holding one.
fn variant_columns(descr: &parquet::schema::types::SchemaDescriptor) -> Vec<String> {
    fn has_variant(t: &parquet::schema::types::Type) -> bool {
        matches!(t.get_basic_info().logical_type_ref(), Some(parquet::basic::LogicalType::Variant(_)))
            || (t.is_group() && t.get_fields().iter().any(|f| has_variant(f)))
    }
    descr.root_schema().get_fields().iter().filter(|f| has_variant(f)).map(|f| f.name().to_string()).collect()
}

/// Which values of a file Spark wrote in the hybrid Julian/Gregorian
/// calendar of Java's old date classes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Legacy {
    /// Dates.
    pub dates: bool,
    /// Timestamps (INT96, or zoned INT64 ones; after the transform they
    /// cannot be told from the file's other timestamps, which are checked
    /// too).
    pub timestamps: bool,
}

impl Legacy {
    /// Whether any value may be in the old calendar.
    pub fn any(&self) -> bool {
        self.dates || self.timestamps
    }
}

/// Which values of a file Spark wrote in the hybrid Julian/Gregorian
/// calendar, as Spark itself decides when it reads one
/// (`DataSourceUtils.datetimeRebaseSpec` / `int96RebaseSpec`): dates and
/// TIMESTAMP_MICROS/MILLIS when the writer was Spark 2.x or the file is
/// marked `org.apache.spark.legacyDateTime` (`datetimeRebaseModeInWrite=
/// LEGACY`); INT96 timestamps when the writer was older than Spark 3.1 or the
/// file is marked `org.apache.spark.legacyINT96`. Their values before
/// 1582-10-15 (and, through the old calendar's time zone rules, timestamps
/// before 1900) mean other days than they say in the proleptic Gregorian
/// calendar Arrow and StarRocks use.
pub fn legacy_calendar(
    kv: Option<&Vec<parquet::file::metadata::KeyValue>>,
    has_int96: bool,
    has_zoned: bool,
) -> Legacy {
    let Some(kv) = kv else { return Legacy::default() };
    let get = |k: &str| kv.iter().find(|e| e.key == k).map(|e| e.value.as_deref().unwrap_or(""));
    // (major, minor); an unreadable version counts as a recent one.
    let version = get("org.apache.spark.version").map(|v| {
        let mut it = v.trim().split('.').map(|p| p.trim().parse::<u32>().ok());
        match (it.next().flatten(), it.next().flatten()) {
            (Some(major), Some(minor)) => (major, minor),
            (Some(major), None) => (major, 0),
            _ => (u32::MAX, 0),
        }
    });
    let dates = get("org.apache.spark.legacyDateTime").is_some() || version.is_some_and(|v| v < (3, 0));
    let int96 = has_int96 && (get("org.apache.spark.legacyINT96").is_some() || version.is_some_and(|v| v < (3, 1)));
    Legacy { dates, timestamps: (dates && has_zoned) || int96 }
}

/// A timestamp the file stores as local (`isAdjustedToUTC` false) stays
/// local, at any depth, whatever zone an Arrow type hint beside it names (a
/// hint copied from another schema): StarRocks and pyarrow read the Parquet
/// type. The hinted type is walked beside the type the Parquet schema alone
/// gives; where the hint reshapes a field (another container), the field is
/// left as hinted.
fn zones_as_stored(
    descr: &parquet::schema::types::SchemaDescriptor,
    hinted: Schema,
) -> parquet::errors::Result<Schema> {
    use parquet::basic::LogicalType;
    let local = |c: &parquet::schema::types::ColumnDescriptor| matches!(c.logical_type_ref(), Some(LogicalType::Timestamp(t)) if !t.is_adjusted_to_u_t_c);
    if !descr.columns().iter().any(|c| local(c)) {
        return Ok(hinted);
    }
    let plain = parquet_to_arrow_schema(descr, None)?;
    let fields: Vec<arrow::datatypes::FieldRef> = hinted
        .fields()
        .iter()
        .map(|f| match plain.field_with_name(f.name()) {
            Ok(p) => local_as_stored(f, p.data_type()),
            Err(_) => f.clone(),
        })
        .collect();
    Ok(Schema::new_with_metadata(fields, hinted.metadata().clone()))
}

/// `hinted` with every zone dropped where `plain` (the Parquet type) is a
/// timestamp without one.
fn local_as_stored(hinted: &arrow::datatypes::FieldRef, plain: &DataType) -> arrow::datatypes::FieldRef {
    use arrow::datatypes::Fields;
    let with = |dt: DataType| Arc::new(hinted.as_ref().clone().with_data_type(dt));
    match (hinted.data_type(), plain) {
        (DataType::Timestamp(unit, Some(_)), DataType::Timestamp(_, None)) => with(DataType::Timestamp(*unit, None)),
        (
            DataType::List(h),
            DataType::List(p) | DataType::LargeList(p) | DataType::FixedSizeList(p, _) | DataType::ListView(p),
        ) => with(DataType::List(local_as_stored(h, p.data_type()))),
        (
            DataType::LargeList(h),
            DataType::List(p) | DataType::LargeList(p) | DataType::FixedSizeList(p, _) | DataType::ListView(p),
        ) => with(DataType::LargeList(local_as_stored(h, p.data_type()))),
        (
            DataType::FixedSizeList(h, n),
            DataType::List(p) | DataType::LargeList(p) | DataType::FixedSizeList(p, _) | DataType::ListView(p),
        ) => with(DataType::FixedSizeList(local_as_stored(h, p.data_type()), *n)),
        (DataType::Map(h, sorted), DataType::Map(p, _)) => {
            with(DataType::Map(local_as_stored(h, p.data_type()), *sorted))
        }
        (DataType::Struct(hs), DataType::Struct(ps)) if hs.len() == ps.len() => with(DataType::Struct(Fields::from(
            hs.iter()
                .zip(ps.iter())
                .map(|(h, p)| if h.name() == p.name() { local_as_stored(h, p.data_type()) } else { h.clone() })
                .collect::<Vec<_>>(),
        ))),
        _ => hinted.clone(),
    }
}

/// INT96 timestamps (Hive/Spark) are instants in UTC, whatever Arrow type
/// hint a writer stored beside them (pyarrow stores the unit and zone of the
/// column it wrote): they are read as `Timestamp(µs, UTC)`, so that every
/// date from year 1 to 9999 fits (nanoseconds would wrap) and the same bytes
/// always mean the same instant.
fn int96_as_utc(descr: &parquet::schema::types::SchemaDescriptor, hinted: Schema) -> parquet::errors::Result<Schema> {
    use parquet::basic::Type as Physical;
    let int96_roots: std::collections::HashSet<String> = descr
        .columns()
        .iter()
        .filter(|c| c.physical_type() == Physical::INT96)
        .filter_map(|c| c.path().parts().first().cloned())
        .collect();
    if int96_roots.is_empty() {
        return Ok(hinted);
    }
    // Without hints INT96 reads as Timestamp(ns); every INT96 leaf of that
    // schema becomes µs, and a top-level field holding an INT96 column is
    // taken from there. (The leaves are walked in column order, not matched
    // by name: DataFusion's coercer left the elements of legacy 2-level
    // lists in ns, where 9999-12-31 wraps.)
    let plain = parquet_to_arrow_schema(descr, None)?;
    let mut int96 = descr.columns().iter().map(|c| c.physical_type() == Physical::INT96);
    let fields: Vec<arrow::datatypes::FieldRef> =
        plain.fields().iter().map(|f| int96_leaves_as_micros(f, &mut int96)).collect();
    if int96.next().is_some() {
        return Err(parquet::errors::ParquetError::General(
            "the Arrow schema has fewer leaves than the Parquet schema has columns".into(),
        ));
    }
    let plain = Schema::new(fields);
    let fields: Vec<arrow::datatypes::FieldRef> = hinted
        .fields()
        .iter()
        .map(|f| match plain.field_with_name(f.name()) {
            Ok(p) if int96_roots.contains(f.name()) => Arc::new(p.clone()),
            _ => f.clone(),
        })
        .collect();
    Ok(Schema::new_with_metadata(fields, hinted.metadata().clone()))
}

/// `f` with each leaf for which `int96` (one entry per leaf, in order) says
/// INT96 read as `Timestamp(µs, UTC)`.
fn int96_leaves_as_micros(
    f: &arrow::datatypes::FieldRef,
    int96: &mut impl Iterator<Item = bool>,
) -> arrow::datatypes::FieldRef {
    let dt = match f.data_type() {
        DataType::List(e) => DataType::List(int96_leaves_as_micros(e, int96)),
        DataType::LargeList(e) => DataType::LargeList(int96_leaves_as_micros(e, int96)),
        DataType::FixedSizeList(e, n) => DataType::FixedSizeList(int96_leaves_as_micros(e, int96), *n),
        DataType::Map(e, sorted) => DataType::Map(int96_leaves_as_micros(e, int96), *sorted),
        DataType::Struct(fs) => DataType::Struct(fs.iter().map(|c| int96_leaves_as_micros(c, int96)).collect()),
        leaf => {
            if int96.next() == Some(true) {
                DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, Some("UTC".into()))
            } else {
                leaf.clone()
            }
        }
    };
    Arc::new(f.as_ref().clone().with_data_type(dt))
}

/// `a` with every field that is nullable in `b` (at any depth) nullable, a
/// dictionary `b` does not share replaced by its values' type, and a
/// timestamp in the finer of the two units;
/// `None` when nothing changes. The two must have passed
/// [`check_same_schema`].
fn widen_schema(a: &Schema, b: &Schema) -> Option<Schema> {
    fn widen(fa: &Field, fb: &Field) -> Field {
        let dt = match (fa.data_type(), fb.data_type()) {
            (DataType::List(x), DataType::List(y)) => DataType::List(Arc::new(widen(x, y))),
            // A list in one file and a large list in another (pyarrow and
            // polars): the large list holds both, elements widened too.
            (DataType::LargeList(x), DataType::LargeList(y) | DataType::List(y))
            | (DataType::List(x), DataType::LargeList(y)) => DataType::LargeList(Arc::new(widen(x, y))),
            (DataType::Map(x, s), DataType::Map(y, _)) => DataType::Map(Arc::new(widen(x, y)), *s),
            (DataType::Struct(xs), DataType::Struct(ys)) if xs.len() == ys.len() => {
                DataType::Struct(xs.iter().zip(ys.iter()).map(|(x, y)| Arc::new(widen(x, y))).collect())
            }
            // A dictionary in one file and not (or of another key type) in
            // the other: the values' type, so that no file is cast into a
            // dictionary whose keys its values overflow (polars' Enum has
            // `UInt8` keys; a plain string file may hold 300 values).
            (DataType::Null, b) => b.clone(),
            (DataType::Dictionary(ka, va), DataType::Dictionary(kb, vb)) if ka != kb || va != vb => va.as_ref().clone(),
            (DataType::Dictionary(_, va), b) if !matches!(b, DataType::Dictionary(..)) => va.as_ref().clone(),
            // Timestamps in s, ms and µs: the finer unit holds them all.
            (DataType::Timestamp(ua, za), DataType::Timestamp(ub, _)) if ua != ub => {
                use arrow::datatypes::TimeUnit::*;
                let rank = |u: &arrow::datatypes::TimeUnit| match u {
                    Second => 0,
                    Millisecond => 1,
                    Microsecond => 2,
                    Nanosecond => 3,
                };
                DataType::Timestamp(if rank(ua) >= rank(ub) { *ua } else { *ub }, za.clone())
            }
            (other, _) => other.clone(),
        };
        Field::new(fa.name(), dt, fa.is_nullable() || fb.is_nullable()).with_metadata(fa.metadata().clone())
    }
    let fields: Vec<Field> = a
        .fields()
        .iter()
        .map(|fa| match b.field_with_name(fa.name()) {
            Ok(fb) => widen(fa, fb),
            Err(_) => fa.as_ref().clone(),
        })
        .collect();
    let w = Schema::new_with_metadata(fields, a.metadata().clone());
    (w != *a).then_some(w)
}

/// The file's Arrow schema as the scan reads it: without field metadata,
/// and list views (an Arrow hint pyarrow stores for `list_view` columns,
/// plain LISTs in Parquet) read as lists, the layout the encoder writes.
fn reading_schema(s: &Schema) -> SchemaRef {
    fn field(f: &Field) -> Field {
        let dt = match f.data_type() {
            DataType::List(c) | DataType::ListView(c) => DataType::List(Arc::new(field(c))),
            DataType::LargeList(c) | DataType::LargeListView(c) => DataType::LargeList(Arc::new(field(c))),
            DataType::FixedSizeList(c, n) => DataType::FixedSizeList(Arc::new(field(c)), *n),
            DataType::Map(c, sorted) => DataType::Map(Arc::new(field(c)), *sorted),
            DataType::Struct(fs) => DataType::Struct(fs.iter().map(|f| Arc::new(field(f))).collect()),
            other => other.clone(),
        };
        Field::new(f.name(), dt, f.is_nullable())
    }
    Arc::new(Schema::new(s.fields().iter().map(|f| field(f)).collect::<Vec<_>>()))
}

/// A column is a UUID in every file or in none: the scan reads one column
/// type for all files, and a UUID column goes into strings as its text,
/// which would turn another file's plain 16 bytes into UUID text.
fn check_uuid_columns(files: &[FileInfo], loc: &Location) -> Result<()> {
    // Per column: in how many files it is a UUID, and the first of them.
    let mut uuid: std::collections::BTreeMap<&str, (usize, &FileInfo)> = Default::default();
    for f in files {
        for c in &f.uuid_columns {
            uuid.entry(c.as_str()).or_insert((0, f)).0 += 1;
        }
    }
    for (c, (n, f)) in uuid {
        if n < files.len()
            && let Some(g) = files.iter().find(|g| !g.uuid_columns.iter().any(|u| u == c))
        {
            return Err(Error::config(format!(
                "column `{c}` is a UUID in `{}` and plain 16-byte binary in `{}`; all files of a source must share \
                 one schema (rewrite one of them)",
                loc.display_path(&f.file.path),
                loc.display_path(&g.file.path)
            )));
        }
    }
    Ok(())
}

fn check_same_schema(a: &Schema, a_name: &str, b: &Schema, b_name: &str) -> Result<()> {
    for fa in a.fields() {
        match b.field_with_name(fa.name()) {
            Err(_) => {
                return Err(Error::config(format!(
                    "`{b_name}` has no column `{}` (present in `{a_name}`); all files of a source must share one schema",
                    fa.name()
                )));
            }
            Ok(fb) if !same_type(fa.data_type(), fb.data_type()) => {
                return Err(Error::config(format!(
                    "column `{}` is {} in `{b_name}` but {} in `{a_name}`; all files of a source must share one schema",
                    fa.name(),
                    fb.data_type(),
                    fa.data_type()
                )));
            }
            Ok(_) => {}
        }
    }
    for fb in b.fields() {
        if a.field_with_name(fb.name()).is_err() {
            return Err(Error::config(format!(
                "`{b_name}` has a column `{}` that `{a_name}` lacks; all files of a source must share one schema",
                fb.name()
            )));
        }
    }
    Ok(())
}

/// The columns of `s` a metastore declares (Hive's names are not case
/// sensitive): a column dropped from the table (`REPLACE COLUMNS`) stays in
/// the files written before, and Hive no longer returns it.
fn declared_only(s: &Schema, declared: &[String]) -> Schema {
    let fields: Vec<FieldRef> =
        s.fields().iter().filter(|f| declared.iter().any(|d| d.eq_ignore_ascii_case(f.name()))).cloned().collect();
    Schema::new_with_metadata(fields, s.metadata().clone())
}

/// The columns of two files of a metastore's table (each cut to its
/// declared columns): a column both hold has one type, as
/// [`check_same_schema`] asks; a column only one holds (added to the table
/// after the other was written, `ADD COLUMNS`) is nullable, and NULL in the
/// rows of the files without it, as Hive reads them.
fn merge_declared(a: &Schema, a_name: &str, b: &Schema, b_name: &str) -> Result<Schema> {
    let shared_with = |s: &Schema, o: &Schema| -> Schema {
        Schema::new(s.fields().iter().filter(|f| o.field_with_name(f.name()).is_ok()).cloned().collect::<Vec<_>>())
    };
    // One metastore column spelled two ways would be two columns, each
    // NULL in the other's files.
    for fa in a.fields() {
        if let Some(fb) =
            b.fields().iter().find(|fb| fb.name() != fa.name() && fb.name().eq_ignore_ascii_case(fa.name()))
        {
            return Err(Error::config(format!(
                "column `{}` of `{a_name}` is `{}` in `{b_name}`; Hive matches them, starload does not: rewrite one \
                 file with the other's name",
                fa.name(),
                fb.name()
            )));
        }
    }
    let (sa, sb) = (shared_with(a, b), shared_with(b, a));
    check_same_schema(&sa, a_name, &sb, b_name)?;
    let shared = widen_schema(&sa, &sb).unwrap_or(sa);
    let only = |s: &Schema, o: &Schema| -> Vec<FieldRef> {
        s.fields()
            .iter()
            .filter(|f| o.field_with_name(f.name()).is_err())
            .map(|f| Arc::new(f.as_ref().clone().with_nullable(true)))
            .collect()
    };
    let mut fields: Vec<FieldRef> = shared.fields().iter().cloned().collect();
    fields.extend(only(a, b));
    fields.extend(only(b, a));
    Ok(Schema::new_with_metadata(fields, a.metadata().clone()))
}

/// Types equal up to field names of nested containers, nullability, and
/// the Arrow layout writers pick for one Parquet type (a string is Utf8 from
/// pyarrow, LargeUtf8 or Utf8View from polars, a dictionary from a
/// categorical): each file is read with its own schema and cast to the
/// first file's, which loses nothing.
fn same_type(a: &DataType, b: &DataType) -> bool {
    use DataType::*;
    let layout = |t: &DataType| -> Option<u8> {
        match t {
            Utf8 | LargeUtf8 | Utf8View => Some(0),
            Binary | LargeBinary | BinaryView => Some(1),
            _ => None,
        }
    };
    match (a, b) {
        // A column of nothing but NULLs (pandas types an all-None column
        // `null` in the file that has no value) goes with any type.
        (Null, _) | (_, Null) => true,
        (Dictionary(_, x), y) | (y, Dictionary(_, x)) => same_type(x, y),
        // Instants in any zone are instants (the scan converts them all to
        // the job's zone); s, ms and µs all read exactly as µs. Nanoseconds
        // would be truncated into µs, or overflow the other way: refused.
        (Timestamp(ua, za), Timestamp(ub, zb)) => {
            za.is_some() == zb.is_some()
                && (ua == ub
                    || (*ua != arrow::datatypes::TimeUnit::Nanosecond && *ub != arrow::datatypes::TimeUnit::Nanosecond))
        }
        _ if layout(a).is_some() && layout(a) == layout(b) => true,
        (List(x) | LargeList(x), List(y) | LargeList(y)) => same_type(x.data_type(), y.data_type()),
        (Map(x, _), Map(y, _)) => same_type(x.data_type(), y.data_type()),
        (Struct(x), Struct(y)) => {
            x.len() == y.len()
                && x.iter().zip(y.iter()).all(|(f, g)| f.name() == g.name() && same_type(f.data_type(), g.data_type()))
        }
        _ => a == b,
    }
}

/// Cuts files into chunks of about `chunk_bytes` (estimated encoded size).
/// Deterministic: depends only on the files' order and row groups.
pub fn cut_chunks(files: &[FileInfo], chunk_bytes: u64) -> Vec<(Vec<Slice>, u64, u64)> {
    let mut chunks = Vec::new();
    let mut cur: Vec<Slice> = Vec::new();
    let (mut cur_bytes, mut cur_rows) = (0u64, 0u64);
    for (fi, f) in files.iter().enumerate() {
        let mut first_row = 0u64;
        for (gi, rg) in f.row_groups.iter().enumerate() {
            if rg.rows == 0 {
                continue;
            }
            let parts = rg.parts(chunk_bytes);
            if parts > 1 {
                // Each part is a chunk of its own.
                if !cur.is_empty() {
                    chunks.push((std::mem::take(&mut cur), cur_rows, cur_bytes));
                    cur_bytes = 0;
                    cur_rows = 0;
                }
                let per = rg.rows.div_ceil(parts);
                let mut off = 0;
                while off < rg.rows {
                    let n = per.min(rg.rows - off);
                    let slice = Slice { file: fi, row_groups: gi..gi + 1, first_row: first_row + off, rows: n };
                    let bytes = (rg.bytes as u128 * n as u128 / rg.rows as u128) as u64;
                    chunks.push((vec![slice], n, bytes));
                    off += n;
                }
                first_row += rg.rows;
                continue;
            }
            if !cur.is_empty() && cur_bytes + rg.bytes > chunk_bytes {
                chunks.push((std::mem::take(&mut cur), cur_rows, cur_bytes));
                cur_bytes = 0;
                cur_rows = 0;
            }
            match cur.last_mut() {
                Some(s) if s.file == fi && s.row_groups.end == gi => {
                    s.row_groups.end = gi + 1;
                    s.rows += rg.rows;
                }
                _ => cur.push(Slice { file: fi, row_groups: gi..gi + 1, first_row, rows: rg.rows }),
            }
            cur_bytes += rg.bytes;
            cur_rows += rg.rows;
            first_row += rg.rows;
        }
    }
    if !cur.is_empty() {
        chunks.push((cur, cur_rows, cur_bytes));
    }
    chunks
}

/// Hashes the job's inputs into its fingerprint (32 hex digits).
pub fn fingerprint(inputs: &FingerprintInputs, files: &[FileInfo], partition_keys: &[String]) -> String {
    let mut h = blake3::Hasher::new();
    let mut put = |s: &str| put_field(&mut h, s);
    put("starload-job-v1");
    put(&inputs.target);
    put(&inputs.transform);
    put(&inputs.chunk_bytes.to_string());
    for e in &inputs.extra {
        put(e);
    }
    put(&partition_keys.join("/"));
    // A plan that loads a row group in parts gets a fingerprint of its own:
    // the same job planned by an earlier build (one chunk per row group)
    // must not resume from that build's journal with other chunk bounds.
    if files.iter().flat_map(|f| &f.row_groups).any(|rg| rg.parts(inputs.chunk_bytes) > 1) {
        put("row-group-parts-v1");
    }
    for f in files {
        put(&fingerprint_input(&f.file));
    }
    h.finalize().to_hex()[..32].to_string()
}

/// A digest of the partition values a metastore gave files whose paths do
/// not spell them (a partition renamed in the metastore keeps its
/// directory, so the fingerprint does not change); empty when every value
/// is in its path. The journal keeps it: a re-run whose values differ is
/// refused rather than taken for the job already loaded. Not part of the
/// fingerprint, so that jobs planned by earlier versions keep their ids
/// (and their labels: a re-run after an upgrade loads nothing twice).
pub fn partition_digest(files: &[FileInfo], partition_keys: &[String]) -> String {
    let mut h = blake3::Hasher::new();
    let mut any = false;
    for f in files.iter().filter(|f| !values_in_path(&f.file, partition_keys)) {
        any = true;
        put_field(&mut h, f.file.path.as_ref());
        for v in &f.file.partition_values {
            put_field(&mut h, &v.as_ref().map_or_else(|| "NULL".to_string(), |v| format!("={v}")));
        }
    }
    if any { h.finalize().to_hex()[..32].to_string() } else { String::new() }
}

/// Hashes one field, length first (so fields cannot run into each other).
fn put_field(h: &mut blake3::Hasher, s: &str) {
    h.update(&(s.len() as u64).to_le_bytes());
    h.update(s.as_bytes());
}

/// Whether every partition value of `f` is spelled by a `key=value`
/// directory of its path (as a directory listing derives it).
fn values_in_path(f: &crate::source::SourceFile, keys: &[String]) -> bool {
    let dirs: Vec<(String, String)> = f
        .path
        .parts()
        .filter_map(|p| p.as_ref().split_once('=').map(|(k, v)| (unescape_hive(k), unescape_hive(v))))
        .collect();
    keys.len() == f.partition_values.len()
        && keys.iter().zip(&f.partition_values).all(|(k, v)| {
            let v = v.as_deref().unwrap_or("__HIVE_DEFAULT_PARTITION__");
            dirs.iter().any(|(dk, dv)| dk == k && dv == v)
        })
}

/// The label of chunk `index`: `<prefix>_<fingerprint>_<index>`.
pub fn label(prefix: &str, fingerprint: &str, index: usize) -> String {
    format!("{prefix}_{fingerprint}_{index}")
}

/// Checks a label prefix: `[A-Za-z0-9_-]`, short enough that labels stay
/// within StarRocks' 128 characters.
pub fn check_label_prefix(prefix: &str) -> Result<()> {
    if prefix.is_empty()
        || prefix.len() > 64
        || !prefix.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(Error::config(format!("label prefix `{prefix}` must be 1 to 64 characters of [A-Za-z0-9_-]")));
    }
    Ok(())
}

/// Builds the plan from listed files.
pub async fn build(
    location: Location,
    listing: Listing,
    inputs: &FingerprintInputs,
    label_prefix: &str,
    timeout: std::time::Duration,
) -> Result<Plan> {
    check_label_prefix(label_prefix)?;
    if inputs.chunk_bytes == 0 {
        return Err(Error::config("chunk size must be positive"));
    }
    let (files, file_schema, stored_keys) = read_footers(&location, &listing, timeout).await?;
    let mut listing = listing;
    let mut stored_partition_keys = Vec::new();
    for &i in stored_keys.iter().rev() {
        stored_partition_keys.insert(0, listing.partition_keys.remove(i));
    }
    let fingerprint = fingerprint(inputs, &files, &listing.partition_keys);
    let partition_digest = partition_digest(&files, &listing.partition_keys);
    let chunks = cut_chunks(&files, inputs.chunk_bytes)
        .into_iter()
        .enumerate()
        .map(|(index, (slices, rows, est_bytes))| Chunk {
            index,
            label: label(label_prefix, &fingerprint, index),
            slices,
            rows,
            est_bytes,
        })
        .collect();
    Ok(Plan {
        location,
        partition_keys: listing.partition_keys,
        files,
        file_schema,
        chunks,
        fingerprint,
        partition_digest,
        stored_partition_keys,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::path::Path;

    fn file(name: &str, groups: &[(u64, u64)]) -> FileInfo {
        FileInfo {
            file: SourceFile {
                path: Path::from(name),
                size: 1,
                etag: None,
                last_modified: chrono::DateTime::from_timestamp(0, 0).unwrap(),
                partition_values: vec![],
            },
            row_groups: groups.iter().map(|&(rows, bytes)| RowGroupInfo { rows, bytes, paged: true }).collect(),
            schema: Arc::new(Schema::empty()),
            legacy_calendar: Legacy::default(),
            int96_nanos: false,
            variant_columns: vec![],
            uuid_columns: vec![],
            page_index_ok: true,
            untrusted_stats: Vec::new(),
            int96_writer_zone: None,
            int96_columns: vec![],
        }
    }

    #[test]
    fn legacy_calendar_follows_sparks_own_rules() {
        let kv = |pairs: &[(&str, &str)]| -> Vec<parquet::file::metadata::KeyValue> {
            pairs.iter().map(|(k, v)| parquet::file::metadata::KeyValue::new(k.to_string(), v.to_string())).collect()
        };
        let v = |s: &str| ("org.apache.spark.version", s.to_string());
        let l = |pairs: &[(&str, String)], int96: bool, zoned: bool| {
            let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let kv = kv(&pairs);
            let got = legacy_calendar(Some(&kv), int96, zoned);
            (got.dates, got.timestamps)
        };
        // Spark 3.0.x: dates corrected, INT96 still in the old calendar.
        assert_eq!(l(&[v("3.0.3")], true, false), (false, true));
        assert_eq!(l(&[v("3.0.3")], false, true), (false, false));
        assert_eq!(l(&[v("3.1.0")], true, true), (false, false));
        assert_eq!(l(&[v("3.10.1")], true, true), (false, false));
        assert_eq!(l(&[v("2.4.8")], true, false), (true, true));
        assert_eq!(l(&[v("2.4.8")], false, true), (true, true));
        assert_eq!(l(&[v("2.4.8")], false, false), (true, false));
        let dt = ("org.apache.spark.legacyDateTime", String::new());
        let i96 = ("org.apache.spark.legacyINT96", String::new());
        assert_eq!(l(&[v("3.5.1"), dt.clone()], true, false), (true, false));
        assert_eq!(l(&[v("3.5.1"), dt], false, true), (true, true));
        assert_eq!(l(&[v("3.5.1"), i96.clone()], true, false), (false, true));
        assert_eq!(l(&[v("3.5.1"), i96], false, true), (false, false));
        assert_eq!(l(&[], true, true), (false, false));
        assert_eq!(legacy_calendar(None, true, true), Legacy::default());
    }

    #[test]
    fn chunks_pack_small_files_and_split_large_ones() {
        let files = vec![
            file("a", &[(10, 30)]),
            file("b", &[(10, 30)]),
            file("c", &[(100, 80), (100, 80), (5, 10)]),
            file("d", &[(0, 0)]),
        ];
        let chunks = cut_chunks(&files, 100);
        let shape: Vec<Vec<(usize, Range<usize>, u64)>> = chunks
            .iter()
            .map(|(s, _, _)| s.iter().map(|s| (s.file, s.row_groups.clone(), s.first_row)).collect())
            .collect();
        assert_eq!(shape, vec![vec![(0, 0..1, 0), (1, 0..1, 0)], vec![(2, 0..1, 0)], vec![(2, 1..3, 100)]]);
        let rows: Vec<u64> = chunks.iter().map(|c| c.1).collect();
        assert_eq!(rows, vec![20, 100, 105]);
        // Same input, same plan.
        let again = cut_chunks(&files, 100);
        assert_eq!(format!("{chunks:?}"), format!("{again:?}"));
    }

    /// The metadata of `batch` written by arrow-rs as if by `created_by`.
    fn written_by(
        created_by: &str,
        batch: &arrow::record_batch::RecordBatch,
    ) -> parquet::file::metadata::ParquetMetaData {
        let props = parquet::file::properties::WriterProperties::builder().set_created_by(created_by.into()).build();
        let mut buf = Vec::new();
        let mut w = parquet::arrow::ArrowWriter::try_new(&mut buf, batch.schema(), Some(props)).unwrap();
        w.write(batch).unwrap();
        w.close().unwrap();
        parquet::file::metadata::ParquetMetaDataReader::new().parse_and_finish(&bytes::Bytes::from(buf)).unwrap()
    }

    #[test]
    fn old_arrow_rs_nested_files_are_read_without_their_page_index() {
        use arrow::array::{ArrayRef, Int32Array, ListArray};
        use arrow::datatypes::Int32Type;
        let pages_ok = |created_by: &str, nested: bool| -> bool {
            let col: ArrayRef = if nested {
                Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(vec![Some(vec![Some(1), None]), None]))
            } else {
                Arc::new(Int32Array::from(vec![1, 2]))
            };
            let batch = arrow::record_batch::RecordBatch::try_from_iter([("c", col)]).unwrap();
            pages_start_at_rows(written_by(created_by, &batch).file_metadata())
        };
        assert!(!pages_ok("parquet-rs version 41.0.0", true));
        assert!(!pages_ok("parquet-rs version 9.0.2", true));
        assert!(pages_ok("parquet-rs version 41.0.0", false));
        assert!(pages_ok("parquet-rs version 42.0.0", true));
        assert!(pages_ok("parquet-mr version 1.13.1 (build db4183109d5b734ec5930d870cdae161e408ddba)", true));
        assert!(pages_ok("parquet-cpp-arrow version 21.0.0", true));
    }

    #[test]
    fn a_metastores_columns_may_be_missing_from_a_file_but_not_spelled_two_ways() {
        use DataType::{Int64, Utf8};
        let s = |cols: &[(&str, DataType, bool)]| {
            Schema::new(cols.iter().map(|(n, t, null)| Field::new(*n, t.clone(), *null)).collect::<Vec<_>>())
        };
        let declared = vec!["id".to_string(), "B".to_string()];
        let old = declared_only(&s(&[("id", Int64, false), ("secret", Utf8, true)]), &declared);
        let new = declared_only(&s(&[("id", Int64, false), ("b", Utf8, false)]), &declared);
        assert_eq!(old, s(&[("id", Int64, false)]), "a dropped column is not read");
        let merged = merge_declared(&old, "old", &new, "new").unwrap();
        assert_eq!(merged, s(&[("id", Int64, false), ("b", Utf8, true)]), "an added column is NULL in older files");
        let e = merge_declared(&old, "old", &s(&[("ID", Int64, false)]), "upper").unwrap_err().to_string();
        assert!(e.contains("`id`") && e.contains("`ID`"), "{e}");
        assert!(merge_declared(&old, "old", &s(&[("id", Utf8, false)]), "text").is_err());
    }

    #[test]
    fn statistics_of_writers_that_ordered_them_as_signed_do_not_prune() {
        use arrow::array::{ArrayRef, Decimal128Array, Float64Array, Int64Array, StringArray, UInt32Array};
        let untrusted = |created_by: &str| -> Vec<String> {
            let batch = arrow::record_batch::RecordBatch::try_from_iter([
                ("i", Arc::new(Int64Array::from(vec![-1, 5])) as ArrayRef),
                ("s", Arc::new(StringArray::from(vec!["a", "é"])) as ArrayRef),
                ("one", Arc::new(StringArray::from(vec!["é", "é"])) as ArrayRef),
                ("u", Arc::new(UInt32Array::from(vec![1, u32::MAX])) as ArrayRef),
                ("f", Arc::new(Float64Array::from(vec![1.0, 2.0])) as ArrayRef),
                // FIXED_LEN_BYTE_ARRAY: 1.27 is 0x..7F, 1.28 is 0x..80.
                (
                    "d",
                    Arc::new(Decimal128Array::from(vec![127, 128]).with_precision_and_scale(20, 2).unwrap())
                        as ArrayRef,
                ),
            ])
            .unwrap();
            untrusted_statistics(&written_by(created_by, &batch))
        };
        // Signed byte order for byte arrays (decimals too) and unsigned
        // integers; one value per row group has no order to get wrong.
        assert_eq!(untrusted("parquet-mr version 1.9.0 (build 1234)"), ["s", "u", "d"]);
        assert_eq!(untrusted("parquet-cpp version 1.2.0"), ["s", "u", "d"]);
        // Before 1.8.0 byte-array statistics could be wrong whatever they hold.
        assert_eq!(untrusted("parquet-mr version 1.6.0"), ["s", "one", "u", "d"]);
        for fixed in [
            "parquet-mr version 1.10.0 (build 1234)",
            "parquet-mr version 1.13.1 (build db4183109d5b734ec5930d870cdae161e408ddba)",
            "parquet-cpp version 1.3.0",
            "parquet-cpp-arrow version 21.0.0",
            "parquet-rs version 59.3.2",
            "impala version 4.0.0",
        ] {
            assert!(untrusted(fixed).is_empty(), "{fixed}");
        }
    }

    #[test]
    fn a_row_group_far_above_the_chunk_size_loads_in_parts() {
        let mut files = vec![file("a", &[(10, 30)]), file("b", &[(1000, 1000), (5, 10)]), file("c", &[(10, 30)])];
        type Shape = Vec<Vec<(usize, Range<usize>, u64, u64)>>;
        let shape = |files: &[FileInfo]| -> Shape {
            cut_chunks(files, 100)
                .iter()
                .map(|(s, _, _)| s.iter().map(|s| (s.file, s.row_groups.clone(), s.first_row, s.rows)).collect())
                .collect()
        };
        // 1000 bytes is more than 4 chunks of 100: ten parts of 100 rows,
        // each a chunk of its own; the next row group packs with file c.
        let got = shape(&files);
        assert_eq!(got.len(), 12);
        assert_eq!(got[0], vec![(0, 0..1, 0, 10)]);
        for k in 0..10u64 {
            assert_eq!(got[1 + k as usize], vec![(1, 0..1, 100 * k, 100)]);
        }
        assert_eq!(got[11], vec![(1, 1..2, 1000, 5), (2, 0..1, 0, 10)]);
        let chunks = cut_chunks(&files, 100);
        assert_eq!(chunks[3].2, 100);
        let part = &chunks[3].0[0];
        assert!(part.is_part(&files[1]));
        assert_eq!(part.group_rows(&files[1]).collect::<Vec<_>>(), vec![(0, 200, 100, 1000)]);
        assert!(!chunks[11].0[0].is_part(&files[1]));
        assert_eq!(slice_at(&chunks[3].0, 7).map(|(_, r)| r), Some(208));
        // Three chunk sizes: one chunk, as before.
        assert_eq!(shape(&[file("d", &[(1000, 300)])]).len(), 1);
        // Without a page index, only past MAX_UNPAGED_PART_BYTES.
        let inputs =
            FingerprintInputs { target: "db.t".into(), transform: String::new(), chunk_bytes: 100, extra: vec![] };
        let split = fingerprint(&inputs, &files, &[]);
        files[1].row_groups[0].paged = false;
        assert_eq!(shape(&files).len(), 3);
        assert_ne!(fingerprint(&inputs, &files, &[]), split, "a plan with parts has its own fingerprint");
        let huge = RowGroupInfo { rows: 10, bytes: 20 << 30, paged: false };
        assert_eq!(huge.parts(100), 3);
        // Never more parts than rows.
        assert_eq!(RowGroupInfo { rows: 2, bytes: 10_000, paged: true }.parts(1), 2);
    }

    #[test]
    fn fingerprint_changes_with_inputs() {
        let inputs =
            FingerprintInputs { target: "db.t".into(), transform: String::new(), chunk_bytes: 100, extra: vec![] };
        let files = vec![file("a", &[(1, 1)])];
        let a = fingerprint(&inputs, &files, &[]);
        assert_eq!(a, fingerprint(&inputs, &files, &[]));
        let mut changed = files.clone();
        changed[0].file.size = 2;
        assert_ne!(a, fingerprint(&inputs, &changed, &[]));
        let other = FingerprintInputs { target: "db.u".into(), ..inputs.clone() };
        assert_ne!(a, fingerprint(&other, &files, &[]));
        // Partition values are not in the fingerprint (ids of jobs planned
        // before stay); values a path does not spell are in the digest.
        let keys = ["dt".to_string()];
        let with = |path: &str, v: Option<&str>| {
            let mut f = file(path, &[(1, 1)]);
            f.file.partition_values = vec![v.map(String::from)];
            f
        };
        let fp = |f: FileInfo| fingerprint(&inputs, &[f], &keys);
        let digest = |f: FileInfo| partition_digest(&[f], &keys);
        assert_eq!(fp(with("t/dt=x/f.parquet", Some("y"))), fp(with("t/dt=x/f.parquet", Some("x"))));
        assert_eq!(digest(with("t/dt=x/f.parquet", Some("x"))), "");
        assert_eq!(digest(with("t/dt=__HIVE_DEFAULT_PARTITION__/f", None)), "");
        // As a listing names it (Path::from would encode the `%` again).
        let mut escaped = with("x", Some("a:b"));
        escaped.file.path = Path::parse("t/dt=a%3Ab/f.parquet").unwrap();
        assert_eq!(digest(escaped), "");
        let renamed = digest(with("t/dt=x/f.parquet", Some("y")));
        assert_eq!(renamed.len(), 32);
        assert_ne!(renamed, digest(with("t/dt=x/f.parquet", Some("z"))));
        assert_ne!(digest(with("t/p1/f.parquet", None)), digest(with("t/p1/f.parquet", Some("NULL"))));
        let l = label("starload", &a, 7);
        assert!(l.len() <= 128 && l.ends_with("_7"));
        assert!(check_label_prefix("bad prefix").is_err());
        assert!(check_label_prefix("nightly-2024_01").is_ok());
    }
}
