//! Every source value arrives exactly: Parquet from pyarrow, pyarrow with
//! INT96 timestamps, DuckDB and arrow-rs, every type, loaded through the
//! simulator and compared with an oracle computed by the writer side.

use serde_json::Value as Json;

use crate::support::*;

async fn load_corpus(dataset: &str, chunk: &str, parallel: usize) {
    let dir = corpus().join(dataset);
    let sim = sim(vec![corpus_table(&dir, "corpus", dataset)]).await;
    let state = tempfile::tempdir().unwrap();
    let mut f = job_file(&sim, &dir, &format!("corpus.{dataset}"), state.path());
    f.chunk_bytes = Some(starload::config::ByteSize(starload::config::parse_bytes(chunk).unwrap()));
    f.parallel = Some(parallel);
    let report = load(f).await.unwrap_or_else(|e| panic!("load of {dataset} failed: {e}"));
    let exp = expected(&dir);
    assert_eq!(report.load.rows_loaded as usize, exp.len());
    assert!(report.load.chunks > 3, "the corpus should span several chunks, got {}", report.load.chunks);
    // Strings holding the separators or equal to `\N` go in a second,
    // base64 CSV load of their chunk.
    assert!(report.load.chunks_base64 > 0, "expected base64 parts for strings CSV cannot carry");
    let got = stored(&sim, "corpus", dataset);
    assert_same(&exp, &got, &|k, v| if k == "c_struct" { struct_as_json(v) } else { v.clone() });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyarrow_values_arrive_exactly() {
    load_corpus("pyarrow", "48KiB", 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn int96_values_arrive_exactly() {
    load_corpus("pyarrow_int96", "64KiB", 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duckdb_values_arrive_exactly() {
    load_corpus("duckdb", "40KiB", 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_big_chunk_and_one_load_at_a_time() {
    let dir = corpus().join("pyarrow");
    let sim = sim(vec![corpus_table(&dir, "corpus", "pyarrow")]).await;
    let state = tempfile::tempdir().unwrap();
    let mut f = job_file(&sim, &dir, "corpus.pyarrow", state.path());
    f.parallel = Some(1);
    let report = load(f).await.unwrap();
    assert_eq!(report.load.chunks, 1);
    let got = stored(&sim, "corpus", "pyarrow");
    assert_same(&expected(&dir), &got, &|k, v| if k == "c_struct" { struct_as_json(v) } else { v.clone() });
    // One chunk: a plain CSV load and a base64 CSV load, one label each.
    let log = sim.load_log();
    assert_eq!(log.iter().filter(|e| e.status == "Success").count(), 2);
    assert!(log.iter().any(|e| e.label.ends_with("_b")));
}

#[allow(dead_code)]
fn _unused(_: Json) {}
