//! The SQL transform: select expressions and a where clause over source and
//! partition columns, mapped to the table by name.

use serde_json::json;

use crate::support::*;

fn target() -> starload::sim::tables::TableSpec {
    dup_table(
        "db",
        "t",
        "id",
        vec![
            col_nn("id", "BIGINT"),
            col("doubled", "BIGINT"),
            col("region_up", "VARCHAR(32)"),
            col("day", "DATE"),
            col("label", "VARCHAR(300)"),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn select_and_where_shape_what_is_loaded() {
    let src = corpus().join("pyarrow");
    let sim = sim(vec![target()]).await;
    let state = tempfile::tempdir().unwrap();
    let mut f = job_file(&sim, &src, "db.t", state.path());
    f.transform.select = Some(
        "id, c_i32 * 2 AS doubled, upper(region) AS region_up, dt AS day, concat(c_str, '|', region) AS label".into(),
    );
    f.transform.filter = Some("dt = '2024-02-29' AND region <> 'eu' AND c_i32 IS NOT NULL".into());
    f.chunk_bytes = Some(starload::config::ByteSize(64 << 10));
    let r = load(f).await.unwrap();
    // The oracle, filtered and transformed by the test itself.
    let exp: std::collections::BTreeMap<String, serde_json::Map<String, serde_json::Value>> = expected(&src)
        .into_iter()
        .filter(|(_, o)| o["dt"] == "2024-02-29" && o["region"] != "eu" && !o["c_i32"].is_null())
        .map(|(id, o)| {
            let i: i64 = o["c_i32"].as_str().unwrap().parse().unwrap();
            let region = o["region"].as_str().unwrap();
            // concat() skips NULL arguments (DataFusion, like PostgreSQL).
            let label = json!(format!("{}|{region}", o["c_str"].as_str().unwrap_or("")));
            let mut m = serde_json::Map::new();
            m.insert("id".into(), json!(id));
            m.insert("doubled".into(), json!((i * 2).to_string()));
            m.insert("region_up".into(), json!(region.to_uppercase()));
            m.insert("day".into(), json!("2024-02-29"));
            m.insert("label".into(), label);
            (id, m)
        })
        .collect();
    assert!(exp.len() > 100, "the filter keeps a fair share of rows");
    assert_eq!(r.load.rows_loaded as usize, exp.len());
    assert_same(&exp, &stored(&sim, "db", "t"), &|_, v| v.clone());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transform_that_does_not_plan_is_a_configuration_error() {
    let src = corpus().join("pyarrow");
    let sim = sim(vec![target()]).await;
    let state = tempfile::tempdir().unwrap();
    let mut f = job_file(&sim, &src, "db.t", state.path());
    f.transform.select = Some("id, no_such_column AS doubled".into());
    let e = load(f).await.unwrap_err();
    assert_eq!(e.kind(), starload::ErrorKind::Config);
    assert!(e.to_string().contains("no_such_column"), "{e}");
    assert_eq!(sim.be_requests(), 0);
}

/// A value refused after a where clause dropped rows is named by its file
/// and its row in that file, not by its position among the kept rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_after_a_where_clause_names_the_file_row() {
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    let sim = sim(vec![dup_table("db", "w", "id", vec![col_nn("id", "BIGINT"), col("s", "VARCHAR(3)")])]).await;
    let dir = tempfile::tempdir().unwrap();
    let schema =
        Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false), Field::new("s", DataType::Utf8, true)]));
    for (name, first) in [("a.parquet", 0i64), ("b.parquet", 100)] {
        let ids: Vec<i64> = (first..first + 100).collect();
        // Row 38 of b.parquet (id 137) is too long for VARCHAR(3); so are
        // rows the where clause drops (ids divisible by 3).
        let s: Vec<Option<String>> = ids
            .iter()
            .map(|&i| if i == 137 || i % 3 == 0 { Some("long".to_string()) } else { Some("ok".to_string()) })
            .collect();
        let batch = arrow::record_batch::RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Int64Array::from(ids)), Arc::new(StringArray::from(s))],
        )
        .unwrap();
        write_parquet(&dir.path().join(name), &batch);
    }
    let state = tempfile::tempdir().unwrap();
    let mut f = job_file(&sim, dir.path(), "db.w", state.path());
    f.transform.filter = Some("id % 3 <> 0".into());
    let e = load(f).await.unwrap_err();
    let m = e.to_string();
    assert!(m.contains("b.parquet`, row 38, column `s`"), "{m}");
    assert_eq!(sim.rows("db", "w").len(), 0);
}

fn clock_table() -> starload::sim::tables::TableSpec {
    dup_table("db", "c", "id", vec![col_nn("id", "BIGINT"), col("day", "DATE"), col("label", "VARCHAR(64)")])
}

/// A simulator with [`clock_table`], a state directory, and a job loading
/// the pyarrow corpus into it under `select`.
async fn clock_job(select: &str) -> (starload::sim::Sim, tempfile::TempDir, starload::config::JobFile) {
    let sim = sim(vec![clock_table()]).await;
    let state = tempfile::tempdir().unwrap();
    let mut f = job_file(&sim, &corpus().join("pyarrow"), "db.c", state.path());
    f.transform.select = Some(select.into());
    (sim, state, f)
}

/// `now()` is one instant for the whole job: every chunk, and the chunks a
/// resumed run loads after the first run failed, read the clock the job's
/// journal recorded when it started (a where clause on `current_date()`
/// keeps the same rows in a chunk loaded after midnight).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_chunk_of_a_resumed_job_reads_one_clock() {
    use starload::sim::{Fault, FaultRule};
    let (sim, state, mut f) = clock_job("id, CAST(now() AS VARCHAR) AS label").await;
    f.chunk_bytes = Some(starload::config::ByteSize(64 << 10));
    f.parallel = Some(1);
    sim.add_fault(FaultRule::on_request(3, Fault::Fail("too many filtered rows".into())));
    load(f.clone()).await.unwrap_err();
    let labels = |sim: &starload::sim::Sim| -> std::collections::BTreeSet<String> {
        stored(sim, "db", "c").values().map(|o| o["label"].as_str().unwrap().to_string()).collect()
    };
    let first = labels(&sim);
    assert!(!first.is_empty(), "the first run committed chunks before the refused one");
    sim.clear_faults();
    std::thread::sleep(std::time::Duration::from_millis(5));
    let r = load(f).await.unwrap();
    assert!(r.load.chunks_loaded > 0 && r.load.chunks_skipped > 0, "{:?}", r.load);
    assert_eq!(sim.rows("db", "c").len(), expected(&corpus().join("pyarrow")).len());
    assert_eq!(labels(&sim), first, "one now() for every chunk of both runs");
    assert_eq!(first.len(), 1, "{first:?}");
    // The instant the journal keeps, as the wall clock of the job's zone
    // (UTC) in DataFusion's text.
    let journal = std::fs::read_to_string(job_journal(state.path())).unwrap();
    let header = journal.lines().next().unwrap();
    let us: i64 = header.split("\"clock\":").nth(1).and_then(|r| r.split([',', '}']).next()).unwrap().parse().unwrap();
    let at = chrono::DateTime::from_timestamp_micros(us).unwrap().naive_utc().format("%Y-%m-%dT%H:%M:%S%.f");
    assert_eq!(first.into_iter().next().unwrap(), at.to_string(), "{header}");
}

/// `--clock` pins the instant: `current_date()` is its date in the job's
/// zone, the same in every chunk, and another clock is another job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_clock_is_what_current_date_reads() {
    let (sim, _state, mut f) = clock_job("id, current_date() AS day, CAST(now() AS VARCHAR) AS label").await;
    f.transform.filter = Some("dt = CAST(current_date() - INTERVAL '1' DAY AS VARCHAR)".into());
    f.transform.clock = Some("2024-03-01T01:30:00+09:00".into());
    f.chunk_bytes = Some(starload::config::ByteSize(64 << 10));
    // 2024-02-29T16:30Z: Feb 29th in UTC, March 1st in Tokyo.
    let mut tokyo = f.clone();
    tokyo.timezone = Some("Asia/Tokyo".into());
    let r = load(tokyo).await.unwrap();
    let want = expected(&corpus().join("pyarrow")).values().filter(|o| o["dt"] == "2024-02-29").count();
    assert!(want > 100);
    assert_eq!(r.load.rows_loaded as usize, want);
    for o in stored(&sim, "db", "c").values() {
        assert_eq!((&o["day"], &o["label"]), (&json!("2024-03-01"), &json!("2024-03-01T01:30:00")), "{o:?}");
    }
    // In UTC the day before is the 28th: other rows (over the same files,
    // which the guard against loading rows twice refuses unless told).
    let e = load(f.clone()).await.unwrap_err();
    assert!(e.to_string().contains("--new-job"), "{e}");
    f.new_job = Some(true);
    let r = load(f.clone()).await.unwrap();
    let want_28 = expected(&corpus().join("pyarrow")).values().filter(|o| o["dt"] == "2024-02-28").count();
    assert_eq!(r.load.rows_loaded as usize, want_28);
    // Another clock in the same zone: another job, the 29th's rows again.
    let mut noon = f.clone();
    noon.transform.clock = Some("2024-03-01T12:00:00Z".into());
    let r2 = load(noon).await.unwrap();
    assert_ne!(r2.job, r.job);
    assert_eq!(r2.load.rows_loaded as usize, want);
    let mut bad = f;
    bad.transform.clock = Some("2024-03-01 01:30".into());
    let e = starload::job::Settings::resolve(bad).unwrap_err();
    assert_eq!(e.kind(), starload::ErrorKind::Config);
    assert!(e.to_string().contains("RFC 3339"), "{e}");
}

/// Shards start at different times on different machines: a transform that
/// reads the clock needs one given to all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_of_a_transform_that_reads_the_clock_need_a_pinned_clock() {
    let (sim, _state, mut f) = clock_job("id, current_date() AS day").await;
    f.shard = Some("0/2".into());
    let e = load(f.clone()).await.unwrap_err();
    assert_eq!(e.kind(), starload::ErrorKind::Config);
    assert!(e.to_string().contains("current_date()") && e.to_string().contains("--clock"), "{e}");
    assert_eq!(sim.be_requests(), 0);
    f.transform.clock = Some("2024-03-01T00:00:00Z".into());
    load(f).await.unwrap();
    let rows = stored(&sim, "db", "c");
    assert!(!rows.is_empty() && rows.values().all(|o| o["day"] == "2024-03-01"));
}

/// A clock the transform does not read is no part of the job: a scheduler
/// may template it onto every task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_the_transform_does_not_read_changes_nothing() {
    let (_sim, _state, mut f) = clock_job("id, CAST(dt AS DATE) AS day").await;
    f.transform.clock = Some("2024-03-01T00:00:00Z".into());
    let first = load(f.clone()).await.unwrap();
    assert!(first.load.chunks_loaded > 0);
    f.transform.clock = Some("2024-03-02T00:00:00Z".into());
    let again = load(f).await.unwrap();
    assert_eq!(again.job, first.job);
    assert_eq!((again.load.chunks_loaded, again.load.rows_sent), (0, 0));
}
