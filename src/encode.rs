//! Encoding Arrow batches into Stream Load bodies: StarRocks CSV (columns
//! separated by `\x01`, rows by `\x02`, NULL as `\N`) and the JSON fallback.
//!
//! The row delimiter is `\x02` rather than `\n` so that text holding
//! newlines (common in free-text columns) still goes as CSV; only values
//! holding `\x01` or `\x02`, or equal to `\N`, need JSON.
//!
//! Every value is rendered in the text form the BE parses back to exactly the
//! same value for the target column's type, or the batch fails with the row
//! and column. Rows CSV cannot carry go to a second or third body (see
//! [`Part`]).
//!
//! Columns are rendered one at a time into a cell buffer (tight, typed loops),
//! then interleaved into rows.

use arrow::array::*;
use arrow::datatypes::{DataType, TimeUnit};
use base64::Engine;
use rayon::prelude::*;
#[cfg(test)]
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::meta::TargetTable;
use crate::srtype::SrType;
use crate::value;

mod block;

/// Column separator of the CSV dialect.
pub const COLUMN_SEPARATOR: u8 = 0x01;
/// Row delimiter of the CSV dialect.
pub const ROW_DELIMITER: u8 = 0x02;

/// Wire format of a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WireFormat {
    /// StarRocks CSV.
    Csv,
    /// JSON array of objects (`strip_outer_array`).
    Json,
}

impl WireFormat {
    /// `csv` / `json`.
    pub fn name(&self) -> &'static str {
        match self {
            WireFormat::Csv => "csv",
            WireFormat::Json => "json",
        }
    }
}

/// The time zone tz-aware timestamps are converted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Zone {
    /// UTC (no conversion).
    Utc,
    /// A fixed offset in seconds east of UTC.
    Fixed(i32),
    /// A named IANA zone.
    Named(chrono_tz::Tz),
}

impl Zone {
    /// Parses `UTC`, `+08:00` or an IANA name.
    pub fn parse(s: &str) -> Result<Zone> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("utc") || t == "Z" || t == "+00:00" {
            return Ok(Zone::Utc);
        }
        if let Some(off) = parse_offset(t) {
            return Ok(if off == 0 { Zone::Utc } else { Zone::Fixed(off) });
        }
        t.parse::<chrono_tz::Tz>()
            .map(Zone::Named)
            .map_err(|_| Error::config(format!("unknown time zone `{s}` (use UTC, +08:00 or an IANA name)")))
    }
    /// Seconds to add to a UTC instant (in µs) to get local wall time.
    pub(crate) fn offset_secs(&self, utc_us: i64) -> i64 {
        match self {
            Zone::Utc => 0,
            Zone::Fixed(o) => *o as i64,
            Zone::Named(tz) => {
                use chrono::{Offset, TimeZone};
                let secs = utc_us.div_euclid(1_000_000);
                if let Some(o) = system_offset(*tz, secs) {
                    return o;
                }
                let secs = within_zone_tables(secs);
                match chrono::DateTime::from_timestamp(secs, 0) {
                    Some(dt) => tz.offset_from_utc_datetime(&dt.naive_utc()).fix().local_minus_utc() as i64,
                    None => 0,
                }
            }
        }
    }
    /// The zone's name (also its Arrow timestamp zone).
    pub fn name(&self) -> String {
        match self {
            Zone::Utc => "UTC".into(),
            Zone::Fixed(o) => {
                let (sign, o) = if *o < 0 { ('-', -o) } else { ('+', *o) };
                format!("{sign}{:02}:{:02}", o / 3600, o % 3600 / 60)
            }
            Zone::Named(tz) => tz.name().into(),
        }
    }
}

/// 2100-01-01T00:00:00Z: chrono-tz's tables end with the transitions of
/// 2099, after which a zone would stay on the offset its last one left (Los
/// Angeles on standard time all summer of 2100).
const FIRST_UNTABLED: i64 = 4_102_444_800;

/// The offset of zone `tz` at `secs` as StarRocks' cctz gives it: from the
/// system's zoneinfo file, as the BE reads its own. It differs from
/// chrono-tz's tables (the tz database's main data) before 1970 in zones the
/// database merged into a neighbour whose history the system keeps
/// (Debian's tzdata builds with `backzone`: Amsterdam on +00:19:32 in 1930,
/// not Brussels' +01), and from 2100 on, where chrono-tz's tables end and
/// the file's footer rule (`<+01>-1`, `EST5EDT,M3.2.0,M11.1.0`) goes on.
/// `None` when the system has no zoneinfo for the zone. The interval of
/// the last offset found is kept: a column's instants mostly fall in few.
fn system_offset(tz: chrono_tz::Tz, secs: i64) -> Option<i64> {
    struct Known {
        tz: chrono_tz::Tz,
        zone: Option<jiff::tz::TimeZone>,
        /// `offset` holds from `from` (inclusive) to `until` (exclusive).
        from: i64,
        until: i64,
        offset: i64,
    }
    thread_local! {
        static KNOWN: std::cell::RefCell<Vec<Known>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    KNOWN.with_borrow_mut(|known| {
        let k = match known.iter().position(|k| k.tz == tz) {
            Some(i) => &mut known[i],
            None => {
                let zone = jiff::tz::TimeZone::get(tz.name()).ok();
                known.push(Known { tz, zone, from: 0, until: 0, offset: 0 });
                known.last_mut().expect("just pushed")
            }
        };
        let zone = k.zone.as_ref()?;
        if k.from <= secs && secs < k.until {
            return Some(k.offset);
        }
        // jiff's instants end on 9999-12-30: no zone changes its offset in
        // the last days of a year.
        let (lo, hi) = (jiff::Timestamp::MIN.as_second(), jiff::Timestamp::MAX.as_second());
        let ts = jiff::Timestamp::from_second(secs.clamp(lo, hi)).ok()?;
        let offset = zone.to_offset(ts).seconds() as i64;
        // The last change at or before `secs`, the first after it.
        let next = jiff::Timestamp::from_second((secs + 1).clamp(lo, hi)).ok()?;
        let from = zone.preceding(next).next().map_or(i64::MIN, |t| t.timestamp().as_second());
        let until = zone.following(ts).next().map_or(i64::MAX, |t| t.timestamp().as_second());
        if secs > lo && secs < hi {
            (k.from, k.until, k.offset) = (from, until, offset);
        }
        Some(offset)
    })
}

/// [`system_offset`] without a zoneinfo file: an instant from 2100 on is
/// moved, whole days at a time, into the year of 2072–2099 whose calendar
/// is the same (leap year or not, and the weekday of January 1), where a
/// zone whose rule did not change gives the same offset (not so for zones
/// that list one-off changes into the 2080s, as Casablanca and Gaza do).
fn within_zone_tables(secs: i64) -> i64 {
    if secs < FIRST_UNTABLED {
        return secs;
    }
    let day = secs.div_euclid(86_400);
    let (y, _, _) = value::civil_from_days(day);
    let jan1 = |y: i64| value::days_from_civil(y, 1, 1);
    let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let shape = |y: i64| (leap(y), (jan1(y) + 4).rem_euclid(7));
    match (2072..2100).find(|&z| shape(z) == shape(y)) {
        Some(z) => secs - (jan1(y) - jan1(z)) * 86_400,
        None => secs,
    }
}

fn parse_offset(s: &str) -> Option<i32> {
    let b = s.as_bytes();
    if b.len() != 6 || !(b[0] == b'+' || b[0] == b'-') || b[3] != b':' {
        return None;
    }
    let h: i32 = s[1..3].parse().ok()?;
    let m: i32 = s[4..6].parse().ok()?;
    if h > 18 || m > 59 {
        return None;
    }
    let v = h * 3600 + m * 60;
    Some(if b[0] == b'-' { -v } else { v })
}

/// How one source column reaches one target column.
#[derive(Debug, Clone)]
pub struct ColumnMapping {
    /// Index in the transformed batch.
    pub source: usize,
    /// Source column name.
    pub source_name: String,
    /// Target column name (as the table spells it).
    pub target: String,
    /// Target type.
    pub ty: SrType,
    /// Whether the target accepts NULL.
    pub nullable: bool,
    /// How the value reaches the column.
    pub via: Via,
    /// The source is a Parquet UUID (16 bytes) going into a string column:
    /// sent as its canonical text, `8-4-4-4-12` lowercase hex.
    pub uuid_text: bool,
}

/// Field metadata the scan puts on a column whose Parquet type is UUID.
pub const UUID_FIELD: &str = "starload.uuid";

/// The canonical text of 16-byte UUIDs (`8-4-4-4-12` lowercase hex; NULL
/// stays NULL). Other arrays are returned as they are.
pub fn uuid_strings(a: &dyn Array) -> ArrayRef {
    let Some(f) = a.as_fixed_size_binary_opt().filter(|f| f.value_length() == 16) else {
        return arrow::array::make_array(a.to_data());
    };
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut b = arrow::array::StringBuilder::with_capacity(f.len(), f.len() * 36);
    let mut text = [0u8; 36];
    for r in 0..f.len() {
        if f.is_null(r) {
            b.append_null();
            continue;
        }
        let mut o = 0;
        for (i, byte) in f.value(r).iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                text[o] = b'-';
                o += 1;
            }
            text[o] = HEX[(byte >> 4) as usize];
            text[o + 1] = HEX[(byte & 15) as usize];
            o += 2;
        }
        b.append_value(std::str::from_utf8(&text).unwrap_or_default());
    }
    std::sync::Arc::new(b.finish())
}

/// How a source column reaches its target column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Via {
    /// The value itself.
    #[default]
    Direct,
    /// A BITMAP column from one unsigned integer per row: the source's own
    /// integers, or the ids of a global dictionary. Sent as
    /// `tmp, col = to_bitmap(tmp)`.
    ToBitmap,
    /// A BITMAP column from serialized bitmaps (pre-aggregated rows),
    /// already base64 text. Sent as `tmp, col = base64_to_bitmap(tmp)`.
    Base64Bitmap,
}

impl ColumnMapping {
    /// The type values have on the wire (the input of the column's
    /// expression).
    fn wire_ty(&self) -> SrType {
        match self.via {
            Via::Direct => self.ty.clone(),
            // Decimal text of an id, 0..=u64::MAX.
            Via::ToBitmap => SrType::LargeInt,
            Via::Base64Bitmap => SrType::Varchar(u32::MAX),
        }
    }

    /// The column's name in messages: the source column, or the target
    /// column of a dictionary expression.
    pub fn display_name(&self) -> &str {
        if self.source_name.starts_with("__starload_dict_") { &self.target } else { &self.source_name }
    }

    /// The name the body uses for the column.
    fn wire_key(&self) -> String {
        match self.via {
            Via::Direct => self.target.clone(),
            Via::ToBitmap | Via::Base64Bitmap => tmp_key(&self.target),
        }
    }
}

/// The source column the transform adds for a dictionary-encoded BITMAP
/// column (the dictionary's source expression).
pub fn dict_source_column(target: &str) -> String {
    format!("__starload_dict_{target}")
}

/// Why a batch could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncodeError {
    /// The value cannot be delivered exactly.
    Value {
        /// Column index in the mapping.
        column: usize,
        /// Row in the batch.
        row: usize,
        /// Why.
        msg: String,
    },
}

/// Encodes batches for one target table.
#[derive(Debug, Clone)]
pub struct Encoder {
    columns: Vec<ColumnMapping>,
    zone: Zone,
    csv_capable: bool,
    json_keys: Vec<Vec<u8>>,
    /// Per column: the dictionary its values go through.
    dicts: Vec<Option<std::sync::Arc<crate::dict::Lookup>>>,
    /// Bytes per CSV row seen so far, to size buffers (a hint only).
    row_bytes: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

/// Rows per parallel piece of a batch in the CSV pass.
const PAR_ROWS: usize = 2048;

/// One range of rows rendered as CSV.
struct Rendered {
    data: Vec<u8>,
    csv_rows: usize,
    /// Rows CSV cannot carry, and the part they go to instead.
    rerouted: Vec<(usize, Part)>,
}

/// Result of mapping a source schema onto a table.
#[derive(Debug, Clone)]
pub struct Mapping {
    /// Mapped columns.
    pub columns: Vec<ColumnMapping>,
    /// Target columns no source column fills (they get their default).
    pub defaulted: Vec<String>,
}

/// How source columns may map.
#[derive(Debug, Clone, Default)]
pub struct MapOptions {
    /// Source columns to leave out (those only the delete predicate uses).
    pub ignore: Vec<String>,
    /// A partial update: target columns may be left out, NOT NULL or not.
    pub partial_update: bool,
    /// The transform makes the `__op` column (`delete_when`).
    pub delete_flag: bool,
}

/// Maps source columns to target columns by name (case-insensitive) and
/// checks each pair of types. Errors name the column and both types. A
/// source column `__op` (from `delete_when`) becomes the Primary Key delete
/// flag.
pub fn map_columns(
    schema: &arrow::datatypes::Schema,
    table: &TargetTable,
    zone: Zone,
    opts: &MapOptions,
) -> Result<Mapping> {
    let mut columns = Vec::new();
    for (i, f) in schema.fields().iter().enumerate() {
        if f.name() == crate::scan::OP_COLUMN {
            if !opts.delete_flag {
                // A source's own `__op` (a CDC export's) would be StarRocks'
                // delete flag: rows holding 1 would delete their keys.
                return Err(Error::config(format!(
                    "source column `{}` is StarRocks' delete flag in a load (1 deletes the row's key): leave it \
                     out of the select (or rename it); to load its deletes, leave it out and give delete_when over \
                     it (`--delete-when \"__op = 1\"`)",
                    crate::scan::OP_COLUMN
                )));
            }
            if table.keys != crate::meta::KeysType::Primary {
                return Err(Error::config(format!(
                    "delete_when needs a Primary Key table; `{}.{}` is {}",
                    table.db,
                    table.table,
                    table.keys.name()
                )));
            }
            columns.push(ColumnMapping {
                source: i,
                source_name: f.name().clone(),
                target: crate::scan::OP_COLUMN.into(),
                ty: SrType::TinyInt,
                nullable: false,
                via: Via::Direct,
                uuid_text: false,
            });
            continue;
        }
        if let Some(target) = f.name().strip_prefix("__starload_dict_") {
            let t = table.column(target).ok_or_else(|| {
                Error::config(format!(
                    "bitmap_dict names column `{target}`, which `{}.{}` does not have",
                    table.db, table.table
                ))
            })?;
            if t.ty != SrType::Bitmap {
                return Err(Error::config(format!(
                    "bitmap_dict names column `{}`, which is {}, not BITMAP",
                    t.name, t.ty
                )));
            }
            columns.push(ColumnMapping {
                source: i,
                source_name: f.name().clone(),
                target: t.name.clone(),
                ty: t.ty.clone(),
                nullable: t.nullable,
                via: Via::ToBitmap,
                uuid_text: false,
            });
            continue;
        }
        let dict_target = schema
            .fields()
            .iter()
            .any(|g| g.name().strip_prefix("__starload_dict_").is_some_and(|t| t.eq_ignore_ascii_case(f.name())));
        if dict_target {
            // The dictionary's expression fills this column; the source
            // column of the same name is its input, not a value to load.
            continue;
        }
        let Some(t) = table.column(f.name()) else {
            if opts.ignore.iter().any(|c| c.eq_ignore_ascii_case(f.name())) {
                continue;
            }
            return Err(Error::config(format!(
                "source column `{}` ({}) has no column in `{}.{}`; drop or rename it in the transform",
                f.name(),
                f.data_type(),
                table.db,
                table.table
            )));
        };
        if columns.iter().any(|c: &ColumnMapping| c.target == t.name) {
            return Err(Error::config(format!("two source columns map to `{}`", t.name)));
        }
        let via = if t.ty == SrType::Bitmap && is_integer(f.data_type()) {
            Via::ToBitmap
        } else if t.ty.needs_expression() {
            let hint = if t.ty == SrType::Bitmap {
                format!("; give it a global dictionary (--bitmap-dict {}=<expression>) or load integers", t.name)
            } else {
                String::new()
            };
            return Err(Error::config(format!(
                "column `{}` is {}; source column `{}` ({}) cannot be loaded into it directly{hint}",
                t.name,
                t.ty,
                f.name(),
                f.data_type()
            )));
        } else {
            Via::Direct
        };
        let uuid_text = via == Via::Direct
            && f.metadata().contains_key(UUID_FIELD)
            && matches!(f.data_type(), DataType::FixedSizeBinary(16))
            && matches!(t.ty, SrType::Char(_) | SrType::Varchar(_));
        let empty = if uuid_text { new_empty_array(&DataType::Utf8) } else { new_empty_array(f.data_type()) };
        let wire = if via == Via::ToBitmap { SrType::LargeInt } else { t.ty.clone() };
        build(&empty, &wire, zone, false).map_err(|why| {
            Error::config(format!(
                "column `{}`: source type {} cannot be loaded into {} exactly: {why}",
                f.name(),
                f.data_type(),
                t.ty
            ))
        })?;
        columns.push(ColumnMapping {
            source: i,
            source_name: f.name().clone(),
            target: t.name.clone(),
            ty: t.ty.clone(),
            nullable: t.nullable,
            via,
            uuid_text,
        });
    }
    let mut defaulted = Vec::new();
    for t in &table.columns {
        if columns.iter().any(|c| c.target == t.name) {
            continue;
        }
        if t.is_key && opts.partial_update {
            return Err(Error::config(format!("a partial update must load key column `{}`", t.name)));
        }
        // Only an aggregate table's BITMAP column goes without a value
        // (`Load.java` fills an empty bitmap); a NOT NULL HLL or PERCENTILE
        // column, or a BITMAP of another table, needs one.
        let filled = matches!(t.ty, SrType::Bitmap) && table.keys == crate::meta::KeysType::Aggregate;
        if !t.nullable && t.default.is_none() && !filled && !opts.partial_update {
            return Err(Error::config(format!(
                "column `{}` of `{}.{}` is NOT NULL without a default, and no source column maps to it",
                t.name, table.db, table.table
            )));
        }
        defaulted.push(t.name.clone());
    }
    if columns.iter().all(|c| c.target == crate::scan::OP_COLUMN) {
        return Err(Error::config("no source column maps to the target table"));
    }
    Ok(Mapping { columns, defaulted })
}

impl Encoder {
    /// An encoder for the mapped columns.
    pub fn new(columns: Vec<ColumnMapping>, zone: Zone) -> Encoder {
        let csv_capable = columns.iter().all(|c| static_csv_capable(&c.wire_ty()));
        let json_keys = columns
            .iter()
            .map(|c| match (c.via, &c.ty) {
                (Via::Direct, SrType::Varbinary(_)) => json_string(&hex_key(&c.target)),
                _ => json_string(&c.wire_key()),
            })
            .collect();
        let dicts = vec![None; columns.len()];
        let row_bytes = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        Encoder { columns, zone, csv_capable, json_keys, dicts, row_bytes }
    }

    /// Routes the values of dictionary columns through their dictionaries
    /// (`target column → lookup`); every such column must get one.
    pub fn with_dictionaries(mut self, lookups: &[(String, std::sync::Arc<crate::dict::Lookup>)]) -> Result<Encoder> {
        for (i, c) in self.columns.iter().enumerate() {
            if c.source_name.starts_with("__starload_dict_") {
                let lk = lookups
                    .iter()
                    .find(|(t, _)| t.eq_ignore_ascii_case(&c.target))
                    .ok_or_else(|| Error::internal(format!("no dictionary was loaded for column `{}`", c.target)))?;
                self.dicts[i] = Some(lk.1.clone());
            }
        }
        Ok(self)
    }

    /// Whether a column goes through a dictionary.
    pub fn has_dictionary(&self, column: usize) -> bool {
        self.dicts[column].is_some()
    }

    /// The values of a column as they are sent: dictionary ids for a
    /// dictionary column, checked unsigned integers for an integer BITMAP
    /// column, otherwise the source column itself.
    pub fn wire_array(&self, batch: &RecordBatch, column: usize) -> std::result::Result<ArrayRef, EncodeError> {
        let c = &self.columns[column];
        let array = batch.column(c.source);
        if c.uuid_text {
            return Ok(uuid_strings(array.as_ref()));
        }
        if c.via != Via::ToBitmap {
            return Ok(array.clone());
        }
        let bad = |row: usize, msg: String| EncodeError::Value { column, row, msg };
        if let Some(lk) = &self.dicts[column] {
            let mut ids = Vec::with_capacity(array.len());
            if let Err(e) = lk.map_array_into(array.as_ref(), &mut ids) {
                // Name the row: the first value the dictionary lacks.
                let row = (0..array.len())
                    .find(|&r| {
                        let mut one = Vec::new();
                        lk.map_array_into(array.slice(r, 1).as_ref(), &mut one).is_err()
                    })
                    .unwrap_or(0);
                return Err(bad(row, e.message().to_string()));
            }
            return Ok(std::sync::Arc::new(UInt64Array::from(ids)));
        }
        bitmap_members(array).map_err(|(row, msg)| bad(row, msg))
    }

    /// The mapped columns.
    pub fn columns(&self) -> &[ColumnMapping] {
        &self.columns
    }

    /// The time zone.
    pub fn zone(&self) -> Zone {
        self.zone
    }

    /// Whether every column can go as CSV (otherwise every row goes as JSON).
    pub fn csv_capable(&self) -> bool {
        self.csv_capable
    }

    /// The `columns` header of a part: target names in body order. JSON maps
    /// by key; VARBINARY in JSON and strings in the escaped CSV part go in
    /// hex through `unhex`. Every name is backquoted.
    pub fn columns_header(&self, part: Part) -> String {
        let names: Vec<String> = self
            .columns
            .iter()
            .map(|c| {
                let t = quote_ident(&c.target);
                match c.via {
                    Via::Direct => {}
                    Via::ToBitmap => return format!("{k}, {t} = to_bitmap({k})", k = quote_ident(&c.wire_key())),
                    Via::Base64Bitmap => {
                        return format!("{k}, {t} = base64_to_bitmap({k})", k = quote_ident(&c.wire_key()));
                    }
                }
                let b64 = match part {
                    Part::Csv => false,
                    Part::Csv64 => c.ty.is_string(),
                    Part::Json => matches!(c.ty, SrType::Varbinary(_)),
                };
                if b64 { format!("{k}, {t} = unhex({k})", k = quote_ident(&hex_key(&c.target))) } else { t }
            })
            .collect();
        names.join(", ")
    }

    /// Encodes a batch with every row in at least part `floor` (atomic loads
    /// need one body kind for the whole transaction).
    pub fn encode_with_floor(
        &self,
        batch: &RecordBatch,
        floor: Part,
        out: &mut Encoded,
    ) -> std::result::Result<(), EncodeError> {
        self.encode_inner(batch, floor, out, true)
    }

    /// Encodes a batch, routing each row to the first part that carries all
    /// its values exactly: CSV; CSV with string columns in hex (for a
    /// string holding a separator byte or equal to `\N`); JSON (for nested
    /// values CSV cannot carry, STRUCT columns…). CSV bodies get whole rows;
    /// JSON rows are objects joined by `,` (no enclosing brackets).
    pub fn encode(&self, batch: &RecordBatch, out: &mut Encoded) -> std::result::Result<(), EncodeError> {
        self.encode_inner(batch, Part::Csv, out, true)
    }

    /// [`Encoder::encode`], splitting the batch across the pool's threads
    /// only when `split`. The pieces of a split batch are joined with one
    /// more copy of all but the first: worth it only when nothing else keeps
    /// the threads busy (when other batches are waiting, pass `false`).
    pub fn encode_split(
        &self,
        batch: &RecordBatch,
        out: &mut Encoded,
        split: bool,
    ) -> std::result::Result<(), EncodeError> {
        self.encode_inner(batch, Part::Csv, out, split)
    }

    fn encode_inner(
        &self,
        batch: &RecordBatch,
        floor: Part,
        out: &mut Encoded,
        split: bool,
    ) -> std::result::Result<(), EncodeError> {
        let rows = batch.num_rows();
        if rows == 0 {
            return Ok(());
        }
        let wire: Vec<ArrayRef> = self
            .columns
            .iter()
            .enumerate()
            .map(|(ci, _)| self.wire_array(batch, ci))
            .collect::<std::result::Result<_, _>>()?;
        let writers: Vec<Writer<'_>> = self
            .columns
            .iter()
            .zip(&wire)
            .enumerate()
            .map(|(ci, (c, a))| {
                build(a, &c.wire_ty(), self.zone, false).map_err(|msg| EncodeError::Value { column: ci, row: 0, msg })
            })
            .collect::<std::result::Result<_, _>>()?;
        for (ci, (w, c)) in writers.iter().zip(&self.columns).enumerate() {
            if !c.nullable
                && let Some(n) = &w.nulls
                && n.null_count() > 0
                && let Some(r) = (0..rows).find(|&r| n.is_null(r))
            {
                return Err(EncodeError::Value {
                    column: ci,
                    row: r,
                    msg: format!("NULL for NOT NULL column `{}`", c.target),
                });
            }
        }
        for (ci, (a, c)) in wire.iter().zip(&self.columns).enumerate() {
            if matches!(c.ty, SrType::Char(_))
                && let Some(r) = first_nul_row(a)
            {
                return Err(EncodeError::Value {
                    column: ci,
                    row: r,
                    msg: format!(
                        "a NUL byte in a value for CHAR column `{}`: StarRocks stores CHAR padded with NUL bytes \
                         and reads it back cut at the first one; load it into VARCHAR",
                        c.target
                    ),
                });
            }
        }
        let mut route = vec![floor; rows];
        // Every row went to CSV: passes 2 and 3 need not look for theirs.
        let mut all_csv = floor == Part::Csv;
        if self.csv_capable && floor != Part::Json {
            // Pass 1: CSV, noting the rows CSV cannot carry. Ranges of rows
            // render in parallel; each range's text is appended in row order.
            let hint = self.row_bytes_hint();
            // One piece per encoder thread at most: pieces after the first
            // are copied once more when joined.
            let threads = if split { rayon::current_num_threads().max(1) } else { 1 };
            let pieces = (rows / PAR_ROWS).clamp(1, threads);
            let ranges: Vec<std::ops::Range<usize>> =
                (0..pieces).map(|k| k * rows / pieces..(k + 1) * rows / pieces).collect();
            // Only the rows' routes matter under a stronger floor: the
            // row-by-row pass finds them. Otherwise blocks of rows render a
            // column at a time (block.rs), with the same text and checks.
            let cols = block::columns(&writers);
            let render = |range: std::ops::Range<usize>| {
                if floor == Part::Csv {
                    block::render_range(&cols, range, hint)
                } else {
                    render_rows(&writers, range, hint)
                }
            };
            let rendered: Vec<Rendered> = if pieces > 1 {
                ranges.into_par_iter().map(render).collect::<std::result::Result<_, _>>()?
            } else {
                ranges.into_iter().map(render).collect::<std::result::Result<_, _>>()?
            };
            let buf = &mut out.parts[Part::Csv as usize];
            let total: usize = rendered.iter().map(|p| p.data.len()).sum();
            if floor == Part::Csv && !buf.data.is_empty() {
                buf.data.reserve(total);
            }
            for piece in rendered {
                all_csv &= piece.rerouted.is_empty();
                for (r, p) in piece.rerouted {
                    route[r] = route[r].max(p);
                }
                // Under a stronger floor every row goes to the floor's part
                // (pass 2 or 3); this pass only found the rows that need more.
                if floor != Part::Csv {
                    continue;
                }
                if buf.data.is_empty() {
                    crate::bufpool::give(std::mem::replace(&mut buf.data, piece.data));
                    buf.data.reserve(total - buf.data.len());
                } else {
                    buf.data.extend_from_slice(&piece.data);
                    crate::bufpool::give(piece.data);
                }
                buf.rows += piece.csv_rows;
            }
            if rows > 0 && total > 0 {
                self.note_row_bytes(total / rows);
            }
        } else {
            route.fill(Part::Json);
            all_csv = false;
        }
        if all_csv {
            return Ok(());
        }
        // Pass 2: the escaped CSV part (string columns in hex).
        let csv64: Vec<usize> = (0..rows).filter(|&r| route[r] == Part::Csv64).collect();
        if !csv64.is_empty() {
            let buf = &mut out.parts[Part::Csv64 as usize];
            'rows: for &r in &csv64 {
                let row_start = buf.data.len();
                for (i, (w, c)) in writers.iter().zip(&self.columns).enumerate() {
                    if i > 0 {
                        buf.data.push(COLUMN_SEPARATOR);
                    }
                    let mode = if c.via == Via::Direct && c.ty.is_string() { Mode::Csv64 } else { Mode::Csv };
                    match w.write(r, mode, &mut buf.data) {
                        Ok(()) => {}
                        // A string too long for its hex field: the row goes as JSON.
                        Err(CellError::NotCsv { top_string: false, .. }) if mode == Mode::Csv64 => {
                            buf.data.truncate(row_start);
                            route[r] = Part::Json;
                            continue 'rows;
                        }
                        Err(CellError::Bad(msg) | CellError::NotCsv { why: msg, .. }) => {
                            return Err(EncodeError::Value { column: i, row: r, msg });
                        }
                    }
                }
                buf.data.push(ROW_DELIMITER);
                buf.rows += 1;
            }
        }
        // Pass 3: JSON.
        let json: Vec<usize> = (0..rows).filter(|&r| route[r] == Part::Json).collect();
        if !json.is_empty() {
            let mut cells: Vec<Cells> = Vec::with_capacity(writers.len());
            for (ci, w) in writers.iter().enumerate() {
                let mut c = Cells::with_capacity(json.len());
                for &r in &json {
                    w.write(r, Mode::Json, &mut c.data).map_err(|e| match e {
                        CellError::Bad(msg) | CellError::NotCsv { why: msg, .. } => EncodeError::Value {
                            column: ci,
                            row: r,
                            msg: format!("{msg} (the row holds values neither CSV nor JSON can carry exactly)"),
                        },
                    })?;
                    c.ends.push(c.data.len());
                }
                cells.push(c);
            }
            let buf = &mut out.parts[Part::Json as usize];
            for j in 0..json.len() {
                if buf.rows > 0 {
                    buf.data.push(b',');
                }
                buf.data.push(b'{');
                for (i, c) in cells.iter().enumerate() {
                    if i > 0 {
                        buf.data.push(b',');
                    }
                    buf.data.extend_from_slice(&self.json_keys[i]);
                    buf.data.push(b':');
                    buf.data.extend_from_slice(c.get(j));
                }
                buf.data.push(b'}');
                buf.rows += 1;
            }
        }
        Ok(())
    }
}

/// The first row of a string or binary array whose value holds a NUL byte
/// (`None` for other types).
fn first_nul_row(a: &ArrayRef) -> Option<usize> {
    let has = |b: &[u8]| memchr::memchr(0, b).is_some();
    // Offset layouts: one look at all the values first.
    let data = match a.data_type() {
        DataType::Utf8 => Some(a.as_string::<i32>().value_data()),
        DataType::LargeUtf8 => Some(a.as_string::<i64>().value_data()),
        DataType::Binary => Some(a.as_binary::<i32>().value_data()),
        DataType::LargeBinary => Some(a.as_binary::<i64>().value_data()),
        _ => None,
    };
    if data.is_some_and(|d| !has(d)) {
        return None;
    }
    if let Some(s) = strs(a) {
        return (0..a.len()).find(|&i| a.is_valid(i) && has(s.get(i).as_bytes()));
    }
    if let Some(b) = bins(a) {
        return (0..a.len()).find(|&i| a.is_valid(i) && has(b.get(i)));
    }
    match a.data_type() {
        DataType::Dictionary(_, v) => first_nul_row(&arrow::compute::cast(a, v).ok()?),
        _ => None,
    }
}

/// The CSV pass row by row: each row's fields appended in turn; rows CSV
/// cannot carry are left out and listed. Used to find the routes under a
/// stronger floor, and as the reference the block pass is tested against.
fn render_rows(
    writers: &[Writer<'_>],
    range: std::ops::Range<usize>,
    row_bytes: usize,
) -> std::result::Result<Rendered, EncodeError> {
    let one_column = writers.len() == 1;
    let mut data = Vec::with_capacity(range.len() * row_bytes);
    let (mut csv_rows, mut rerouted) = (0usize, Vec::new());
    for r in range {
        let row_start = data.len();
        let mut reroute: Option<Part> = None;
        for (ci, w) in writers.iter().enumerate() {
            if ci > 0 {
                data.push(COLUMN_SEPARATOR);
            }
            match w.write_csv(r, &mut data) {
                Ok(()) => {}
                Err(CellError::NotCsv { top_string, .. }) => {
                    let p = if top_string { Part::Csv64 } else { Part::Json };
                    reroute = Some(reroute.map_or(p, |q| q.max(p)));
                }
                Err(CellError::Bad(msg)) => return Err(EncodeError::Value { column: ci, row: r, msg }),
            }
        }
        // A row of one empty field is an empty line, which the BE skips:
        // send it as JSON.
        if reroute.is_none() && one_column && data.len() == row_start {
            reroute = Some(Part::Json);
        }
        match reroute {
            None => {
                data.push(ROW_DELIMITER);
                csv_rows += 1;
            }
            Some(p) => {
                data.truncate(row_start);
                rerouted.push((r, p));
            }
        }
    }
    Ok(Rendered { data, csv_rows, rerouted })
}

impl Encoder {
    /// Expected CSV bytes per row (columns × 8 until a batch was seen).
    fn row_bytes_hint(&self) -> usize {
        match self.row_bytes.load(std::sync::atomic::Ordering::Relaxed) {
            0 => self.columns.len() * 8 + 1,
            n => n + n / 8 + 1,
        }
    }

    fn note_row_bytes(&self, n: usize) {
        self.row_bytes.store(n, std::sync::atomic::Ordering::Relaxed);
    }

    /// The canonical text of every value of one mapped column (NULL as
    /// `None`), as the JSON format would send it, strings unquoted.
    pub fn column_texts(
        &self,
        batch: &RecordBatch,
        column: usize,
    ) -> std::result::Result<Vec<Option<String>>, EncodeError> {
        let c = &self.columns[column];
        let a = self.wire_array(batch, column)?;
        let w = build(&a, &c.wire_ty(), self.zone, false).map_err(|msg| EncodeError::Value { column, row: 0, msg })?;
        let mut out = Vec::with_capacity(batch.num_rows());
        let mut buf = Vec::new();
        for r in 0..batch.num_rows() {
            if w.is_null(r) {
                out.push(None);
                continue;
            }
            buf.clear();
            w.write(r, Mode::Json, &mut buf).map_err(|e| match e {
                CellError::Bad(msg) | CellError::NotCsv { why: msg, .. } => EncodeError::Value { column, row: r, msg },
            })?;
            let text = String::from_utf8_lossy(&buf).into_owned();
            out.push(Some(match serde_json::from_str::<serde_json::Value>(&text) {
                Ok(serde_json::Value::String(s)) => s,
                _ => text,
            }));
        }
        Ok(out)
    }
}

/// A Stream Load of a chunk: the rows CSV carries, the rows that need their
/// strings escaped (hex), the rows that need JSON. Each goes under its own label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Part {
    /// Plain CSV.
    Csv = 0,
    /// CSV with string columns hex-encoded and decoded by `unhex` (named
    /// `csv-base64` in journals and reports, which it once was; `unhex`
    /// keeps an empty string empty where `from_base64('')` is NULL).
    Csv64 = 1,
    /// JSON.
    Json = 2,
}

impl Part {
    /// All parts, in load order.
    pub const ALL: [Part; 3] = [Part::Csv, Part::Csv64, Part::Json];

    /// The wire format.
    pub fn format(self) -> WireFormat {
        match self {
            Part::Csv | Part::Csv64 => WireFormat::Csv,
            Part::Json => WireFormat::Json,
        }
    }

    /// The label suffix (`""`, `_b`, `_j`).
    pub fn suffix(self) -> &'static str {
        match self {
            Part::Csv => "",
            Part::Csv64 => "_b",
            Part::Json => "_j",
        }
    }

    /// A short name.
    pub fn name(self) -> &'static str {
        match self {
            Part::Csv => "csv",
            Part::Csv64 => "csv-base64",
            Part::Json => "json",
        }
    }

    /// The part of a name.
    pub fn from_name(s: &str) -> Option<Part> {
        Part::ALL.into_iter().find(|p| p.name() == s)
    }
}

/// One part's bytes.
#[derive(Debug, Default, Clone)]
pub struct PartBuf {
    /// Body bytes.
    pub data: Vec<u8>,
    /// Rows in `data`.
    pub rows: usize,
}

/// The output of [`Encoder::encode`], by [`Part`].
#[derive(Debug, Default, Clone)]
pub struct Encoded {
    /// Per part.
    pub parts: [PartBuf; 3],
}

/// A column name as the FE's SQL parser reads it whatever it is (`order`,
/// `a-b`): in backquotes.
pub(crate) fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

fn hex_key(name: &str) -> String {
    format!("__starload_hex_{name}")
}

fn tmp_key(name: &str) -> String {
    format!("__starload_bm_{name}")
}

fn is_integer(dt: &DataType) -> bool {
    use DataType as D;
    matches!(dt, D::Int8 | D::Int16 | D::Int32 | D::Int64 | D::UInt8 | D::UInt16 | D::UInt32 | D::UInt64)
}

/// An integer column as BITMAP members: `UInt64`, or the first negative
/// value's row and why.
fn bitmap_members(array: &ArrayRef) -> std::result::Result<ArrayRef, (usize, String)> {
    use arrow::datatypes::*;
    fn signed<T: ArrowPrimitiveType>(a: &ArrayRef) -> std::result::Result<ArrayRef, (usize, String)>
    where
        T::Native: Into<i64>,
    {
        let p = a.as_primitive::<T>();
        let mut out = Vec::with_capacity(p.len());
        for (r, v) in p.iter().enumerate() {
            match v {
                None => out.push(None),
                Some(v) => {
                    let v: i64 = v.into();
                    if v < 0 {
                        return Err((r, format!("{v} cannot be a BITMAP member (BITMAP holds 0 to 2^64-1)")));
                    }
                    out.push(Some(v as u64));
                }
            }
        }
        Ok(std::sync::Arc::new(UInt64Array::from(out)))
    }
    match array.data_type() {
        DataType::Int8 => signed::<Int8Type>(array),
        DataType::Int16 => signed::<Int16Type>(array),
        DataType::Int32 => signed::<Int32Type>(array),
        DataType::Int64 => signed::<Int64Type>(array),
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => {
            arrow::compute::cast(array, &DataType::UInt64).map_err(|e| (0, e.to_string()))
        }
        other => Err((0, format!("{other} values cannot be BITMAP members"))),
    }
}

/// Whether a target type can ever go as CSV.
fn static_csv_capable(ty: &SrType) -> bool {
    fn nested_ok(t: &SrType, in_array: bool, in_map: bool) -> bool {
        match t {
            SrType::Struct(_) => false,
            SrType::Json => !(in_array || in_map),
            SrType::Array(e) => !in_map && nested_ok(e, true, in_map),
            SrType::Map(k, v) => !in_array && nested_ok(k, in_array, true) && nested_ok(v, in_array, true),
            _ => true,
        }
    }
    nested_ok(ty, false, false)
}

struct Cells {
    data: Vec<u8>,
    ends: Vec<usize>,
}

impl Cells {
    fn with_capacity(rows: usize) -> Cells {
        Cells { data: Vec::with_capacity(rows * 8), ends: Vec::with_capacity(rows) }
    }
    fn get(&self, r: usize) -> &[u8] {
        let start = if r == 0 { 0 } else { self.ends[r - 1] };
        &self.data[start..self.ends[r]]
    }
}

/// Where a value is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// A top-level CSV field.
    Csv,
    /// A top-level CSV field of a string column, in hex (`unhex`).
    Csv64,
    /// An element inside ARRAY/MAP text in CSV (quoted form).
    CsvElem,
    /// A value in a JSON-format row, parsed per target type.
    Json,
    /// A value inside a JSON column's document.
    Doc,
}

#[derive(Debug)]
enum CellError {
    /// CSV cannot carry the value. `top_string`: it is a top-level string,
    /// which a hex round trip (`unhex`) can carry in CSV.
    NotCsv {
        top_string: bool,
        why: String,
    },
    Bad(String),
}

type CellResult = std::result::Result<(), CellError>;

fn bad<T>(msg: impl Into<String>) -> std::result::Result<T, CellError> {
    Err(CellError::Bad(msg.into()))
}

/// Integer sources.
enum Ints<'a> {
    I8(&'a [i8]),
    I16(&'a [i16]),
    I32(&'a [i32]),
    I64(&'a [i64]),
    U8(&'a [u8]),
    U16(&'a [u16]),
    U32(&'a [u32]),
    U64(&'a [u64]),
}

impl Ints<'_> {
    #[inline]
    fn get(&self, i: usize) -> i128 {
        match self {
            Ints::I8(v) => v[i] as i128,
            Ints::I16(v) => v[i] as i128,
            Ints::I32(v) => v[i] as i128,
            Ints::I64(v) => v[i] as i128,
            Ints::U8(v) => v[i] as i128,
            Ints::U16(v) => v[i] as i128,
            Ints::U32(v) => v[i] as i128,
            Ints::U64(v) => v[i] as i128,
        }
    }
    fn from(a: &dyn Array) -> Option<Ints<'_>> {
        use arrow::datatypes::*;
        Some(match a.data_type() {
            DataType::Int8 => Ints::I8(a.as_primitive::<Int8Type>().values()),
            DataType::Int16 => Ints::I16(a.as_primitive::<Int16Type>().values()),
            DataType::Int32 => Ints::I32(a.as_primitive::<Int32Type>().values()),
            DataType::Int64 => Ints::I64(a.as_primitive::<Int64Type>().values()),
            DataType::UInt8 => Ints::U8(a.as_primitive::<UInt8Type>().values()),
            DataType::UInt16 => Ints::U16(a.as_primitive::<UInt16Type>().values()),
            DataType::UInt32 => Ints::U32(a.as_primitive::<UInt32Type>().values()),
            DataType::UInt64 => Ints::U64(a.as_primitive::<UInt64Type>().values()),
            _ => return None,
        })
    }
    /// The static range of the source type.
    fn range(dt: &DataType) -> (i128, i128) {
        match dt {
            DataType::Int8 => (i8::MIN as i128, i8::MAX as i128),
            DataType::Int16 => (i16::MIN as i128, i16::MAX as i128),
            DataType::Int32 => (i32::MIN as i128, i32::MAX as i128),
            DataType::Int64 => (i64::MIN as i128, i64::MAX as i128),
            DataType::UInt8 => (0, u8::MAX as i128),
            DataType::UInt16 => (0, u16::MAX as i128),
            DataType::UInt32 => (0, u32::MAX as i128),
            DataType::UInt64 => (0, u64::MAX as i128),
            _ => (0, 0),
        }
    }
}

/// What an integer becomes.
#[derive(Clone, Copy)]
enum IntTo {
    /// An integer column with this range (checked unless the source fits).
    Int { lo: i128, hi: i128, check: bool },
    /// BOOLEAN (only 0 and 1).
    Bool,
    /// DECIMAL: |v| < max.
    Decimal { max: i128 },
    /// FLOAT/DOUBLE: exact up to 2^bits.
    Float { bits: u32 },
    /// VARCHAR(n).
    Str { max: usize },
    /// A number inside a JSON document.
    Doc,
}

/// String sources.
enum Strs<'a> {
    Utf8(&'a StringArray),
    Large(&'a LargeStringArray),
    View(&'a StringViewArray),
}

impl Strs<'_> {
    #[inline]
    fn get(&self, i: usize) -> &str {
        match self {
            Strs::Utf8(a) => a.value(i),
            Strs::Large(a) => a.value(i),
            Strs::View(a) => a.value(i),
        }
    }
}

/// Binary sources.
enum Bins<'a> {
    Bin(&'a BinaryArray),
    Large(&'a LargeBinaryArray),
    View(&'a BinaryViewArray),
    Fixed(&'a FixedSizeBinaryArray),
}

impl Bins<'_> {
    #[inline]
    fn get(&self, i: usize) -> &[u8] {
        match self {
            Bins::Bin(a) => a.value(i),
            Bins::Large(a) => a.value(i),
            Bins::View(a) => a.value(i),
            Bins::Fixed(a) => a.value(i),
        }
    }
}

/// What a string becomes.
enum StrTo {
    /// CHAR/VARCHAR(n).
    Str { max: usize },
    /// JSON column: the string holds JSON text.
    JsonText,
    /// A JSON string inside a JSON document.
    Doc,
    /// VARBINARY: the UTF-8 bytes (`nested`: inside an ARRAY, MAP or
    /// STRUCT, see [`write_binary`]).
    Binary { max: Option<usize>, nested: bool },
    /// Any other scalar: parsed with the BE's rules, sent canonically.
    Parse(SrType),
}

/// What binary data becomes.
enum BinTo {
    /// VARBINARY(n), base64 on the wire (`nested`: inside an ARRAY, MAP or
    /// STRUCT, see [`write_binary`]).
    Binary { max: Option<usize>, nested: bool },
    /// CHAR/VARCHAR(n): must be valid UTF-8.
    Str { max: usize },
    /// A base64 string inside a JSON document.
    Doc,
}

/// Offsets of list-like arrays.
enum Offs<'a> {
    I32(&'a [i32]),
    I64(&'a [i64]),
    Fixed(usize),
}

impl Offs<'_> {
    #[inline]
    fn range(&self, i: usize) -> (usize, usize) {
        match self {
            Offs::I32(o) => (o[i] as usize, o[i + 1] as usize),
            Offs::I64(o) => (o[i] as usize, o[i + 1] as usize),
            Offs::Fixed(n) => (i * n, (i + 1) * n),
        }
    }
}

/// A writer over one array for one target type, with the array's nulls.
struct Writer<'a> {
    nulls: Option<arrow::buffer::NullBuffer>,
    w: W<'a>,
}

/// How a column's values are written. `doc` on `List`, `Map` and `Struct`:
/// part of a JSON column's document (its values keep their JSON types in
/// every body kind). `DecInt`: a decimal into an integer column (`to` is
/// `IntTo::Int`), exact when the value has no fraction. `DecText`: a decimal
/// as its text with every scale digit (`1.50` for DECIMAL(5,2), as StarRocks
/// casts it), into CHAR/VARCHAR (`to` is `StrTo::Str`) or FLOAT/DOUBLE
/// (`StrTo::Parse`: exact when the float it parses to prints as the same
/// number, like text sources). `AsText`: a date or timestamp into CHAR/VARCHAR,
/// the text `inner` writes for a DATE or DATETIME column (StarRocks' own cast
/// text), within `max` bytes.
enum W<'a> {
    Null,
    Bool { a: &'a BooleanArray, to_int: bool },
    Int { v: Ints<'a>, to: IntTo },
    Float { v: Floats<'a>, to: FloatTo },
    Dec { v: Decs<'a>, scale: u8, to_scale: u8, max: i128, doc: bool },
    DecInt { v: Decs<'a>, scale: u8, to: IntTo },
    DecText { v: Decs<'a>, scale: u8, to: StrTo },
    Date32 { v: &'a [i32], datetime: bool },
    Date64 { v: &'a [i64], datetime: bool },
    Ts { v: &'a [i64], unit: TimeUnit, zone: Option<Zone> },
    AsText { inner: Box<Writer<'a>>, max: usize },
    Time { v: Vec<i64>, unit: TimeUnit, max: usize },
    Str { a: Strs<'a>, to: StrTo },
    Bin { a: Bins<'a>, to: BinTo },
    Dict { keys: Ints<'a>, values: Box<Writer<'a>> },
    List { offs: Offs<'a>, child: Box<Writer<'a>>, doc: bool },
    Map { offs: Offs<'a>, keys: Box<Writer<'a>>, values: Box<Writer<'a>>, doc: bool },
    Struct { fields: Vec<(Vec<u8>, Writer<'a>)>, doc: bool },
}

enum Floats<'a> {
    F16(&'a [<arrow::datatypes::Float16Type as arrow::datatypes::ArrowPrimitiveType>::Native]),
    F32(&'a [f32]),
    F64(&'a [f64]),
}

impl Floats<'_> {
    #[inline]
    fn get(&self, i: usize) -> f64 {
        match self {
            Floats::F16(v) => v[i].to_f64(),
            Floats::F32(v) => v[i] as f64,
            Floats::F64(v) => v[i],
        }
    }
}

/// What a float becomes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum FloatTo {
    /// FLOAT: the value must be exactly an f32.
    Float,
    /// DOUBLE.
    Double,
    /// A JSON number in a document.
    Doc,
}

enum Decs<'a> {
    D32(&'a [i32]),
    D64(&'a [i64]),
    D128(&'a [i128]),
    D256(&'a [arrow::datatypes::i256]),
}

impl Decs<'_> {
    #[inline]
    fn get(&self, i: usize) -> Option<i128> {
        match self {
            Decs::D32(v) => Some(v[i] as i128),
            Decs::D64(v) => Some(v[i] as i128),
            Decs::D128(v) => Some(v[i]),
            Decs::D256(v) => v[i].to_i128(),
        }
    }

    /// Value `i` of a column of `scale` as an i128 and its scale: a
    /// Decimal256 value past 128 bits drops trailing fraction zeros until
    /// it fits (`1.5` of scale 40 is 15 of scale 1); `None` when it cannot.
    fn get_scaled(&self, i: usize, scale: u8) -> Option<(i128, u8)> {
        let Decs::D256(v) = self else { return self.get(i).map(|x| (x, scale)) };
        let (mut x, mut s) = (v[i], scale);
        let ten = arrow::datatypes::i256::from_i128(10);
        loop {
            if let Some(y) = x.to_i128() {
                return Some((y, s));
            }
            if s == 0 || x.checked_rem(ten)? != arrow::datatypes::i256::ZERO {
                return None;
            }
            x = x.checked_div(ten)?;
            s -= 1;
        }
    }
}

fn ts_values(a: &ArrayRef, unit: TimeUnit) -> Option<&[i64]> {
    use arrow::datatypes::*;
    Some(match unit {
        TimeUnit::Second => a.as_primitive_opt::<TimestampSecondType>()?.values(),
        TimeUnit::Millisecond => a.as_primitive_opt::<TimestampMillisecondType>()?.values(),
        TimeUnit::Microsecond => a.as_primitive_opt::<TimestampMicrosecondType>()?.values(),
        TimeUnit::Nanosecond => a.as_primitive_opt::<TimestampNanosecondType>()?.values(),
    })
}

fn strs(a: &ArrayRef) -> Option<Strs<'_>> {
    Some(match a.data_type() {
        DataType::Utf8 => Strs::Utf8(a.as_string::<i32>()),
        DataType::LargeUtf8 => Strs::Large(a.as_string::<i64>()),
        DataType::Utf8View => Strs::View(a.as_string_view()),
        _ => return None,
    })
}

fn bins(a: &ArrayRef) -> Option<Bins<'_>> {
    Some(match a.data_type() {
        DataType::Binary => Bins::Bin(a.as_binary::<i32>()),
        DataType::LargeBinary => Bins::Large(a.as_binary::<i64>()),
        DataType::BinaryView => Bins::View(a.as_binary_view()),
        DataType::FixedSizeBinary(_) => Bins::Fixed(a.as_fixed_size_binary()),
        _ => return None,
    })
}

fn list_parts(a: &ArrayRef) -> Option<(Offs<'_>, &ArrayRef)> {
    Some(match a.data_type() {
        DataType::List(_) => {
            let l = a.as_list::<i32>();
            (Offs::I32(l.value_offsets()), l.values())
        }
        DataType::LargeList(_) => {
            let l = a.as_list::<i64>();
            (Offs::I64(l.value_offsets()), l.values())
        }
        DataType::FixedSizeList(_, n) => {
            let l = a.as_fixed_size_list();
            (Offs::Fixed(*n as usize), l.values())
        }
        _ => return None,
    })
}

fn floats(a: &ArrayRef) -> Option<Floats<'_>> {
    use arrow::datatypes::*;
    Some(match a.data_type() {
        DataType::Float16 => Floats::F16(a.as_primitive::<Float16Type>().values()),
        DataType::Float32 => Floats::F32(a.as_primitive::<Float32Type>().values()),
        DataType::Float64 => Floats::F64(a.as_primitive::<Float64Type>().values()),
        _ => return None,
    })
}

fn decs(a: &ArrayRef) -> std::result::Result<(Decs<'_>, u8), String> {
    use arrow::datatypes::*;
    let (v, s) = match a.data_type() {
        DataType::Decimal32(_, s) => (Decs::D32(a.as_primitive::<Decimal32Type>().values()), *s),
        DataType::Decimal64(_, s) => (Decs::D64(a.as_primitive::<Decimal64Type>().values()), *s),
        DataType::Decimal128(_, s) => (Decs::D128(a.as_primitive::<Decimal128Type>().values()), *s),
        DataType::Decimal256(_, s) => (Decs::D256(a.as_primitive::<Decimal256Type>().values()), *s),
        other => return Err(format!("{other} is not a decimal")),
    };
    let s = u8::try_from(s).map_err(|_| {
        format!("{} has a negative scale; cast it to a DECIMAL with scale 0 or more in the transform", a.data_type())
    })?;
    Ok((v, s))
}

/// Marks a VARBINARY writer as one inside an ARRAY, MAP or STRUCT.
fn nested(mut w: Writer<'_>) -> Writer<'_> {
    match &mut w.w {
        W::Bin { to: BinTo::Binary { nested, .. }, .. } | W::Str { to: StrTo::Binary { nested, .. }, .. } => {
            *nested = true
        }
        W::Dict { values, .. } => {
            let v = std::mem::replace(values.as_mut(), Writer { w: W::Null, nulls: None });
            **values = nested(v);
        }
        _ => {}
    }
    w
}

/// Builds the writer for `array` into `ty`. Errors explain why a pair of
/// types cannot be loaded exactly.
fn build<'a>(array: &'a ArrayRef, ty: &SrType, zone: Zone, doc: bool) -> std::result::Result<Writer<'a>, String> {
    use DataType as D;
    if doc {
        return build_doc(array, zone);
    }
    let dt = array.data_type();
    let w = match (dt, ty) {
        (D::Null, _) => W::Null,
        (D::Boolean, SrType::Boolean) => W::Bool { a: array.as_boolean(), to_int: false },
        (D::Boolean, t) if t.int_range().is_some() => W::Bool { a: array.as_boolean(), to_int: true },
        (D::Int8 | D::Int16 | D::Int32 | D::Int64 | D::UInt8 | D::UInt16 | D::UInt32 | D::UInt64, t) => {
            let (slo, shi) = Ints::range(dt);
            let to = match t {
                _ if t.int_range().is_some() => {
                    let (lo, hi) = t.int_range().unwrap_or_default();
                    IntTo::Int { lo, hi, check: slo < lo || shi > hi }
                }
                SrType::Boolean => IntTo::Bool,
                SrType::Decimal { precision, scale } => IntTo::Decimal { max: 10i128.pow((precision - scale) as u32) },
                SrType::Float => IntTo::Float { bits: 24 },
                SrType::Double => IntTo::Float { bits: 53 },
                SrType::Char(n) | SrType::Varchar(n) => IntTo::Str { max: *n as usize },
                _ => return Err(format!("an integer cannot be loaded into {t}")),
            };
            W::Int { v: Ints::from(array.as_ref()).ok_or("not an integer array")?, to }
        }
        (D::Float16 | D::Float32 | D::Float64, SrType::Float | SrType::Double) => W::Float {
            v: floats(array).ok_or("bad float array")?,
            to: if matches!(ty, SrType::Float) { FloatTo::Float } else { FloatTo::Double },
        },
        (
            D::Decimal32(..) | D::Decimal64(..) | D::Decimal128(..) | D::Decimal256(..),
            SrType::Decimal { precision, scale },
        ) => {
            let (v, s) = decs(array)?;
            W::Dec { v, scale: s, to_scale: *scale, max: 10i128.pow(*precision as u32), doc: false }
        }
        (D::Decimal32(..) | D::Decimal64(..) | D::Decimal128(..) | D::Decimal256(..), t) if t.int_range().is_some() => {
            let (v, scale) = decs(array)?;
            let (lo, hi) = t.int_range().unwrap_or_default();
            W::DecInt { v, scale, to: IntTo::Int { lo, hi, check: true } }
        }
        (D::Decimal32(..) | D::Decimal64(..) | D::Decimal128(..) | D::Decimal256(..), t) => {
            let (v, scale) = decs(array)?;
            let to = match t {
                SrType::Char(n) | SrType::Varchar(n) => StrTo::Str { max: *n as usize },
                SrType::Float | SrType::Double => StrTo::Parse(t.clone()),
                _ => return Err(format!("a decimal cannot be loaded into {t}")),
            };
            W::DecText { v, scale, to }
        }
        (D::Date32, SrType::Date | SrType::Datetime) => W::Date32 {
            v: array.as_primitive::<arrow::datatypes::Date32Type>().values(),
            datetime: matches!(ty, SrType::Datetime),
        },
        (D::Date64, SrType::Date | SrType::Datetime) => W::Date64 {
            v: array.as_primitive::<arrow::datatypes::Date64Type>().values(),
            datetime: matches!(ty, SrType::Datetime),
        },
        (D::Timestamp(unit, tz), SrType::Datetime) => {
            let v = ts_values(array, *unit).ok_or("bad timestamp array")?;
            W::Ts { v, unit: *unit, zone: tz.as_ref().map(|_| zone) }
        }
        (D::Date32 | D::Date64 | D::Timestamp(..), SrType::Char(n) | SrType::Varchar(n)) => {
            let as_ty = if matches!(dt, D::Timestamp(..)) { SrType::Datetime } else { SrType::Date };
            W::AsText { inner: Box::new(build(array, &as_ty, zone, false)?), max: *n as usize }
        }
        (D::Utf8 | D::LargeUtf8 | D::Utf8View, t) => {
            let a = strs(array).ok_or("bad string array")?;
            let to = match t {
                SrType::Char(n) | SrType::Varchar(n) => StrTo::Str { max: *n as usize },
                SrType::Json => StrTo::JsonText,
                SrType::Varbinary(n) => StrTo::Binary { max: n.map(|n| n as usize), nested: false },
                SrType::Boolean
                | SrType::TinyInt
                | SrType::SmallInt
                | SrType::Int
                | SrType::BigInt
                | SrType::LargeInt
                | SrType::Decimal { .. }
                | SrType::Date
                | SrType::Datetime
                | SrType::Float
                | SrType::Double => StrTo::Parse(t.clone()),
                _ => return Err(format!("a string cannot be loaded into {t}")),
            };
            W::Str { a, to }
        }
        (D::Binary | D::LargeBinary | D::BinaryView | D::FixedSizeBinary(_), t) => {
            let a = bins(array).ok_or("bad binary array")?;
            let to = match t {
                SrType::Varbinary(n) => BinTo::Binary { max: n.map(|n| n as usize), nested: false },
                SrType::Char(n) | SrType::Varchar(n) => BinTo::Str { max: *n as usize },
                _ => return Err(format!("binary data cannot be loaded into {t}")),
            };
            W::Bin { a, to }
        }
        (D::Dictionary(_, _), t) => {
            let d = array.as_any_dictionary();
            let keys = Ints::from(d.keys()).ok_or("unsupported dictionary key type")?;
            let values = build(d.values(), t, zone, false)?;
            W::Dict { keys, values: Box::new(values) }
        }
        (D::List(_) | D::LargeList(_) | D::FixedSizeList(_, _), SrType::Array(et)) => {
            let (offs, child_arr) = list_parts(array).ok_or("bad list array")?;
            let child = build(child_arr, et, zone, false).map_err(|e| format!("element: {e}"))?;
            W::List { offs, child: Box::new(nested(child)), doc: false }
        }
        (D::Map(_, _), SrType::Map(kt, vt)) => {
            let m = array.as_map();
            let keys = build(m.keys(), kt, zone, false).map_err(|e| format!("map key: {e}"))?;
            let values = build(m.values(), vt, zone, false).map_err(|e| format!("map value: {e}"))?;
            W::Map {
                offs: Offs::I32(m.value_offsets()),
                keys: Box::new(nested(keys)),
                values: Box::new(nested(values)),
                doc: false,
            }
        }
        (D::Struct(_) | D::Map(..) | D::List(_) | D::LargeList(_) | D::FixedSizeList(..), SrType::Json) => {
            return build_doc(array, zone);
        }
        (D::Struct(fs), SrType::Struct(tfs)) => {
            let s = array.as_struct();
            // Fields map by name whatever the case: two that differ only in
            // case would both claim one target field.
            for (i, f) in fs.iter().enumerate() {
                if let Some(g) = fs.iter().skip(i + 1).find(|g| g.name().eq_ignore_ascii_case(f.name())) {
                    return Err(format!(
                        "source struct fields `{}` and `{}` differ only in case; rename one in the transform",
                        f.name(),
                        g.name()
                    ));
                }
            }
            let mut fields = Vec::new();
            for (name, t) in tfs {
                // StarRocks finds a field by its raw key text (simdjson does
                // not unescape keys): an escaped name never matches, and the
                // field would be NULL.
                if name.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
                    return Err(format!(
                        "target struct field `{}` holds `\"`, `\\` or a control character, which JSON escapes and \
                         StarRocks would not match: the field would load as NULL",
                        name.escape_debug()
                    ));
                }
                let Some(idx) = fs.iter().position(|f| f.name().eq_ignore_ascii_case(name)) else {
                    return Err(format!("target struct field `{name}` has no source field"));
                };
                let child = build(s.column(idx), t, zone, false).map_err(|e| format!("field `{name}`: {e}"))?;
                fields.push((json_string(name), nested(child)));
            }
            if let Some(extra) = fs.iter().find(|f| !tfs.iter().any(|(n, _)| n.eq_ignore_ascii_case(f.name()))) {
                return Err(format!("source struct field `{}` has no field in the target", extra.name()));
            }
            W::Struct { fields, doc: false }
        }
        (D::Time32(unit) | D::Time64(unit), SrType::Char(_) | SrType::Varchar(_)) => {
            let v: Vec<i64> = match dt {
                D::Time32(_) => match unit {
                    TimeUnit::Second => array
                        .as_primitive::<arrow::datatypes::Time32SecondType>()
                        .values()
                        .iter()
                        .map(|&x| x as i64)
                        .collect(),
                    _ => array
                        .as_primitive::<arrow::datatypes::Time32MillisecondType>()
                        .values()
                        .iter()
                        .map(|&x| x as i64)
                        .collect(),
                },
                _ => match unit {
                    TimeUnit::Microsecond => {
                        array.as_primitive::<arrow::datatypes::Time64MicrosecondType>().values().to_vec()
                    }
                    _ => array.as_primitive::<arrow::datatypes::Time64NanosecondType>().values().to_vec(),
                },
            };
            W::Time { v, unit: *unit, max: ty_len(ty) }
        }
        (D::Time32(_) | D::Time64(_), _) => {
            return Err(
                "TIME values have no StarRocks column type; load them into VARCHAR (HH:MM:SS[.fraction])".into()
            );
        }
        // A duration is its count of units: the INT64 the file stores (the
        // Arrow type is only a hint beside it), as StarRocks reads it.
        (D::Duration(unit), t) if t.int_range().is_some() => {
            use arrow::datatypes::{
                DurationMicrosecondType, DurationMillisecondType, DurationNanosecondType, DurationSecondType,
            };
            let v: &[i64] = match unit {
                TimeUnit::Second => array.as_primitive::<DurationSecondType>().values(),
                TimeUnit::Millisecond => array.as_primitive::<DurationMillisecondType>().values(),
                TimeUnit::Microsecond => array.as_primitive::<DurationMicrosecondType>().values(),
                TimeUnit::Nanosecond => array.as_primitive::<DurationNanosecondType>().values(),
            };
            let (lo, hi) = t.int_range().unwrap_or_default();
            W::Int { v: Ints::I64(v), to: IntTo::Int { lo, hi, check: lo > i64::MIN as i128 || hi < i64::MAX as i128 } }
        }
        (D::Duration(_) | D::Interval(_), _) => {
            return Err("durations load into integer columns (their count of units) and intervals into none; \
                        convert them in the transform"
                .into());
        }
        (dt, t) => return Err(format!("{dt} cannot be loaded into {t}")),
    };
    Ok(Writer { nulls: array.logical_nulls(), w })
}

/// Builds a writer rendering by source type inside a JSON document.
fn build_doc(array: &ArrayRef, zone: Zone) -> std::result::Result<Writer<'_>, String> {
    use DataType as D;
    let w = match array.data_type() {
        D::Null => W::Null,
        D::Boolean => W::Bool { a: array.as_boolean(), to_int: false },
        D::Int8 | D::Int16 | D::Int32 | D::Int64 | D::UInt8 | D::UInt16 | D::UInt32 | D::UInt64 => {
            W::Int { v: Ints::from(array.as_ref()).ok_or("bad int")?, to: IntTo::Doc }
        }
        D::Float16 | D::Float32 | D::Float64 => W::Float { v: floats(array).ok_or("bad float")?, to: FloatTo::Doc },
        D::Decimal32(..) | D::Decimal64(..) | D::Decimal128(..) | D::Decimal256(..) => {
            let (v, s) = decs(array)?;
            W::Dec { v, scale: s, to_scale: s, max: i128::MAX, doc: true }
        }
        D::Date32 => W::Date32 { v: array.as_primitive::<arrow::datatypes::Date32Type>().values(), datetime: false },
        D::Date64 => W::Date64 { v: array.as_primitive::<arrow::datatypes::Date64Type>().values(), datetime: true },
        D::Timestamp(unit, tz) => {
            let v = ts_values(array, *unit).ok_or("bad timestamp array")?;
            W::Ts { v, unit: *unit, zone: tz.as_ref().map(|_| zone) }
        }
        D::Time32(_) | D::Time64(_) => {
            return Err("TIME values inside a JSON column are not supported; CAST them to strings".into());
        }
        D::Utf8 | D::LargeUtf8 | D::Utf8View => W::Str { a: strs(array).ok_or("bad string")?, to: StrTo::Doc },
        D::Binary | D::LargeBinary | D::BinaryView | D::FixedSizeBinary(_) => {
            W::Bin { a: bins(array).ok_or("bad binary")?, to: BinTo::Doc }
        }
        D::Dictionary(_, _) => {
            let d = array.as_any_dictionary();
            let keys = Ints::from(d.keys()).ok_or("unsupported dictionary key type")?;
            W::Dict { keys, values: Box::new(build_doc(d.values(), zone)?) }
        }
        D::List(_) | D::LargeList(_) | D::FixedSizeList(..) => {
            let (offs, child_arr) = list_parts(array).ok_or("bad list")?;
            W::List { offs, child: Box::new(build_doc(child_arr, zone)?), doc: true }
        }
        D::Map(..) => {
            let m = array.as_map();
            W::Map {
                offs: Offs::I32(m.value_offsets()),
                keys: Box::new(build_doc(m.keys(), zone)?),
                values: Box::new(build_doc(m.values(), zone)?),
                doc: true,
            }
        }
        D::Struct(fs) => {
            let s = array.as_struct();
            let mut fields = Vec::new();
            for (i, f) in fs.iter().enumerate() {
                // A JSON object keeps one value per key.
                if fs[..i].iter().any(|g| g.name() == f.name()) {
                    return Err(format!(
                        "the struct has two fields named `{}`; a JSON object would keep only one of them",
                        f.name()
                    ));
                }
                fields.push((json_string(f.name()), build_doc(s.column(i), zone)?));
            }
            W::Struct { fields, doc: true }
        }
        dt => return Err(format!("{dt} cannot be written into a JSON value")),
    };
    Ok(Writer { nulls: array.logical_nulls(), w })
}

// ---------------------------------------------------------------------------
// Writing values.

const JSON_SAFE_INT: i128 = 1 << 53;

/// The longest value that goes in hex through `unhex`: the BE reads the hex
/// field as a VARCHAR source column, at most 1 MiB (`MAX_VARCHAR_LENGTH`).
const MAX_HEX_STRING: usize = crate::srtype::MAX_VARCHAR as usize / 2;

impl Writer<'_> {
    /// Writers into CHAR/VARCHAR columns: their text is the value's own
    /// string, which the escaped CSV part sends in hex (its `columns` header
    /// puts every string column through `unhex`).
    fn is_plain_str(&self) -> bool {
        match &self.w {
            W::Str { to: StrTo::Str { .. }, .. }
            | W::Bin { to: BinTo::Str { .. }, .. }
            | W::Int { to: IntTo::Str { .. }, .. }
            | W::DecText { to: StrTo::Str { .. }, .. }
            | W::AsText { .. }
            | W::Time { .. } => true,
            W::Dict { values, .. } => values.is_plain_str(),
            _ => false,
        }
    }

    #[inline]
    fn is_null(&self, i: usize) -> bool {
        self.nulls.as_ref().is_some_and(|n| n.is_null(i))
    }

    /// A top-level CSV field: the common types inline, the rest through
    /// [`Writer::write`]. Same text and checks as `write(i, Mode::Csv, out)`.
    #[inline]
    fn write_csv(&self, i: usize, out: &mut Vec<u8>) -> CellResult {
        if self.is_null(i) {
            out.extend_from_slice(b"\\N");
            return Ok(());
        }
        let mut b = itoa::Buffer::new();
        match &self.w {
            W::Int { v: Ints::I64(v), to: IntTo::Int { check: false, .. } } => {
                out.extend_from_slice(b.format(v[i]).as_bytes());
            }
            W::Int { v: Ints::I32(v), to: IntTo::Int { check: false, .. } } => {
                out.extend_from_slice(b.format(v[i]).as_bytes());
            }
            W::Date32 { v, datetime: false } => out.extend_from_slice(&date_text(v[i] as i64)?),
            W::Dec { v: Decs::D128(v), scale, to_scale, max, doc: false }
                if scale == to_scale && v[i].unsigned_abs() < *max as u128 =>
            {
                push_decimal(out, v[i], *scale);
            }
            W::Str { a, to: StrTo::Str { max } } => {
                let v = a.get(i);
                if v.len() > *max {
                    return self.write(i, Mode::Csv, out);
                }
                write_plain_str(v, Mode::Csv, out)?
            }
            _ => return self.write(i, Mode::Csv, out),
        }
        Ok(())
    }

    fn write(&self, i: usize, mode: Mode, out: &mut Vec<u8>) -> CellResult {
        let start = out.len();
        self.write_value(i, mode, out)?;
        // A JSON column's document (text, or a nested value) at the top
        // level: StarRocks refuses one over 16 MB (`kJSONLengthLimit`).
        let doc = match &self.w {
            W::Str { to: StrTo::JsonText, .. } => true,
            W::List { doc, .. } | W::Map { doc, .. } | W::Struct { doc, .. } => *doc,
            _ => false,
        };
        if doc && mode != Mode::Doc && out.len() - start > JSON_MAX_BYTES {
            let n = out.len() - start;
            out.truncate(start);
            return bad(format!(
                "a JSON document of {n} bytes: StarRocks refuses JSON values over 16 MB ({JSON_MAX_BYTES} bytes)"
            ));
        }
        Ok(())
    }

    fn write_value(&self, i: usize, mode: Mode, out: &mut Vec<u8>) -> CellResult {
        let top = matches!(mode, Mode::Csv | Mode::Csv64);
        if self.is_null(i) {
            out.extend_from_slice(if top { b"\\N" } else { b"null" });
            return Ok(());
        }
        // Only plain strings change in the escaped (hex) mode.
        let mode = if mode == Mode::Csv64 && !self.is_plain_str() { Mode::Csv } else { mode };
        match &self.w {
            W::Null => {
                out.extend_from_slice(if top { b"\\N" } else { b"null" });
            }
            W::Bool { a, to_int } => {
                let b = a.value(i);
                match mode {
                    Mode::Json | Mode::Doc if !to_int => out.extend_from_slice(if b { b"true" } else { b"false" }),
                    _ => out.push(if b { b'1' } else { b'0' }),
                }
            }
            W::Int { v, to } => write_int(v.get(i), *to, mode, out)?,
            W::Float { v, to } => write_float(v.get(i), matches!(v, Floats::F64(_)), *to, mode, out)?,
            W::Dec { v, scale, to_scale, max, doc } => {
                let Some((x, scale)) = v.get_scaled(i, *scale) else {
                    return bad("decimal value does not fit in 38 digits");
                };
                let x = rescale(x, scale, *to_scale)?;
                if x.unsigned_abs() >= *max as u128 {
                    return bad(format!(
                        "decimal value {} does not fit the column's precision",
                        value::format_decimal(x, *to_scale)
                    ));
                }
                let quote = mode == Mode::Json;
                if *doc && x.unsigned_abs() >= 10u128.pow(15) {
                    return bad("a decimal of more than 15 digits cannot be stored exactly in a JSON column");
                }
                if quote {
                    out.push(b'"');
                }
                push_decimal(out, x, *to_scale);
                if quote {
                    out.push(b'"');
                }
            }
            W::DecInt { v, scale, to } => {
                let Some((x, scale)) = v.get_scaled(i, *scale) else {
                    return bad("decimal value does not fit in 38 digits");
                };
                let scale = &scale;
                // Past 10^38 only 0 has no fraction (Decimal256 scales reach 76).
                let f = 10i128.checked_pow(u32::from(*scale));
                if f.map_or(x != 0, |f| x % f != 0) {
                    return bad(format!(
                        "decimal value {} has a fraction; an integer column cannot hold it exactly",
                        value::format_decimal(x, *scale)
                    ));
                }
                write_int(f.map_or(0, |f| x / f), *to, mode, out)?;
            }
            W::DecText { v, scale, to } => {
                let Some((x, s)) = v.get_scaled(i, *scale) else {
                    return bad("decimal value does not fit in 38 digits");
                };
                // Every digit of the column's scale, as StarRocks casts it.
                let mut text = value::format_decimal(x, s);
                if s < *scale {
                    if s == 0 {
                        text.push('.');
                    }
                    text.extend(std::iter::repeat_n('0', usize::from(*scale - s)));
                }
                write_str(&text, to, mode, out)?;
            }
            W::Date32 { v, datetime } => {
                let d = v[i] as i64;
                let text = date_text(d)?;
                write_quoted_text(out, mode, |o| {
                    o.extend_from_slice(&text);
                    if *datetime {
                        o.extend_from_slice(b" 00:00:00");
                    }
                });
            }
            W::Date64 { v, datetime } => {
                let ms = v[i];
                let us = ms.checked_mul(1000).ok_or(CellError::Bad("date out of range".into()))?;
                if !*datetime && us.rem_euclid(86_400_000_000) != 0 {
                    return bad("a Date64 value with a time of day cannot be loaded into DATE exactly");
                }
                let (text, n) = datetime_text(us)?;
                // A DATE gets the date part (its time of day is zero, checked above).
                let n = if *datetime { n } else { 10 };
                write_quoted_text(out, mode, |o| o.extend_from_slice(&text[..n]));
            }
            W::Ts { v, unit, zone } => {
                let raw = v[i];
                let us = match unit {
                    TimeUnit::Second => raw.checked_mul(1_000_000),
                    TimeUnit::Millisecond => raw.checked_mul(1000),
                    TimeUnit::Microsecond => Some(raw),
                    TimeUnit::Nanosecond => {
                        if raw % 1000 != 0 {
                            return bad(
                                "timestamp has nanoseconds below a microsecond; DATETIME keeps microseconds (truncate it in the transform if intended)",
                            );
                        }
                        Some(raw / 1000)
                    }
                }
                .ok_or(CellError::Bad("timestamp out of range".into()))?;
                let local = match zone {
                    None | Some(Zone::Utc) => us,
                    Some(z) => us + z.offset_secs(us) * 1_000_000,
                };
                let (text, n) = datetime_text(local)?;
                write_quoted_text(out, mode, |o| o.extend_from_slice(&text[..n]));
            }
            W::AsText { inner, max } => {
                let mut text = Vec::with_capacity(26);
                inner.write(i, Mode::Csv, &mut text)?;
                let text = std::str::from_utf8(&text).map_err(|e| CellError::Bad(e.to_string()))?;
                write_str(text, &StrTo::Str { max: *max }, mode, out)?;
            }
            W::Time { v, unit, max } => {
                let text = time_text(v[i], *unit).ok_or(CellError::Bad(format!("{} is not a time of day", v[i])))?;
                write_str(&text, &StrTo::Str { max: *max }, mode, out)?;
            }
            W::Str { a, to } => write_str(a.get(i), to, mode, out)?,
            W::Bin { a, to } => {
                let b = a.get(i);
                match to {
                    BinTo::Binary { max, nested } => {
                        if let Some(m) = max
                            && b.len() > *m
                        {
                            return bad(format!("binary value of {} bytes is longer than VARBINARY({m})", b.len()));
                        }
                        write_binary(out, b, mode, *nested)?;
                    }
                    BinTo::Doc => write_base64(out, b, Mode::Doc)?,
                    BinTo::Str { max } => {
                        let s = std::str::from_utf8(b)
                            .map_err(|e| CellError::Bad(format!("binary value is not valid UTF-8 ({e})")))?;
                        write_str(s, &StrTo::Str { max: *max }, mode, out)?;
                    }
                }
            }
            W::Dict { keys, values } => {
                let k = keys.get(i);
                values.write(k as usize, mode, out)?;
            }
            W::List { offs, child, doc } => {
                let (s, e) = offs.range(i);
                let elem_mode = if *doc {
                    Mode::Doc
                } else if matches!(mode, Mode::Csv | Mode::CsvElem) {
                    Mode::CsvElem
                } else {
                    mode
                };
                out.push(b'[');
                for (n, j) in (s..e).enumerate() {
                    if n > 0 {
                        out.push(b',');
                    }
                    child.write(j, elem_mode, out)?;
                }
                out.push(b']');
            }
            W::Map { offs, keys, values, doc } => {
                let (s, e) = offs.range(i);
                let csv = !*doc && matches!(mode, Mode::Csv | Mode::CsvElem);
                let elem_mode = if *doc {
                    Mode::Doc
                } else if csv {
                    Mode::CsvElem
                } else {
                    mode
                };
                let mut seen: Vec<Vec<u8>> = Vec::new();
                out.push(b'{');
                for (n, j) in (s..e).enumerate() {
                    if n > 0 {
                        out.push(b',');
                    }
                    let start = out.len();
                    if csv {
                        keys.write(j, elem_mode, out)?;
                    } else {
                        write_json_key(keys, j, elem_mode, *doc, out)?;
                    }
                    let mut key = out[start..].to_vec();
                    // 0.0 and -0.0 are equal doubles (C++ `==`, which a
                    // BE's key comparison may use), though their texts
                    // differ: refused too rather than maybe merged.
                    if let W::Float { v, .. } = &keys.w
                        && keys.nulls.as_ref().is_none_or(|n| n.is_valid(j))
                        && v.get(j) == 0.0
                    {
                        key = b"0".to_vec();
                    }
                    if seen.contains(&key) {
                        return bad("map has a duplicate key; StarRocks would keep only the last entry");
                    }
                    seen.push(key);
                    out.push(b':');
                    values.write(j, elem_mode, out)?;
                }
                out.push(b'}');
            }
            W::Struct { fields, doc } => {
                // A struct is a JSON object, whether inside a JSON column or a
                // STRUCT column in a JSON row.
                let inner = if *doc || mode == Mode::Doc || mode == Mode::Csv { Mode::Doc } else { Mode::Json };
                let start = out.len();
                out.push(b'{');
                for (n, (name, f)) in fields.iter().enumerate() {
                    if n > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(name);
                    out.push(b':');
                    f.write(i, inner, out)?;
                }
                out.push(b'}');
                if mode == Mode::Csv && out[start..].iter().any(|&b| b == COLUMN_SEPARATOR || b == ROW_DELIMITER) {
                    return Err(CellError::NotCsv { top_string: false, why: "JSON text holds a separator".into() });
                }
            }
        }
        Ok(())
    }
}

/// Writes a map key as a JSON object key: a string, never holding `"`, `\`
/// or control characters (the BE re-wraps keys without escaping).
fn write_json_key(keys: &Writer<'_>, j: usize, mode: Mode, doc: bool, out: &mut Vec<u8>) -> CellResult {
    let mut tmp = Vec::new();
    keys.write(j, mode, &mut tmp)?;
    if tmp.first() == Some(&b'"') {
        if !doc && tmp[1..tmp.len() - 1].iter().any(|&b| b == b'\\' || b < 0x20) {
            return bad("a map key holding `\"`, `\\` or control characters cannot be loaded exactly (JSON format)");
        }
        out.extend_from_slice(&tmp);
    } else {
        out.push(b'"');
        out.extend_from_slice(&tmp);
        out.push(b'"');
    }
    Ok(())
}

fn write_int(v: i128, to: IntTo, mode: Mode, out: &mut Vec<u8>) -> CellResult {
    match to {
        IntTo::Int { lo, hi, check } => {
            if check && (v < lo || v > hi) {
                return bad(format!("{v} is out of the column's range [{lo}, {hi}]"));
            }
        }
        IntTo::Bool => {
            if v != 0 && v != 1 {
                return bad(format!("{v} is not a boolean (0 or 1)"));
            }
            if matches!(mode, Mode::Json | Mode::Doc) {
                out.extend_from_slice(if v == 1 { b"true" } else { b"false" });
                return Ok(());
            }
        }
        IntTo::Decimal { max } => {
            if v.abs() >= max {
                return bad(format!("{v} does not fit the column's DECIMAL precision"));
            }
        }
        IntTo::Float { bits } => {
            // Exact when its significant bits fit the mantissa (2^60 does).
            let a = v.unsigned_abs();
            if a != 0 && 128 - a.leading_zeros() - a.trailing_zeros() > bits {
                return bad(format!(
                    "{v} cannot be represented exactly as a {}-bit float",
                    if bits == 24 { 32 } else { 64 }
                ));
            }
        }
        IntTo::Str { max } => {
            let mut b = itoa::Buffer::new();
            let s = b.format(v);
            if s.len() > max {
                return bad(format!("{v} is longer than the column's {max} bytes"));
            }
            if mode == Mode::Csv64 {
                write_hex(out, s.as_bytes());
                return Ok(());
            }
            let q = matches!(mode, Mode::CsvElem | Mode::Json | Mode::Doc);
            if q {
                out.push(b'"');
            }
            out.extend_from_slice(s.as_bytes());
            if q {
                out.push(b'"');
            }
            return Ok(());
        }
        IntTo::Doc => {
            if v.abs() > JSON_SAFE_INT && (v < i64::MIN as i128 || v > u64::MAX as i128) {
                return bad(format!("{v} is too large for a JSON number"));
            }
        }
    }
    let mut b = itoa::Buffer::new();
    // 64-bit formatting is several times faster than 128-bit.
    match i64::try_from(v) {
        Ok(x) => out.extend_from_slice(b.format(x).as_bytes()),
        // The BE's JSON reader takes 64-bit integer tokens only (a longer one
        // is simdjson's big_integer, read through a double at best); a quoted
        // number is parsed as text, exactly.
        Err(_) if mode == Mode::Json && !(0..=u64::MAX as i128).contains(&v) => {
            out.push(b'"');
            out.extend_from_slice(b.format(v).as_bytes());
            out.push(b'"');
        }
        Err(_) => out.extend_from_slice(b.format(v).as_bytes()),
    }
    Ok(())
}

fn write_float(v: f64, is_f64: bool, to: FloatTo, mode: Mode, out: &mut Vec<u8>) -> CellResult {
    let single = match to {
        FloatTo::Float => {
            if is_f64 && !v.is_nan() && (v as f32) as f64 != v {
                return bad(format!("{v} cannot be stored exactly in FLOAT"));
            }
            true
        }
        FloatTo::Double => false,
        FloatTo::Doc => {
            if !v.is_finite() {
                return bad("NaN and infinity cannot be stored in a JSON column");
            }
            false
        }
    };
    if !v.is_finite() {
        let q = mode == Mode::Json;
        if q {
            out.push(b'"');
        }
        out.extend_from_slice(double_text(v, &mut ryu::Buffer::new()));
        if q {
            out.push(b'"');
        }
        return Ok(());
    }
    let mut b = ryu::Buffer::new();
    if single {
        let x = v as f32;
        let s = b.format(x);
        // The BE reads a FLOAT as a double and narrows it (refusing one above
        // FLT_MAX): the shortest text of the float must survive that. It
        // does not for f32::MAX (3.4028235e38 is above FLT_MAX as a double)
        // and could not for a text near a rounding midpoint; the double's
        // own shortest text always does.
        let d: f64 = s.parse().unwrap_or(f64::NAN);
        if d.abs() <= f32::MAX as f64 && d as f32 == x {
            out.extend_from_slice(s.as_bytes());
        } else {
            out.extend_from_slice(ryu::Buffer::new().format(x as f64).as_bytes());
        }
    } else {
        out.extend_from_slice(double_text(v, &mut b));
    }
    Ok(())
}

/// The longest text [`double_text`] writes (`-2.2250738585072014e-308`).
const DOUBLE_TEXT_MAX: usize = 24;

/// A double's CSV text: the shortest digits that read back as the same
/// double (ryu), `NaN`, `inf` or `-inf`.
#[inline]
fn double_text(v: f64, b: &mut ryu::Buffer) -> &[u8] {
    if v.is_nan() {
        b"NaN"
    } else if v.is_infinite() {
        if v > 0.0 { b"inf" } else { b"-inf" }
    } else {
        b.format_finite(v).as_bytes()
    }
}

fn write_str(s: &str, to: &StrTo, mode: Mode, out: &mut Vec<u8>) -> CellResult {
    match to {
        StrTo::Str { max } => {
            if s.len() > *max {
                return bad(format!("string of {} bytes is longer than the column's {max} bytes", s.len()));
            }
            write_plain_str(s, mode, out)
        }
        StrTo::Doc => {
            push_json_string(out, s);
            Ok(())
        }
        StrTo::JsonText => {
            if let Err(e) = value::json_keys_unique(s) {
                return bad(e.unwrap_or_else(|| "string is not valid JSON for a JSON column".into()));
            }
            if let Err(m) = value::json_numbers_exact(s) {
                return bad(m);
            }
            match mode {
                Mode::Csv => {
                    let t = s.trim_start();
                    if !t.starts_with(['{', '[', '"']) {
                        return Err(CellError::NotCsv {
                            top_string: false,
                            why: "a JSON scalar in CSV would be stored as a string".into(),
                        });
                    }
                    check_csv_bytes(s.as_bytes(), false)?;
                    out.extend_from_slice(s.as_bytes());
                }
                Mode::Json if s.trim() == "null" => {
                    return bad(
                        "the JSON document `null` cannot be loaded exactly: StarRocks stores a JSON null as SQL NULL",
                    );
                }
                _ => out.extend_from_slice(s.trim().as_bytes()),
            }
            Ok(())
        }
        StrTo::Binary { max, nested } => {
            if let Some(m) = max
                && s.len() > *m
            {
                return bad(format!("value of {} bytes is longer than VARBINARY({m})", s.len()));
            }
            write_binary(out, s.as_bytes(), mode, *nested)
        }
        StrTo::Parse(ty @ (SrType::Float | SrType::Double)) => {
            // Accepted when the number it spells is the one the float it
            // parses to prints as (`1.5`, `1.50`, `1e20`, not
            // `0.30000000000000000001`).
            let single = *ty == SrType::Float;
            if let Err(e) = value::float_text_is_exact(s, single) {
                return bad(format!("`{}` cannot be loaded into {ty} exactly: {e}", short(s)));
            }
            // Written as the float itself (`.5` or `01.5` are no JSON).
            let v: f64 = if single { s.parse::<f32>().map(f64::from) } else { s.parse::<f64>() }
                .map_err(|_| CellError::Bad(format!("`{}` is not a number", short(s))))?;
            write_float(v, false, if single { FloatTo::Float } else { FloatTo::Double }, mode, out)
        }
        StrTo::Parse(ty) => {
            let v = value::parse_csv_field(ty, s)
                .map_err(|e| CellError::Bad(format!("`{}` is not a valid {ty}: {e}", short(s))))?;
            // Only canonical text passes through, so nothing is reinterpreted.
            let canon = match &v {
                value::Value::Bool(b) => (*b as u8).to_string(),
                value::Value::Int(i) => i.to_string(),
                value::Value::Decimal(x, sc) => value::format_decimal(*x, *sc),
                value::Value::Date(d) => value::format_date(*d),
                value::Value::Datetime(us) => value::format_datetime(*us),
                _ => return bad(format!("`{}` cannot be loaded into {ty}", short(s))),
            };
            if !text_is_exact(ty, s, &canon) {
                return bad(format!(
                    "`{}` would be stored as `{canon}` in {ty}; convert it in the transform",
                    short(s)
                ));
            }
            // Dates and decimals are quoted in JSON rows and ARRAY/MAP text,
            // integers past 64 bits in JSON rows (as [`write_int`] says).
            let quote = match (mode, &v) {
                (Mode::Json | Mode::CsvElem, value::Value::Date(_) | value::Value::Datetime(_))
                | (Mode::Json, value::Value::Decimal(..)) => true,
                (Mode::Json, value::Value::Int(x)) => !(i64::MIN as i128..=u64::MAX as i128).contains(x),
                _ => false,
            };
            if quote {
                out.push(b'"');
            }
            out.extend_from_slice(canon.as_bytes());
            if quote {
                out.push(b'"');
            }
            Ok(())
        }
    }
}

/// Whether source text means exactly the canonical value (no rounding,
/// truncation, or ignored trailing junk).
fn text_is_exact(ty: &SrType, src: &str, canon: &str) -> bool {
    // No spaces, signs, leading zeros or other forms the BE would read as
    // the same number, date or truth value: `007` into BIGINT would be
    // stored as 7 (a zip code losing its zeros) with no error.
    let t = src;
    match ty {
        SrType::Date | SrType::Datetime => {
            // Accept the canonical forms (and a `T` separator / trailing zeros
            // of the fraction); reject anything the BE would silently drop.
            let norm = t.replacen('T', " ", 1);
            let norm =
                if norm.contains('.') { norm.trim_end_matches('0').trim_end_matches('.').to_string() } else { norm };
            let c = if canon.contains('.') {
                canon.trim_end_matches('0').trim_end_matches('.').to_string()
            } else {
                canon.to_string()
            };
            norm == c
                || (matches!(ty, SrType::Date) && norm.strip_suffix(" 00:00:00") == Some(c.as_str()))
                || (matches!(ty, SrType::Datetime) && format!("{norm} 00:00:00") == c)
                || (matches!(ty, SrType::Datetime) && c.ends_with(" 00:00:00") && norm == c[..10])
        }
        SrType::Decimal { scale, .. } => {
            // Plain digits, and no more fraction digits than the scale.
            let (int, frac) = match t.split_once('.') {
                Some((i, f)) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => (i, f),
                Some(_) => return false,
                None => (t, ""),
            };
            canonical_integer(int)
                && frac.trim_end_matches('0').len() <= *scale as usize
                && !(int == "-0" && frac.bytes().all(|b| b == b'0'))
        }
        SrType::Boolean => matches!(t.to_ascii_lowercase().as_str(), "0" | "1" | "true" | "false"),
        _ => canonical_integer(t) && t != "-0",
    }
}

/// `-?(0|[1-9][0-9]*)`, also `-0` (callers decide about negative zero).
fn canonical_integer(t: &str) -> bool {
    let d = t.strip_prefix('-').unwrap_or(t);
    !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()) && (d == "0" || !d.starts_with('0'))
}

fn write_plain_str(s: &str, mode: Mode, out: &mut Vec<u8>) -> CellResult {
    match mode {
        Mode::Csv => {
            let b = s.as_bytes();
            // Only the expressions' VARCHAR sources (serialized bitmaps) get
            // this far: table columns are at most this long.
            if b.len() > crate::srtype::MAX_VARCHAR as usize {
                return Err(CellError::NotCsv {
                    top_string: false,
                    why: format!(
                        "a field of {} bytes is over the {} bytes a CSV field can hold",
                        b.len(),
                        crate::srtype::MAX_VARCHAR
                    ),
                });
            }
            if b == b"\\N" {
                return Err(CellError::NotCsv {
                    top_string: true,
                    why: "the string `\\N` would be read as NULL".into(),
                });
            }
            check_csv_bytes(b, true)?;
            out.extend_from_slice(b);
        }
        Mode::Csv64 => {
            if s.len() > MAX_HEX_STRING {
                return Err(CellError::NotCsv {
                    top_string: false,
                    why: format!(
                        "a string of {} bytes is over {MAX_HEX_STRING} bytes, whose hex the BE would refuse",
                        s.len()
                    ),
                });
            }
            write_hex(out, s.as_bytes())
        }
        Mode::CsvElem => {
            check_csv_bytes(s.as_bytes(), false)?;
            out.push(b'"');
            for &c in s.as_bytes() {
                if c == b'"' {
                    out.push(b'"');
                }
                out.push(c);
            }
            out.push(b'"');
        }
        Mode::Json | Mode::Doc => push_json_string(out, s),
    }
    Ok(())
}

#[inline]
fn check_csv_bytes(b: &[u8], top_string: bool) -> CellResult {
    if let Some(c) = memchr::memchr2(COLUMN_SEPARATOR, ROW_DELIMITER, b).map(|i| b[i]) {
        return Err(CellError::NotCsv {
            top_string,
            why: format!("the value holds byte 0x{c:02x}, which the CSV dialect cannot carry"),
        });
    }
    Ok(())
}

/// Bytes as lowercase hex, for `unhex` in the `columns` header: the escaped
/// CSV part's strings and VARBINARY values in JSON rows. (`unhex('')` is the
/// empty string where `from_base64('')` would be NULL.)
fn write_hex(out: &mut Vec<u8>, b: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(b.len() * 2);
    for &c in b {
        out.push(HEX[(c >> 4) as usize]);
        out.push(HEX[(c & 15) as usize]);
    }
}

/// A VARBINARY value. In a JSON row, a top-level one goes in hex through the
/// column's `unhex`; one inside an ARRAY, MAP or STRUCT has no expression to
/// decode it and the BE stores a JSON string's bytes as they are: it goes as
/// that string when its bytes are UTF-8, and is refused otherwise.
fn write_binary(out: &mut Vec<u8>, b: &[u8], mode: Mode, nested: bool) -> CellResult {
    if nested && mode == Mode::Json {
        let s = std::str::from_utf8(b).map_err(|_| {
            CellError::Bad(
                "a binary value inside an ARRAY, MAP or STRUCT that is not UTF-8 cannot be loaded exactly in a JSON row"
                    .into(),
            )
        })?;
        push_json_string(out, s);
        return Ok(());
    }
    write_base64(out, b, mode)
}

/// A binary value: base64 in CSV (the BE's VARBINARY converter decodes it)
/// and inside JSON documents, quoted hex in a JSON row (through `unhex`).
fn write_base64(out: &mut Vec<u8>, b: &[u8], mode: Mode) -> CellResult {
    if mode == Mode::Json {
        out.push(b'"');
        write_hex(out, b);
        out.push(b'"');
        return Ok(());
    }
    let q = !matches!(mode, Mode::Csv | Mode::Csv64);
    if q {
        out.push(b'"');
    }
    let start = out.len();
    out.resize(start + b.len().div_ceil(3) * 4, 0);
    let n = base64::engine::general_purpose::STANDARD
        .encode_slice(b, &mut out[start..])
        .map_err(|e| CellError::Bad(e.to_string()))?;
    out.truncate(start + n);
    if q {
        out.push(b'"');
    }
    Ok(())
}

fn write_quoted_text(out: &mut Vec<u8>, mode: Mode, f: impl FnOnce(&mut Vec<u8>)) {
    let q = !matches!(mode, Mode::Csv | Mode::Csv64);
    if q {
        out.push(b'"');
    }
    f(out);
    if q {
        out.push(b'"');
    }
}

fn rescale(x: i128, from: u8, to: u8) -> std::result::Result<i128, CellError> {
    use std::cmp::Ordering::*;
    match from.cmp(&to) {
        Equal => Ok(x),
        Less => x
            .checked_mul(10i128.pow((to - from) as u32))
            .ok_or_else(|| CellError::Bad("decimal value does not fit the column's precision".into())),
        Greater => {
            // Past 10^38 no i128 but 0 is a multiple (Decimal256 scales
            // reach 76).
            let Some(f) = 10i128.checked_pow((from - to) as u32) else {
                if x != 0 {
                    return bad(format!(
                        "decimal value {} has more fraction digits than the column's scale {to}",
                        value::format_decimal(x, from)
                    ));
                }
                return Ok(0);
            };
            if x % f != 0 {
                return bad(format!(
                    "decimal value {} has more fraction digits than the column's scale {to}",
                    value::format_decimal(x, from)
                ));
            }
            Ok(x / f)
        }
    }
}

fn push_decimal(out: &mut Vec<u8>, x: i128, scale: u8) {
    let mut t = [0u8; DECIMAL_TEXT_MAX];
    let n = decimal_text(x, scale, &mut t);
    out.extend_from_slice(&t[..n]);
}

/// Room for any [`decimal_text`]: sign, 39 integer digits, point, 38
/// fraction digits.
const DECIMAL_TEXT_MAX: usize = 80;

/// The text of decimal `x` (unscaled) of `scale`, at the start of `t`;
/// returns its length.
#[inline]
fn decimal_text(x: i128, scale: u8, t: &mut [u8; DECIMAL_TEXT_MAX]) -> usize {
    let mut b = itoa::Buffer::new();
    let abs = x.unsigned_abs();
    // 64-bit formatting is several times faster than 128-bit.
    let digits = match u64::try_from(abs) {
        Ok(a) => b.format(a).as_bytes(),
        Err(_) => b.format(abs).as_bytes(),
    };
    let scale = scale as usize;
    // Sign, integer digits, point, fraction, assembled on the stack.
    let mut n = 0;
    if x < 0 {
        t[0] = b'-';
        n = 1;
    }
    if scale == 0 {
        t[n..n + digits.len()].copy_from_slice(digits);
        n += digits.len();
    } else if digits.len() > scale {
        let int = digits.len() - scale;
        t[n..n + int].copy_from_slice(&digits[..int]);
        n += int;
        t[n] = b'.';
        n += 1;
        t[n..n + scale].copy_from_slice(&digits[int..]);
        n += scale;
    } else {
        t[n..n + 2].copy_from_slice(b"0.");
        n += 2;
        let zeros = scale - digits.len();
        t[n..n + zeros].fill(b'0');
        n += zeros;
        t[n..n + digits.len()].copy_from_slice(digits);
        n += digits.len();
    }
    n
}

/// StarRocks' largest JSON value, in bytes of its text (`kJSONLengthLimit`
/// in be/src/util/json.h).
const JSON_MAX_BYTES: usize = 16 << 20;

const MIN_DAY: i64 = -719528; // 0000-01-01
const MAX_DAY: i64 = 2932896; // 9999-12-31

/// The checked `YYYY-MM-DD` text of a day number: StarRocks' range, and its
/// calendar (year 0 is not a leap year there).
#[inline]
fn date_text(d: i64) -> std::result::Result<[u8; 10], CellError> {
    with_days(|c| c.text(d))
}

/// Rendered days by their low bits: real columns repeat a limited set of
/// days, and a hit saves the calendar arithmetic. A slot is 16 bytes (the
/// day as `i32`), so the days of a typical column stay in the L1 cache.
struct DayCache(Vec<(i32, [u8; 10])>);

impl DayCache {
    const SLOTS: usize = 4096;
    /// An empty slot's day: outside StarRocks' range, so never looked up.
    const EMPTY: i32 = i32::MIN;

    /// [`date_text`] through the cache.
    #[inline(always)]
    fn text(&mut self, d: i64) -> std::result::Result<[u8; 10], CellError> {
        if !(MIN_DAY..=MAX_DAY).contains(&d) {
            return date_text_uncached(d);
        }
        let slot = &mut self.0[(d as usize) & (Self::SLOTS - 1)];
        if slot.0 as i64 == d {
            return Ok(slot.1);
        }
        let t = date_text_uncached(d)?;
        *slot = (d as i32, t);
        Ok(t)
    }
}

const _: () = assert!(std::mem::size_of::<(i32, [u8; 10])>() == 16);
const _: () = assert!((DayCache::EMPTY as i64) < MIN_DAY && MIN_DAY >= i32::MIN as i64 && MAX_DAY <= i32::MAX as i64);

thread_local! {
    static DAYS: std::cell::RefCell<DayCache> =
        std::cell::RefCell::new(DayCache(vec![(DayCache::EMPTY, [0; 10]); DayCache::SLOTS]));
}

/// Runs `f` with this thread's day cache (once per column of a block rather
/// than once per value). `f` must not call [`date_text`].
#[inline]
fn with_days<R>(f: impl FnOnce(&mut DayCache) -> R) -> R {
    DAYS.with_borrow_mut(f)
}

fn date_text_uncached(d: i64) -> std::result::Result<[u8; 10], CellError> {
    if !(MIN_DAY..=MAX_DAY).contains(&d) {
        return bad(format!("date {} is outside StarRocks' range 0000-01-01..9999-12-31", day_text(d)));
    }
    let (y, m, dd) = value::civil_from_days(d);
    // Proleptic Gregorian dates of years 1..=9999 all exist in StarRocks.
    if y == 0 && !value::valid_date(y, m, dd) {
        return bad(format!("date {} does not exist in StarRocks' calendar", day_text(d)));
    }
    let y = y as u32;
    let mut t = *b"0000-00-00";
    put_2(&mut t[0..2], y / 100);
    put_2(&mut t[2..4], y % 100);
    put_2(&mut t[5..7], m);
    put_2(&mut t[8..10], dd);
    Ok(t)
}

fn day_text(d: i64) -> String {
    let (y, m, dd) = value::civil_from_days(d);
    format!("{y:04}-{m:02}-{dd:02}")
}

#[inline]
fn put_2(to: &mut [u8], v: u32) {
    to[0] = b'0' + (v / 10) as u8;
    to[1] = b'0' + (v % 10) as u8;
}

/// `YYYY-MM-DD HH:MM:SS[.ffffff]` of microseconds since the epoch, checked
/// like [`date_text`]; returns the text and its length (19 or 26).
#[inline]
fn datetime_text(us: i64) -> std::result::Result<([u8; 26], usize), CellError> {
    with_days(|c| datetime_text_with(us, c))
}

/// [`datetime_text`] with the day cache at hand.
#[inline(always)]
fn datetime_text_with(us: i64, days: &mut DayCache) -> std::result::Result<([u8; 26], usize), CellError> {
    let date = days.text(us.div_euclid(86_400_000_000))?;
    let t = us.rem_euclid(86_400_000_000);
    let mut out = *b"0000-00-00 00:00:00.000000";
    out[..10].copy_from_slice(&date);
    let secs = (t / 1_000_000) as u32;
    put_2(&mut out[11..13], secs / 3600);
    put_2(&mut out[14..16], secs / 60 % 60);
    put_2(&mut out[17..19], secs % 60);
    let f = (t % 1_000_000) as u32;
    if f == 0 {
        return Ok((out, 19));
    }
    put_2(&mut out[20..22], f / 10000);
    put_2(&mut out[22..24], f / 100 % 100);
    put_2(&mut out[24..26], f % 100);
    Ok((out, 26))
}

fn ty_len(t: &SrType) -> usize {
    match t {
        SrType::Char(n) | SrType::Varchar(n) => *n as usize,
        _ => 0,
    }
}

/// `HH:MM:SS` plus the unit's fraction digits when the fraction is not zero.
fn time_text(v: i64, unit: TimeUnit) -> Option<String> {
    let (per_sec, digits) = match unit {
        TimeUnit::Second => (1, 0),
        TimeUnit::Millisecond => (1_000, 3),
        TimeUnit::Microsecond => (1_000_000, 6),
        TimeUnit::Nanosecond => (1_000_000_000, 9),
    };
    if v < 0 || v >= 86_400 * per_sec {
        return None;
    }
    let (secs, frac) = (v / per_sec, v % per_sec);
    let mut s = format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
    if frac != 0 {
        s.push_str(&format!(".{frac:0digits$}"));
    }
    Some(s)
}

/// A JSON string literal.
pub fn json_string(s: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(s.len() + 2);
    push_json_string(&mut v, s);
    v
}

/// `s` as a JSON string. Only what JSON requires is escaped (DEL goes as
/// itself: a map key StarRocks rebuilds from its text must hold no escape).
fn push_json_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let b = s.as_bytes();
    let mut start = 0;
    for (i, &c) in b.iter().enumerate() {
        let esc: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => {
                out.extend_from_slice(&b[start..i]);
                let _ = std::io::Write::write_fmt(out, format_args!("\\u{:04x}", c));
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&b[start..i]);
        out.extend_from_slice(esc);
        start = i + 1;
    }
    out.extend_from_slice(&b[start..]);
    out.push(b'"');
}

fn short(s: &str) -> String {
    let t: String = s.chars().take(40).collect();
    if t.len() < s.len() { format!("{t}…") } else { t }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_rules_go_on_after_2099() {
        let la = Zone::parse("America/Los_Angeles").unwrap();
        let syd = Zone::parse("Australia/Sydney").unwrap();
        let us = |y: i64, m: u32, d: u32, h: i64| (value::days_from_civil(y, m, d) * 86_400 + h * 3600) * 1_000_000;
        for (zone, at, hours) in [
            (la, us(2099, 7, 1, 12), -7),
            (la, us(2100, 7, 1, 12), -7),
            (la, us(2100, 1, 1, 12), -8),
            (la, us(2999, 12, 31, 12), -8),
            (la, us(2400, 7, 4, 12), -7),
            (la, us(9999, 6, 30, 12), -7),
            (syd, us(2100, 7, 1, 12), 10),
            (syd, us(2100, 1, 15, 12), 11),
            (syd, us(2999, 12, 31, 12), 11),
        ] {
            assert_eq!(zone.offset_secs(at), hours * 3600_i64, "{} at {at}", zone.name());
        }
        // The days of DST: second Sunday of March to first Sunday of
        // November (local 2:00), in 2100 (Mar 14, Nov 7) and 2400 (Mar 12,
        // Nov 5).
        assert_eq!(la.offset_secs(us(2100, 3, 14, 9)), -8 * 3600);
        assert_eq!(la.offset_secs(us(2100, 3, 14, 11)), -7 * 3600);
        assert_eq!(la.offset_secs(us(2100, 11, 7, 8)), -7 * 3600);
        assert_eq!(la.offset_secs(us(2100, 11, 7, 10)), -8 * 3600);
        assert_eq!(la.offset_secs(us(2400, 3, 12, 11)), -7 * 3600);
        assert_eq!(la.offset_secs(us(2400, 3, 11, 11)), -8 * 3600);
        // Zones whose tables list one-off changes into the 2080s (Ramadan in
        // Casablanca and Gaza) go on with their footer rule, as cctz does:
        // Casablanca on +01, Gaza on EET with summer time March–October.
        // Needs the system's zoneinfo (a machine without it gets the 2072–2099
        // calendar year's offset).
        if std::path::Path::new("/usr/share/zoneinfo/Africa/Casablanca").exists() {
            let casa = Zone::parse("Africa/Casablanca").unwrap();
            let gaza = Zone::parse("Asia/Gaza").unwrap();
            for (zone, at, hours) in [
                (casa, us(2244, 7, 10, 10), 1),
                (casa, us(2150, 4, 1, 12), 1),
                (gaza, us(2244, 7, 10, 10), 3),
                (gaza, us(2244, 1, 10, 10), 2),
                (la, us(9999, 12, 31, 23), -8),
            ] {
                assert_eq!(zone.offset_secs(at), hours * 3600_i64, "{} at {at}", zone.name());
            }
        }
    }

    /// Every instant's offset is the system zoneinfo's, whichever order the
    /// instants come in (the kept interval must never outlive a change),
    /// and before 1970 it is the history the system keeps, not chrono-tz's.
    #[test]
    fn named_zones_follow_the_system_zoneinfo_at_every_instant() {
        let zones =
            ["Europe/Amsterdam", "America/New_York", "Australia/Sydney", "Africa/Casablanca", "Atlantic/Reykjavik"];
        let Ok(amsterdam) = jiff::tz::TimeZone::get("Europe/Amsterdam") else {
            return; // no zoneinfo on this machine: chrono-tz's tables serve
        };
        let us = |y: i64, m: u32, d: u32, h: i64| (value::days_from_civil(y, m, d) * 86_400 + h * 3600) * 1_000_000;
        let (start, end) = (us(1890, 1, 1, 0), us(2120, 1, 1, 0));
        // Steps of 7h 13m 17s: every hour of the day, near every change.
        let step = (7 * 3600 + 13 * 60 + 17) * 1_000_000;
        for name in zones {
            let zone = Zone::parse(name).unwrap();
            let sys = jiff::tz::TimeZone::get(name).unwrap();
            let want =
                |t: i64| sys.to_offset(jiff::Timestamp::from_second(t.div_euclid(1_000_000)).unwrap()).seconds() as i64;
            let mut t = start;
            while t < end {
                assert_eq!(zone.offset_secs(t), want(t), "{name} at {t} µs, forward");
                t += step;
            }
            while t > start {
                t -= step / 3;
                assert_eq!(zone.offset_secs(t), want(t), "{name} at {t} µs, backward");
            }
            // A second before and at each change.
            let mut changes = sys.following(jiff::Timestamp::from_second(start / 1_000_000).unwrap());
            for c in changes.by_ref().take(400) {
                let at = c.timestamp().as_second() * 1_000_000;
                assert_eq!(zone.offset_secs(at), want(at), "{name} at a change");
                assert_eq!(zone.offset_secs(at - 1), want(at - 1), "{name} just before a change");
            }
        }
        // Debian's tzdata keeps Amsterdam's own history (backzone): summer
        // 1930 on +01:19:32, where the main data (chrono-tz) has Brussels' +01.
        let summer_1930 = us(1930, 7, 1, 12);
        if amsterdam.to_offset(jiff::Timestamp::from_second(summer_1930 / 1_000_000).unwrap()).seconds() == 4772 {
            assert_eq!(Zone::parse("Europe/Amsterdam").unwrap().offset_secs(summer_1930), 4772);
        }
    }

    #[test]
    fn only_canonical_text_goes_into_typed_columns() {
        let exact = |ty: SrType, s: &str| {
            let v = value::parse_csv_field(&ty, s).ok();
            let canon = match v {
                Some(value::Value::Bool(b)) => (b as u8).to_string(),
                Some(value::Value::Int(i)) => i.to_string(),
                Some(value::Value::Decimal(x, sc)) => value::format_decimal(x, sc),
                Some(value::Value::Date(d)) => value::format_date(d),
                Some(value::Value::Datetime(us)) => value::format_datetime(us),
                _ => return false,
            };
            text_is_exact(&ty, s, &canon)
        };
        for s in ["0", "7", "-7", "9223372036854775807", "-9223372036854775808"] {
            assert!(exact(SrType::BigInt, s), "{s}");
        }
        for s in ["007", "+7", " 7", "7 ", "-0", "00", "", "1e1", "7.0"] {
            assert!(!exact(SrType::BigInt, s), "{s}");
        }
        let dec = SrType::Decimal { precision: 10, scale: 2 };
        for s in ["0", "1", "1.5", "1.50", "1.500", "-0.5", "0.00", "-12.34"] {
            assert!(exact(dec.clone(), s), "{s}");
        }
        for s in ["007.50", "+1", " 1.5 ", ".5", "1.", "-0.0", "-0", "1e1", "1.555"] {
            assert!(!exact(dec.clone(), s), "{s}");
        }
        for s in ["0", "1", "true", "FALSE", "True"] {
            assert!(exact(SrType::Boolean, s), "{s}");
        }
        for s in ["false ", " 1", "yes", "2"] {
            assert!(!exact(SrType::Boolean, s), "{s}");
        }
        assert!(exact(SrType::Date, "2024-01-05"));
        // Midnight is exact in a DATE; another time is not.
        for s in ["2024-01-05 00:00:00", "2024-01-05T00:00:00", "2024-01-05 00:00:00.000"] {
            assert!(exact(SrType::Date, s), "{s}");
        }
        assert!(!exact(SrType::Date, "2024-01-05 10:00:00"));
        for s in [" 2024-01-05", "2024-01-05 ", "20240105"] {
            assert!(!exact(SrType::Date, s), "{s}");
        }
    }

    /// The day cache gives the calendar's text (or its error) for every day,
    /// also for days sharing a slot and far outside the range.
    #[test]
    fn day_cache_is_the_calendar() {
        let mut days: Vec<i64> = vec![
            0,
            -1,
            MIN_DAY,
            MIN_DAY - 1,
            MAX_DAY,
            MAX_DAY + 1,
            i32::MIN as i64,
            i32::MAX as i64,
            i32::MIN as i64 - 1,
            DayCache::EMPTY as i64,
        ];
        for k in -3..=3i64 {
            days.extend([10_957 + k * DayCache::SLOTS as i64, 8_000 + k * 4_096 * 7]);
        }
        for _ in 0..3 {
            for &d in &days {
                let want = date_text_uncached(d).map_err(|e| format!("{e:?}"));
                assert_eq!(date_text(d).map_err(|e| format!("{e:?}")), want, "day {d}");
            }
        }
    }

    #[test]
    fn text_forms() {
        assert_eq!(time_text(3_723_004, TimeUnit::Millisecond).as_deref(), Some("01:02:03.004"));
        assert_eq!(time_text(86_399, TimeUnit::Second).as_deref(), Some("23:59:59"));
        assert_eq!(time_text(86_400, TimeUnit::Second), None);
        assert_eq!(json_string("a\"b\\c\n\u{1}"), br#""a\"b\\c\n\u0001""#.to_vec());
        assert_eq!(json_string("a\u{7f}b"), b"\"a\x7fb\"".to_vec());
        let mut out = Vec::new();
        push_decimal(&mut out, -5, 3);
        assert_eq!(out, b"-0.005");
        for (x, scale, text) in [
            (0i128, 2u8, "0.00"),
            (-123_456, 2, "-1234.56"),
            (42, 0, "42"),
            (-(10i128.pow(38) - 1), 38, "-0.99999999999999999999999999999999999999"),
            (10i128.pow(38) - 1, 0, "99999999999999999999999999999999999999"),
            (i64::MAX as i128 + 1, 1, "922337203685477580.8"),
        ] {
            let mut out = Vec::new();
            push_decimal(&mut out, x, scale);
            assert_eq!(String::from_utf8(out).unwrap(), text);
        }
        let (t, n) = datetime_text(-1).unwrap();
        assert_eq!(&t[..n], b"1969-12-31 23:59:59.999999");
        let (t, n) = datetime_text(86_400_000_000).unwrap();
        assert_eq!(&t[..n], b"1970-01-02 00:00:00");
        assert_eq!(&date_text(MIN_DAY).unwrap(), b"0000-01-01");
        assert_eq!(&date_text(MAX_DAY).unwrap(), b"9999-12-31");
        assert!(date_text(MIN_DAY - 1).is_err() && date_text(MAX_DAY + 1).is_err());
        // Proleptic Gregorian 0000-02-29 exists; StarRocks' year 0 has no leap day.
        assert!(date_text(MIN_DAY + 59).is_err());
        assert_eq!(&date_text(MIN_DAY + 58).unwrap(), b"0000-02-28");
        assert_eq!(&date_text(MIN_DAY + 59 + 365).unwrap(), b"0001-02-28");
        assert_eq!(&date_text(-141_438).unwrap(), b"1582-10-04");
        assert!(rescale(1230, 3, 2).is_ok());
        assert!(rescale(1234, 3, 2).is_err());
        assert_eq!(Zone::parse("+08:00").unwrap(), Zone::Fixed(8 * 3600));
        assert_eq!(Zone::parse("utc").unwrap(), Zone::Utc);
        assert!(Zone::parse("Mars/Olympus").is_err());
        assert_eq!(Zone::parse("Asia/Shanghai").unwrap().offset_secs(0), 8 * 3600);
    }

    #[test]
    fn rows_go_to_the_part_that_carries_them() {
        use arrow::datatypes::{Field, Schema};
        let schema = Arc::new(Schema::new(vec![
            Field::new("s", DataType::Utf8, true),
            Field::new("l", DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))), true),
        ]));
        let mut lb = ListBuilder::new(StringBuilder::new());
        for v in [vec!["a"], vec!["b"], vec!["c\u{1}"]] {
            for x in v {
                lb.values().append_value(x);
            }
            lb.append(true);
        }
        let batch = RecordBatch::try_new(
            schema,
            vec![Arc::new(StringArray::from(vec![Some("x"), Some("\\N"), Some("y")])), Arc::new(lb.finish())],
        )
        .unwrap();
        let cols = vec![
            ColumnMapping {
                source: 0,
                source_name: "s".into(),
                target: "s".into(),
                ty: SrType::Varchar(10),
                nullable: true,
                via: Via::Direct,
                uuid_text: false,
            },
            ColumnMapping {
                source: 1,
                source_name: "l".into(),
                target: "l".into(),
                ty: SrType::Array(Box::new(SrType::Varchar(10))),
                nullable: true,
                via: Via::Direct,
                uuid_text: false,
            },
        ];
        let enc = Encoder::new(cols, Zone::Utc);
        let mut out = Encoded::default();
        enc.encode(&batch, &mut out).unwrap();
        assert_eq!(out.parts[Part::Csv as usize].data, b"x\x01[\"a\"]\x02");
        // `\N` as a string: hex (5c4e is "\N").
        assert_eq!(out.parts[Part::Csv64 as usize].data, b"5c4e\x01[\"b\"]\x02");
        assert_eq!(out.parts[Part::Json as usize].data, br#"{"s":"y","l":["c\u0001"]}"#.to_vec());
        assert_eq!(enc.columns_header(Part::Csv64), "`__starload_hex_s`, `s` = unhex(`__starload_hex_s`), `l`");
    }

    /// A cell's text in `mode`, or the refusal's message.
    fn text(w: &Writer<'_>, i: usize, mode: Mode) -> std::result::Result<String, String> {
        let mut t = Vec::new();
        match w.write(i, mode, &mut t) {
            Ok(()) => Ok(String::from_utf8(t).unwrap()),
            Err(CellError::Bad(m)) => Err(m),
            Err(e) => Err(format!("{e:?}")),
        }
    }

    fn direct(source: usize, name: &str, ty: SrType) -> ColumnMapping {
        ColumnMapping {
            source,
            source_name: name.into(),
            target: name.into(),
            ty,
            nullable: true,
            via: Via::Direct,
            uuid_text: false,
        }
    }

    #[test]
    fn empty_strings_and_binaries_stay_empty_in_every_part() {
        use arrow::datatypes::{Field, Schema};
        // Row 0 needs the escaped part for `a`; its empty `b` goes as an
        // empty field (`unhex('')` is '', where `from_base64('')` is NULL).
        let schema =
            Arc::new(Schema::new(vec![Field::new("a", DataType::Utf8, true), Field::new("b", DataType::Utf8, true)]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec![Some("p\u{1}q"), Some("r\u{2}"), Some(""), None])),
                Arc::new(StringArray::from(vec![Some(""), Some("s"), Some("t"), Some("\\N")])),
            ],
        )
        .unwrap();
        let enc = Encoder::new(vec![direct(0, "a", SrType::Varchar(9)), direct(1, "b", SrType::Varchar(9))], Zone::Utc);
        let mut out = Encoded::default();
        enc.encode(&batch, &mut out).unwrap();
        assert_eq!(out.parts[Part::Csv as usize].data, b"\x01t\x02");
        assert_eq!(out.parts[Part::Csv64 as usize].data, b"700171\x01\x027202\x0173\x02\\N\x015c4e\x02");
        assert!(out.parts[Part::Json as usize].data.is_empty());
        // A VARBINARY value in a JSON row: quoted hex, `""` when empty.
        let bin: ArrayRef = Arc::new(BinaryArray::from(vec![&b""[..], &b"\x00\xff"[..]]));
        let w = build(&bin, &SrType::Varbinary(None), Zone::Utc, false).unwrap();
        let mut json = Vec::new();
        w.write(0, Mode::Json, &mut json).unwrap();
        w.write(1, Mode::Json, &mut json).unwrap();
        assert_eq!(json, br#""""00ff""#.to_vec());
        let mut csv = Vec::new();
        w.write(0, Mode::Csv, &mut csv).unwrap();
        assert!(csv.is_empty());
    }

    #[test]
    fn json_null_documents_are_refused() {
        let docs: ArrayRef = Arc::new(StringArray::from(vec!["null"]));
        let w = build(&docs, &SrType::Json, Zone::Utc, false).unwrap();
        assert!(matches!(w.write(0, Mode::Json, &mut Vec::new()), Err(CellError::Bad(m)) if m.contains("null")));
    }

    #[test]
    fn json_documents_over_16_mb_are_refused() {
        // StarRocks refuses a JSON value of more than 16 << 20 bytes.
        let doc = |n: usize| format!("[\"{}\"]", "a".repeat(n - 4));
        let texts: ArrayRef = Arc::new(StringArray::from(vec![doc(16 << 20), doc((16 << 20) + 1)]));
        let w = build(&texts, &SrType::Json, Zone::Utc, false).unwrap();
        for mode in [Mode::Csv, Mode::Json] {
            let mut out = Vec::new();
            w.write(0, mode, &mut out).unwrap();
            assert_eq!(out.len(), 16 << 20);
            let e = w.write(1, mode, &mut out);
            assert!(matches!(&e, Err(CellError::Bad(m)) if m.contains("16 MB")), "{mode:?}");
            assert_eq!(out.len(), 16 << 20, "nothing of the refused value stays");
        }
        // A nested value rendered as one document.
        let list: ArrayRef = Arc::new(ListArray::from_iter_primitive::<arrow::datatypes::Int64Type, _, _>(vec![Some(
            (0..2_000_000).map(|_| Some(1_234_567_890i64)).collect::<Vec<_>>(),
        )]));
        let w = build(&list, &SrType::Json, Zone::Utc, false).unwrap();
        assert!(matches!(w.write(0, Mode::Csv, &mut Vec::new()), Err(CellError::Bad(m)) if m.contains("16 MB")));
        assert!(value::parse_csv_field(&SrType::Json, &doc((16 << 20) + 1)).unwrap_err().contains("16MB"));
        assert!(value::parse_csv_field(&SrType::Json, &doc(16 << 20)).is_ok());
    }
    #[test]
    fn datetime_text_with_trailing_fraction_zeros_is_exact() {
        for (src, ok) in [
            ("2024-01-01 10:00:00.500000", true),
            ("2024-01-01 10:00:00.5", true),
            ("2024-01-01T10:00:00.120", true),
            ("2024-01-01 10:00:00.000", true),
            ("2024-01-01 10:00:00.1234567", false),
        ] {
            let a: ArrayRef = Arc::new(StringArray::from(vec![src]));
            let w = build(&a, &SrType::Datetime, Zone::Utc, false).unwrap();
            assert_eq!(w.write(0, Mode::Csv, &mut Vec::new()).is_ok(), ok, "{src}");
        }
    }

    #[test]
    fn float_text_survives_a_double_reading() {
        let a: ArrayRef = Arc::new(Float32Array::from(vec![f32::MAX, -f32::MAX, 0.1, 1.5e-45, 16777216.0]));
        let w = build(&a, &SrType::Float, Zone::Utc, false).unwrap();
        for (i, &x) in [f32::MAX, -f32::MAX, 0.1f32, 1.5e-45, 16777216.0].iter().enumerate() {
            for mode in [Mode::Csv, Mode::Json] {
                let mut t = Vec::new();
                w.write(i, mode, &mut t).unwrap();
                let d: f64 = std::str::from_utf8(&t).unwrap().parse().unwrap();
                assert!(d.abs() <= f32::MAX as f64 && d as f32 == x, "{x}: {}", String::from_utf8_lossy(&t));
                let v = crate::value::parse_csv_field(&SrType::Float, std::str::from_utf8(&t).unwrap()).unwrap();
                assert!(matches!(v, crate::value::Value::Float(y) if y == x));
            }
        }
        let mut t = Vec::new();
        w.write(2, Mode::Csv, &mut t).unwrap();
        assert_eq!(t, b"0.1", "short text where it is safe");
    }

    #[test]
    fn struct_fields_json_would_escape_are_refused() {
        let ints: ArrayRef = Arc::new(Int32Array::from(vec![1]));
        for name in ["a\"b", "a\\b", "a\nb"] {
            let s: ArrayRef = Arc::new(StructArray::from(vec![(
                Arc::new(arrow::datatypes::Field::new(name, DataType::Int32, true)),
                ints.clone(),
            )]));
            let ty = SrType::Struct(vec![(name.to_string(), SrType::Int)]);
            let e = build(&s, &ty, Zone::Utc, false).err().expect("refused");
            assert!(e.contains("would load as NULL"), "{e}");
        }
        let s: ArrayRef = Arc::new(StructArray::from(vec![(
            Arc::new(arrow::datatypes::Field::new("a b/é", DataType::Int32, true)),
            ints,
        )]));
        let w = build(&s, &SrType::Struct(vec![("a b/é".into(), SrType::Int)]), Zone::Utc, false).unwrap();
        assert_eq!(text(&w, 0, Mode::Json).unwrap(), r#"{"a b/é":1}"#);
    }

    #[test]
    fn map_keys_that_starrocks_takes_as_one_are_refused() {
        use arrow::array::{MapArray, StringArray};
        let map = |keys: ArrayRef| -> ArrayRef {
            let n = keys.len() as i32;
            let entries = StructArray::from(vec![
                (Arc::new(arrow::datatypes::Field::new("key", keys.data_type().clone(), false)), keys),
                (
                    Arc::new(arrow::datatypes::Field::new("value", DataType::Int32, true)),
                    Arc::new(Int32Array::from_iter_values(0..n)) as ArrayRef,
                ),
            ]);
            let field = Arc::new(arrow::datatypes::Field::new("entries", entries.data_type().clone(), false));
            Arc::new(MapArray::new(field, arrow::buffer::OffsetBuffer::new(vec![0, n].into()), entries, None, false))
        };
        let doubles = |v: Vec<f64>| map(Arc::new(Float64Array::from(v)));
        let ty = |k: SrType| SrType::Map(Box::new(k), Box::new(SrType::Int));
        for (what, keys, refused) in [
            ("0.0 and -0.0", doubles(vec![0.0, -0.0]), true),
            ("-0.0 and 0.0", doubles(vec![-0.0, 1.5, 0.0]), true),
            ("the same double", doubles(vec![2.5, 2.5]), true),
            ("other doubles", doubles(vec![-0.0, 1.0, -1.0]), false),
            ("texts 0 and -0", map(Arc::new(StringArray::from(vec!["0", "-0"]))), false),
        ] {
            let key_type = if what.starts_with("texts") { SrType::Varchar(8) } else { SrType::Double };
            let w = build(&keys, &ty(key_type), Zone::Utc, false).unwrap();
            for mode in [Mode::Csv, Mode::Json] {
                let r = text(&w, 0, mode);
                assert_eq!(r.is_err(), refused, "{what} ({mode:?}): {r:?}");
                if let Err(e) = r {
                    assert!(format!("{e:?}").contains("duplicate key"), "{e:?}");
                }
            }
        }
    }

    #[test]
    fn decimals_load_into_integer_and_string_columns_exactly() {
        // DECIMAL(38,0) ids (Hive tables from Oracle/Teradata) into BIGINT.
        let ids: ArrayRef = Arc::new(
            Decimal128Array::from(vec![0, -7, i64::MAX as i128, i64::MAX as i128 + 1])
                .with_precision_and_scale(38, 0)
                .unwrap(),
        );
        let w = build(&ids, &SrType::BigInt, Zone::Utc, false).unwrap();
        assert_eq!(text(&w, 0, Mode::Csv).unwrap(), "0");
        assert_eq!(text(&w, 1, Mode::Csv).unwrap(), "-7");
        assert_eq!(text(&w, 2, Mode::Json).unwrap(), i64::MAX.to_string());
        assert!(text(&w, 3, Mode::Csv).unwrap_err().contains("out of the column's range"));
        let w = build(&ids, &SrType::LargeInt, Zone::Utc, false).unwrap();
        assert_eq!(text(&w, 3, Mode::Csv).unwrap(), (i64::MAX as i128 + 1).to_string());
        // A scale: exact only without a fraction.
        let d: ArrayRef =
            Arc::new(Decimal64Array::from(vec![100, -250, 150, 12_800]).with_precision_and_scale(10, 2).unwrap());
        let w = build(&d, &SrType::TinyInt, Zone::Utc, false).unwrap();
        assert_eq!(text(&w, 0, Mode::Csv).unwrap(), "1");
        assert!(text(&w, 1, Mode::Csv).unwrap_err().contains("-2.50 has a fraction"));
        assert!(text(&w, 2, Mode::Csv).unwrap_err().contains("1.50 has a fraction"));
        assert!(text(&w, 3, Mode::Csv).unwrap_err().contains("128 is out of the column's range"));
        // Into VARCHAR: every scale digit, within the column's length.
        let w = build(&d, &SrType::Varchar(5), Zone::Utc, false).unwrap();
        assert_eq!(text(&w, 0, Mode::Csv).unwrap(), "1.00");
        assert_eq!(text(&w, 1, Mode::Csv).unwrap(), "-2.50");
        assert_eq!(text(&w, 1, Mode::Json).unwrap(), "\"-2.50\"");
        assert!(text(&w, 3, Mode::Csv).is_err(), "128.00 is 6 bytes");
        // Into DOUBLE/FLOAT: when the float prints as the same number.
        let w = build(&d, &SrType::Double, Zone::Utc, false).unwrap();
        assert_eq!(text(&w, 1, Mode::Csv).unwrap(), "-2.5");
        assert_eq!(text(&w, 3, Mode::Json).unwrap(), "128.0");
        let wide: ArrayRef = Arc::new(
            Decimal128Array::from(vec![12_345_678_901_234_567_891i128, 1]).with_precision_and_scale(38, 1).unwrap(),
        );
        let w = build(&wide, &SrType::Double, Zone::Utc, false).unwrap();
        assert!(text(&w, 0, Mode::Csv).unwrap_err().contains("cannot be loaded into DOUBLE exactly"));
        assert_eq!(text(&w, 1, Mode::Csv).unwrap(), "0.1");
        let w = build(&wide, &SrType::Float, Zone::Utc, false).unwrap();
        assert_eq!(text(&w, 1, Mode::Csv).unwrap(), "0.1");
        // Decimal256 scales past 38 digits: only 0 has no fraction there.
        let tiny: ArrayRef = Arc::new(
            Decimal256Array::from(vec![arrow::datatypes::i256::ZERO, arrow::datatypes::i256::from_i128(5)])
                .with_precision_and_scale(76, 50)
                .unwrap(),
        );
        let w = build(&tiny, &SrType::BigInt, Zone::Utc, false).unwrap();
        assert_eq!(text(&w, 0, Mode::Csv).unwrap(), "0");
        assert!(text(&w, 1, Mode::Csv).unwrap_err().contains("has a fraction"));
        let w = build(&tiny, &SrType::Decimal { precision: 10, scale: 2 }, Zone::Utc, false).unwrap();
        assert_eq!(text(&w, 0, Mode::Csv).unwrap(), "0.00");
        assert!(text(&w, 1, Mode::Csv).unwrap_err().contains("more fraction digits"));
        // Decimal256 values past 128 bits at a large scale: exact when their
        // trailing zeros go (1.5 at scale 40 is 15·10^39).
        let i = |x: i128, zeros: u32| {
            arrow::datatypes::i256::from_i128(x).wrapping_mul(arrow::datatypes::i256::from_i128(10).wrapping_pow(zeros))
        };
        let big: ArrayRef = Arc::new(
            Decimal256Array::from(vec![i(15, 39), i(-225, 38), i(2, 40), i(1, 39) + i(1, 0), i(1, 40)])
                .with_precision_and_scale(76, 40)
                .unwrap(),
        );
        let w = build(&big, &SrType::Decimal { precision: 10, scale: 2 }, Zone::Utc, false).unwrap();
        assert_eq!(text(&w, 0, Mode::Csv).unwrap(), "1.50");
        assert_eq!(text(&w, 1, Mode::Json).unwrap(), "\"-2.25\"");
        assert!(text(&w, 3, Mode::Csv).is_err(), "0.1000…0001 needs 40 fraction digits");
        assert_eq!(text(&w, 4, Mode::Csv).unwrap(), "1.00");
        let w = build(&big, &SrType::BigInt, Zone::Utc, false).unwrap();
        assert_eq!(text(&w, 2, Mode::Csv).unwrap(), "2");
        assert!(text(&w, 0, Mode::Csv).unwrap_err().contains("has a fraction"));
        let w = build(&big, &SrType::Varchar(60), Zone::Utc, false).unwrap();
        assert_eq!(text(&w, 0, Mode::Csv).unwrap(), format!("1.5{}", "0".repeat(39)));
        assert_eq!(text(&w, 2, Mode::Csv).unwrap(), format!("2.{}", "0".repeat(40)));
        let w = build(&big, &SrType::Double, Zone::Utc, false).unwrap();
        assert_eq!(text(&w, 1, Mode::Csv).unwrap(), "-2.25");
        // Still refused: a decimal into DATE.
        assert!(build(&d, &SrType::Date, Zone::Utc, false).is_err());
    }

    #[test]
    fn every_string_column_of_an_escaped_row_goes_in_hex() {
        use arrow::datatypes::{Field, Schema};
        // The escaped part's header puts every string column through `unhex`,
        // so a decimal, a date and a timestamp into VARCHAR go in hex there too
        // (a decimal 1250 sent as its text would be stored as the bytes 12 50).
        let schema = Arc::new(Schema::new(vec![
            Field::new("s", DataType::Utf8, true),
            Field::new("d", DataType::Decimal128(4, 0), true),
            Field::new("day", DataType::Date32, true),
            Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, None), true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec!["plain", "a\u{1}b"])),
                Arc::new(Decimal128Array::from(vec![1250, 1250]).with_precision_and_scale(4, 0).unwrap()),
                Arc::new(Date32Array::from(vec![19_724, 19_724])),
                Arc::new(TimestampMicrosecondArray::from(vec![1_704_164_645_000_006, 1_704_164_645_000_000])),
            ],
        )
        .unwrap();
        let cols = vec![
            direct(0, "s", SrType::Varchar(10)),
            direct(1, "d", SrType::Varchar(10)),
            direct(2, "day", SrType::Varchar(10)),
            direct(3, "ts", SrType::Varchar(26)),
        ];
        let enc = Encoder::new(cols, Zone::Utc);
        let mut out = Encoded::default();
        enc.encode(&batch, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out.parts[Part::Csv as usize].data.clone()).unwrap(),
            "plain\x011250\x012024-01-02\x012024-01-02 03:04:05.000006\x02"
        );
        let hex = |t: &str| t.bytes().map(|b| format!("{b:02x}")).collect::<String>();
        let want = [hex("a\u{1}b"), hex("1250"), hex("2024-01-02"), hex("2024-01-02 03:04:05")].join("\x01") + "\x02";
        assert_eq!(String::from_utf8(out.parts[Part::Csv64 as usize].data.clone()).unwrap(), want);
    }

    #[test]
    fn dates_and_timestamps_load_into_string_columns_as_their_cast_text() {
        let days: ArrayRef = Arc::new(Date32Array::from(vec![Some(0), None, Some(2_932_896)]));
        let w = build(&days, &SrType::Varchar(10), Zone::Utc, false).unwrap();
        assert_eq!(text(&w, 0, Mode::Csv).unwrap(), "1970-01-01");
        assert_eq!(text(&w, 1, Mode::Csv).unwrap(), "\\N");
        assert_eq!(text(&w, 2, Mode::Json).unwrap(), "\"9999-12-31\"");
        assert_eq!(text(&w, 0, Mode::CsvElem).unwrap(), "\"1970-01-01\"");
        let w = build(&days, &SrType::Char(9), Zone::Utc, false).unwrap();
        assert!(text(&w, 0, Mode::Csv).unwrap_err().contains("longer than the column's 9 bytes"));
        // A Date64 is a date: a time of day is refused, not printed.
        let ms: ArrayRef = Arc::new(Date64Array::from(vec![86_400_000, 86_400_001]));
        let w = build(&ms, &SrType::Varchar(20), Zone::Utc, false).unwrap();
        assert_eq!(text(&w, 0, Mode::Csv).unwrap(), "1970-01-02");
        assert!(text(&w, 1, Mode::Csv).unwrap_err().contains("time of day"));
        // Timestamps: DATETIME's text; a zoned one in the job's zone.
        let ts: ArrayRef = Arc::new(TimestampMillisecondArray::from(vec![0, 1_500]).with_timezone("UTC"));
        let w = build(&ts, &SrType::Varchar(30), Zone::parse("Asia/Shanghai").unwrap(), false).unwrap();
        assert_eq!(text(&w, 0, Mode::Csv).unwrap(), "1970-01-01 08:00:00");
        assert_eq!(text(&w, 1, Mode::Csv).unwrap(), "1970-01-01 08:00:01.500000");
        let ns: ArrayRef = Arc::new(TimestampNanosecondArray::from(vec![1]));
        let w = build(&ns, &SrType::Varchar(30), Zone::Utc, false).unwrap();
        assert!(text(&w, 0, Mode::Csv).unwrap_err().contains("below a microsecond"));
        // Booleans have no one text ('1' in StarRocks, 'true' in Spark).
        let b: ArrayRef = Arc::new(BooleanArray::from(vec![true]));
        assert!(build(&b, &SrType::Varchar(5), Zone::Utc, false).is_err());
    }

    #[test]
    fn integers_past_64_bits_are_quoted_in_json_rows() {
        let v: ArrayRef = Arc::new(
            Decimal128Array::from(vec![i128::MIN + 1, u64::MAX as i128, u64::MAX as i128 + 1, i64::MIN as i128])
                .with_precision_and_scale(38, 0)
                .unwrap(),
        );
        let w = build(&v, &SrType::LargeInt, Zone::Utc, false).unwrap();
        let json = |i: usize| {
            let mut t = Vec::new();
            w.write(i, Mode::Json, &mut t).unwrap();
            String::from_utf8(t).unwrap()
        };
        assert_eq!(json(0), format!("\"{}\"", i128::MIN + 1));
        assert_eq!(json(1), u64::MAX.to_string());
        assert_eq!(json(2), format!("\"{}\"", u64::MAX as i128 + 1));
        assert_eq!(json(3), i64::MIN.to_string());
        let mut t = Vec::new();
        w.write(2, Mode::CsvElem, &mut t).unwrap();
        assert_eq!(t, (u64::MAX as i128 + 1).to_string().into_bytes());
        // Text into LARGEINT likewise.
        let s: ArrayRef = Arc::new(StringArray::from(vec!["-170141183460469231731687303715884105728", "42"]));
        let w = build(&s, &SrType::LargeInt, Zone::Utc, false).unwrap();
        let mut t = Vec::new();
        w.write(0, Mode::Json, &mut t).unwrap();
        assert_eq!(t, b"\"-170141183460469231731687303715884105728\"");
        t.clear();
        w.write(1, Mode::Json, &mut t).unwrap();
        assert_eq!(t, b"42");
    }

    #[test]
    fn a_string_too_long_for_hex_sends_its_row_as_json() {
        use arrow::datatypes::{Field, Schema};
        let schema =
            Arc::new(Schema::new(vec![Field::new("a", DataType::Utf8, true), Field::new("b", DataType::Utf8, true)]));
        let long = "x".repeat(MAX_HEX_STRING + 1);
        let sep = format!("{long}\u{1}");
        let batch = RecordBatch::try_new(
            schema,
            vec![
                // Row 0: a separator beside a long clean string; row 1: a long
                // string with a separator; row 2: a separator, short strings.
                Arc::new(StringArray::from(vec!["\u{1}", sep.as_str(), "\u{1}"])),
                Arc::new(StringArray::from(vec![long.as_str(), "b", "c"])),
            ],
        )
        .unwrap();
        let cols = vec![direct(0, "a", SrType::Varchar(1_048_576)), direct(1, "b", SrType::Varchar(1_048_576))];
        let enc = Encoder::new(cols, Zone::Utc);
        let mut out = Encoded::default();
        enc.encode(&batch, &mut out).unwrap();
        assert_eq!(out.parts[Part::Csv as usize].rows, 0);
        assert_eq!(out.parts[Part::Csv64 as usize].data, b"01\x0163\x02");
        assert_eq!(out.parts[Part::Json as usize].rows, 2);
        let json = String::from_utf8(out.parts[Part::Json as usize].data.clone()).unwrap();
        assert_eq!(json, format!(r#"{{"a":"\u0001","b":"{long}"}},{{"a":"{long}\u0001","b":"b"}}"#));
    }

    #[test]
    fn negative_decimal_scales_are_refused_when_planning() {
        let a: ArrayRef = Arc::new(Decimal128Array::from(vec![5]).with_precision_and_scale(5, -2).unwrap());
        let e = build(&a, &SrType::Decimal { precision: 10, scale: 0 }, Zone::Utc, false).err().unwrap();
        assert!(e.contains("negative scale"), "{e}");
    }
}
