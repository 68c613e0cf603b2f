//! Table declarations for the simulator (TOML or JSON).
//!
//! ```toml
//! [[tables]]
//! db = "demo"
//! name = "events"
//! keys = "DUP_KEYS"              # DUP_KEYS | AGG_KEYS | UNQ_KEYS | PRI_KEYS
//! key_columns = ["id"]
//! partition_by = "dt"            # optional: RANGE or LIST partitions on one column
//! partitions = [
//!   { name = "p20240101", values = ["2024-01-01"] },                 # LIST
//!   { name = "p202402", range = ["2024-02-01", "2024-03-01"] },      # RANGE [lo, hi)
//! ]
//! columns = [
//!   { name = "id", type = "BIGINT", nullable = false },
//!   { name = "dt", type = "DATE" },
//!   { name = "v", type = "BIGINT", agg = "SUM" },
//! ]
//! ```

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::meta::KeysType;
use crate::srtype::SrType;
use crate::value::{self, Value};

/// The file: a list of tables.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TablesFile {
    /// Tables.
    #[serde(default)]
    pub tables: Vec<TableSpec>,
}

/// A table as declared.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSpec {
    /// Database.
    pub db: String,
    /// Table name.
    pub name: String,
    /// Key model.
    #[serde(default = "default_keys")]
    pub keys: String,
    /// Key columns (a prefix of the columns).
    #[serde(default)]
    pub key_columns: Vec<String>,
    /// Partition column.
    #[serde(default)]
    pub partition_by: Option<String>,
    /// Partitions.
    #[serde(default)]
    pub partitions: Vec<PartitionSpec>,
    /// Columns.
    pub columns: Vec<ColumnSpec>,
}

fn default_keys() -> String {
    "DUP_KEYS".into()
}

/// A partition as declared.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionSpec {
    /// Name.
    pub name: String,
    /// LIST values.
    #[serde(default)]
    pub values: Vec<String>,
    /// RANGE `[lo, hi)`.
    #[serde(default)]
    pub range: Option<(String, String)>,
}

/// A column as declared.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnSpec {
    /// Name.
    pub name: String,
    /// StarRocks type.
    #[serde(rename = "type")]
    pub ty: String,
    /// NULL allowed (default true).
    #[serde(default = "yes")]
    pub nullable: bool,
    /// Default value (text), if any.
    #[serde(default)]
    pub default: Option<String>,
    /// Aggregate function (AGG_KEYS value columns).
    #[serde(default)]
    pub agg: Option<String>,
}

fn yes() -> bool {
    true
}

/// A validated column.
#[derive(Debug, Clone)]
pub struct ColumnDef {
    /// Name.
    pub name: String,
    /// Type.
    pub ty: SrType,
    /// NULL allowed.
    pub nullable: bool,
    /// Default value.
    pub default: Option<String>,
    /// Key column.
    pub is_key: bool,
    /// Aggregate function.
    pub agg: Option<String>,
}

/// How rows are assigned to partitions.
#[derive(Debug, Clone)]
pub enum PartitionBound {
    /// The whole table (unpartitioned).
    All,
    /// LIST values (parsed as the column type).
    List(Vec<Value>),
    /// RANGE `[lo, hi)` (as comparable keys).
    Range(Value, Value),
}

/// A validated partition.
#[derive(Debug, Clone)]
pub struct PartitionDef {
    /// Name.
    pub name: String,
    /// Bound.
    pub bound: PartitionBound,
}

/// A validated table.
#[derive(Debug, Clone)]
pub struct TableDef {
    /// Database.
    pub db: String,
    /// Name.
    pub name: String,
    /// Key model.
    pub keys: KeysType,
    /// Columns.
    pub columns: Vec<ColumnDef>,
    /// Index of the partition column.
    pub partition_col: Option<usize>,
    /// Partitions (one named after the table when unpartitioned).
    pub partitions: Vec<PartitionDef>,
}

impl TableDef {
    /// Column index by name (case-insensitive).
    pub fn col(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name.eq_ignore_ascii_case(name))
    }
    /// Indexes of key columns.
    pub fn key_indexes(&self) -> Vec<usize> {
        self.columns.iter().enumerate().filter(|(_, c)| c.is_key).map(|(i, _)| i).collect()
    }
    /// The partition a row belongs to.
    pub fn partition_of(&self, row: &[Value]) -> Option<usize> {
        let Some(pc) = self.partition_col else {
            return Some(0);
        };
        let v = &row[pc];
        self.partitions.iter().position(|p| match &p.bound {
            PartitionBound::All => true,
            PartitionBound::List(vals) => vals.iter().any(|x| cmp_values(x, v) == Some(std::cmp::Ordering::Equal)),
            PartitionBound::Range(lo, hi) => crate::value::range_holds(lo, hi, v, &self.columns[pc].ty),
        })
    }
}

pub use crate::value::cmp_values;

/// Parses a tables file (`.toml` or `.json` by extension, else TOML).
pub fn load_file(path: &std::path::Path) -> Result<Vec<TableDef>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::config(format!("cannot read tables file `{}`: {e}", path.display())))?;
    let file: TablesFile = if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text).map_err(|e| Error::config(format!("tables file `{}`: {e}", path.display())))?
    } else {
        toml::from_str(&text).map_err(|e| Error::config(format!("tables file `{}`: {e}", path.display())))?
    };
    file.tables.into_iter().map(validate).collect()
}

/// Validates a declared table.
pub fn validate(spec: TableSpec) -> Result<TableDef> {
    let ctx = format!("table {}.{}", spec.db, spec.name);
    crate::meta::check_ident("database", &spec.db)?;
    crate::meta::check_ident("table", &spec.name)?;
    let keys = KeysType::parse(&spec.keys)
        .ok_or_else(|| Error::config(format!("{ctx}: unknown key model `{}`", spec.keys)))?;
    let mut columns = Vec::new();
    for c in &spec.columns {
        crate::meta::check_ident("column", &c.name)?;
        let ty = SrType::parse(&c.ty).map_err(|e| Error::config(format!("{ctx}: {e}")))?;
        let is_key = spec.key_columns.iter().any(|k| k.eq_ignore_ascii_case(&c.name));
        if matches!(keys, KeysType::Aggregate) && !is_key && c.agg.is_none() {
            return Err(Error::config(format!("{ctx}: value column `{}` of an AGG_KEYS table needs `agg`", c.name)));
        }
        if let Some(a) = &c.agg {
            let a = a.to_ascii_uppercase();
            if !matches!(
                a.as_str(),
                "SUM" | "MIN" | "MAX" | "REPLACE" | "REPLACE_IF_NOT_NULL" | "BITMAP_UNION" | "HLL_UNION"
            ) {
                return Err(Error::config(format!("{ctx}: unknown aggregate `{a}` on `{}`", c.name)));
            }
        }
        // StarRocks: BITMAP/HLL are never keys; in AGGREGATE tables they
        // aggregate only with their own union, and the unions only them.
        if is_key && matches!(ty, SrType::Bitmap | SrType::Hll | SrType::Percentile) {
            return Err(Error::config(format!("{ctx}: key column `{}` cannot be {ty}", c.name)));
        }
        let agg_up = c.agg.as_deref().map(str::to_ascii_uppercase);
        match (agg_up.as_deref(), &ty) {
            (Some("BITMAP_UNION"), SrType::Bitmap) | (Some("HLL_UNION"), SrType::Hll) => {}
            (Some(a @ ("BITMAP_UNION" | "HLL_UNION")), t) => {
                return Err(Error::config(format!(
                    "{ctx}: Aggregate type {a} is not compatible with primitive type {t} (column `{}`)",
                    c.name
                )));
            }
            (Some(a), SrType::Bitmap | SrType::Hll) => {
                return Err(Error::config(format!(
                    "{ctx}: {ty} column `{}` must use its union aggregate, not {a}",
                    c.name
                )));
            }
            _ => {}
        }
        if let Some(d) = &c.default
            && !d.eq_ignore_ascii_case("null")
        {
            value::parse_csv_field(&ty, d)
                .map_err(|e| Error::config(format!("{ctx}: bad default for `{}`: {e}", c.name)))?;
        }
        columns.push(ColumnDef {
            name: c.name.clone(),
            ty,
            // Only a primary key is NOT NULL whatever the declaration
            // (KeysDesc.analyze); other key columns are nullable by default.
            nullable: c.nullable && !(is_key && matches!(keys, KeysType::Primary)),
            default: c.default.clone(),
            is_key,
            agg: c.agg.as_ref().map(|a| a.to_ascii_uppercase()),
        });
    }
    if columns.is_empty() {
        return Err(Error::config(format!("{ctx}: no columns")));
    }
    for k in &spec.key_columns {
        if !columns.iter().any(|c| c.name.eq_ignore_ascii_case(k)) {
            return Err(Error::config(format!("{ctx}: key column `{k}` is not a column")));
        }
    }
    if !matches!(keys, KeysType::Duplicate) && spec.key_columns.is_empty() {
        return Err(Error::config(format!("{ctx}: {} needs key_columns", keys.name())));
    }
    let partition_col = match &spec.partition_by {
        None => None,
        Some(p) => Some(
            columns
                .iter()
                .position(|c| c.name.eq_ignore_ascii_case(p))
                .ok_or_else(|| Error::config(format!("{ctx}: partition column `{p}` is not a column")))?,
        ),
    };
    let mut partitions = Vec::new();
    match partition_col {
        None => partitions.push(PartitionDef { name: spec.name.clone(), bound: PartitionBound::All }),
        Some(pc) => {
            let ty = &columns[pc].ty;
            let parse = |s: &str| {
                value::parse_csv_field(ty, s)
                    .map_err(|e| Error::config(format!("{ctx}: bad partition bound `{s}`: {e}")))
            };
            for p in &spec.partitions {
                crate::meta::check_ident("partition", &p.name)?;
                let bound = match (&p.range, p.values.is_empty()) {
                    (Some((lo, hi)), true) => PartitionBound::Range(parse(lo)?, parse(hi)?),
                    (None, false) => PartitionBound::List(p.values.iter().map(|v| parse(v)).collect::<Result<_>>()?),
                    _ => {
                        return Err(Error::config(format!(
                            "{ctx}: partition `{}` needs exactly one of `values` or `range`",
                            p.name
                        )));
                    }
                };
                partitions.push(PartitionDef { name: p.name.clone(), bound });
            }
            if partitions.is_empty() {
                return Err(Error::config(format!("{ctx}: partitioned by `{}` but no partitions", columns[pc].name)));
            }
        }
    }
    Ok(TableDef { db: spec.db, name: spec.name, keys, columns, partition_col, partitions })
}
