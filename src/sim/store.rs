//! The simulator's storage: databases, tables with their key models and
//! partitions, the label/transaction table, and the parsing of load bodies
//! into rows with the BE's rules.

use std::collections::{BTreeMap, HashMap, VecDeque};

use base64::Engine;
use roaring::RoaringTreemap;

use super::tables::{PartitionDef, TableDef};
use crate::meta::KeysType;
use crate::srtype::SrType;
use crate::value::{self, Value};

/// Transaction state (FE `TransactionStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnState {
    /// Begun, loading.
    Prepare,
    /// Prepared (2PC).
    Prepared,
    /// Committed, not yet visible.
    Committed,
    /// Visible.
    Visible,
    /// Aborted.
    Aborted,
}

impl TxnState {
    /// The name `get_load_state` returns.
    pub fn name(&self) -> &'static str {
        match self {
            TxnState::Prepare => "PREPARE",
            TxnState::Prepared => "PREPARED",
            TxnState::Committed => "COMMITTED",
            TxnState::Visible => "VISIBLE",
            TxnState::Aborted => "ABORTED",
        }
    }
    /// Final states.
    pub fn is_final(&self) -> bool {
        matches!(self, TxnState::Visible | TxnState::Aborted)
    }
}

/// A transaction, by label.
#[derive(Debug, Clone)]
pub struct Txn {
    /// Id.
    pub id: i64,
    /// Table.
    pub table: String,
    /// State.
    pub state: TxnState,
    /// Abort reason.
    pub reason: String,
}

/// One partition's rows.
#[derive(Debug, Clone)]
pub struct Part {
    /// `PartitionId`: unique in the simulator, and carried with the data, as
    /// an FE's partition id is: `REPLACE PARTITION` gives the live partition
    /// the temporary one's id, `SWAP WITH` swaps the tables' ids, `TRUNCATE`
    /// makes new ones.
    pub id: u64,
    /// DUPLICATE tables: rows in arrival order.
    pub rows: Vec<Vec<Value>>,
    /// Keyed tables: canonical key → row.
    pub keyed: BTreeMap<String, Vec<Value>>,
}

impl Default for Part {
    fn default() -> Part {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(10_001);
        Part { id: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed), rows: Vec::new(), keyed: BTreeMap::new() }
    }
}

impl Part {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len() + self.keyed.len()
    }
    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// All rows.
    pub fn all(&self) -> impl Iterator<Item = &Vec<Value>> {
        self.rows.iter().chain(self.keyed.values())
    }
}

/// A table with its data.
#[derive(Debug, Clone)]
pub struct Table {
    /// Definition.
    pub def: TableDef,
    /// Data per partition (parallel to `def.partitions`).
    pub parts: Vec<Part>,
    /// Temporary partitions.
    pub temp: Vec<(PartitionDef, Part)>,
    /// Rows counted in discard mode.
    pub discarded_rows: u64,
    /// Bytes counted in discard mode.
    pub discarded_bytes: u64,
    /// Committed loads.
    pub loads: u64,
}

impl Table {
    /// A new empty table.
    pub fn new(def: TableDef) -> Table {
        let parts = (0..def.partitions.len()).map(|_| Part::default()).collect();
        Table { def, parts, temp: Vec::new(), discarded_rows: 0, discarded_bytes: 0, loads: 0 }
    }
    /// All visible rows.
    pub fn rows(&self) -> Vec<Vec<Value>> {
        self.parts.iter().flat_map(|p| p.all().cloned()).collect()
    }
    /// Row count (discarded rows included).
    pub fn count(&self) -> u64 {
        self.parts.iter().map(|p| p.len() as u64).sum::<u64>() + self.discarded_rows
    }
}

/// A database.
#[derive(Debug, Clone, Default)]
pub struct Db {
    /// Tables by name.
    pub tables: BTreeMap<String, Table>,
    /// Transactions by label.
    pub labels: HashMap<String, Txn>,
    /// Finished labels, oldest first (for eviction).
    pub finished: VecDeque<String>,
}

/// Options of the label table.
#[derive(Debug, Clone, Copy)]
pub struct LabelPolicy {
    /// `label_keep_max_num`: finished labels kept per database.
    pub keep_max: usize,
}

/// Parsed load request options (protocol §2).
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// Label.
    pub label: String,
    /// Body format.
    pub format: BodyFormat,
    /// `columns` header items.
    pub columns: Option<Vec<ColumnItem>>,
    /// Strict mode.
    pub strict: bool,
    /// Max filter ratio.
    pub max_filter_ratio: f64,
    /// Seconds.
    pub timeout: u64,
    /// Target partitions.
    pub partitions: Option<Vec<String>>,
    /// Target temporary partitions.
    pub temporary_partitions: Option<Vec<String>>,
    /// Partial update (PK).
    pub partial_update: bool,
    /// Merge condition column (PK).
    pub merge_condition: Option<String>,
    /// JSON size check disabled.
    pub ignore_json_size: bool,
    /// The CSV body is one LZ4 frame (`format: lz4`).
    pub lz4: bool,
}

/// Body format.
#[derive(Debug, Clone, PartialEq)]
pub enum BodyFormat {
    /// CSV with separator and delimiter bytes.
    Csv {
        /// Column separator.
        sep: Vec<u8>,
        /// Row delimiter.
        delim: Vec<u8>,
    },
    /// JSON.
    Json {
        /// Body is an array of rows.
        strip_outer_array: bool,
    },
}

/// A `columns` header item.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnItem {
    /// A source field bound to this name.
    Name(String),
    /// `target = func(args)`.
    Expr {
        /// Target column.
        target: String,
        /// Function name (lower case).
        func: String,
        /// Argument names.
        args: Vec<String>,
    },
}

/// Parses the `columns` header.
pub fn parse_columns(s: &str) -> Result<Vec<ColumnItem>, String> {
    let mut items = Vec::new();
    // Split at top-level commas (not inside parentheses).
    let mut depth = 0i32;
    let mut cur = String::new();
    let mut parts = Vec::new();
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    parts.push(cur);
    for p in parts {
        let p = p.trim();
        if p.is_empty() {
            return Err("empty item in columns".into());
        }
        match p.split_once('=') {
            None => items.push(ColumnItem::Name(unquote_ident(p)?)),
            Some((t, e)) => {
                let e = e.trim();
                let (func, rest) = e.split_once('(').ok_or_else(|| format!("unsupported expression `{e}`"))?;
                let args_text = rest.strip_suffix(')').ok_or_else(|| format!("unsupported expression `{e}`"))?;
                let args: Vec<String> = if args_text.trim().is_empty() {
                    vec![]
                } else {
                    args_text.split(',').map(|a| unquote_ident(a.trim())).collect::<Result<_, _>>()?
                };
                items.push(ColumnItem::Expr {
                    target: unquote_ident(t.trim())?,
                    func: func.trim().to_ascii_lowercase(),
                    args,
                });
            }
        }
    }
    Ok(items)
}

/// Words the FE's SQL parser reserves (a subset: those a column is likely
/// to be named); unquoted, they fail to parse.
const RESERVED: &[&str] = &[
    "all",
    "alter",
    "and",
    "as",
    "asc",
    "between",
    "by",
    "case",
    "create",
    "default",
    "delete",
    "desc",
    "distinct",
    "drop",
    "else",
    "exists",
    "false",
    "from",
    "group",
    "having",
    "in",
    "index",
    "insert",
    "interval",
    "into",
    "is",
    "join",
    "key",
    "like",
    "limit",
    "not",
    "null",
    "on",
    "or",
    "order",
    "partition",
    "primary",
    "range",
    "select",
    "set",
    "table",
    "then",
    "true",
    "union",
    "update",
    "values",
    "when",
    "where",
    "with",
];

/// An identifier of the `columns` header as the FE's SQL parser reads it:
/// in backquotes anything (a doubled backquote is one), otherwise a plain
/// name that is not a reserved word.
fn unquote_ident(s: &str) -> Result<String, String> {
    let s = s.trim();
    if let Some(inner) = s.strip_prefix('`').and_then(|r| r.strip_suffix('`')) {
        if inner.is_empty() || inner.replace("``", "").contains('`') {
            return Err(format!("bad quoted identifier {s}"));
        }
        return Ok(inner.replace("``", "`"));
    }
    let plain = s.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_alphanumeric() || c == '_');
    if !plain {
        return Err(format!("syntax error in columns: `{s}` is not an identifier; quote it in backquotes"));
    }
    if RESERVED.contains(&s.to_ascii_lowercase().as_str()) {
        return Err(format!("syntax error in columns: `{s}` is a reserved word; quote it in backquotes"));
    }
    Ok(s.to_string())
}

/// The result of parsing a body.
#[derive(Debug, Default)]
pub struct Parsed {
    /// Rows to apply: full table rows, `__op` (1 = delete), row number.
    pub rows: Vec<(Vec<Value>, u8, usize)>,
    /// Rows read.
    pub total: u64,
    /// Rows rejected.
    pub filtered: u64,
    /// Rows dropped by `where`.
    pub unselected: u64,
    /// Error-log lines.
    pub errors: Vec<String>,
    /// For partial updates: which columns were given.
    pub given: Vec<bool>,
}

/// Where parsed values come from for each table column.
enum Source {
    /// Source field `i`, parsed with the column type.
    Field(usize),
    /// An expression over source fields (raw text).
    Expr(String, Vec<usize>),
    /// Not given: default or NULL.
    Missing,
}

/// Converts a decoded hex/literal delimiter header (`\x01`, `0x0d0a`, `,`).
pub fn parse_delimiter(s: &str) -> Result<Vec<u8>, String> {
    if s.is_empty() {
        return Err("delimiter is empty".into());
    }
    let lower = s.to_ascii_lowercase();
    if let Some(hex) = lower.strip_prefix("\\x").or_else(|| lower.strip_prefix("0x")) {
        if hex.is_empty() || hex.len() % 2 != 0 {
            return Err(format!("invalid hex delimiter `{s}`"));
        }
        return (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| format!("invalid hex delimiter `{s}`")))
            .collect();
    }
    if s.len() > 50 {
        return Err("delimiter longer than 50 bytes".into());
    }
    Ok(s.as_bytes().to_vec())
}

fn split_bytes<'a>(hay: &'a [u8], sep: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    if sep.len() == 1 {
        for (i, &b) in hay.iter().enumerate() {
            if b == sep[0] {
                out.push(&hay[start..i]);
                start = i + 1;
            }
        }
    } else {
        let mut i = 0;
        while i + sep.len() <= hay.len() {
            if &hay[i..i + sep.len()] == sep {
                out.push(&hay[start..i]);
                i += sep.len();
                start = i;
            } else {
                i += 1;
            }
        }
    }
    out.push(&hay[start..]);
    out
}

/// Counts the rows of a body without parsing values (discard mode).
pub fn count_rows(spec: &LoadSpec, body: &[u8]) -> Result<u64, String> {
    match &spec.format {
        BodyFormat::Csv { delim, .. } => Ok(split_bytes(body, delim).iter().filter(|l| !l.is_empty()).count() as u64),
        BodyFormat::Json { strip_outer_array } => {
            let t = std::str::from_utf8(body).map_err(|_| "invalid UTF-8 in JSON body".to_string())?;
            if *strip_outer_array {
                let v: Vec<&serde_json::value::RawValue> =
                    serde_json::from_str(t).map_err(|e| format!("Unrecognized json format: {e}"))?;
                Ok(v.len() as u64)
            } else {
                Ok(1)
            }
        }
    }
}

/// Parses a body into table rows with the BE's rules.
pub fn parse_body(def: &TableDef, spec: &LoadSpec, body: &[u8]) -> Result<Parsed, String> {
    // Source field names, in order, and how each table column is filled.
    let items =
        spec.columns.clone().unwrap_or_else(|| def.columns.iter().map(|c| ColumnItem::Name(c.name.clone())).collect());
    let fields: Vec<String> = items
        .iter()
        .filter_map(|i| match i {
            ColumnItem::Name(n) => Some(n.clone()),
            _ => None,
        })
        .collect();
    let mut sources: Vec<Source> = def.columns.iter().map(|_| Source::Missing).collect();
    let mut op_field: Option<usize> = None;
    for (fi, f) in fields.iter().enumerate() {
        if f.eq_ignore_ascii_case("__op") {
            op_field = Some(fi);
            continue;
        }
        if let Some(ci) = def.col(f) {
            let is_expr_target =
                items.iter().any(|i| matches!(i, ColumnItem::Expr { target, .. } if target.eq_ignore_ascii_case(f)));
            if !is_expr_target {
                sources[ci] = Source::Field(fi);
            }
        }
    }
    for it in &items {
        if let ColumnItem::Expr { target, func, args } = it {
            if target.eq_ignore_ascii_case("__op") {
                return Err("expressions on __op are not supported by the simulator".into());
            }
            let ci = def.col(target).ok_or_else(|| format!("Unknown column '{target}' in '{}'", def.name))?;
            let arg_idx = args
                .iter()
                .map(|a| {
                    fields.iter().position(|f| f == a).ok_or_else(|| format!("Unknown column '{a}' in expression"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            match func.as_str() {
                "to_bitmap" | "base64_to_bitmap" | "bitmap_from_string" if arg_idx.len() == 1 => {
                    if !matches!(def.columns[ci].ty, SrType::Bitmap) {
                        return Err(format!(
                            "{func} can only load a BITMAP column, `{target}` is {}",
                            def.columns[ci].ty
                        ));
                    }
                }
                "bitmap_empty" if arg_idx.is_empty() => {}
                "from_base64" | "unhex" if arg_idx.len() == 1 => {}
                _ => {
                    return Err(format!(
                        "expression `{func}` with {} arguments is not supported by the simulator",
                        arg_idx.len()
                    ));
                }
            }
            sources[ci] = Source::Expr(func.clone(), arg_idx);
        }
    }
    for (ci, c) in def.columns.iter().enumerate() {
        if matches!(c.ty, SrType::Bitmap | SrType::Hll | SrType::Percentile) && matches!(sources[ci], Source::Field(_))
        {
            return Err(format!(
                "bitmap column {} require the function return type is BITMAP; use to_bitmap or base64_to_bitmap",
                c.name
            ));
        }
        if matches!(sources[ci], Source::Missing) && !spec.partial_update && !c.nullable && c.default.is_none() {
            if matches!(c.ty, SrType::Bitmap) && matches!(def.keys, KeysType::Aggregate) {
                continue;
            }
            return Err(format!("Column has no default value. column: {}", c.name));
        }
        if matches!(sources[ci], Source::Missing)
            && spec.partial_update
            && !c.nullable
            && c.default.is_none()
            && matches!(zero_value(&c.ty), Value::Null)
        {
            return Err(format!(
                "partial update without NOT NULL column {} ({}): the simulator does not model the zero value a new key \
                 would get there",
                c.name, c.ty
            ));
        }
    }
    if matches!(def.keys, KeysType::Primary) || spec.partial_update {
        for k in def.key_indexes() {
            if matches!(sources[k], Source::Missing) {
                return Err(format!("key column {} must be loaded", def.columns[k].name));
            }
        }
    }
    if op_field.is_some() && !matches!(def.keys, KeysType::Primary) {
        return Err("__op is only supported by primary key tables".into());
    }

    let mut out =
        Parsed { given: sources.iter().map(|s| !matches!(s, Source::Missing)).collect(), ..Default::default() };

    // Each raw row becomes a vector of field values: for CSV the text, for
    // JSON the raw JSON text of each key (None when missing).
    enum RawRow<'a> {
        Csv(Vec<&'a str>),
        Json(Vec<Option<&'a serde_json::value::RawValue>>),
    }
    let mut raw_rows: Vec<(RawRow, String)> = Vec::new();
    match &spec.format {
        BodyFormat::Csv { sep, delim } => {
            for line in split_bytes(body, delim) {
                if line.is_empty() {
                    continue;
                }
                out.total += 1;
                let Ok(text) = std::str::from_utf8(line) else {
                    reject(&mut out, "Invalid UTF-8 row", &String::from_utf8_lossy(line));
                    continue;
                };
                let cols: Vec<&str> = split_bytes(text.as_bytes(), sep)
                    .into_iter()
                    .map(|f| std::str::from_utf8(f).unwrap_or(""))
                    .collect();
                if cols.len() != fields.len() {
                    reject(
                        &mut out,
                        &format!(
                            "Target column count: {} doesn't match source value column count: {}",
                            fields.len(),
                            cols.len()
                        ),
                        text,
                    );
                    continue;
                }
                raw_rows.push((RawRow::Csv(cols), text.to_string()));
            }
        }
        BodyFormat::Json { strip_outer_array } => {
            if !spec.ignore_json_size && body.len() > 104_857_600 {
                return Err(format!(
                    "The size of this batch exceed the max size [104857600] of json type data  data [ {} ]. Split the file, or use 'ignore_json_size' to skip the check",
                    body.len()
                ));
            }
            // The BE reads a JSON body whole; simdjson refuses 4 GiB or more
            // (stream_load_context.h kJSONMaxBufferSize).
            if body.len() as u64 >= 4 << 30 {
                return Err(format!("payload size [{}] of single write beyond the JSON payload limit", body.len()));
            }
            let text = std::str::from_utf8(body).map_err(|_| "Invalid UTF-8 in JSON body".to_string())?;
            let t = text.trim_start_matches([' ', '\t', '\r', '\n']);
            let first = t.chars().next().unwrap_or(' ');
            if first != '[' && first != '{' {
                return Err(format!("illegal json started with [{first}]"));
            }
            let objs: Vec<&serde_json::value::RawValue> = if *strip_outer_array {
                serde_json::from_str(text).map_err(|e| format!("Unrecognized json format, stop json loading: {e}"))?
            } else {
                if first != '{' {
                    return Err("JSON data is an array; set strip_outer_array to true".into());
                }
                vec![serde_json::from_str(text).map_err(|e| format!("Unrecognized json format: {e}"))?]
            };
            for o in objs {
                out.total += 1;
                let entries = match value::parse_object_entries(o.get()) {
                    Ok(e) => e,
                    Err(_) => {
                        reject(&mut out, "JSON row is not an object", o.get());
                        continue;
                    }
                };
                let mut vals: Vec<Option<&serde_json::value::RawValue>> = vec![None; fields.len()];
                for (k, v) in entries {
                    // Exact, case-sensitive key match; the first duplicate wins.
                    if let Some(fi) = fields.iter().position(|f| *f == k)
                        && vals[fi].is_none()
                    {
                        vals[fi] = Some(v);
                    }
                }
                raw_rows.push((RawRow::Json(vals), o.get().to_string()));
            }
        }
    }

    'rows: for (ri, (raw, text)) in raw_rows.into_iter().enumerate() {
        let mut row: Vec<Value> = Vec::with_capacity(def.columns.len());
        for (ci, c) in def.columns.iter().enumerate() {
            let v = match &sources[ci] {
                Source::Missing => match &c.default {
                    Some(d) if !d.eq_ignore_ascii_case("null") => {
                        value::parse_csv_field(&c.ty, d).unwrap_or(Value::Null)
                    }
                    _ => {
                        if matches!(c.ty, SrType::Bitmap) {
                            Value::Bitmap(RoaringTreemap::new())
                        } else {
                            Value::Null
                        }
                    }
                },
                Source::Field(fi) => {
                    let r = match &raw {
                        RawRow::Csv(cols) => {
                            let f = cols[*fi];
                            if f == "\\N" { Ok(Value::Null) } else { value::parse_csv_field(&c.ty, f) }
                        }
                        RawRow::Json(vals) => match vals[*fi] {
                            None => Ok(Value::Null),
                            // A value the cast makes NULL is an error row under
                            // strict mode (the scanner's invalid_as_null is
                            // !strict_mode); inside ARRAY/MAP/STRUCT it stays NULL.
                            Some(v) => match value::parse_json_value(&c.ty, v.get()) {
                                Ok(Value::Null) if v.get().trim() != "null" => {
                                    Err(format!("the value {} cannot be cast to {}", v.get(), c.ty))
                                }
                                r => r,
                            },
                        },
                    };
                    match r {
                        Ok(v) => v,
                        Err(e) => {
                            if spec.strict {
                                reject(
                                    &mut out,
                                    &format!("The field (name = {}, pos = {ci}) is out of range: {e}", c.name),
                                    &text,
                                );
                                continue 'rows;
                            }
                            Value::Null
                        }
                    }
                }
                Source::Expr(func, args) => {
                    // A CSV field feeding an expression is a VARCHAR source
                    // column: the BE's string converter refuses one over
                    // MAX_VARCHAR_LENGTH, whatever the target (NULL when not strict).
                    let mut too_long = false;
                    if let RawRow::Csv(cols) = &raw
                        && let Some(&a) = args.iter().find(|&&a| cols[a].len() > crate::srtype::MAX_VARCHAR as usize)
                    {
                        if spec.strict {
                            reject(
                                &mut out,
                                &format!(
                                    "Value is out of range: field {} of {} bytes is longer than {}",
                                    fields[a],
                                    cols[a].len(),
                                    crate::srtype::MAX_VARCHAR
                                ),
                                &text,
                            );
                            continue 'rows;
                        }
                        too_long = true;
                    }
                    let arg = |i: usize| -> Option<String> {
                        match &raw {
                            RawRow::Csv(cols) => {
                                let f = cols[args[i]];
                                if f == "\\N" { None } else { Some(f.to_string()) }
                            }
                            RawRow::Json(vals) => vals[args[i]].and_then(|v| {
                                let t = v.get();
                                if t == "null" {
                                    None
                                } else {
                                    match serde_json::from_str::<serde_json::Value>(t) {
                                        Ok(serde_json::Value::String(s)) => Some(s),
                                        _ => Some(t.to_string()),
                                    }
                                }
                            }),
                        }
                    };
                    match if too_long { Ok(Value::Null) } else { eval_expr(func, &c.ty, &arg) } {
                        Ok(v) => v,
                        Err(e) => {
                            reject(&mut out, &format!("column {}: {e}", c.name), &text);
                            continue 'rows;
                        }
                    }
                }
            };
            // Sink checks: NULL in NOT NULL, string length, decimal range.
            if matches!(v, Value::Null)
                && !c.nullable
                && !(spec.partial_update && matches!(sources[ci], Source::Missing))
            {
                reject(&mut out, &format!("NULL value in non-nullable column '{}'", c.name), &text);
                continue 'rows;
            }
            if let (Value::Str(s), SrType::Char(n) | SrType::Varchar(n)) = (&v, &c.ty)
                && s.len() > *n as usize
            {
                reject(&mut out, &format!("String '{}' is too long. The max length of '{}' is {n}", s, c.name), &text);
                continue 'rows;
            }
            if let (Value::Decimal(x, _), SrType::Decimal { precision, .. }) = (&v, &c.ty)
                && x.unsigned_abs() >= 10u128.pow(*precision as u32)
            {
                reject(&mut out, &format!("Decimal is out of range. The type of '{}' is {}", c.name, c.ty), &text);
                continue 'rows;
            }
            // CHAR is stored padded with NUL bytes and read back cut at the
            // first one (chunk_helper.cpp padding_char_columns;
            // binary_plain_page.cpp strnlen for TYPE_CHAR).
            let v = match (v, &c.ty) {
                (Value::Str(s), SrType::Char(_)) if s.contains('\0') => {
                    Value::Str(s.split('\0').next().unwrap_or_default().to_string())
                }
                (v, _) => v,
            };
            row.push(v);
        }
        let op = match (&raw, op_field) {
            (_, None) => 0u8,
            (RawRow::Csv(cols), Some(fi)) => match cols[fi] {
                "0" => 0,
                "1" => 1,
                other => {
                    reject(&mut out, &format!("invalid __op value `{other}`"), &text);
                    continue 'rows;
                }
            },
            (RawRow::Json(vals), Some(fi)) => match vals[fi].map(|v| v.get().trim()) {
                None | Some("0") | Some("\"0\"") => 0,
                Some("1") | Some("\"1\"") => 1,
                Some(other) => {
                    reject(&mut out, &format!("invalid __op value `{other}`"), &text);
                    continue 'rows;
                }
            },
        };
        out.rows.push((row, op, ri));
    }
    Ok(out)
}

fn reject(out: &mut Parsed, msg: &str, row: &str) {
    out.filtered += 1;
    if out.errors.len() < 50 {
        let shown: String = row.chars().take(200).collect();
        out.errors.push(format!("Error: {msg}. Row: {shown}"));
    }
}

fn eval_expr(func: &str, ty: &SrType, arg: &dyn Fn(usize) -> Option<String>) -> Result<Value, String> {
    match func {
        "bitmap_empty" => Ok(Value::Bitmap(RoaringTreemap::new())),
        "to_bitmap" => match arg(0) {
            None => Ok(Value::Null),
            Some(t) => match t.trim().parse::<u64>() {
                Ok(v) => {
                    let mut b = RoaringTreemap::new();
                    b.insert(v);
                    Ok(Value::Bitmap(b))
                }
                Err(_) => Ok(Value::Null),
            },
        },
        "bitmap_from_string" => match arg(0) {
            None => Ok(Value::Null),
            Some(t) => {
                let mut b = RoaringTreemap::new();
                for p in t.split(',') {
                    match p.trim().parse::<u64>() {
                        Ok(v) => {
                            b.insert(v);
                        }
                        Err(_) => return Ok(Value::Null),
                    }
                }
                Ok(Value::Bitmap(b))
            }
        },
        "base64_to_bitmap" => match arg(0) {
            None => Ok(Value::Null),
            Some(t) if t.is_empty() => Ok(Value::Null),
            Some(t) => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(t.as_bytes())
                    .map_err(|_| "base64_to_bitmap: invalid base64".to_string())?;
                crate::bitmap::deserialize(&bytes).map(Value::Bitmap).map_err(|e| format!("base64_to_bitmap: {e}"))
            }
        },
        "from_base64" => match arg(0) {
            None => Ok(Value::Null),
            // StarRocks' from_base64 returns NULL for an empty input
            // (EncryptionFunctions::from_base64), whatever the column.
            Some(t) if t.is_empty() => Ok(Value::Null),
            Some(t) => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(t.as_bytes())
                    .map_err(|_| "from_base64: invalid base64".to_string())?;
                decoded(bytes, ty, "from_base64")
            }
        },
        "unhex" => match arg(0) {
            None => Ok(Value::Null),
            Some(t) => {
                // StarRocks' unhex gives '' for text that is not hex (and for
                // ''); the simulator refuses what is not hex, since a loader
                // sending it would be losing data.
                let b = t.as_bytes();
                if b.len() % 2 != 0 || !b.iter().all(u8::is_ascii_hexdigit) {
                    return Err("unhex: not hexadecimal text (StarRocks would store an empty string)".into());
                }
                let nib = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
                let bytes: Vec<u8> = b.chunks(2).map(|p| nib(p[0]) << 4 | nib(p[1])).collect();
                decoded(bytes, ty, "unhex")
            }
        },
        other => Err(format!("unsupported function {other}")),
    }
}

/// The bytes a decoding function returned, stored into a column of `ty`.
fn decoded(bytes: Vec<u8>, ty: &SrType, func: &str) -> Result<Value, String> {
    match ty {
        SrType::Varbinary(n) => {
            if let Some(n) = n
                && bytes.len() > *n as usize
            {
                return Err("value too long".into());
            }
            Ok(Value::Binary(bytes))
        }
        SrType::Char(_) | SrType::Varchar(_) => {
            String::from_utf8(bytes).map(Value::Str).map_err(|_| format!("{func}: not UTF-8"))
        }
        _ => Err(format!("{func} cannot load {ty}")),
    }
}

/// Canonical key of a row for keyed tables.
pub fn key_of(def: &TableDef, row: &[Value]) -> String {
    let k: Vec<serde_json::Value> = def.key_indexes().iter().map(|&i| row[i].canonical()).collect();
    serde_json::Value::Array(k).to_string()
}

/// Where a row goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dest {
    /// A partition of the table.
    Main(usize),
    /// A temporary partition.
    Temp(usize),
}

/// Applies rows by the table's key model, in order.
pub fn apply(table: &mut Table, rows: Vec<(Vec<Value>, u8, Dest)>, spec: &LoadSpec, given: &[bool]) {
    let def = table.def.clone();
    let merge_col = spec.merge_condition.as_ref().and_then(|c| def.col(c));
    for (row, op, dest) in rows {
        let part = match dest {
            Dest::Main(i) => &mut table.parts[i],
            Dest::Temp(i) => &mut table.temp[i].1,
        };
        apply_one(&def, part, row, op, merge_col, spec.partial_update, given);
    }
}

fn apply_one(
    def: &TableDef,
    part: &mut Part,
    row: Vec<Value>,
    op: u8,
    merge_col: Option<usize>,
    partial: bool,
    given: &[bool],
) {
    match def.keys {
        KeysType::Duplicate => part.rows.push(row),
        KeysType::Primary | KeysType::Unique => {
            let key = key_of(def, &row);
            if op == 1 {
                part.keyed.remove(&key);
                return;
            }
            match part.keyed.get_mut(&key) {
                Some(old) => {
                    // The stored row stays when its value is greater; NULL is
                    // the smallest (NullableColumn::compare_at).
                    if let Some(mc) = merge_col
                        && let (Some(o), Some(n)) = (old.get(mc), row.get(mc))
                        && match (o, n) {
                            (_, Value::Null) => !matches!(o, Value::Null),
                            (Value::Null, _) => false,
                            _ => super::tables::cmp_values(n, o) == Some(std::cmp::Ordering::Less),
                        }
                    {
                        return;
                    }
                    if partial {
                        for (i, g) in given.iter().enumerate() {
                            if *g {
                                old[i] = row[i].clone();
                            }
                        }
                    } else {
                        *old = row;
                    }
                }
                None => {
                    let mut row = row;
                    if partial {
                        // A new key: the columns not loaded get their default,
                        // or with none NULL, or for a NOT NULL column the
                        // type's zero (append_default in the BE).
                        for (i, c) in def.columns.iter().enumerate() {
                            if !given[i] && matches!(row[i], Value::Null) && !c.nullable {
                                row[i] = zero_value(&c.ty);
                            }
                        }
                    }
                    part.keyed.insert(key, row);
                }
            }
        }
        KeysType::Aggregate => {
            let key = key_of(def, &row);
            match part.keyed.get_mut(&key) {
                None => {
                    part.keyed.insert(key, row);
                }
                Some(old) => {
                    for (i, c) in def.columns.iter().enumerate() {
                        if c.is_key {
                            continue;
                        }
                        old[i] = aggregate(c.agg.as_deref().unwrap_or("REPLACE"), &old[i], &row[i]);
                    }
                }
            }
        }
    }
}

/// What a NOT NULL column's `append_default` holds: zero, the empty string,
/// false, an empty collection; NULL (refused by the caller's check) for a
/// type whose zero the simulator does not model.
fn zero_value(ty: &SrType) -> Value {
    match ty {
        SrType::Boolean => Value::Bool(false),
        SrType::TinyInt | SrType::SmallInt | SrType::Int | SrType::BigInt | SrType::LargeInt => Value::Int(0),
        SrType::Float => Value::Float(0.0),
        SrType::Double => Value::Double(0.0),
        SrType::Decimal { scale, .. } => Value::Decimal(0, *scale),
        SrType::Char(_) | SrType::Varchar(_) => Value::Str(String::new()),
        SrType::Varbinary(_) => Value::Binary(Vec::new()),
        _ => Value::Null,
    }
}

fn aggregate(f: &str, old: &Value, new: &Value) -> Value {
    use Value::*;
    match (f, old, new) {
        ("REPLACE", _, n) => n.clone(),
        ("REPLACE_IF_NOT_NULL", o, Null) => o.clone(),
        ("REPLACE_IF_NOT_NULL", _, n) => n.clone(),
        (_, Null, n) => n.clone(),
        (_, o, Null) => o.clone(),
        ("SUM", Int(a), Int(b)) => Int(a.wrapping_add(*b)),
        ("SUM", Double(a), Double(b)) => Double(a + b),
        ("SUM", Float(a), Float(b)) => Float(a + b),
        ("SUM", Decimal(a, s), Decimal(b, _)) => Decimal(a + b, *s),
        ("MIN", a, b) => {
            if super::tables::cmp_values(b, a) == Some(std::cmp::Ordering::Less) {
                b.clone()
            } else {
                a.clone()
            }
        }
        ("MAX", a, b) => {
            if super::tables::cmp_values(b, a) == Some(std::cmp::Ordering::Greater) {
                b.clone()
            } else {
                a.clone()
            }
        }
        ("BITMAP_UNION", Bitmap(a), Bitmap(b)) => Bitmap(a | b),
        (_, _, n) => n.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_names_follow_the_fe_parser() {
        let items = parse_columns("`order`, `a-b`, `x``y`, plain_1, `t` = to_bitmap(`tmp`)").unwrap();
        let names: Vec<String> = items
            .iter()
            .map(|i| match i {
                ColumnItem::Name(n) => n.clone(),
                ColumnItem::Expr { target, args, .. } => format!("{target}<-{}", args.join(",")),
            })
            .collect();
        assert_eq!(names, ["order", "a-b", "x`y", "plain_1", "t<-tmp"]);
        for bad in ["order", "a-b", "x$y", "1abc", "`a`b`", "k, t = from_base64(key)"] {
            assert!(parse_columns(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_json_value_the_cast_makes_null_is_an_error_row_under_strict_mode() {
        use crate::sim::tables::{ColumnSpec, TableSpec, validate};
        let col = |name: &str, ty: &str| ColumnSpec {
            name: name.into(),
            ty: ty.into(),
            nullable: true,
            default: None,
            agg: None,
        };
        let def = validate(TableSpec {
            db: "d".into(),
            name: "t".into(),
            keys: "DUP_KEYS".into(),
            key_columns: vec!["k".into()],
            partition_by: None,
            partitions: vec![],
            columns: vec![col("k", "BIGINT"), col("d", "DATE"), col("a", "ARRAY<DATE>")],
        })
        .unwrap();
        let spec = |strict| LoadSpec {
            label: "l".into(),
            format: BodyFormat::Json { strip_outer_array: true },
            columns: None,
            strict,
            max_filter_ratio: 1.0,
            timeout: 60,
            partitions: None,
            temporary_partitions: None,
            partial_update: false,
            merge_condition: None,
            ignore_json_size: true,
            lz4: false,
        };
        let body = br#"[{"k": 1, "d": "2024-13-45", "a": ["2024-01-02"]}, {"k": 2, "d": null, "a": ["2024-13-45"]}]"#;
        let p = parse_body(&def, &spec(true), body).unwrap();
        assert_eq!((p.filtered, p.rows.len()), (1, 1), "{:?}", p.errors);
        assert!(p.errors[0].contains("cannot be cast"), "{:?}", p.errors);
        // NULL in, NULL stored; a bad element inside an array is NULL even
        // under strict mode, as in StarRocks.
        assert_eq!(p.rows[0].0[1], Value::Null);
        assert_eq!(p.rows[0].0[2], Value::Array(vec![Value::Null]));
        let p = parse_body(&def, &spec(false), body).unwrap();
        assert_eq!((p.filtered, p.rows.len()), (0, 2));
    }

    #[test]
    fn from_base64_of_nothing_is_null() {
        let ty = SrType::Varchar(10);
        assert!(matches!(eval_expr("from_base64", &ty, &|_| Some(String::new())), Ok(Value::Null)));
        assert!(matches!(eval_expr("from_base64", &ty, &|_| Some("eA==".into())), Ok(Value::Str(s)) if s == "x"));
        assert!(matches!(eval_expr("unhex", &ty, &|_| Some(String::new())), Ok(Value::Str(s)) if s.is_empty()));
        assert!(matches!(eval_expr("unhex", &ty, &|_| Some("5c4E".into())), Ok(Value::Str(s)) if s == "\\N"));
        assert!(matches!(eval_expr("unhex", &ty, &|_| None), Ok(Value::Null)));
        for bad in ["5", "zz", "5c4e "] {
            assert!(eval_expr("unhex", &ty, &|_| Some(bad.into())).is_err(), "{bad}");
        }
    }
}
