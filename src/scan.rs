//! Scanning: DataFusion reads a chunk's row groups (with projection and
//! predicate pushdown), adds the Hive partition columns and applies the
//! user's SQL transform.
//!
//! Each chunk is read by one single-partition DataFusion plan, so its rows
//! always come out in the same order and a retry produces the same bytes.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::common::config::TableParquetOptions;
use datafusion::datasource::TableType;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::parquet::{
    DefaultParquetFileReaderFactory, ParquetAccessPlan, ParquetFileReaderFactory, RowGroupAccess,
};
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::table_schema::TableSchema;
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::future::BoxFuture;
use parquet::arrow::arrow_reader::ArrowReaderOptions;
use parquet::arrow::async_reader::AsyncFileReader;
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData};

use crate::error::{Error, Result};
use crate::plan::{Plan, Slice};

pub(crate) mod checked;

/// The user's SQL transform over the source (`source` in SQL).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transform {
    /// A select list (`id, upper(name) AS name, *`); all columns if empty.
    pub select: Option<String>,
    /// A predicate over source and partition columns.
    pub filter: Option<String>,
    /// Primary Key tables: rows matching this predicate are deletes (`__op`).
    pub delete_when: Option<String>,
    /// Dictionary-encoded BITMAP columns: `(target column, source
    /// expression)`; each adds the column
    /// [`dict_source_column`](crate::encode::dict_source_column)`(target)`.
    pub dicts: Vec<(String, String)>,
    /// The instant `now()` and `current_date()` read, in microseconds since
    /// 1970 UTC, when the user pins it (`--clock`); else the job's start,
    /// which its journal keeps (see [`Scanner::pin_clock`]).
    pub clock: Option<i64>,
}

/// The name of the computed delete flag.
pub const OP_COLUMN: &str = "__op";

impl Transform {
    /// The SQL query this transform runs over the table `source`.
    pub fn sql(&self) -> String {
        let select = self.select.as_deref().map(str::trim).filter(|s| !s.is_empty()).unwrap_or("*");
        let op = match self.delete_when.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            Some(p) => format!(", CAST(CASE WHEN ({p}) THEN 1 ELSE 0 END AS TINYINT) AS {OP_COLUMN}"),
            None => String::new(),
        };
        let dicts: String = self
            .dicts
            .iter()
            .map(|(target, expr)| {
                format!(", ({expr}) AS \"{}\"", crate::encode::dict_source_column(target).replace('"', "\"\""))
            })
            .collect();
        match self.filter.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            Some(w) => format!("SELECT {select}{op}{dicts} FROM source WHERE {w}"),
            None => format!("SELECT {select}{op}{dicts} FROM source"),
        }
    }
    /// A stable text form for the job fingerprint.
    pub fn fingerprint_text(&self) -> String {
        let mut t = format!("select={:?};where={:?};delete_when={:?}", self.select, self.filter, self.delete_when);
        // Only jobs with dictionaries change their text (and so their
        // labels) by this.
        if !self.dicts.is_empty() {
            t.push_str(&format!(";bitmap_dict={:?}", self.dicts));
        }
        // Another clock is another job when the transform reads it (a
        // clock templated onto every task of a scheduler changes nothing
        // else).
        if let Some(c) = self.clock.filter(|_| self.names_clock()) {
            t.push_str(&format!(";clock={c}"));
        }
        t
    }

    /// Whether the transform's text names a function that reads the clock
    /// (`now()`, `current_timestamp`, `current_date()`, `today()`,
    /// `current_time()`): by words, so a column of such a name counts too.
    pub fn names_clock(&self) -> bool {
        const CLOCK: [&str; 5] = ["now", "current_timestamp", "current_date", "today", "current_time"];
        let texts = [&self.select, &self.filter, &self.delete_when].into_iter().flatten().map(String::as_str);
        texts
            .chain(self.dicts.iter().map(|(_, e)| e.as_str()))
            .any(|t| identifiers(t).iter().any(|w| CLOCK.contains(&w.as_str())))
    }
    /// Whether the job may read source column `column`: every column
    /// without a select (or with `*` in it), else a column its texts name.
    /// (By text: a text that holds the name anywhere counts.)
    pub fn may_read(&self, column: &str) -> bool {
        let Some(select) = self.select.as_deref().filter(|s| !s.trim().is_empty()) else { return true };
        if select.contains('*') {
            return true;
        }
        let texts = [Some(select), self.filter.as_deref(), self.delete_when.as_deref()].into_iter().flatten();
        let column = column.to_lowercase();
        texts.chain(self.dicts.iter().map(|(_, e)| e.as_str())).any(|t| t.to_lowercase().contains(&column))
    }

    /// Identifiers the delete predicate mentions (lower-cased).
    pub fn delete_columns(&self) -> Vec<String> {
        self.delete_when.as_deref().map(identifiers).unwrap_or_default()
    }

    /// Identifiers the dictionary expressions mention (lower-cased): source
    /// columns that are inputs of BITMAP columns, not values to load.
    pub fn dict_input_columns(&self) -> Vec<String> {
        self.dicts.iter().flat_map(|(_, e)| identifiers(e)).collect()
    }
}

/// Identifiers of an SQL expression (lower-cased; quoted strings skipped).
fn identifiers(p: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in p.chars() {
        if c == '\'' {
            quoted = !quoted;
            cur.clear();
            continue;
        }
        if !quoted && (c.is_alphanumeric() || c == '_') {
            cur.push(c);
        } else {
            if !cur.is_empty() && !cur.chars().next().is_some_and(|c| c.is_ascii_digit()) {
                out.push(cur.to_ascii_lowercase());
            }
            cur.clear();
        }
    }
    if !cur.is_empty() && !quoted {
        out.push(cur.to_ascii_lowercase());
    }
    out
}

/// Scans a plan's chunks.
#[derive(Debug, Clone)]
pub struct Scanner {
    plan: Arc<Plan>,
    partition_fields: Vec<FieldRef>,
    transform: Transform,
    batch_size: usize,
    output_schema: SchemaRef,
    /// The file schema DataFusion reads: timestamps with a zone are in the
    /// job's zone (the same instants); the `source` table then shows the
    /// top-level ones as that zone's wall-clock time (see `context`), so the
    /// transform's dates, `date_trunc` and literals agree with the DATETIME
    /// values loaded.
    file_schema: SchemaRef,
    /// The job's zone: the session zone (`current_date()`), and `now()` is
    /// its wall-clock time.
    zone: crate::encode::Zone,
    /// The instant every statement of the job reads as `now()` (µs since
    /// 1970 UTC): one for all its chunks, its checks and a resumed run, so
    /// that a where clause on `current_date()` keeps the same rows in a
    /// chunk loaded after midnight as in one loaded before. Shared by
    /// clones.
    clock: Arc<std::sync::atomic::AtomicI64>,
    /// The first function of the transform that reads the clock.
    clock_function: Option<String>,
}

/// `dt` with every timestamp that has a zone in zone `tz` (the same
/// instants).
fn in_zone(dt: &DataType, tz: &Arc<str>) -> DataType {
    let field = |f: &FieldRef| Arc::new(f.as_ref().clone().with_data_type(in_zone(f.data_type(), tz)));
    match dt {
        DataType::Timestamp(u, Some(_)) => DataType::Timestamp(*u, Some(tz.clone())),
        DataType::List(f) => DataType::List(field(f)),
        DataType::LargeList(f) => DataType::LargeList(field(f)),
        DataType::ListView(f) => DataType::ListView(field(f)),
        DataType::LargeListView(f) => DataType::LargeListView(field(f)),
        DataType::FixedSizeList(f, n) => DataType::FixedSizeList(field(f), *n),
        DataType::Struct(fs) => DataType::Struct(fs.iter().map(field).collect()),
        DataType::Map(f, sorted) => DataType::Map(field(f), *sorted),
        DataType::Dictionary(k, v) => DataType::Dictionary(k.clone(), Box::new(in_zone(v, tz))),
        other => other.clone(),
    }
}

impl Scanner {
    /// Prepares scans of `plan`; partition columns get the types in
    /// `partition_types` (default: strings). Plans the transform once to learn
    /// the output schema; a transform that does not plan is an error.
    pub async fn new(
        plan: Arc<Plan>,
        partition_types: &[(String, DataType)],
        transform: Transform,
        batch_size: usize,
        zone: &crate::encode::Zone,
    ) -> Result<Scanner> {
        let partition_fields = plan
            .partition_keys
            .iter()
            .map(|k| {
                let dt = partition_types
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(k))
                    .map(|(_, t)| t.clone())
                    .unwrap_or(DataType::Utf8);
                Arc::new(Field::new(k, dt, true))
            })
            .collect();
        let tz: Arc<str> = zone.name().into();
        // UUID columns are marked for the encoder, which sends them as text
        // into string columns.
        let uuids: std::collections::HashSet<&str> =
            plan.files.iter().flat_map(|f| f.uuid_columns.iter().map(String::as_str)).collect();
        let file_schema = Arc::new(Schema::new_with_metadata(
            plan.file_schema
                .fields()
                .iter()
                .map(|f| {
                    let g = f.as_ref().clone().with_data_type(in_zone(f.data_type(), &tz));
                    let g = if uuids.contains(f.name().as_str()) {
                        g.with_metadata([(crate::encode::UUID_FIELD.to_string(), "1".to_string())].into())
                    } else {
                        g
                    };
                    Arc::new(g)
                })
                .collect::<Vec<_>>(),
            plan.file_schema.metadata().clone(),
        ));
        let clock = transform.clock.unwrap_or_else(|| chrono::Utc::now().timestamp_micros());
        let mut s = Scanner {
            plan,
            partition_fields,
            transform,
            batch_size,
            output_schema: Arc::new(Schema::empty()),
            file_schema,
            zone: *zone,
            clock: Arc::new(std::sync::atomic::AtomicI64::new(clock)),
            clock_function: None,
        };
        // Every partition value must parse as its column's type: found here,
        // before anything is sent, naming the file.
        for (i, f) in s.plan.files.iter().enumerate() {
            if !f.row_groups.is_empty() {
                s.partitioned_file(&Slice { file: i, row_groups: 0..0, first_row: 0, rows: 0 })?;
            }
        }
        let ctx = s.context(Vec::new())?;
        let df = s
            .statement(&ctx, &s.transform.sql())
            .await
            .map_err(|e| Error::config(format!("the transform `{}` does not plan: {}", s.transform.sql(), e)))?;
        checked::check_row_wise(df.logical_plan(), &s.transform.sql())?;
        checked::check_zone_conversions(df.logical_plan(), s.zone, &s.transform.sql())?;
        let dict_columns: Vec<String> =
            s.transform.dicts.iter().map(|(t, _)| crate::encode::dict_source_column(t)).collect();
        checked::check_dict_determinism(df.logical_plan(), &dict_columns, &s.transform.sql())?;
        s.check_no_variant(&df)?;
        checked::check_constants(&ctx, df.logical_plan(), &s.transform.sql())?;
        s.clock_function = checked::clock_function(df.logical_plan());
        s.output_schema = Arc::new(df.schema().as_arrow().clone());
        Ok(s)
    }

    /// The instant the job's statements read as `now()`.
    pub fn clock(&self) -> chrono::DateTime<chrono::Utc> {
        let us = self.clock.load(std::sync::atomic::Ordering::Relaxed);
        chrono::DateTime::from_timestamp_micros(us).unwrap_or_default()
    }

    /// Makes every statement from now on read `us` (µs since 1970 UTC) as
    /// `now()`: the clock a job's journal recorded when it started.
    pub fn pin_clock(&self, us: i64) -> Result<()> {
        if chrono::DateTime::from_timestamp_micros(us).is_none() {
            return Err(Error::internal(format!("the job's clock ({us} µs) is not an instant")));
        }
        self.clock.store(us, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// The first function of the transform that reads the clock (`now()`,
    /// `current_date()`), if any.
    pub fn clock_function(&self) -> Option<&str> {
        self.clock_function.as_deref()
    }

    /// Plans `sql` in `ctx` at the job's clock (`SessionContext::sql` would
    /// read the time of day anew for every statement).
    async fn statement(&self, ctx: &SessionContext, sql: &str) -> Result<datafusion::dataframe::DataFrame> {
        let mut state = ctx.state();
        state.execution_props_mut().query_execution_start_time = Some(self.clock());
        let plan = state.create_logical_plan(sql).await?;
        Ok(datafusion::dataframe::DataFrame::new(state, plan))
    }

    /// Refuses a transform that reads a Parquet VARIANT column: its Arrow
    /// form is the encoding (binary metadata and value, shredded fields), not
    /// the document, and would load as such.
    fn check_no_variant(&self, df: &datafusion::dataframe::DataFrame) -> Result<()> {
        use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
        let variants: std::collections::BTreeSet<&str> =
            self.plan.files.iter().flat_map(|f| f.variant_columns.iter().map(String::as_str)).collect();
        if variants.is_empty() {
            return Ok(());
        }
        let plan = df.clone().into_optimized_plan()?;
        let mut used = None;
        plan.apply(|node| {
            if let datafusion::logical_expr::LogicalPlan::TableScan(t) = node
                && let Some(f) = t.projected_schema.fields().iter().find(|f| variants.contains(f.name().as_str()))
            {
                used = Some(f.name().clone());
                return Ok(TreeNodeRecursion::Stop);
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
        match used {
            Some(v) => Err(Error::config(format!(
                "column `{v}` is a Parquet VARIANT (Spark 4's semi-structured type), which starload does not decode: \
                 it would load the variant's binary encoding, not the document; write it as a JSON string (to_json) \
                 or leave it out of the select"
            ))),
            None => Ok(()),
        }
    }

    /// The schema of the transformed rows.
    pub fn output_schema(&self) -> &SchemaRef {
        &self.output_schema
    }

    /// The source schema: file columns then partition columns.
    pub fn source_schema(&self) -> SchemaRef {
        let mut fields: Vec<FieldRef> = self.plan.file_schema.fields().iter().cloned().collect();
        fields.extend(self.partition_fields.iter().cloned());
        Arc::new(Schema::new(fields))
    }

    fn context(&self, files: Vec<PartitionedFile>) -> Result<SessionContext> {
        let mut config = SessionConfig::new()
            .with_target_partitions(1)
            .with_batch_size(self.batch_size)
            .with_information_schema(false);
        // The job's zone for current_date() (now() is registered below).
        config.options_mut().execution.time_zone = Some(self.zone.name());
        let ctx = checked::session(config);
        checked::register_wall_clock_now(&ctx, self.zone);
        ctx.register_object_store(self.plan.location.store_url.as_ref(), self.plan.location.store.clone());
        let table = SliceTable {
            file_schema: self.file_schema.clone(),
            partition_fields: self.partition_fields.clone(),
            store_url: self.plan.location.store_url.clone(),
            files,
        };
        let raw: Arc<dyn TableProvider> = Arc::new(table);
        // Timestamps with a zone reach the transform as the wall-clock time
        // of the job's zone, without zone: what the DATETIME column stores,
        // and what its dates, `date_trunc` and literals (also times a DST
        // change skips or repeats) mean in StarRocks.
        let zoned = |f: &FieldRef| matches!(f.data_type(), DataType::Timestamp(_, Some(_)));
        if !self.file_schema.fields().iter().any(zoned) {
            ctx.register_table("source", raw)?;
            return Ok(ctx);
        }
        let df = ctx.read_table(raw)?;
        let exprs: Vec<Expr> = df
            .schema()
            .fields()
            .iter()
            .map(|f| {
                let c = Expr::Column(datafusion::common::Column::new_unqualified(f.name()));
                if zoned(f) { checked::LocalTime::expr(self.zone, c).alias(f.name()) } else { c }
            })
            .collect();
        let view = df.select(exprs)?.into_unoptimized_plan();
        ctx.register_table("source", Arc::new(datafusion::catalog::view::ViewTable::new(view, None)))?;
        Ok(ctx)
    }

    fn partitioned_file(&self, slice: &Slice) -> Result<PartitionedFile> {
        let info = &self.plan.files[slice.file];
        let mut access = ParquetAccessPlan::new_none(info.row_groups.len());
        for (g, skip, take, n) in slice.group_rows(info) {
            access.scan(g);
            if skip > 0 || take < n {
                use parquet::arrow::arrow_reader::{RowSelection, RowSelector};
                let parts = [RowSelector::skip(skip as usize), RowSelector::select(take as usize)];
                let tail = RowSelector::skip((n - skip - take) as usize);
                let selectors: Vec<RowSelector> = parts.into_iter().chain([tail]).filter(|s| s.row_count > 0).collect();
                access.scan_selection(g, RowSelection::from(selectors));
            }
        }
        let values = info
            .file
            .partition_values
            .iter()
            .zip(&self.partition_fields)
            .map(|(v, f)| match v {
                None => ScalarValue::try_from(f.data_type()).map_err(Error::from),
                Some(s) => {
                    let invalid = |why: String| {
                        Error::config(format!(
                            "partition value `{}={s}` of `{}` is not a valid {}: {why}",
                            f.name(),
                            self.plan.file_name(slice.file),
                            f.data_type(),
                        ))
                    };
                    let v = ScalarValue::try_from_string(s.clone(), f.data_type())
                        .map_err(|e| invalid(Error::from(e).to_string()))?;
                    if !partition_text_is_exact(f.data_type(), s, &v) {
                        return Err(invalid(format!("it would be read as `{v}`")));
                    }
                    Ok(v)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let file = PartitionedFile::new_from_meta(info.file.object_meta());
        let file = if info.page_index_ok { file } else { file.with_extension(NoPageIndex) };
        let file = if info.untrusted_stats.is_empty() {
            file
        } else {
            file.with_extension(UntrustedStats(info.untrusted_stats.clone()))
        };
        Ok(file.with_partition_values(values).with_arrow_schema(info.schema.clone()).with_extension(access))
    }

    /// The first value of a top-level string column of `slices` that is not
    /// UTF-8, as (file index, row in the file counted from 1, column): the
    /// Parquet reader only says that a column chunk holds one. `None` if
    /// none is found (a nested string, or the files changed).
    pub async fn find_invalid_utf8(&self, slices: &[Slice]) -> Option<(usize, u64, String)> {
        match self.try_find_invalid_utf8(slices).await {
            Ok(found) => found,
            Err(e) => {
                tracing::debug!("looking for the value that is not UTF-8 failed: {e}");
                None
            }
        }
    }

    async fn try_find_invalid_utf8(&self, slices: &[Slice]) -> Result<Option<(usize, u64, String)>> {
        use parquet::column::reader::ColumnReader;
        // Top-level string columns (a leaf of path length one whose Arrow
        // type is a string).
        let is_string = |info: &crate::plan::FileInfo, c: &parquet::schema::types::ColumnDescriptor| {
            c.path().parts().len() == 1
                && info
                    .schema
                    .field_with_name(c.name())
                    .is_ok_and(|f| matches!(f.data_type(), DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View))
        };
        self.first_raw(
            slices,
            is_string,
            |r| if let ColumnReader::ByteArrayColumnReader(c) = r { Some(c) } else { None },
            |v: &parquet::data_type::ByteArray| std::str::from_utf8(v.data()).is_err(),
        )
        .await
    }

    /// The first INT96 timestamp of `slices` with nanoseconds below a
    /// microsecond (Impala, Hive and pyarrow write nanoseconds; the reader
    /// takes microseconds and would drop them) or a time of day outside the
    /// day, as (file index, row from 1, column). Files Spark wrote are skipped: Spark's timestamps are
    /// microseconds.
    pub async fn find_int96_nanos(&self, slices: &[Slice]) -> Result<Option<(usize, u64, String)>> {
        use parquet::basic::Type as Physical;
        use parquet::column::reader::ColumnReader;
        let slices: Vec<Slice> = slices.iter().filter(|s| self.plan.files[s.file].int96_nanos).cloned().collect();
        if slices.is_empty() {
            return Ok(None);
        }
        self.first_raw(
            &slices,
            |_, c| c.physical_type() == Physical::INT96,
            |r| if let ColumnReader::Int96ColumnReader(c) = r { Some(c) } else { None },
            |v: &parquet::data_type::Int96| {
                let d = v.data();
                let nanos_of_day = d[0] as u64 | (d[1] as u64) << 32;
                // Out of the day: older pyarrow wrote a negative time of day
                // before 1970, which StarRocks reads as unsigned.
                !nanos_of_day.is_multiple_of(1000) || nanos_of_day >= 86_400_000_000_000
            },
        )
        .await
    }

    /// Reads the leaf columns `pick_column` selects of `slices` without
    /// decoding them to Arrow, and returns the first non-NULL value `bad`
    /// holds for, as (file index, row of the file from 1, column; a nested
    /// leaf is named by its top-level column).
    async fn first_raw<T: parquet::data_type::DataType>(
        &self,
        slices: &[Slice],
        pick_column: impl Fn(&crate::plan::FileInfo, &parquet::schema::types::ColumnDescriptor) -> bool,
        reader_of: impl Fn(parquet::column::reader::ColumnReader) -> Option<parquet::column::reader::ColumnReaderImpl<T>>,
        bad: impl Fn(&T::T) -> bool,
    ) -> Result<Option<(usize, u64, String)>> {
        use object_store::ObjectStoreExt;
        use parquet::file::reader::RowGroupReader;
        use parquet::file::serialized_reader::SerializedRowGroupReader;
        let store = &self.plan.location.store;
        for s in slices {
            let info = &self.plan.files[s.file];
            let meta = info.file.object_meta();
            let md =
                datafusion::datasource::physical_plan::parquet::metadata::DFParquetMetadata::new(store.as_ref(), &meta)
                    .with_page_index_policy(Some(parquet::file::metadata::PageIndexPolicy::Skip))
                    .fetch_metadata()
                    .await?;
            let descr = md.file_metadata().schema_descr();
            let targets: Vec<(usize, String, i16, i16)> = descr
                .columns()
                .iter()
                .enumerate()
                // Not a column the source leaves out (a metastore dropped it).
                .filter(|(_, c)| self.plan.file_schema.field_with_name(&c.path().parts()[0]).is_ok())
                .filter(|(_, c)| pick_column(info, c))
                .map(|(i, c)| (i, c.path().parts()[0].clone(), c.max_def_level(), c.max_rep_level()))
                .collect();
            for (g, skip, take, _) in s.group_rows(info) {
                let rg = md.row_group(g);
                // 0-based rows of the file the slice holds in this group.
                let row = info.group_first_row(g);
                let wanted = row + skip..row + skip + take;
                for (ci, name, max_def, max_rep) in &targets {
                    let (start, len) = rg.column(*ci).byte_range();
                    let bytes = store
                        .get_range(&info.file.path, start..start + len)
                        .await
                        .map_err(|e| Error::infra(crate::source::describe_store_error(&e)))?;
                    let seg = crate::dict::delta::Segment { start, bytes, file_len: info.file.size };
                    let props = Arc::new(parquet::file::properties::ReaderProperties::builder().build());
                    let reader = SerializedRowGroupReader::new(Arc::new(seg), rg, None, props)?;
                    let Some(mut col) = reader_of(reader.get_column_reader(*ci)?) else { continue };
                    let (mut done, mut defs, mut reps, mut values) = (0u64, Vec::new(), Vec::new(), Vec::new());
                    loop {
                        defs.clear();
                        reps.clear();
                        values.clear();
                        let d = (*max_def > 0).then_some(&mut defs);
                        let r = (*max_rep > 0).then_some(&mut reps);
                        let (records, _, levels) = col.read_records(8192, d, r, &mut values)?;
                        if records == 0 {
                            break;
                        }
                        let mut vals = values.iter();
                        // One level per value slot: a record per slot at the
                        // top level (no repetition levels); in a repeated
                        // leaf, a slot of repetition level 0 starts the next
                        // record.
                        let slots = if *max_rep > 0 { levels } else { records };
                        let mut k = 0u64;
                        for slot in 0..slots {
                            if slot > 0 && reps.get(slot).is_none_or(|&r| r == 0) {
                                k += 1;
                            }
                            if defs.get(slot).is_some_and(|d| d < max_def) {
                                continue; // NULL, or an empty or NULL list
                            }
                            let at = row + done + k;
                            if vals.next().is_some_and(&bad) && wanted.contains(&at) {
                                return Ok(Some((s.file, at + 1, name.clone())));
                            }
                        }
                        done += records as u64;
                        if row + done >= wanted.end {
                            break;
                        }
                    }
                }
            }
        }
        Ok(None)
    }

    /// Streams the transformed rows of the given slices, in order.
    pub async fn scan(&self, slices: &[Slice]) -> Result<SendableRecordBatchStream> {
        let files = slices.iter().map(|s| self.partitioned_file(s)).collect::<Result<Vec<_>>>()?;
        let ctx = self.context(files)?;
        let df = self.statement(&ctx, &self.transform.sql()).await?;
        // INT96 nanoseconds the microsecond reader would drop: refused before
        // anything of the chunk is read.
        if let Some((file, row, column)) = self.find_int96_nanos(slices).await? {
            return Err(Error::data(format!(
                "file `{}`, row {row}, column `{column}`: the INT96 timestamp has nanoseconds below a microsecond \
                 (DATETIME keeps microseconds; truncate it in the transform if intended), or a time of day outside \
                 0–24 h (older pyarrow wrote a negative one before 1970, which StarRocks reads as another time; \
                 rewrite the file with INT64 timestamps)",
                self.plan.file_name(file)
            )));
        }
        let stream = checked::execute(&ctx, df).await?;
        if !slices.iter().any(|s| self.plan.files[s.file].legacy_calendar.any()) {
            return Ok(stream);
        }
        // Rows of files in Spark's legacy calendar: refuse the values whose
        // day it would shift.
        use futures::StreamExt;
        let schema = stream.schema();
        let check = LegacyCheck {
            plan: self.plan.clone(),
            slices: slices.to_vec(),
            filtered: self.transform.filter.is_some(),
            seen: 0,
        };
        let checked = stream.scan(check, |check, batch| {
            let out = batch.and_then(|b| check.check(&b).map(|()| b));
            futures::future::ready(Some(out))
        });
        Ok(Box::pin(datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(schema, checked)))
    }

    /// Where the `kept`-th row (from 0) the where clause keeps of `slices`
    /// is among all their rows (from 0), to name a refused value's file
    /// row: the rows are read again with the clause as a column. `None`
    /// without a where clause or past the last kept row. Only for messages:
    /// it reads the slices once more.
    pub async fn kept_row(&self, slices: &[Slice], kept: u64) -> Result<Option<u64>> {
        use arrow::array::AsArray;
        use futures::StreamExt;
        let Some(w) = self.transform.filter.as_deref().map(str::trim).filter(|w| !w.is_empty()) else {
            return Ok(None);
        };
        let files = slices.iter().map(|s| self.partitioned_file(s)).collect::<Result<Vec<_>>>()?;
        let ctx = self.context(files)?;
        // NULL, like false, drops the row.
        let df = self
            .statement(&ctx, &format!("SELECT CASE WHEN ({w}) THEN true ELSE false END AS kept FROM source"))
            .await?;
        let mut stream = checked::execute(&ctx, df).await?;
        let (mut seen, mut at) = (0u64, 0u64);
        while let Some(batch) = stream.next().await {
            let batch = batch?;
            let col = batch.column(0).as_boolean();
            for i in 0..col.len() {
                if col.value(i) {
                    if seen == kept {
                        return Ok(Some(at + i as u64));
                    }
                    seen += 1;
                }
            }
            at += col.len() as u64;
        }
        Ok(None)
    }

    /// `file …, row …, column …` of the `row`-th row (from 0) the transform
    /// keeps of `slices` (found by reading them again when a where clause
    /// drops rows); `None` when it cannot be told. Only for messages.
    pub async fn file_row(&self, slices: &[Slice], row: u64, column: &str) -> Option<String> {
        let row = if self.transform.filter.as_deref().is_some_and(|w| !w.trim().is_empty()) {
            match self.kept_row(slices, row).await {
                Ok(r) => r?,
                Err(e) => {
                    tracing::debug!("finding the file row of a refused value failed: {e}");
                    return None;
                }
            }
        } else {
            row
        };
        let (s, r) = crate::plan::slice_at(slices, row)?;
        Some(format!("file `{}`, row {r}, column `{column}`", self.plan.file_name(s.file)))
    }

    /// Runs `outer` over the transformed rows of every file: `{t}` in it
    /// stands for the transform as a subquery.
    pub async fn query_all(&self, outer: &str) -> Result<Vec<datafusion::arrow::record_batch::RecordBatch>> {
        let slices: Vec<Slice> = (0..self.plan.files.len())
            .filter(|&i| !self.plan.files[i].row_groups.is_empty())
            .map(|i| Slice {
                file: i,
                row_groups: 0..self.plan.files[i].row_groups.len(),
                first_row: 0,
                rows: self.plan.files[i].rows(),
            })
            .collect();
        let files = slices.iter().map(|s| self.partitioned_file(s)).collect::<Result<Vec<_>>>()?;
        let ctx = self.context(files)?;
        let sql = outer.replace("{t}", &format!("({}) AS t", self.transform.sql()));
        checked::collect(&ctx, self.statement(&ctx, &sql).await?).await
    }

    /// Streams `outer` over the transformed rows of every file in `ways`
    /// concurrent scans (each on its own task), batches in no particular
    /// order. `{t}` in `outer` stands for the transform as a subquery.
    pub fn stream_all(
        self: &Arc<Self>,
        outer: &str,
        ways: usize,
    ) -> tokio::sync::mpsc::Receiver<Result<datafusion::arrow::record_batch::RecordBatch>> {
        use futures::StreamExt;
        let ways = ways.max(1);
        // Every non-empty row group is a unit; units go round-robin.
        let mut groups: Vec<Vec<Slice>> = vec![Vec::new(); ways];
        let mut n = 0;
        for (i, f) in self.plan.files.iter().enumerate() {
            let mut first_row = 0;
            for (g, rg) in f.row_groups.iter().enumerate() {
                groups[n % ways].push(Slice { file: i, row_groups: g..g + 1, first_row, rows: rg.rows });
                first_row += rg.rows;
                n += 1;
            }
        }
        let (tx, rx) = tokio::sync::mpsc::channel(2 * ways);
        let sql = outer.replace("{t}", &format!("({}) AS t", self.transform.sql()));
        for slices in groups.into_iter().filter(|g| !g.is_empty()) {
            let (me, tx, sql) = (self.clone(), tx.clone(), sql.clone());
            let on_panic = tx.clone();
            let body = async move {
                let run = async {
                    let files = slices.iter().map(|s| me.partitioned_file(s)).collect::<Result<Vec<_>>>()?;
                    let ctx = me.context(files)?;
                    checked::execute(&ctx, me.statement(&ctx, &sql).await?).await
                };
                match run.await {
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                    }
                    Ok(mut stream) => {
                        while let Some(b) = stream.next().await {
                            let failed = b.is_err();
                            if tx.send(b.map_err(Error::from)).await.is_err() || failed {
                                break;
                            }
                        }
                    }
                }
            };
            // A reader that panics (arrow-rs does on some valid files) would
            // end the stream as if it were complete.
            tokio::spawn(async move {
                use futures::FutureExt;
                if let Err(p) = std::panic::AssertUnwindSafe(body).catch_unwind().await {
                    let why = crate::error::panic_text(p.as_ref());
                    let _ = on_panic.send(Err(Error::data(format!("the Parquet reader failed: {why}")))).await;
                }
            });
        }
        rx
    }

    /// The plan being scanned.
    pub fn plan(&self) -> &Arc<Plan> {
        &self.plan
    }
}

/// Checks the dates and timestamps of rows read from files in Spark's
/// legacy (hybrid Julian) calendar.
struct LegacyCheck {
    plan: Arc<Plan>,
    slices: Vec<Slice>,
    filtered: bool,
    /// Rows of the stream before the current batch.
    seen: u64,
}

/// A file (its index in the plan) and a 1-based row in it.
type FileRow = (usize, u64);

/// A value refused in a row a where clause kept, known only by its place
/// among the kept rows of the chunk: the loader names the file row (see
/// [`Scanner::kept_row`]).
#[derive(Debug)]
pub struct KeptRowRefusal {
    /// The row among the rows the where clause kept, from 0.
    pub row: u64,
    /// The column of the value.
    pub column: String,
    /// Why it is refused.
    pub why: &'static str,
}

impl std::fmt::Display for KeptRowRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "row {} after the where clause, column `{}`: {}", self.row + 1, self.column, self.why)
    }
}

impl std::error::Error for KeptRowRefusal {}

impl KeptRowRefusal {
    /// The refusal an error of the scan's stream carries, if it is one.
    pub fn of(e: &DataFusionError) -> Option<&KeptRowRefusal> {
        match e {
            DataFusionError::External(x) => x.downcast_ref(),
            _ => None,
        }
    }
}

/// 1582-10-15, the first day both calendars agree on, in days since the epoch.
const GREGORIAN_START_DAYS: i64 = -141_427;
/// 1900-01-01T00:00:00Z in seconds: the old calendar's time zone rules
/// differ before it.
const LEGACY_TIMESTAMP_SECS: i64 = -2_208_988_800;

impl LegacyCheck {
    fn check(&mut self, b: &datafusion::arrow::record_batch::RecordBatch) -> datafusion::error::Result<()> {
        // The first (row, column) whose value is early for its file.
        let mut first: Option<(usize, usize, Option<FileRow>)> = None;
        for (c, col) in b.columns().iter().enumerate() {
            for dates in [true, false] {
                let Some(early) = early_rows(col.as_ref(), dates).map_err(DataFusionError::Execution)? else {
                    continue;
                };
                for r in early.iter().enumerate().filter(|(_, e)| **e).map(|(r, _)| r) {
                    if first.is_some_and(|(fr, _, _)| fr <= r) {
                        break;
                    }
                    let applies = |l: crate::plan::Legacy| if dates { l.dates } else { l.timestamps };
                    match self.locate(r) {
                        Some((file, row)) if applies(self.plan.files[file].legacy_calendar) => {
                            first = Some((r, c, Some((file, row))));
                            break;
                        }
                        // A file whose values of this kind are exact.
                        Some(_) => {}
                        // After a where clause: if any of the files may hold it.
                        None if self.slices.iter().any(|s| applies(self.plan.files[s.file].legacy_calendar)) => {
                            first = Some((r, c, None));
                            break;
                        }
                        None => {}
                    }
                }
            }
        }
        let rows = b.num_rows() as u64;
        let Some((r, c, at)) = first else {
            self.seen += rows;
            return Ok(());
        };
        let column = b.schema().field(c).name().clone();
        let why = "the file was written by Spark in the legacy hybrid Julian calendar (Spark 2.x or 3.0, or \
                   datetimeRebaseModeInWrite / int96RebaseModeInWrite=LEGACY), where a date before 1582-10-15 or a \
                   timestamp before 1900 means another day than it says in the proleptic Gregorian calendar StarRocks \
                   uses; rewrite it with Spark 3 in CORRECTED mode, or filter or convert these values in the transform";
        Err(match at {
            Some((file, row)) => DataFusionError::Execution(format!(
                "file `{}`, row {row}, column `{column}`: {why}",
                self.plan.file_name(file)
            )),
            None => DataFusionError::External(Box::new(KeptRowRefusal { row: self.seen + r as u64, column, why })),
        })
    }

    /// The file and 1-based row of row `r` of the current batch, unless a
    /// where clause dropped rows in between.
    fn locate(&self, r: usize) -> Option<FileRow> {
        if self.filtered {
            return None;
        }
        crate::plan::slice_at(&self.slices, self.seen + r as u64).map(|(s, row)| (s.file, row))
    }
}

/// Per row of `a`: whether it holds, at any depth, a date (`dates`) or a
/// timestamp (otherwise) that the legacy calendar shifts; `None` when `a`
/// cannot hold one.
fn early_rows(a: &dyn arrow::array::Array, dates: bool) -> std::result::Result<Option<Vec<bool>>, String> {
    use arrow::array::AsArray;
    use arrow::datatypes::{Date32Type, Date64Type, TimeUnit};
    let valid = |r: usize| a.is_valid(r);
    let per_row = |f: &dyn Fn(usize) -> bool| -> Vec<bool> { (0..a.len()).map(|r| valid(r) && f(r)).collect() };
    // Child rows folded into their parents' rows through offsets.
    let fold = |child: Option<Vec<bool>>, range: &dyn Fn(usize) -> (usize, usize)| -> Option<Vec<bool>> {
        let child = child?;
        Some(per_row(&|r| {
            let (lo, hi) = range(r);
            child[lo.min(child.len())..hi.min(child.len())].iter().any(|e| *e)
        }))
    };
    Ok(match a.data_type() {
        DataType::Date32 if dates => {
            let v = a.as_primitive::<Date32Type>();
            Some(per_row(&|r| (v.value(r) as i64) < GREGORIAN_START_DAYS))
        }
        DataType::Date64 if dates => {
            let v = a.as_primitive::<Date64Type>();
            Some(per_row(&|r| v.value(r).div_euclid(86_400_000) < GREGORIAN_START_DAYS))
        }
        DataType::Timestamp(unit, _) if !dates => {
            let per_sec = match unit {
                TimeUnit::Second => 1,
                TimeUnit::Millisecond => 1_000,
                TimeUnit::Microsecond => 1_000_000,
                TimeUnit::Nanosecond => 1_000_000_000,
            };
            let ints = arrow::compute::cast(a, &DataType::Int64).map_err(|e| e.to_string())?;
            let v = ints.as_primitive::<arrow::datatypes::Int64Type>();
            Some(per_row(&|r| v.value(r).div_euclid(per_sec) < LEGACY_TIMESTAMP_SECS))
        }
        DataType::Struct(_) => {
            let s = a.as_struct();
            let mut any: Option<Vec<bool>> = None;
            for child in s.columns() {
                if let Some(e) = early_rows(child.as_ref(), dates)? {
                    let acc = any.get_or_insert_with(|| vec![false; a.len()]);
                    for (x, y) in acc.iter_mut().zip(e) {
                        *x |= y;
                    }
                }
            }
            any.map(|acc| per_row(&|r| acc[r]))
        }
        DataType::List(_) => {
            let l = a.as_list::<i32>();
            let o = l.value_offsets();
            fold(early_rows(l.values().as_ref(), dates)?, &|r| (o[r] as usize, o[r + 1] as usize))
        }
        DataType::LargeList(_) => {
            let l = a.as_list::<i64>();
            let o = l.value_offsets();
            fold(early_rows(l.values().as_ref(), dates)?, &|r| (o[r] as usize, o[r + 1] as usize))
        }
        DataType::FixedSizeList(_, n) => {
            let l = a.as_fixed_size_list();
            let n = *n as usize;
            fold(early_rows(l.values().as_ref(), dates)?, &|r| (r * n, (r + 1) * n))
        }
        DataType::Map(..) => {
            let m = a.as_map();
            let o = m.value_offsets();
            fold(early_rows(m.entries(), dates)?, &|r| (o[r] as usize, o[r + 1] as usize))
        }
        DataType::Dictionary(..) => {
            let d = a.as_any_dictionary();
            let keys = d.normalized_keys();
            early_rows(d.values().as_ref(), dates)?.map(|e| per_row(&|r| e.get(keys[r]).copied().unwrap_or(false)))
        }
        _ => None,
    })
}

/// Whether a typed partition value reads as exactly what its text says: the
/// cast DataFusion applies also takes `yes` for true or drops the time of
/// `2024-01-07T23:59:59Z` for a date, which would load something else.
fn partition_text_is_exact(dt: &DataType, text: &str, v: &ScalarValue) -> bool {
    match dt {
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => {
            // Leading zeros (`month=07`) are the same number.
            let d = text.strip_prefix(['-', '+']).unwrap_or(text);
            !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())
        }
        DataType::Boolean => matches!(text.to_ascii_lowercase().as_str(), "true" | "false" | "1" | "0"),
        DataType::Date32 => v.to_string() == text,
        // `1.50` is 1.5 in decimal(6,2); `1.005` would be rounded.
        DataType::Decimal128(_, scale) => match v {
            ScalarValue::Decimal128(Some(units), _, _) => decimal_units(text, *scale) == Some(*units),
            _ => false,
        },
        DataType::Float32 => {
            matches!(v, ScalarValue::Float32(Some(x)) if text.parse::<f32>().is_ok_and(|t| t.to_bits() == x.to_bits()))
        }
        DataType::Float64 => {
            matches!(v, ScalarValue::Float64(Some(x)) if text.parse::<f64>().is_ok_and(|t| t.to_bits() == x.to_bits()))
        }
        // Hive's form only: the cast also reads a zone or a `T`.
        DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, None) => match v {
            ScalarValue::TimestampMicrosecond(Some(us), None) => {
                chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f").is_ok_and(|t| {
                    let t = t.and_utc();
                    t.timestamp_subsec_nanos() % 1000 == 0 && t.timestamp_micros() == *us
                })
            }
            _ => false,
        },
        _ => true,
    }
}

/// The decimal text `text` in units of `10^-scale`, if it has no digit
/// below that.
fn decimal_units(text: &str, scale: i8) -> Option<i128> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let scale = usize::try_from(scale).ok()?;
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
        || frac.bytes().skip(scale).any(|b| b != b'0')
    {
        return None;
    }
    let kept: String = frac.chars().chain(std::iter::repeat('0')).take(scale).collect();
    let units: i128 = format!("{int}{kept}").parse().ok()?;
    Some(if negative { -units } else { units })
}

/// Marks a file whose page index must not be used (see
/// [`crate::plan::pages_start_at_rows`]).
#[derive(Debug)]
struct NoPageIndex;

/// A file's columns whose statistics must not prune (see
/// [`crate::plan::untrusted_statistics`]).
#[derive(Debug)]
struct UntrustedStats(Vec<String>);

/// Opens the scan's files; a file read in parts (a row group's rows as a
/// `RowSelection` in its access plan) is opened with its offset index, so a
/// part fetches only its own pages. DataFusion asks for the page index only
/// for a page-pruning predicate: without this every part of a row group
/// would fetch and decompress all of it.
#[derive(Debug)]
struct PartsReaderFactory(DefaultParquetFileReaderFactory);

impl ParquetFileReaderFactory for PartsReaderFactory {
    fn create_reader(
        &self,
        partition_index: usize,
        file: PartitionedFile,
        metadata_size_hint: Option<usize>,
        metrics: &ExecutionPlanMetricsSet,
    ) -> datafusion::error::Result<Box<dyn AsyncFileReader + Send>> {
        let parts = file
            .extensions
            .get::<ParquetAccessPlan>()
            .is_some_and(|p| p.inner().iter().any(|a| matches!(a, RowGroupAccess::Selection(_))))
            && file.extensions.get::<NoPageIndex>().is_none();
        let reader = self.0.create_reader(partition_index, file, metadata_size_hint, metrics)?;
        Ok(if parts { Box::new(WithOffsetIndex(reader)) } else { reader })
    }
}

/// A reader whose metadata always holds the file's page index.
struct WithOffsetIndex(Box<dyn AsyncFileReader + Send>);

impl AsyncFileReader for WithOffsetIndex {
    fn get_bytes(&mut self, range: std::ops::Range<u64>) -> BoxFuture<'_, parquet::errors::Result<bytes::Bytes>> {
        self.0.get_bytes(range)
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<std::ops::Range<u64>>,
    ) -> BoxFuture<'_, parquet::errors::Result<Vec<bytes::Bytes>>> {
        self.0.get_byte_ranges(ranges)
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        // DataFusion's reader takes one policy for both indexes.
        let options = options.cloned().unwrap_or_default().with_page_index_policy(PageIndexPolicy::Optional);
        Box::pin(async move { self.0.get_metadata(Some(&options)).await })
    }
}

/// A table over an explicit list of files and row groups.
#[derive(Debug)]
struct SliceTable {
    file_schema: SchemaRef,
    partition_fields: Vec<FieldRef>,
    store_url: datafusion::execution::object_store::ObjectStoreUrl,
    files: Vec<PartitionedFile>,
}

#[async_trait]
impl TableProvider for SliceTable {
    fn schema(&self) -> SchemaRef {
        let mut fields: Vec<FieldRef> = self.file_schema.fields().iter().cloned().collect();
        fields.extend(self.partition_fields.iter().cloned());
        Arc::new(Schema::new(fields))
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> datafusion::error::Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        let table_schema = TableSchema::builder(self.file_schema.clone())
            .with_table_partition_cols(self.partition_fields.clone())
            .build();
        // Filters prune row groups by their statistics; rows are still
        // filtered exactly above the scan. Not a filter on a float column:
        // Parquet's min/max leave NaN out while comparisons rank NaN above
        // every number, so a row group of NaNs that match would be pruned;
        // nor on a column whose statistics a file's writer got wrong.
        // (The physical optimizer also hands the scan the filters above it,
        // so pruning is switched off for the whole scan then.)
        let schema = self.schema();
        let untrusted: Vec<&String> =
            self.files.iter().filter_map(|f| f.extensions.get::<UntrustedStats>()).flat_map(|u| &u.0).collect();
        let unprunable = |e: &Expr| {
            e.column_refs().iter().any(|c| {
                untrusted.iter().any(|u| u.eq_ignore_ascii_case(&c.name))
                    || schema.field_with_name(&c.name).is_ok_and(|f| {
                        let mut t = f.data_type();
                        while let DataType::Dictionary(_, v) = t {
                            t = v;
                        }
                        matches!(t, DataType::Float16 | DataType::Float32 | DataType::Float64) || t.is_nested()
                    })
            })
        };
        let mut options = TableParquetOptions::default();
        options.global.coerce_int96 = Some("us".to_string());
        options.global.coerce_int96_tz = Some("UTC".to_string());
        options.global.pushdown_filters = false;
        if filters.iter().any(unprunable) {
            options.global.pruning = false;
            options.global.enable_page_index = false;
        }
        // Pages of such a file may not start at rows: no page pruning.
        if self.files.iter().any(|f| f.extensions.get::<NoPageIndex>().is_some()) {
            options.global.enable_page_index = false;
        }
        let store = state.runtime_env().object_store(&self.store_url)?;
        let mut source =
            ParquetSource::new(table_schema).with_table_parquet_options(options).with_parquet_file_reader_factory(
                Arc::new(PartsReaderFactory(DefaultParquetFileReaderFactory::new(store))),
            );
        // Arithmetic would be evaluated unchecked by the pruners: left to the
        // checked filter above the scan.
        if let Some(expr) =
            filters.iter().filter(|e| !unprunable(e) && !checked::has_arithmetic(e)).cloned().reduce(|a, b| a.and(b))
        {
            let df_schema = datafusion::common::DFSchema::try_from(self.schema().as_ref().clone())?;
            let physical = state.create_physical_expr(expr, &df_schema)?;
            source = source.with_predicate(physical);
        }
        let mut builder = FileScanConfigBuilder::new(self.store_url.clone(), Arc::new(source))
            .with_file_group(FileGroup::new(self.files.clone()))
            .with_limit(limit);
        if let Some(p) = projection {
            builder = builder.with_projection_indices(Some(p.clone()))?;
        }
        Ok(DataSourceExec::from_data_source(builder.build()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use arrow::array::{AsArray, Int64Array, StringArray};
    use arrow::datatypes::Int64Type;
    use futures::TryStreamExt;
    use futures::stream::BoxStream;
    use object_store::path::Path;
    use object_store::{
        CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMultipartOptions,
        PutOptions, PutPayload, PutResult,
    };

    use super::*;

    #[test]
    fn a_job_may_read_what_its_texts_name_and_every_column_without_a_select() {
        let t = |select: Option<&str>| Transform { select: select.map(str::to_string), ..Transform::default() };
        for all in [None, Some(""), Some("  "), Some("*"), Some("id, *")] {
            assert!(t(all).may_read("ts"), "{all:?}");
        }
        assert!(t(Some("id, CAST(TS AS DATE) AS d")).may_read("ts"));
        assert!(t(Some(r#"id, "event-ts" AS e"#)).may_read("event-ts"), "a name the identifier split would cut");
        assert!(t(Some("id, \"1st_ts\"")).may_read("1st_ts"));
        assert!(!t(Some("id, name")).may_read("ts"));
        let w =
            Transform { select: Some("id".into()), filter: Some("ts > '2024-01-01'".into()), ..Transform::default() };
        assert!(w.may_read("ts"), "the where clause reads it");
    }

    /// A store that counts the bytes read from it.
    #[derive(Debug)]
    struct Counting {
        inner: Arc<dyn ObjectStore>,
        read: AtomicU64,
    }

    impl std::fmt::Display for Counting {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "Counting({})", self.inner)
        }
    }

    #[async_trait]
    impl ObjectStore for Counting {
        async fn put_opts(&self, l: &Path, p: PutPayload, o: PutOptions) -> object_store::Result<PutResult> {
            self.inner.put_opts(l, p, o).await
        }
        async fn put_multipart_opts(
            &self,
            l: &Path,
            o: PutMultipartOptions,
        ) -> object_store::Result<Box<dyn MultipartUpload>> {
            self.inner.put_multipart_opts(l, o).await
        }
        async fn get_opts(&self, l: &Path, o: GetOptions) -> object_store::Result<GetResult> {
            let r = self.inner.get_opts(l, o).await?;
            self.read.fetch_add(r.range.end - r.range.start, Ordering::Relaxed);
            Ok(r)
        }
        async fn get_ranges(
            &self,
            l: &Path,
            ranges: &[std::ops::Range<u64>],
        ) -> object_store::Result<Vec<bytes::Bytes>> {
            self.read.fetch_add(ranges.iter().map(|r| r.end - r.start).sum(), Ordering::Relaxed);
            self.inner.get_ranges(l, ranges).await
        }
        fn delete_stream(
            &self,
            locations: BoxStream<'static, object_store::Result<Path>>,
        ) -> BoxStream<'static, object_store::Result<Path>> {
            self.inner.delete_stream(locations)
        }
        fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
            self.inner.list(prefix)
        }
        async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
            self.inner.list_with_delimiter(prefix).await
        }
        async fn copy_opts(&self, from: &Path, to: &Path, o: CopyOptions) -> object_store::Result<()> {
            self.inner.copy_opts(from, to, o).await
        }
    }

    /// Writes `one.parquet`: 200,000 rows in one row group of 1,000-row
    /// pages with a page index (`id` 0.., a string, and with `nested` a list
    /// column), by the writer `created_by` names. Returns its size.
    fn write_one_group(dir: &std::path::Path, created_by: &str, nested: bool) -> u64 {
        let n = 200_000i64;
        let mut cols: Vec<(&str, arrow::array::ArrayRef)> = vec![
            ("id", Arc::new(Int64Array::from_iter_values(0..n))),
            ("s", Arc::new(StringArray::from_iter_values((0..n).map(|i| format!("value {i:08}"))))),
        ];
        if nested {
            let lists = (0..n).map(|i| Some(vec![Some(i as i32), None]));
            cols.push((
                "l",
                Arc::new(arrow::array::ListArray::from_iter_primitive::<arrow::datatypes::Int32Type, _, _>(lists)),
            ));
        }
        let batch = arrow::record_batch::RecordBatch::try_from_iter(cols).unwrap();
        let props = parquet::file::properties::WriterProperties::builder()
            .set_created_by(created_by.into())
            .set_max_row_group_row_count(Some(n as usize))
            .set_dictionary_enabled(false)
            .set_data_page_row_count_limit(1000)
            .set_write_batch_size(1000)
            .build();
        let file = std::fs::File::create(dir.join("one.parquet")).unwrap();
        let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), Some(props)).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        std::fs::metadata(dir.join("one.parquet")).unwrap().len()
    }

    /// The plan of `dir` over a store that counts the bytes read, and a
    /// scanner with `filter`.
    async fn counted(
        dir: &std::path::Path,
        chunk_bytes: u64,
        filter: Option<&str>,
    ) -> (Arc<Plan>, Scanner, Arc<Counting>) {
        let opts = crate::source::StoreOptions::default();
        let mut location = crate::source::open(dir.to_str().unwrap(), &opts).unwrap();
        let counting = Arc::new(Counting { inner: location.store.clone(), read: AtomicU64::new(0) });
        location.store = counting.clone();
        let timeout = opts.op_timeout();
        let listing = crate::source::list(&location, None, timeout).await.unwrap();
        let inputs = crate::plan::FingerprintInputs {
            target: "db.t".into(),
            transform: String::new(),
            chunk_bytes,
            extra: vec![],
        };
        let plan = Arc::new(crate::plan::build(location, listing, &inputs, "t", timeout).await.unwrap());
        let transform = Transform { filter: filter.map(String::from), ..Transform::default() };
        let scanner = Scanner::new(plan.clone(), &[], transform, 8192, &crate::encode::Zone::Utc).await.unwrap();
        (plan, scanner, counting)
    }

    /// The ids a scan of `chunk` yields, and the bytes it read.
    async fn scan_ids(scanner: &Scanner, counting: &Counting, chunk: &crate::plan::Chunk) -> (Vec<i64>, u64) {
        counting.read.store(0, Ordering::Relaxed);
        let batches: Vec<_> = scanner.scan(&chunk.slices).await.unwrap().try_collect().await.unwrap();
        let ids = batches.iter().flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec()).collect();
        (ids, counting.read.load(Ordering::Relaxed))
    }

    /// A part of a row group reads its own pages (through the offset index),
    /// not the whole row group, and yields exactly its rows.
    #[tokio::test]
    async fn a_part_of_a_row_group_reads_only_its_pages() {
        let dir = tempfile::tempdir().unwrap();
        let size = write_one_group(dir.path(), "parquet-rs version 59.3.2", false);
        let (plan, scanner, counting) = counted(dir.path(), 256 << 10, None).await;
        assert!(plan.chunks.len() > 8, "{} chunks", plan.chunks.len());
        for chunk in [&plan.chunks[0], &plan.chunks[plan.chunks.len() / 2], plan.chunks.last().unwrap()] {
            let (ids, read) = scan_ids(&scanner, &counting, chunk).await;
            let first = chunk.slices[0].first_row as i64;
            assert_eq!(ids, (first..first + chunk.rows as i64).collect::<Vec<_>>());
            assert!(read * 4 < size, "chunk {}: read {read} bytes of a {size}-byte file", chunk.index);
        }
    }

    /// A nested file from an arrow-rs writer before 42 (pages may split a
    /// record) is neither cut into parts nor page-pruned; a current one is
    /// page-pruned under a where clause.
    #[tokio::test]
    async fn an_untrusted_page_index_is_not_used() {
        for (created_by, trusted) in [("parquet-rs version 41.0.0", false), ("parquet-rs version 59.3.2", true)] {
            let dir = tempfile::tempdir().unwrap();
            let size = write_one_group(dir.path(), created_by, true);
            let (plan, _, _) = counted(dir.path(), 256 << 10, None).await;
            assert_eq!(plan.chunks.len() > 1, trusted, "{created_by}: {} chunks", plan.chunks.len());
            let (plan, scanner, counting) = counted(dir.path(), 1 << 30, Some("id < 1000")).await;
            let (ids, read) = scan_ids(&scanner, &counting, &plan.chunks[0]).await;
            assert_eq!(ids, (0..1000).collect::<Vec<_>>(), "{created_by}");
            assert_eq!(read * 4 < size, trusted, "{created_by}: read {read} bytes of a {size}-byte file");
        }
    }
}
