//! Pre-aggregation for AGGREGATE tables whose value columns are all
//! `BITMAP_UNION`: the rows of one chunk with equal keys become one row
//! whose bitmaps are the unions of the rows' ids, serialized in StarRocks'
//! `BitmapValue` format ([`crate::bitmap`]) and sent as
//! `base64_to_bitmap(...)`. The table's own aggregation would compute the
//! same unions; the loader sends far fewer rows and bytes.
//!
//! Groups are emitted in the order their first row arrived, so a retry of a
//! chunk sends the same bytes. Errors in key values name the group's first
//! source row.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringBuilder};
use arrow::datatypes::{Field, Schema, SchemaRef, UInt64Type};
use arrow::row::{RowConverter, Rows, SortField};
use base64::Engine;
use roaring::RoaringTreemap;

use crate::encode::{ColumnMapping, EncodeError, Encoder, Via};
use crate::error::{Error, Result};
use crate::meta::{KeysType, TargetTable};

/// What a pre-aggregated load needs, decided once per job.
#[derive(Debug)]
pub struct PreAggSpec {
    /// The encoder of the source rows (dictionary ids, checks).
    pub input: Arc<Encoder>,
    /// Its key columns (indices into its columns).
    keys: Vec<usize>,
    /// Its BITMAP columns.
    bitmaps: Vec<usize>,
    /// The schema of aggregated batches: the key columns, then one base64
    /// text column per BITMAP column.
    schema: SchemaRef,
    /// The encoder of aggregated batches (what is sent).
    pub output: Arc<Encoder>,
}

impl PreAggSpec {
    /// Checks that `table` can be pre-aggregated with these mapped columns
    /// and builds the spec. Refused unless the table is AGGREGATE and every
    /// loaded value column is `BITMAP_UNION` through `to_bitmap` (other
    /// aggregates would need their own merge, and a REPLACE column's winner
    /// depends on row order the table does not promise).
    pub fn new(input: Arc<Encoder>, table: &TargetTable, source: &Schema) -> Result<PreAggSpec> {
        if table.keys != KeysType::Aggregate {
            return Err(Error::config(format!(
                "bitmap_preaggregate needs an AGGREGATE table; `{}.{}` is {}",
                table.db,
                table.table,
                table.keys.name()
            )));
        }
        let mut keys = Vec::new();
        let mut bitmaps = Vec::new();
        for (i, c) in input.columns().iter().enumerate() {
            let t = table
                .column(&c.target)
                .ok_or_else(|| Error::internal(format!("mapped column `{}` is not in the table", c.target)))?;
            if t.is_key {
                keys.push(i);
            } else if c.via == Via::ToBitmap && t.agg.as_deref().is_some_and(|a| a.eq_ignore_ascii_case("BITMAP_UNION"))
            {
                bitmaps.push(i);
            } else {
                return Err(Error::config(format!(
                    "bitmap_preaggregate merges only BITMAP_UNION columns; value column `{}` is {} {}",
                    t.name,
                    t.ty,
                    t.agg.as_deref().unwrap_or("without an aggregate")
                )));
            }
        }
        if bitmaps.is_empty() {
            return Err(Error::config("bitmap_preaggregate: the job loads no BITMAP_UNION column"));
        }
        let mut fields = Vec::new();
        let mut out_cols = Vec::new();
        for &k in &keys {
            let c = &input.columns()[k];
            fields.push(source.field(c.source).clone());
            out_cols.push(ColumnMapping { source: out_cols.len(), ..c.clone() });
        }
        for &b in &bitmaps {
            let c = &input.columns()[b];
            fields.push(Field::new(format!("__starload_agg_{}", c.target), arrow::datatypes::DataType::Utf8, true));
            out_cols.push(ColumnMapping { source: out_cols.len(), via: Via::Base64Bitmap, ..c.clone() });
        }
        let output = Arc::new(Encoder::new(out_cols, input.zone()));
        Ok(PreAggSpec { input, keys, bitmaps, schema: Arc::new(Schema::new(fields)), output })
    }

    /// An empty aggregation for one chunk.
    pub fn start(&self) -> Result<PreAgg> {
        let fields = self
            .keys
            .iter()
            .map(|&k| SortField::new(self.schema.field(self.out_index(k)).data_type().clone()))
            .collect();
        Ok(PreAgg {
            converter: RowConverter::new(fields)?,
            index: HashMap::new(),
            rows: None,
            bitmaps: vec![Vec::new(); self.bitmaps.len()],
            first_row: Vec::new(),
        })
    }

    fn out_index(&self, key: usize) -> usize {
        self.keys.iter().position(|&k| k == key).expect("a key column")
    }

    /// The source name of an output column (for error messages).
    pub fn source_name(&self, output_column: usize) -> &str {
        self.output.columns()[output_column].display_name()
    }
}

/// The groups of one chunk so far.
#[derive(Debug)]
pub struct PreAgg {
    converter: RowConverter,
    index: HashMap<Box<[u8]>, usize>,
    rows: Option<Rows>,
    /// Per BITMAP column, per group: the union (None while every row was
    /// NULL).
    bitmaps: Vec<Vec<Option<RoaringTreemap>>>,
    /// Per group: its first row in the chunk.
    first_row: Vec<u64>,
}

impl PreAgg {
    /// Adds a batch whose first row is row `base` of the chunk. Errors name
    /// an input column and a row of the batch.
    pub fn push(&mut self, spec: &PreAggSpec, batch: &RecordBatch, base: u64) -> std::result::Result<(), EncodeError> {
        let internal = |msg: String| EncodeError::Value { column: 0, row: 0, msg };
        let keys: Vec<ArrayRef> =
            spec.keys.iter().map(|&k| batch.column(spec.input.columns()[k].source).clone()).collect();
        let ids: Vec<ArrayRef> =
            spec.bitmaps.iter().map(|&b| spec.input.wire_array(batch, b)).collect::<std::result::Result<_, _>>()?;
        for (bi, &b) in spec.bitmaps.iter().enumerate() {
            let c = &spec.input.columns()[b];
            if !c.nullable
                && ids[bi].null_count() > 0
                && let Some(r) = (0..batch.num_rows()).find(|&r| ids[bi].is_null(r))
            {
                return Err(EncodeError::Value {
                    column: b,
                    row: r,
                    msg: format!("NULL for NOT NULL column `{}`", c.target),
                });
            }
        }
        let converted = self.converter.convert_columns(&keys).map_err(|e| internal(e.to_string()))?;
        let stored = self.rows.get_or_insert_with(|| self.converter.empty_rows(1024, 64 * 1024));
        let ids: Vec<_> = ids.iter().map(|a| a.as_primitive::<UInt64Type>()).collect();
        for r in 0..batch.num_rows() {
            let row = converted.row(r);
            let g = match self.index.get(row.as_ref()) {
                Some(&g) => g,
                None => {
                    let g = self.first_row.len();
                    self.index.insert(row.as_ref().into(), g);
                    stored.push(row);
                    self.first_row.push(base + r as u64);
                    for b in &mut self.bitmaps {
                        b.push(None);
                    }
                    g
                }
            };
            for (bi, a) in ids.iter().enumerate() {
                if a.is_valid(r) {
                    self.bitmaps[bi][g].get_or_insert_with(RoaringTreemap::new).insert(a.value(r));
                }
            }
        }
        Ok(())
    }

    /// Number of groups.
    pub fn groups(&self) -> usize {
        self.first_row.len()
    }

    /// The chunk row where group `g` started.
    pub fn first_row(&self, g: usize) -> u64 {
        self.first_row[g]
    }

    /// The aggregated rows, in batches of at most `batch_rows`, with the
    /// group number of each batch's first row.
    pub fn finish(&mut self, spec: &PreAggSpec, batch_rows: usize) -> Result<Vec<(usize, RecordBatch)>> {
        let Some(rows) = self.rows.take() else { return Ok(Vec::new()) };
        let keys = self.converter.convert_rows(&rows)?;
        let n = self.first_row.len();
        let mut bitmap_cols: Vec<ArrayRef> = Vec::new();
        for col in &self.bitmaps {
            let mut b = StringBuilder::with_capacity(n, n * 12);
            for v in col {
                match v {
                    None => b.append_null(),
                    Some(bm) => {
                        b.append_value(base64::engine::general_purpose::STANDARD.encode(crate::bitmap::serialize(bm)))
                    }
                }
            }
            bitmap_cols.push(Arc::new(b.finish()));
        }
        let mut columns = keys;
        columns.extend(bitmap_cols);
        let all = RecordBatch::try_new(spec.schema.clone(), columns)?;
        let step = batch_rows.max(1);
        Ok((0..n).step_by(step).map(|s| (s, all.slice(s, step.min(n - s)))).collect())
    }
}
