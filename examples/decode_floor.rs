//! The decode floor for scripts/bench.py: decode every row group of every Parquet file under a
//! directory with the parquet crate's Arrow reader and do nothing else.
//!
//! ```sh
//! cargo run --release --example decode_floor -- DIR [--threads N] [--batch-size 8192]
//! ```
//!
//! The work items are (file, row group) pairs, handed out to N std threads through an atomic
//! counter, largest first. Prints one JSON line: rows, row groups, files, threads, seconds.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder};

fn usage() -> ! {
    eprintln!("usage: decode_floor DIR [--threads N] [--batch-size N]");
    std::process::exit(2);
}

fn parquet_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if name.starts_with('_') || name.starts_with('.') {
            continue;
        }
        if p.is_dir() {
            parquet_files(&p, out)?;
        } else if name.ends_with(".parquet") {
            out.push(p);
        }
    }
    Ok(())
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut dir: Option<PathBuf> = None;
    let mut threads: Option<usize> = std::env::var("STARLOAD_THREADS").ok().and_then(|v| v.parse().ok());
    let mut batch_size = 8192usize;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--threads" => threads = Some(args.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| usage())),
            "--batch-size" => batch_size = args.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| usage()),
            "-h" | "--help" => usage(),
            _ if dir.is_none() => dir = Some(PathBuf::from(a)),
            _ => usage(),
        }
    }
    let dir = dir.unwrap_or_else(|| usage());
    let threads = threads.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)).max(1);

    let start = Instant::now();
    let mut files = Vec::new();
    if let Err(e) = parquet_files(&dir, &mut files) {
        eprintln!("decode_floor: cannot list {}: {e}", dir.display());
        std::process::exit(1);
    }
    files.sort();
    // Footers are read once; (file index, row group, compressed bytes) are the work units.
    let mut metas: Vec<ArrowReaderMetadata> = Vec::new();
    let mut units: Vec<(usize, usize, i64)> = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let file = File::open(f).unwrap_or_else(|e| panic!("open {}: {e}", f.display()));
        let md = ArrowReaderMetadata::load(&file, ArrowReaderOptions::new())
            .unwrap_or_else(|e| panic!("footer of {}: {e}", f.display()));
        for (rg, meta) in md.metadata().row_groups().iter().enumerate() {
            units.push((i, rg, meta.compressed_size()));
        }
        metas.push(md);
    }
    // Largest first, so the last unit to finish is a small one.
    units.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)).then(a.1.cmp(&b.1)));

    let next = AtomicUsize::new(0);
    let rows = AtomicU64::new(0);
    let batches = AtomicU64::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(fi, rg, _)) = units.get(k) else { break };
                    let file = File::open(&files[fi]).expect("open");
                    let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(file, metas[fi].clone())
                        .with_row_groups(vec![rg])
                        .with_batch_size(batch_size)
                        .build()
                        .expect("build");
                    let mut n = 0u64;
                    let mut b = 0u64;
                    for batch in reader {
                        let batch = batch.unwrap_or_else(|e| panic!("decode {} rg {rg}: {e}", files[fi].display()));
                        n += batch.num_rows() as u64;
                        b += 1;
                        std::hint::black_box(&batch);
                    }
                    rows.fetch_add(n, Ordering::Relaxed);
                    batches.fetch_add(b, Ordering::Relaxed);
                }
            });
        }
    });
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{{\"rows\": {}, \"batches\": {}, \"row_groups\": {}, \"files\": {}, \"threads\": {}, \"batch_size\": {}, \"seconds\": {:.4}}}",
        rows.load(Ordering::Relaxed),
        batches.load(Ordering::Relaxed),
        units.len(),
        files.len(),
        threads,
        batch_size,
        secs
    );
}
