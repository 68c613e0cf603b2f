//! Bad input: clear one-line errors naming the file (and row and column),
//! found before anything is sent wherever possible.

use std::path::Path;
use std::sync::Arc;

use arrow::array::*;
use arrow::datatypes::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use starload::ErrorKind;

use crate::support::*;

fn small_batch(n: i64) -> RecordBatch {
    RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false), Field::new("v", DataType::Int64, true)])),
        vec![
            Arc::new(Int64Array::from_iter_values(0..n)),
            Arc::new(Int64Array::from_iter_values((0..n).map(|i| i * 10))),
        ],
    )
    .unwrap()
}

fn table(v_type: &str) -> starload::sim::tables::TableSpec {
    dup_table("db", "t", "id", vec![col_nn("id", "BIGINT"), col("v", v_type)])
}

async fn fails(sim: &starload::sim::Sim, src: &Path, state: &Path) -> starload::Error {
    let f = job_file(sim, src, "db.t", state);
    match load(f).await {
        Ok(r) => panic!("expected a failure, got {r:?}"),
        Err(e) => e,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_source_is_named() {
    let sim = sim(vec![table("BIGINT")]).await;
    let state = tempfile::tempdir().unwrap();
    let e = fails(&sim, Path::new("/nonexistent/warehouse/t"), state.path()).await;
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.to_string().contains("/nonexistent/warehouse/t"), "{e}");
    assert_eq!(sim.be_requests(), 0);
}

/// A file name holding a control character cannot be read through the
/// object store: a configuration error (exit 2), not an infrastructure one
/// that tells a scheduler to retry forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_name_with_a_control_character_is_a_config_error() {
    let sim = sim(vec![table("BIGINT")]).await;
    let state = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_parquet(&dir.path().join("p=tab\tx").join("a.parquet"), &small_batch(3));
    let e = fails(&sim, dir.path(), state.path()).await;
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert_eq!(sim.be_requests(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_and_truncated_files_are_named_before_sending() {
    let sim = sim(vec![table("BIGINT")]).await;
    let state = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_parquet(&dir.path().join("good.parquet"), &small_batch(100));
    std::fs::write(dir.path().join("corrupt.parquet"), b"this is not parquet at all, not even close").unwrap();
    let e = fails(&sim, dir.path(), state.path()).await;
    assert!(e.to_string().contains("corrupt.parquet"), "{e}");
    assert_eq!(e.kind(), ErrorKind::Data);
    std::fs::remove_file(dir.path().join("corrupt.parquet")).unwrap();
    let good = std::fs::read(dir.path().join("good.parquet")).unwrap();
    std::fs::write(dir.path().join("truncated.parquet"), &good[..good.len() / 2]).unwrap();
    let e = fails(&sim, dir.path(), state.path()).await;
    assert!(e.to_string().contains("truncated.parquet"), "{e}");
    assert_eq!(sim.be_requests(), 0, "nothing may be sent");
    assert!(!e.to_string().contains('\n'));
}

/// polars' `Int128` is declared in the file's embedded Arrow schema as a
/// 128-bit integer, which arrow-rs panics on: a refusal naming the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedded_arrow_schema_arrow_cannot_read_is_refused() {
    let sim = sim(vec![dup_table("db", "t", "id", vec![col_nn("id", "BIGINT")])]).await;
    let state = tempfile::tempdir().unwrap();
    let dir = testdata_dir("polars-int128.parquet", "wide.parquet");
    let mut f = job_file(&sim, dir.path(), "db.t", state.path());
    f.transform.select = Some("id".into());
    let e = load(f).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Data, "{e}");
    let m = e.to_string();
    assert!(m.contains("wide.parquet") && m.contains("ARROW:schema") && m.contains("128"), "{m}");
    assert_eq!(sim.be_requests(), 0);
}

/// A Spark 4 VARIANT column is its encoding in Arrow (binary metadata and
/// value, shredded fields): loading it would store the encoding. Refused
/// when the transform reads it; the file's other columns load.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_variant_column_is_refused_unless_left_out() {
    let dir = testdata_dir("spark-variant.parquet", "part-0.parquet");
    let sim = sim(vec![dup_table("db", "t", "id", vec![col_nn("id", "BIGINT"), col("vj", "JSON")])]).await;
    let state = tempfile::tempdir().unwrap();
    let e = load(job_file(&sim, dir.path(), "db.t", state.path())).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(e.to_string().contains("`vj`") && e.to_string().contains("VARIANT"), "{e}");
    assert_eq!(sim.be_requests(), 0);
    let state = tempfile::tempdir().unwrap();
    let mut f = job_file(&sim, dir.path(), "db.t", state.path());
    f.transform.select = Some("id".into());
    let r = load(f).await.unwrap();
    assert_eq!(r.load.rows_loaded, 1);
}

/// A reader that panics (arrow-rs 59 does on some valid files) closed the
/// chunk's batch channel, which read as the chunk's end: its rows vanished
/// with exit 0. Now the load fails naming the file, and nothing of the
/// chunk commits. (Debug builds panic on a file so named.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_panics_fails_the_load_instead_of_ending_the_chunk() {
    if !cfg!(debug_assertions) {
        return; // the panic is injected in debug builds only
    }
    let dir = tempfile::tempdir().unwrap();
    let rows = |lo: i64| {
        let ids = arrow::array::Int64Array::from_iter_values(lo..lo + 100);
        let v = arrow::array::BooleanArray::from(vec![true; 100]);
        RecordBatch::try_from_iter([("id", Arc::new(ids) as ArrayRef), ("v", Arc::new(v) as ArrayRef)]).unwrap()
    };
    write_parquet(&dir.path().join("a.parquet"), &rows(0));
    write_parquet(&dir.path().join("b__starload_test_reader_panic__.parquet"), &rows(1000));
    let sim = sim(vec![dup_table("db", "t", "id", vec![col_nn("id", "BIGINT"), col("v", "BOOLEAN")])]).await;
    let state = tempfile::tempdir().unwrap();
    let mut f = job_file(&sim, dir.path(), "db.t", state.path());
    f.batch_size = Some(10);
    let e = load(f).await.unwrap_err();
    assert!(e.to_string().contains("b__starload_test_reader_panic__.parquet"), "{e}");
    assert!(e.to_string().contains("injected reader panic"), "{e}");
    assert!(sim.rows("db", "t").is_empty(), "nothing of the chunk commits");
}

/// Loads one file of ids 0..100 named `name` (which debug builds may act on)
/// into a BIGINT table `db.t`; the load must fail. Returns its error and the
/// simulator.
async fn load_one_failing_file(name: &str) -> (starload::Error, starload::sim::Sim) {
    let dir = tempfile::tempdir().unwrap();
    let ids = arrow::array::Int64Array::from_iter_values(0..100);
    let batch = RecordBatch::try_from_iter([("id", Arc::new(ids) as ArrayRef)]).unwrap();
    write_parquet(&dir.path().join(name), &batch);
    let sim = sim(vec![dup_table("db", "t", "id", vec![col_nn("id", "BIGINT")])]).await;
    let state = tempfile::tempdir().unwrap();
    let e = load(job_file(&sim, dir.path(), "db.t", state.path())).await.unwrap_err();
    (e, sim)
}

/// A panic in the encoder (a bug) ran on a rayon task, and rayon aborts the
/// process on a task's panic: the load died with SIGABRT. Now the chunk
/// fails with an internal error and nothing of it commits. (Debug builds
/// panic while encoding a chunk of a file so named.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encoder_that_panics_fails_the_load_instead_of_the_process() {
    if !cfg!(debug_assertions) {
        return; // the panic is injected in debug builds only
    }
    let (e, sim) = load_one_failing_file("a__starload_test_encoder_panic__.parquet").await;
    assert_eq!(e.kind(), starload::ErrorKind::Internal, "{e}");
    assert!(e.to_string().contains("the encoder panicked"), "{e}");
    assert!(sim.rows("db", "t").is_empty(), "nothing of the chunk commits");
}

/// A file rewritten while a chunk read it gave rows of both versions, and the
/// load reported success: the files are checked again once the chunk is
/// read, before its bodies end. (Debug builds give a file so named a new
/// modification time once it is read.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_rewritten_while_it_is_read_fails_the_chunk() {
    if !cfg!(debug_assertions) {
        return; // the rewrite is injected in debug builds only
    }
    let (e, sim) = load_one_failing_file("a__starload_test_rewritten_while_read__.parquet").await;
    assert!(e.to_string().contains("changed since the job was planned"), "{e}");
    assert!(e.to_string().contains("after reading it"), "{e}");
    assert!(sim.rows("db", "t").is_empty(), "nothing of the chunk commits");
}

/// A page whose bytes no longer match its CRC (a flipped bit in a value of
/// an uncompressed page, which decodes fine) fails the load naming the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_that_fails_its_checksum_is_refused() {
    let good = std::fs::read(testdata("pyarrow-page-crc.parquet")).unwrap();
    let table = || dup_table("db", "t", "id", vec![col_nn("id", "BIGINT"), col("v", "BIGINT")]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("part-0.parquet"), &good).unwrap();
    let sim1 = sim(vec![table()]).await;
    let state = tempfile::tempdir().unwrap();
    let r = load(job_file(&sim1, dir.path(), "db.t", state.path())).await.unwrap();
    assert_eq!(r.load.rows_loaded, 100);
    let magic = 0x1122_3344_5566_7788u64.to_le_bytes();
    let at = good.windows(8).position(|w| w == magic).expect("the value is in the file") + 8 * 50;
    let mut bad = good.clone();
    bad[at] ^= 1;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("part-0.parquet"), &bad).unwrap();
    let sim2 = sim(vec![table()]).await;
    let state = tempfile::tempdir().unwrap();
    let e = load(job_file(&sim2, dir.path(), "db.t", state.path())).await.unwrap_err().to_string();
    assert!(e.contains("part-0.parquet") && e.to_lowercase().contains("checksum"), "{e}");
    assert!(sim2.rows("db", "t").is_empty());
    // Behind a good file in the same chunk: the damaged one is named.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("part-0.parquet"), &good).unwrap();
    std::fs::write(dir.path().join("part-1.parquet"), &bad).unwrap();
    let sim3 = sim(vec![table()]).await;
    let state = tempfile::tempdir().unwrap();
    let e = load(job_file(&sim3, dir.path(), "db.t", state.path())).await.unwrap_err().to_string();
    assert!(e.contains("chunk 0 (file `") && e.contains("part-1.parquet`, rows 1–100"), "{e}");
    assert!(sim3.rows("db", "t").is_empty());
}

/// pyarrow writes a dictionary of booleans (or decimals, float16,
/// fixed-size binaries) that arrow-rs's reader cannot build (booleans
/// panic it): refused before anything is sent, naming file and column.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dictionary_type_the_reader_cannot_build_is_refused() {
    let dir = testdata_dir("pyarrow-dict-bool.parquet", "b.parquet");
    let sim = sim(vec![dup_table("db", "t", "id", vec![col_nn("id", "BIGINT"), col("v", "BOOLEAN")])]).await;
    let state = tempfile::tempdir().unwrap();
    let e = load(job_file(&sim, dir.path(), "db.t", state.path())).await.unwrap_err();
    let m = e.to_string();
    assert!(m.contains("b.parquet") && m.contains("`v`") && m.contains("dictionary of Boolean"), "{m}");
    assert_eq!(sim.be_requests(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_mismatches_name_column_and_types() {
    let dir = tempfile::tempdir().unwrap();
    write_parquet(&dir.path().join("a.parquet"), &small_batch(10));
    let state = tempfile::tempdir().unwrap();
    // A source column the table lacks.
    let sim1 = sim(vec![dup_table("db", "t", "id", vec![col_nn("id", "BIGINT")])]).await;
    let e = fails(&sim1, dir.path(), state.path()).await;
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.to_string().contains("`v`") && e.to_string().contains("Int64"), "{e}");
    // A NOT NULL target column nothing fills.
    let sim2 =
        sim(vec![dup_table("db", "t", "id", vec![col_nn("id", "BIGINT"), col("v", "BIGINT"), col_nn("w", "INT")])])
            .await;
    let e = fails(&sim2, dir.path(), state.path()).await;
    assert!(e.to_string().contains("`w`") && e.to_string().contains("NOT NULL"), "{e}");
    // Types that cannot carry each other.
    let sim3 = sim(vec![table("DATE")]).await;
    let e = fails(&sim3, dir.path(), state.path()).await;
    assert!(e.to_string().contains("`v`") && e.to_string().contains("Int64") && e.to_string().contains("DATE"), "{e}");
    for s in [&sim1, &sim2, &sim3] {
        assert_eq!(s.be_requests(), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_range_value_names_file_row_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let mut v: Vec<i64> = (0..20).collect();
    v[13] = 1 << 40;
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false), Field::new("v", DataType::Int64, true)])),
        vec![Arc::new(Int64Array::from_iter_values(0..20)), Arc::new(Int64Array::from(v))],
    )
    .unwrap();
    write_parquet(&dir.path().join("p=1/data.parquet"), &batch);
    let sim =
        sim(vec![dup_table("db", "t", "id", vec![col_nn("id", "BIGINT"), col("v", "INT"), col("p", "INT")])]).await;
    let state = tempfile::tempdir().unwrap();
    let e = fails(&sim, dir.path(), state.path()).await;
    assert_eq!(e.kind(), ErrorKind::Data);
    let m = e.to_string();
    assert!(
        m.contains("data.parquet") && m.contains("row 14") && m.contains("`v`") && m.contains("1099511627776"),
        "{m}"
    );
    assert!(sim.rows("db", "t").is_empty(), "nothing of the failed chunk may be stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_names_file_row_and_column() {
    use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
    use parquet::file::writer::SerializedFileWriter;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad_utf8.parquet");
    let schema = Arc::new(
        parquet::schema::parser::parse_message_type("message m { required int64 id; optional binary v (UTF8); }")
            .unwrap(),
    );
    let mut w = SerializedFileWriter::new(std::fs::File::create(&path).unwrap(), schema, Default::default()).unwrap();
    // Two row groups, NULLs before it: the bad value is the file's fourth row.
    for (ids, defs, vals) in
        [([1, 2], [1, 0], ByteArray::from("ok")), ([3, 4], [0, 1], ByteArray::from(vec![0xff, 0xfe, 0x41]))]
    {
        let mut rg = w.next_row_group().unwrap();
        let mut c = rg.next_column().unwrap().unwrap();
        c.typed::<Int64Type>().write_batch(&ids, None, None).unwrap();
        c.close().unwrap();
        let mut c = rg.next_column().unwrap().unwrap();
        c.typed::<ByteArrayType>().write_batch(&[vals], Some(&defs), None).unwrap();
        c.close().unwrap();
        rg.close().unwrap();
    }
    w.close().unwrap();
    let sim = sim(vec![table("VARCHAR(10)")]).await;
    let state = tempfile::tempdir().unwrap();
    let e = fails(&sim, dir.path(), state.path()).await;
    let m = e.to_string();
    assert!(m.contains("bad_utf8.parquet") && m.contains("row 4") && m.contains("`v`"), "{m}");
    assert!(m.to_lowercase().contains("utf-8"), "{m}");
    assert!(sim.rows("db", "t").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_a_clear_error_without_the_password() {
    let dir = tempfile::tempdir().unwrap();
    write_parquet(&dir.path().join("a.parquet"), &small_batch(10));
    let sim = sim(vec![table("BIGINT")]).await;
    let state = tempfile::tempdir().unwrap();
    let f = job_file(&sim, dir.path(), "db.t", state.path());
    let mut s = settings(f);
    s.password = starload::client::Secret::new("wrong-password-123");
    let e = starload::job::prepare(s).await.unwrap_err();
    let m = e.to_string();
    assert!(m.contains("rejected the credentials") && m.contains(USER), "{m}");
    assert!(!m.contains("wrong-password-123") && !m.contains(PASSWORD), "{m}");
    assert_eq!(e.kind(), ErrorKind::Config);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nanoseconds_that_datetime_cannot_hold_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("v", DataType::Timestamp(arrow::datatypes::TimeUnit::Nanosecond, None), true),
        ])),
        vec![
            Arc::new(Int64Array::from_iter_values(0..3)),
            Arc::new(TimestampNanosecondArray::from(vec![1_000, 2_000_000, 1_700_000_000_123_456_789])),
        ],
    )
    .unwrap();
    write_parquet(&dir.path().join("ts.parquet"), &batch);
    let sim = sim(vec![table("DATETIME")]).await;
    let state = tempfile::tempdir().unwrap();
    let e = fails(&sim, dir.path(), state.path()).await;
    let m = e.to_string();
    assert!(m.contains("ts.parquet") && m.contains("row 3") && m.contains("nanoseconds"), "{m}");
}

/// A chunk that fails with a data error ends the run while another chunk's
/// body is still streaming: that body must be cut off, never ended as if it
/// were complete, or the server would commit part of a chunk under the
/// chunk's label (and a re-run would take the chunk as loaded).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_chunk_never_lets_another_commit_part_of_its_body() {
    let dir = tempfile::tempdir().unwrap();
    // p=1: a large clean chunk; p=2: a value INT cannot hold near its end.
    // The BE reads every body at 4 MB/s, so p=1 is mid-body (and more than
    // the socket buffers can hold) when p=2's encoder reaches the bad value.
    let big_rows = 3_000_000usize;
    {
        // One row group, so p=1 is one chunk.
        let path = dir.path().join("p=1/data.parquet");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let batch = small_batch(big_rows as i64);
        let props =
            parquet::file::properties::WriterProperties::builder().set_max_row_group_row_count(Some(big_rows)).build();
        let mut w = ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), batch.schema(), Some(props)).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
    }
    let n = 300_000i64;
    let mut v: Vec<i64> = (0..n).collect();
    v[290_000] = 1 << 40;
    let bad = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false), Field::new("v", DataType::Int64, true)])),
        vec![Arc::new(Int64Array::from_iter_values(0..n)), Arc::new(Int64Array::from(v))],
    )
    .unwrap();
    write_parquet(&dir.path().join("p=2/data.parquet"), &bad);
    let sim = sim_with(
        vec![dup_table("db", "t", "id", vec![col_nn("id", "BIGINT"), col("v", "INT"), col("p", "INT")])],
        |c| {
            c.faults.push(starload::sim::FaultRule {
                trigger: starload::sim::Trigger::Any,
                fault: starload::sim::Fault::SlowRead(4 << 20),
                times: 100,
            })
        },
    )
    .await;
    let state = tempfile::tempdir().unwrap();
    let mut f = job_file(&sim, dir.path(), "db.t", state.path());
    f.chunk_bytes = Some(starload::config::ByteSize(1 << 20));
    f.parallel = Some(2);
    let e = load(f).await.expect_err("the bad value fails the run");
    assert_eq!(e.kind(), ErrorKind::Data, "{e}");
    // Whatever the BE still has to read of p=1's body, let it finish.
    let mut big = 0;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        big = sim.rows("db", "t").iter().filter(|r| r[2] == starload::value::Value::Int(1)).count();
        if big > 0 {
            break;
        }
    }
    assert!(big == 0 || big == big_rows, "{big} rows of a {big_rows}-row chunk were committed");
}
