//! The demo dataset: a small Hive-partitioned Parquet table written by
//! arrow-rs, and the simulator tables file for its target.

use std::path::Path;
use std::sync::Arc;

use arrow::array::*;
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

use crate::error::{Error, Result};

/// The simulator table for the demo.
pub const TABLES_TOML: &str = r#"# Simulator tables for the demo (see README).
[[tables]]
db = "demo"
name = "events"
keys = "DUP_KEYS"
key_columns = ["event_id"]
partition_by = "dt"
partitions = [
  { name = "p202401", range = ["2024-01-01", "2024-02-01"] },
  { name = "p202402", range = ["2024-02-01", "2024-03-01"] },
]
columns = [
  { name = "event_id", type = "BIGINT", nullable = false },
  { name = "dt", type = "DATE", nullable = false },
  { name = "country", type = "VARCHAR(8)" },
  { name = "user_name", type = "VARCHAR(64)" },
  { name = "amount", type = "DECIMAL(12,2)" },
  { name = "ts", type = "DATETIME" },
  { name = "tags", type = "ARRAY<VARCHAR(32)>" },
  { name = "note", type = "STRING" },
]
"#;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Writes `rows` rows under `out/data/dt=…/country=…/part-N.parquet` and
/// `out/tables.toml`.
pub fn write(out: &Path, rows: usize) -> Result<()> {
    let data = out.join("data");
    std::fs::create_dir_all(&data).map_err(|e| Error::config(format!("cannot create `{}`: {e}", data.display())))?;
    std::fs::write(out.join("tables.toml"), TABLES_TOML)?;
    let schema = Arc::new(Schema::new(vec![
        Field::new("event_id", DataType::Int64, false),
        Field::new("user_name", DataType::Utf8, true),
        Field::new("amount", DataType::Decimal128(12, 2), true),
        Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true),
        Field::new("tags", DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))), true),
        Field::new("note", DataType::Utf8, true),
    ]));
    let dates = ["2024-01-30", "2024-01-31", "2024-02-01"];
    let countries = ["de", "us", "jp"];
    let names = ["ada", "grace", "linus", "barbara", "ken", "margaret", "dennis", "frances"];
    let notes =
        ["", "first order", "gift, wrapped", "multi\nline note", "tab\there", "quote \" and \\ backslash", "😀 emoji"];
    let mut rng = Rng(42);
    let mut id = 0i64;
    let per_part = rows.div_ceil(dates.len() * countries.len()).max(1);
    for d in dates {
        for c in countries {
            let dir = data.join(format!("dt={d}")).join(format!("country={c}"));
            std::fs::create_dir_all(&dir)?;
            let n = per_part.min(rows.saturating_sub(id as usize));
            if n == 0 {
                continue;
            }
            let mut ids = Vec::with_capacity(n);
            let mut users = StringBuilder::new();
            let mut amounts = Decimal128Builder::new();
            let mut ts = Vec::with_capacity(n);
            let mut tags = ListBuilder::new(StringBuilder::new());
            let mut note = StringBuilder::new();
            let day0 = crate::value::days_from_civil(
                d[..4].parse().unwrap_or(2024),
                d[5..7].parse().unwrap_or(1),
                d[8..].parse().unwrap_or(1),
            );
            for _ in 0..n {
                ids.push(id);
                id += 1;
                if rng.below(20) == 0 {
                    users.append_null();
                } else {
                    users.append_value(names[rng.below(names.len() as u64) as usize]);
                }
                amounts.append_value(rng.below(1_000_000) as i128 - 20_000);
                ts.push(Some(day0 * 86_400_000_000 + rng.below(86_400_000_000) as i64));
                for _ in 0..rng.below(4) {
                    tags.values().append_value(["new", "vip", "promo", "returning"][rng.below(4) as usize]);
                }
                tags.append(true);
                note.append_value(notes[rng.below(notes.len() as u64) as usize]);
            }
            let batch = RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(Int64Array::from(ids)),
                    Arc::new(users.finish()),
                    Arc::new(amounts.finish().with_precision_and_scale(12, 2)?),
                    Arc::new(TimestampMicrosecondArray::from(ts).with_timezone("UTC")),
                    Arc::new(tags.finish()),
                    Arc::new(note.finish()),
                ],
            )?;
            let file = std::fs::File::create(dir.join("part-00000.parquet"))?;
            let props = WriterProperties::builder().set_max_row_group_row_count(Some(1024)).build();
            let mut w = ArrowWriter::try_new(file, schema.clone(), Some(props))?;
            w.write(&batch)?;
            w.close()?;
            std::fs::write(dir.join("_SUCCESS"), b"")?;
        }
    }
    println!("wrote {id} rows under {} and {}", data.display(), out.join("tables.toml").display());
    Ok(())
}
