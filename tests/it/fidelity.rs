//! Every source value arrives exactly: Parquet from pyarrow, pyarrow with
//! INT96 timestamps, pyarrow with every codec and encoding, polars, DuckDB and
//! Spark, every type, loaded through the simulator and compared with an oracle computed by
//! the writer side.

use crate::support::*;

async fn load_corpus(dataset: &str, chunk: &str, parallel: usize) -> starload::job::Report {
    load_dataset(&corpus().join(dataset), chunk, parallel).await
}

async fn load_dataset(dir: &std::path::Path, chunk: &str, parallel: usize) -> starload::job::Report {
    let dataset = dir.file_name().unwrap().to_str().unwrap();
    let sim = sim(vec![corpus_table(dir, "corpus", dataset)]).await;
    let state = tempfile::tempdir().unwrap();
    let mut f = job_file(&sim, dir, &format!("corpus.{dataset}"), state.path());
    f.chunk_bytes = Some(starload::config::ByteSize(starload::config::parse_bytes(chunk).unwrap()));
    f.parallel = Some(parallel);
    let report = load(f).await.unwrap_or_else(|e| panic!("load of {dataset} failed: {e}"));
    let exp = expected(dir);
    assert_eq!(report.load.rows_loaded as usize, exp.len());
    assert!(report.load.chunks > 3, "the corpus should span several chunks, got {}", report.load.chunks);
    // Strings holding the separators or equal to `\N` go in a second,
    // base64 CSV load of their chunk.
    assert!(report.load.chunks_base64 > 0, "expected base64 parts for strings CSV cannot carry");
    let got = stored(&sim, "corpus", dataset);
    assert_same(&exp, &got, &|k, v| if k == "c_struct" { struct_as_json(v) } else { v.clone() });
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyarrow_values_arrive_exactly() {
    load_corpus("pyarrow", "48KiB", 3).await;
}

/// `compress = "lz4"`: every CSV body (plain and base64) goes as one LZ4
/// frame, JSON bodies as they are, through chunk loads and through the
/// transaction interface (`--mode atomic`); the values arrive exactly and a
/// re-run sends nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_arrive_exactly_in_lz4_bodies() {
    let dir = corpus().join("pyarrow");
    let sim = sim(vec![corpus_table(&dir, "corpus", "chunks"), corpus_table(&dir, "corpus", "txn")]).await;
    let exp = expected(&dir);
    for (name, mode) in [("chunks", "append"), ("txn", "atomic")] {
        let state = tempfile::tempdir().unwrap();
        let mut f = job_file(&sim, &dir, &format!("corpus.{name}"), state.path());
        f.chunk_bytes = Some(starload::config::ByteSize(48 << 10));
        f.parallel = Some(3);
        f.mode = Some(mode.into());
        f.compress = Some("lz4".into());
        let view = starload::job::plan_view(&starload::job::prepare(settings(f.clone())).await.unwrap());
        assert_eq!(view.format, "csv as LZ4 frames (lz4)");
        let r = load(f.clone()).await.unwrap_or_else(|e| panic!("{mode} load failed: {e}"));
        assert_eq!(r.load.rows_loaded as usize, exp.len(), "{mode}");
        if mode == "append" {
            // The report counts the compressed bytes apart from the text.
            assert!(r.load.bytes_on_wire > 0 && r.load.bytes_on_wire < r.load.bytes_sent, "{:?}", r.load);
        }
        let got = stored(&sim, "corpus", name);
        assert_same(&exp, &got, &|k, v| if k == "c_struct" { struct_as_json(v) } else { v.clone() });
        let again = load(f).await.unwrap();
        assert_eq!((again.load.chunks_loaded, again.load.rows_loaded), (0, 0), "{mode}: a re-run sends nothing");
    }
    let log = sim.load_log();
    // Chunk loads reply `Success`, loads inside a transaction `OK`.
    for status in ["Success", "OK"] {
        let formats: std::collections::BTreeSet<&str> =
            log.iter().filter(|e| e.status == status).map(|e| e.format.as_str()).collect();
        assert!(formats.contains("lz4"), "{status}: {formats:?}");
    }
    let formats: std::collections::BTreeSet<&str> = log.iter().map(|e| e.format.as_str()).collect();
    assert!(!formats.contains("csv") && !formats.contains("txn"), "a CSV body went uncompressed: {formats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn int96_values_arrive_exactly() {
    load_corpus("pyarrow_int96", "64KiB", 2).await;
}

/// Data page v2, no dictionaries, zstd/gzip/brotli/lz4/snappy/none and the
/// DELTA_* and BYTE_STREAM_SPLIT encodings, legacy list naming, no
/// ARROW:schema (the corpus manifest lists them per column).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_codec_and_encoding_arrives_exactly() {
    load_corpus("pyarrow_encodings", "56KiB", 3).await;
}

/// The same files with row groups far above the chunk size: loaded in parts
/// of a few rows, each reading its pages through the offset index (512-byte
/// pages, nested leaves, page v2, every codec).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_codec_and_encoding_arrives_exactly_in_row_group_parts() {
    let report = load_corpus("pyarrow_encodings", "3KiB", 3).await;
    // 59 row groups of up to 30 KiB: whole they would be at most 59 chunks.
    assert!(report.load.chunks > 200, "row groups should load in parts, got {} chunks", report.load.chunks);
}

/// polars' own writer: large_string, large_binary, large_list and a
/// dictionary with u32 keys in its ARROW:schema.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polars_values_arrive_exactly() {
    load_corpus("polars", "48KiB", 2).await;
}

/// Spark 4 with its defaults (INT96 timestamps, TIMESTAMP_NTZ, decimals as
/// INT32/INT64/FLBA, Hive partition directories with a raw space, `_SUCCESS`
/// and `.crc` files beside the data), committed under testdata/spark.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spark_values_arrive_exactly() {
    load_dataset(&testdata("spark/spark"), "16KiB", 3).await;
}

/// Spark's writeLegacyFormat (decimals as FLBA, lists as bag/array),
/// TIMESTAMP_MICROS and Hadoop-framed LZ4.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spark_legacy_format_values_arrive_exactly() {
    load_dataset(&testdata("spark/spark_legacy"), "16KiB", 2).await;
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
