//! Read throughput of starload's scan path from a source URL, for
//! `scripts/bench_sources.py`: lists the source, reads every footer, plans,
//! and streams every row through the same DataFusion scan the load uses
//! (`Scanner`, row groups in parallel), without encoding or sending.
//!
//! ```sh
//! # copy a local directory tree into a store (skipped when already there):
//! cargo run --release --example source_read -- put DIR URL
//! # read it back; prints one JSON line:
//! cargo run --release --example source_read -- read URL [--ways N]
//! ```
//!
//! URLs: `s3://bucket/prefix` (options from `STARLOAD_S3_ENDPOINT`,
//! `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`), `hdfs://host:port/path`
//! or a local path.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use object_store::ObjectStoreExt;
use starload::plan::FingerprintInputs;
use starload::scan::{Scanner, Transform};
use starload::source::{self, StoreOptions};

fn options() -> StoreOptions {
    let mut o = StoreOptions::default();
    if let Ok(ep) = std::env::var("STARLOAD_S3_ENDPOINT") {
        o.s3.insert("endpoint".into(), ep);
        o.s3.insert("allow_http".into(), "true".into());
        o.s3.insert("region".into(), "us-east-1".into());
    }
    for (env, key) in [("AWS_ACCESS_KEY_ID", "access_key_id"), ("AWS_SECRET_ACCESS_KEY", "secret_access_key")] {
        if let Ok(v) = std::env::var(env) {
            o.s3.insert(key.into(), v);
        }
    }
    o
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let p = e.expect("entry").path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

async fn put(dir: &Path, url: &str) {
    let loc = source::open(url, &options()).expect("open");
    let mut files = Vec::new();
    files_under(dir, &mut files);
    files.sort();
    let start = Instant::now();
    let mut copied = 0u64;
    for f in &files {
        let rel = f.strip_prefix(dir).expect("under dir").to_string_lossy().replace('\\', "/");
        let key = object_store::path::Path::from(format!("{}/{rel}", loc.root.as_ref().trim_end_matches('/')));
        let size = std::fs::metadata(f).expect("stat").len();
        if loc.store.head(&key).await.is_ok_and(|m| m.size == size) {
            continue;
        }
        let bytes = std::fs::read(f).expect("read");
        loc.store.put(&key, bytes.into()).await.unwrap_or_else(|e| panic!("put {key}: {e}"));
        copied += size;
    }
    println!(
        "{{\"files\": {}, \"copied_bytes\": {copied}, \"seconds\": {:.3}}}",
        files.len(),
        start.elapsed().as_secs_f64()
    );
}

async fn read(url: &str, ways: usize) {
    let opts = options();
    let start = Instant::now();
    let loc = source::open(url, &opts).expect("open");
    let listing = source::list(&loc, None, opts.op_timeout()).await.expect("list");
    let listed = start.elapsed().as_secs_f64();
    let inputs = FingerprintInputs {
        target: "bench.read".into(),
        transform: String::new(),
        chunk_bytes: 256 << 20,
        extra: Vec::new(),
    };
    let plan = starload::plan::build(loc, listing, &inputs, "bench", opts.op_timeout()).await.expect("plan");
    let planned = start.elapsed().as_secs_f64();
    let parquet_bytes: u64 = plan.files.iter().map(|f| f.file.size).sum();
    let files = plan.files.len();
    let scanner = Arc::new(
        Scanner::new(Arc::new(plan), &[], Transform::default(), 8192, &starload::encode::Zone::Utc)
            .await
            .expect("scanner"),
    );
    let mut rx = scanner.stream_all("SELECT * FROM {t}", ways);
    let mut rows = 0u64;
    while let Some(b) = rx.recv().await {
        rows += b.expect("batch").num_rows() as u64;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{{\"rows\": {rows}, \"files\": {files}, \"parquet_bytes\": {parquet_bytes}, \"list_s\": {listed:.3}, \
         \"plan_s\": {planned:.3}, \"seconds\": {secs:.3}, \"parquet_mb_per_s\": {:.1}}}",
        parquet_bytes as f64 / 1e6 / secs
    );
}

fn usage() -> ! {
    eprintln!("usage: source_read put DIR URL | read URL [--ways N]");
    std::process::exit(2);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let threads = std::env::var("STARLOAD_THREADS").ok().and_then(|v| v.parse().ok()).unwrap_or(2usize);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build().expect("runtime");
    match args.first().map(String::as_str) {
        Some("put") if args.len() == 3 => rt.block_on(put(Path::new(&args[1]), &args[2])),
        Some("read") if args.len() >= 2 => {
            let ways = match args.get(2).map(String::as_str) {
                Some("--ways") => args.get(3).and_then(|v| v.parse().ok()).unwrap_or_else(|| usage()),
                None => 2 * threads,
                _ => usage(),
            };
            rt.block_on(read(&args[1], ways))
        }
        _ => usage(),
    }
}
