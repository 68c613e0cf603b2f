//! Global dictionary benchmarks: full builds of N distinct strings, an
//! incremental build where 80% of the values already exist, and lookup
//! (encode) throughput. Builds write to a local temporary directory.
//!
//! `cargo bench --bench dict` (add `-- build_full/1M` to pick one). The
//! comparison with DuckDB on TPC-H data is `scripts/bench_dict.py`.

use std::hint::black_box;
use std::sync::Arc;

use arrow::array::{ArrayRef, StringArray};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use starload::dict::{BuildOptions, DictKey, DictStore, Distinct, ValueType};
use starload::source::StoreOptions;

/// `n` distinct strings of 12–40 bytes, in a scrambled order, as arrays of
/// 64K rows (the shape DataFusion hands over).
fn strings(n: usize, salt: u64) -> Vec<ArrayRef> {
    let mut out = Vec::new();
    let mut x = 0x2545_F491_4F6C_DD1D_u64 ^ salt;
    let values: Vec<String> = (0..n)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let pad = (x % 29) as usize;
            format!("{:x}-{}-{}", x & 0xffff_ffff, "w".repeat(pad), i)
        })
        .collect();
    for c in values.chunks(64 * 1024) {
        out.push(Arc::new(StringArray::from(c.to_vec())) as ArrayRef);
    }
    out
}

fn set_of(arrays: &[ArrayRef]) -> Distinct {
    let mut d = Distinct::of(ValueType::String);
    for a in arrays {
        d.push(a.clone()).unwrap();
    }
    d.flush().unwrap();
    d
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn key() -> DictKey {
    DictKey::new("bench.t", "c").unwrap()
}

fn open(dir: &std::path::Path) -> DictStore {
    DictStore::open(dir.to_str().unwrap(), &StoreOptions::default()).unwrap()
}

fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.path().is_dir() {
            copy_tree(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn build_full(c: &mut Criterion) {
    let rt = rt();
    let mut g = c.benchmark_group("build_full");
    g.sample_size(10);
    for (name, n) in [("1M", 1_000_000usize), ("5M", 5_000_000)] {
        let input = strings(n, 1);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(name, |b| {
            b.iter_batched(
                || tempfile::tempdir().unwrap(),
                |dir| {
                    let s = open(dir.path());
                    let d = set_of(&input);
                    let r = rt.block_on(s.build_from(&key(), d, &BuildOptions::default())).unwrap();
                    assert_eq!(r.new_values, n as u64);
                    dir
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

fn build_incremental(c: &mut Criterion) {
    let rt = rt();
    let mut g = c.benchmark_group("build_incremental_80pct_existing");
    g.sample_size(10);
    let n = 1_000_000usize;
    let input = strings(n, 2);
    // The dictionary already holds 80% of the input's values.
    let base = tempfile::tempdir().unwrap();
    let existing: Vec<ArrayRef> = input.iter().map(|a| a.slice(0, a.len() * 4 / 5)).collect();
    rt.block_on(open(base.path()).build_from(&key(), set_of(&existing), &BuildOptions::default())).unwrap();
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("1M", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().unwrap();
                copy_tree(base.path(), dir.path());
                dir
            },
            |dir| {
                let s = open(dir.path());
                let d = set_of(&input);
                let r = rt.block_on(s.build_from(&key(), d, &BuildOptions::default())).unwrap();
                assert!(r.new_values > 0 && r.new_values < n as u64 / 4);
                dir
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn dedupe(c: &mut Criterion) {
    let mut g = c.benchmark_group("dedupe");
    g.sample_size(10);
    let n = 1_000_000usize;
    // Every value four times.
    let once = strings(n, 3);
    let input: Vec<ArrayRef> = once.iter().cycle().take(once.len() * 4).cloned().collect();
    g.throughput(Throughput::Elements(4 * n as u64));
    g.bench_function("4M_rows_1M_distinct", |b| b.iter(|| black_box(set_of(&input).len())));
    g.finish();
}

fn lookup(c: &mut Criterion) {
    let rt = rt();
    let mut g = c.benchmark_group("lookup");
    g.sample_size(10);
    let n = 1_000_000usize;
    let input = strings(n, 4);
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let v = rt.block_on(s.build_from(&key(), set_of(&input), &BuildOptions::default())).unwrap().version.unwrap();
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("load_1M", |b| b.iter(|| black_box(rt.block_on(s.lookup(&key(), &v)).unwrap().len())));
    let lk = rt.block_on(s.lookup(&key(), &v)).unwrap();
    g.bench_function("map_1M", |b| {
        b.iter(|| {
            let mut found = 0usize;
            for a in &input {
                found += lk.map_array(a.as_ref()).unwrap().len();
            }
            black_box(found)
        })
    });
    g.finish();
}

criterion_group!(benches, build_full, build_incremental, dedupe, lookup);
criterion_main!(benches);
