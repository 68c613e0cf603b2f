//! Dictionary build runner for `scripts/bench_dict.py`: builds (or extends)
//! a global dictionary from one column of Parquet files, or maps the column
//! through the latest version, and prints one JSON line of figures.
//!
//! ```sh
//! cargo run --release --example dict_build -- build  --store DIR --input FILE_OR_DIR --column o_comment
//! cargo run --release --example dict_build -- lookup --store DIR --input FILE_OR_DIR --column o_comment
//! ```
//!
//! The input is read with row groups decoded in parallel (as the load path
//! reads chunks) and fed to `starload::dict::Distinct`; the build itself is
//! `DictStore::build_from`, exactly what `starload dict build` runs.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use arrow::array::ArrayRef;
use arrow::datatypes::DataType;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use rayon::prelude::*;
use starload::dict::{BuildOptions, DictKey, DictStore, Distinct};
use starload::source::StoreOptions;

struct Args {
    mode: String,
    store: String,
    input: PathBuf,
    column: String,
    table: String,
}

fn args() -> Args {
    let mut it = std::env::args().skip(1);
    let mode = it.next().unwrap_or_default();
    let (mut store, mut input, mut column, mut table) = (None, None, None, "bench.dict".to_string());
    while let Some(a) = it.next() {
        let v = it.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--store" => store = Some(v),
            "--input" => input = Some(PathBuf::from(v)),
            "--column" => column = Some(v),
            "--table" => table = v,
            other => panic!("unknown argument {other}"),
        }
    }
    if !matches!(mode.as_str(), "build" | "lookup" | "read") {
        eprintln!("usage: dict_build build|lookup|read --store DIR --input FILE_OR_DIR --column NAME [--table db.t]");
        std::process::exit(2);
    }
    Args {
        mode,
        store: store.expect("--store"),
        input: input.expect("--input"),
        column: column.expect("--column"),
        table,
    }
}

fn parquet_files(p: &Path) -> Vec<PathBuf> {
    if p.is_file() {
        return vec![p.to_path_buf()];
    }
    let mut out = Vec::new();
    let mut stack = vec![p.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("input directory") {
            let e = e.expect("entry");
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == "parquet") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// (file, metadata, row group) of every row group, and the column's type.
fn row_groups(files: &[PathBuf], column: &str) -> (Vec<(PathBuf, ArrowReaderMetadata, usize)>, DataType) {
    let mut out = Vec::new();
    let mut dt = None;
    for f in files {
        let file = std::fs::File::open(f).expect("open input");
        // Strings as views: no copy of the string bytes while decoding (what
        // DataFusion does by default).
        let meta = ArrowReaderMetadata::load(&file, ArrowReaderOptions::new()).expect("parquet footer");
        let fields: Vec<Arc<arrow::datatypes::Field>> = meta
            .schema()
            .fields()
            .iter()
            .map(|f| match f.data_type() {
                DataType::Utf8 | DataType::LargeUtf8 => Arc::new(f.as_ref().clone().with_data_type(DataType::Utf8View)),
                DataType::Binary | DataType::LargeBinary => {
                    Arc::new(f.as_ref().clone().with_data_type(DataType::BinaryView))
                }
                _ => f.clone(),
            })
            .collect();
        let schema = Arc::new(arrow::datatypes::Schema::new(fields));
        let meta = ArrowReaderMetadata::try_new(meta.metadata().clone(), ArrowReaderOptions::new().with_schema(schema))
            .expect("view schema");
        let field = meta.schema().field_with_name(column).unwrap_or_else(|_| panic!("no column {column} in {f:?}"));
        dt.get_or_insert_with(|| field.data_type().clone());
        for rg in 0..meta.metadata().num_row_groups() {
            out.push((f.clone(), meta.clone(), rg));
        }
    }
    (out, dt.expect("no input files"))
}

fn read_group(path: &Path, meta: &ArrowReaderMetadata, rg: usize, column: &str) -> Vec<ArrayRef> {
    let file = std::fs::File::open(path).expect("open input");
    let idx = meta.schema().index_of(column).expect("column");
    let mask = ProjectionMask::roots(meta.parquet_schema(), [idx]);
    let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(file, meta.clone())
        .with_row_groups(vec![rg])
        .with_projection(mask)
        .with_batch_size(64 * 1024)
        .build()
        .expect("reader");
    reader.map(|b| b.expect("decode").column(0).clone()).collect()
}

/// Calls `f` with windows of decoded arrays, row groups decoded in
/// parallel.
fn for_each_window(groups: &[(PathBuf, ArrowReaderMetadata, usize)], column: &str, mut f: impl FnMut(Vec<ArrayRef>)) {
    let window = rayon::current_num_threads() * 2;
    for w in groups.chunks(window) {
        let arrays: Vec<ArrayRef> =
            w.par_iter().flat_map_iter(|(p, m, rg)| read_group(p, m, *rg, column).into_iter()).collect();
        f(arrays);
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(|l| l.to_string()))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let a = args();
    let start = Instant::now();
    let files = parquet_files(&a.input);
    let (groups, dt) = row_groups(&files, &a.column);
    let store = DictStore::open(&a.store, &StoreOptions::default()).expect("store");
    let key = DictKey::new(&a.table, &a.column).expect("key");
    match a.mode.as_str() {
        "read" => {
            // The floor: decode the column and do nothing else.
            let column = a.column.clone();
            let rows = tokio::task::spawn_blocking(move || {
                let mut rows = 0;
                for_each_window(&groups, &column, |arrays| rows += arrays.iter().map(|a| a.len()).sum::<usize>());
                rows
            })
            .await
            .expect("read");
            println!(
                "{}",
                serde_json::json!({
                    "mode": "read",
                    "column": a.column,
                    "rows": rows,
                    "total_s": start.elapsed().as_secs_f64(),
                    "peak_rss_kib": rss_kib(),
                })
            );
        }
        "build" => {
            let column = a.column.clone();
            let d = tokio::task::spawn_blocking(move || {
                let mut d = Distinct::new(&dt).expect("value type");
                for_each_window(&groups, &column, |arrays| {
                    for arr in arrays {
                        d.push(arr).expect("push");
                    }
                });
                d.flush().expect("flush");
                d
            })
            .await
            .expect("dedupe");
            let read_dedupe = start.elapsed();
            let dedupe_rss = rss_kib();
            let mem = d.memory();
            let r = store.build_from(&key, d, &BuildOptions::default()).await.expect("build");
            let v = r.version.as_ref();
            println!(
                "{}",
                serde_json::json!({
                    "mode": "build",
                    "column": a.column,
                    "rows": r.input_rows,
                    "nulls": r.null_rows,
                    "distinct": r.distinct_values,
                    "new": r.new_values,
                    "published": r.published,
                    "version": v.map(|v| v.version),
                    "max_id": v.map(|v| v.max_id),
                    "read_dedupe_s": read_dedupe.as_secs_f64(),
                    "set_bytes": mem,
                    "dedupe_peak_rss_kib": dedupe_rss,
                    "existing_s": r.timings.existing.as_secs_f64(),
                    "sort_s": r.timings.sort.as_secs_f64(),
                    "write_s": r.timings.write.as_secs_f64(),
                    "total_s": start.elapsed().as_secs_f64(),
                    "peak_rss_kib": rss_kib(),
                })
            );
        }
        _ => {
            let v = store.current(&key).await.expect("read version").expect("no dictionary");
            let lk = Arc::new(store.lookup(&key, &v).await.expect("load"));
            let loaded = start.elapsed();
            let column = a.column.clone();
            let lk2 = lk.clone();
            let (rows, mapped_s) = tokio::task::spawn_blocking(move || {
                let mut rows = 0usize;
                let mut map_time = std::time::Duration::ZERO;
                for_each_window(&groups, &column, |arrays| {
                    let t = Instant::now();
                    rows += arrays
                        .par_iter()
                        .map(|arr| lk2.map_array(arr.as_ref()).expect("every value has an id").len())
                        .sum::<usize>();
                    map_time += t.elapsed();
                });
                (rows, map_time.as_secs_f64())
            })
            .await
            .expect("map");
            println!(
                "{}",
                serde_json::json!({
                    "mode": "lookup",
                    "column": a.column,
                    "values": lk.len(),
                    "lookup_bytes": lk.memory(),
                    "load_s": loaded.as_secs_f64(),
                    "rows": rows,
                    "map_s": mapped_s,
                    "map_rows_per_s": rows as f64 / mapped_s.max(1e-9),
                    "total_s": start.elapsed().as_secs_f64(),
                    "peak_rss_kib": rss_kib(),
                })
            );
        }
    }
}
