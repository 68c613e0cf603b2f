//! Re-runs and faults never load a row twice or drop one.

use starload::sim::{Fault, FaultRule};

use crate::support::*;

fn table() -> starload::sim::tables::TableSpec {
    corpus_table(&corpus().join("pyarrow"), "corpus", "t")
}

async fn setup() -> (starload::sim::Sim, tempfile::TempDir, starload::config::JobFile) {
    let sim = sim(vec![table()]).await;
    let state = tempfile::tempdir().unwrap();
    let mut f = job_file(&sim, &corpus().join("pyarrow"), "corpus.t", state.path());
    f.chunk_bytes = Some(starload::config::ByteSize(96 << 10));
    f.parallel = Some(3);
    (sim, state, f)
}

fn check_exact(sim: &starload::sim::Sim) {
    let got = stored(sim, "corpus", "t");
    assert_same(&expected(&corpus().join("pyarrow")), &got, &|k, v| {
        if k == "c_struct" { struct_as_json(v) } else { v.clone() }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rerun_of_a_finished_load_sends_nothing() {
    let (sim, _state, f) = setup().await;
    let first = load(f.clone()).await.unwrap();
    assert!(first.load.chunks_loaded > 1);
    let requests = sim.be_requests();
    let second = load(f).await.unwrap();
    assert_eq!(second.load.chunks_loaded, 0);
    assert_eq!(second.load.chunks_skipped, first.load.chunks);
    assert_eq!(second.load.rows_sent, 0);
    assert_eq!(sim.be_requests(), requests, "a finished job must send nothing");
    check_exact(&sim);
}

/// The same directory through a symlink (or `..`) is the same job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rerun_through_a_symlink_is_the_same_job() {
    let (sim, state, mut f) = setup().await;
    let first = load(f.clone()).await.unwrap();
    let link = state.path().join("via-link");
    std::os::unix::fs::symlink(corpus().join("pyarrow"), &link).unwrap();
    let requests = sim.be_requests();
    for src in [link.clone(), link.join("dt=2024-02-28").join("..")] {
        f.source = Some(src.display().to_string());
        let again = load(f.clone()).await.unwrap();
        assert_eq!((again.load.chunks_loaded, again.load.chunks_skipped), (0, first.load.chunks), "{src:?}");
    }
    assert_eq!(sim.be_requests(), requests);
    check_exact(&sim);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rerun_without_the_journal_is_protected_by_labels() {
    let (sim, state, f) = setup().await;
    let first = load(f.clone()).await.unwrap();
    std::fs::remove_dir_all(state.path().join("jobs")).unwrap();
    let requests = sim.be_requests();
    let second = load(f).await.unwrap();
    assert_eq!(second.load.chunks_loaded, 0, "every label was already FINISHED");
    assert_eq!(second.load.chunks_skipped, first.load.chunks);
    // Every part's label was asked about first: no body was sent (a body
    // the BE refuses could lose its "Label Already Exists" reply, and the
    // chunk would count as loaded by this run).
    assert!(first.load.chunks_json + first.load.chunks_base64 > 0, "the corpus has JSON and base64 parts");
    assert_eq!(sim.be_requests(), requests, "a rerun without the journal sends no body");
    check_exact(&sim);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_killed_after_commit_is_not_loaded_twice() {
    let (sim, _state, f) = setup().await;
    for n in [1, 3, 4] {
        sim.add_fault(FaultRule::on_request(n, Fault::ResetAfterCommit));
    }
    let r = load(f).await.unwrap();
    assert!(r.load.chunks_loaded > 3);
    check_exact(&sim);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_are_retried_with_the_same_label() {
    let (sim, _state, f) = setup().await;
    sim.add_fault(FaultRule::on_request(1, Fault::ResetBeforeBody));
    sim.add_fault(FaultRule::on_request(2, Fault::Fail("[E1008]Reached timeout".into())));
    sim.add_fault(FaultRule::on_request(3, Fault::Http(503)));
    sim.add_fault(FaultRule::on_request(4, Fault::Garbage));
    sim.add_fault(FaultRule::on_request(5, Fault::PublishTimeout));
    sim.add_fault(FaultRule::on_request(6, Fault::LabelRunning));
    sim.add_fault(FaultRule::on_request(
        7,
        Fault::Fail("current running txns on db 10010 is 100, larger than limit 100".into()),
    ));
    let r = load(f).await.unwrap();
    assert!(r.load.retries >= 3, "retries: {}", r.load.retries);
    check_exact(&sim);
    // Every label committed exactly once.
    let log = sim.load_log();
    let mut ok: Vec<&str> = log
        .iter()
        .filter(|e| e.status == "Success" || e.status == "Publish Timeout")
        .map(|e| e.label.as_str())
        .collect();
    let n = ok.len();
    ok.sort();
    ok.dedup();
    assert_eq!(ok.len(), n, "a label committed twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forgotten_labels_are_still_protected_by_the_journal() {
    let (sim, _state, f) = setup().await;
    load(f.clone()).await.unwrap();
    sim.forget_labels("corpus");
    let r = load(f).await.unwrap();
    assert_eq!(r.load.chunks_loaded, 0);
    check_exact(&sim);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_that_failed_verification_fails_every_rerun() {
    // The BE commits one row fewer than it was sent: the run fails
    // verification, and a re-run, finding the label committed, must fail the
    // same way instead of counting the chunk as loaded.
    let (sim, _state, mut f) = setup().await;
    f.parallel = Some(1);
    sim.add_fault(FaultRule::on_request(1, Fault::LoseRow));
    let e = load(f.clone()).await.unwrap_err();
    assert_eq!(e.kind(), starload::ErrorKind::Verify, "{e}");
    assert!(e.to_string().contains("StarRocks loaded"), "{e}");
    let (rows, requests) = (sim.rows("corpus", "t").len(), sim.be_requests());
    for _ in 0..2 {
        let e = load(f.clone()).await.unwrap_err();
        assert_eq!(e.kind(), starload::ErrorKind::Verify, "{e}");
        assert!(e.to_string().contains("recorded by an earlier run"), "{e}");
    }
    assert_eq!(sim.rows("corpus", "t").len(), rows);
    assert_eq!(sim.be_requests(), requests, "nothing more is sent for a chunk known to be wrong");
}

/// A file of one row group many chunk sizes large (pandas writes a table as
/// one row group) is loaded in parts of about a chunk each, read through the
/// page index: every row once, a re-run sends nothing, and a refusal in a
/// later part names the file's own row, with and without a where clause.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_row_group_loads_in_parts_exactly_once() {
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    let table = || dup_table("db", "big", "id", vec![col_nn("id", "BIGINT"), col("s", "VARCHAR(12)")]);
    let write = |dir: &std::path::Path, bad: Option<i64>| {
        let ids: Vec<i64> = (0..20_000).collect();
        let s: Vec<String> =
            ids.iter().map(|&i| if Some(i) == bad { "far too long here".into() } else { format!("v{i:08}") }).collect();
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("s", DataType::Utf8, true),
        ]));
        let batch = arrow::record_batch::RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Int64Array::from(ids)), Arc::new(StringArray::from(s))],
        )
        .unwrap();
        let props = parquet::file::properties::WriterProperties::builder()
            .set_max_row_group_row_count(Some(1 << 20))
            .set_data_page_row_count_limit(1000)
            .set_write_batch_size(1000)
            .build();
        let f = std::fs::File::create(dir.join("one_group.parquet")).unwrap();
        let mut w = parquet::arrow::ArrowWriter::try_new(f, schema, Some(props)).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
    };
    let job = |sim: &starload::sim::Sim, dir: &std::path::Path, state: &std::path::Path| {
        let mut f = job_file(sim, dir, "db.big", state);
        f.chunk_bytes = Some(starload::config::ByteSize(16 << 10));
        f.parallel = Some(3);
        f
    };

    let sim = sim(vec![table()]).await;
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), None);
    let state = tempfile::tempdir().unwrap();
    let first = load(job(&sim, dir.path(), state.path())).await.unwrap();
    assert!(first.load.chunks > 4, "one row group should load in parts, got {} chunks", first.load.chunks);
    assert_eq!(first.load.rows_loaded, 20_000);
    let got = stored(&sim, "db", "big");
    assert_eq!(got.len(), 20_000);
    for i in 0..20_000i64 {
        assert_eq!(got[&i.to_string()]["s"], serde_json::json!(format!("v{i:08}")), "id {i}");
    }
    let requests = sim.be_requests();
    let again = load(job(&sim, dir.path(), state.path())).await.unwrap();
    assert_eq!((again.load.chunks_loaded, again.load.chunks_skipped), (0, first.load.chunks));
    assert_eq!(sim.be_requests(), requests, "a finished job must send nothing");

    // Row 15,001 of the file is too long: named by its row in the file.
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), Some(15_000));
    for filter in [None, Some("id % 2 = 0")] {
        let sim = crate::support::sim(vec![table()]).await;
        let state = tempfile::tempdir().unwrap();
        let mut f = job(&sim, dir.path(), state.path());
        f.transform.filter = filter.map(String::from);
        let e = load(f).await.unwrap_err();
        let m = e.to_string();
        assert!(m.contains("one_group.parquet`, row 15001, column `s`"), "{filter:?}: {m}");
    }
}

/// The transform is part of a job's identity: a where spelled otherwise, or
/// a select changed after a data error, made a new job whose labels
/// StarRocks had never seen, and rows an earlier job loaded from the same
/// files were loaded again (exit 0). Such a job is refused; one whose where
/// picks other partitions reads other files and runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_transform_over_files_already_loaded_is_refused() {
    let (sim, _state, mut f) = setup().await;
    f.transform.filter = Some("dt = '2024-02-28'".into());
    let first = load(f.clone()).await.unwrap();
    assert!(first.load.rows_loaded > 0);
    let rows = || sim.rows("corpus", "t").len() as u64;
    for (select, filter) in [(None, Some("dt='2024-02-28'")), (Some("*"), Some("dt = '2024-02-28'")), (None, None)] {
        let mut g = f.clone();
        g.transform.select = select.map(String::from);
        g.transform.filter = filter.map(String::from);
        let e = load(g).await.unwrap_err();
        assert!(e.to_string().contains("under another select/where/delete_when"), "{filter:?}: {e}");
        assert_eq!(rows(), first.load.rows_loaded, "{filter:?}: nothing loaded again");
    }
    // The next day's partition: other files.
    f.transform.filter = Some("dt = '2024-02-29'".into());
    let second = load(f.clone()).await.unwrap();
    assert_eq!(rows(), first.load.rows_loaded + second.load.rows_loaded);
    // On purpose, the whole source again (rows twice, as asked).
    f.transform.filter = None;
    f.new_job = Some(true);
    load(f).await.unwrap();
}

/// Rows an earlier job loaded are found again through other paths: one
/// partition directory named as the source, and a partition whose files
/// were rewritten under new names (as a Spark job re-run writes them) read
/// by a job whose where clause picks that partition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loaded_rows_reached_through_another_path_or_new_file_names_are_refused() {
    let src = tempfile::tempdir().unwrap();
    copy_dir(&corpus().join("pyarrow"), src.path());
    let sim = sim(vec![table()]).await;
    let state = tempfile::tempdir().unwrap();
    let mut f = job_file(&sim, src.path(), "corpus.t", state.path());
    f.chunk_bytes = Some(starload::config::ByteSize(96 << 10));
    let first = load(f.clone()).await.unwrap();
    let rows = || sim.rows("corpus", "t").len() as u64;
    assert_eq!(rows(), first.load.rows_loaded);
    // One partition directory as the source, its values from the select.
    let part = src.path().join("dt=2024-02-29").join("region=eu");
    let mut g = job_file(&sim, &part, "corpus.t", state.path());
    g.transform.select = Some("*, DATE '2024-02-29' AS dt, 'eu' AS region".into());
    let e = load(g).await.unwrap_err();
    assert!(e.to_string().contains("under another select/where/delete_when"), "{e}");
    assert_eq!(rows(), first.load.rows_loaded);
    // The partition rewritten under new file names.
    for e in std::fs::read_dir(&part).unwrap().flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "parquet") {
            std::fs::rename(&p, p.with_file_name(format!("rewritten-{}", p.file_name().unwrap().to_string_lossy())))
                .unwrap();
        }
    }
    let mut h = f.clone();
    h.transform.filter = Some("dt = '2024-02-29' AND region = 'eu'".into());
    let e = load(h.clone()).await.unwrap_err();
    assert!(e.to_string().contains("dt=2024-02-29/region=eu") && e.to_string().contains("--mode overwrite"), "{e}");
    assert_eq!(rows(), first.load.rows_loaded);
    // A new partition's files are new to the table: they run.
    let new_part = src.path().join("dt=2024-03-05").join("region=eu");
    std::fs::create_dir_all(&new_part).unwrap();
    let one = std::fs::read_dir(&part)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "parquet") && std::fs::metadata(p).unwrap().len() > 0);
    std::fs::copy(one.unwrap(), new_part.join("part-0.parquet")).unwrap();
    h.transform.filter = Some("dt = '2024-03-05'".into());
    let added = load(h).await.unwrap();
    assert!(added.load.rows_loaded > 0);
    assert_eq!(rows(), first.load.rows_loaded + added.load.rows_loaded);
}

/// Six events over three days in one file, and a table `db.t` for them.
async fn events_by_day() -> (tempfile::TempDir, starload::sim::Sim) {
    use arrow::array::{ArrayRef, Int64Array, StringArray};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(0..6));
    let day: ArrayRef = Arc::new(StringArray::from(vec!["d1", "d1", "d2", "d2", "d3", "d3"]));
    let batch = arrow::record_batch::RecordBatch::try_from_iter([("id", ids), ("day", day)]).unwrap();
    write_parquet(&dir.path().join("events.parquet"), &batch);
    let sim = sim(vec![dup_table("db", "t", "id", vec![col_nn("id", "BIGINT"), col("day", "VARCHAR(8)")])]).await;
    (dir, sim)
}

/// The nightly `where day = <date>` over files that are not partitioned by
/// day: each night reads the same files with another where clause, and
/// runs; the same night again under another spelling is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nightly_wheres_over_the_same_files_run_and_a_respelled_one_is_refused() {
    let (dir, sim) = events_by_day().await;
    let state = tempfile::tempdir().unwrap();
    let night = |w: &str| {
        let mut f = job_file(&sim, dir.path(), "db.t", state.path());
        f.transform.filter = Some(w.into());
        f
    };
    load(night("day = 'd1'")).await.unwrap();
    load(night("day = 'd2'")).await.unwrap();
    assert_eq!(sim.rows("db", "t").len(), 4);
    for respelled in ["DAY='d2'", "(day = 'd2')", "'d2' = day", "day IN ('d2')"] {
        let e = load(night(respelled)).await.unwrap_err();
        assert!(e.to_string().contains("under another select/where/delete_when"), "{respelled}: {e}");
    }
    // A clause with an escaped quote, respelled (its canonical form is
    // kept in the journal: the token form loses the escape). (Another
    // clause than `day = 'd1'`: taken to pick other rows, as documented.)
    load(night("day = 'd1' AND day <> 'it''s'")).await.unwrap();
    assert_eq!(sim.rows("db", "t").len(), 6);
    for respelled in ["(day <> 'it''s') AND ('d1' = day)", "day IN ('d1') AND day NOT IN ('it''s')"] {
        let e = load(night(respelled)).await.unwrap_err();
        assert!(e.to_string().contains("under another select/where/delete_when"), "{respelled}: {e}");
    }
    // 'D2' is another value: another where clause.
    load(night("day = 'D2'")).await.unwrap();
    assert_eq!(sim.rows("db", "t").len(), 6);
}

/// A job whose only load StarRocks rejected committed nothing: the same
/// files under a fixed transform run (the journal keeps the rejected
/// label as started, which must not count as rows in the table).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transform_fixed_after_a_rejected_load_runs() {
    let (dir, sim) = events_by_day().await;
    sim.add_fault(starload::sim::FaultRule::on_request(1, starload::sim::Fault::Fail("too many filtered rows".into())));
    let state = tempfile::tempdir().unwrap();
    let mut f = job_file(&sim, dir.path(), "db.t", state.path());
    let e = load(f.clone()).await.unwrap_err();
    assert_eq!(e.kind(), starload::ErrorKind::Data, "{e}");
    assert!(sim.rows("db", "t").is_empty());
    f.transform.select = Some("id, upper(day) AS day".into());
    load(f).await.unwrap();
    assert_eq!(sim.rows("db", "t").len(), 6);
}

/// A job that fails on a value while another chunk's load is on its way:
/// that load is abandoned (its connection closed mid-body, so StarRocks
/// aborts it), and the journal learns it holds no rows. The same files
/// under a fixed transform then run, and every row is in the table once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loads_abandoned_by_a_data_error_do_not_block_a_fixed_transform() {
    use arrow::array::{ArrayRef, Int64Array, StringArray};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let n = 400_000i64;
    let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(0..n));
    let day: ArrayRef = Arc::new(StringArray::from_iter_values((0..n).map(|i| format!("d{}", i % 1000))));
    write_parquet(
        &dir.path().join("a_big.parquet"),
        &arrow::record_batch::RecordBatch::try_from_iter([("id", ids), ("day", day)]).unwrap(),
    );
    // The bad value last, so that the big chunk is on its way by then.
    let m = 100_000i64;
    let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(n..n + m));
    let day: ArrayRef = Arc::new(StringArray::from_iter_values(
        (0..m).map(|i| if i == m - 1 { "far-too-long-a-day".to_string() } else { format!("e{}", i % 1000) }),
    ));
    write_parquet(
        &dir.path().join("b_bad.parquet"),
        &arrow::record_batch::RecordBatch::try_from_iter([("id", ids), ("day", day)]).unwrap(),
    );
    let sim = sim(vec![dup_table("db", "t", "id", vec![col_nn("id", "BIGINT"), col("day", "VARCHAR(8)")])]).await;
    // The big chunk's body goes slowly: it is still on its way when the bad
    // value stops the job.
    sim.add_fault(starload::sim::FaultRule {
        trigger: starload::sim::Trigger::Any,
        fault: starload::sim::Fault::SlowRead(256 << 10),
        times: 2,
    });
    let state = tempfile::tempdir().unwrap();
    let mut f = job_file(&sim, dir.path(), "db.t", state.path());
    f.parallel = Some(2);
    let e = load(f.clone()).await.unwrap_err();
    assert_eq!(e.kind(), starload::ErrorKind::Data, "{e}");
    assert!(e.to_string().contains("b_bad.parquet"), "{e}");
    assert!(sim.rows("db", "t").is_empty());
    // Every load it began is settled as holding no rows.
    let journal = job_journal(state.path());
    let text = std::fs::read_to_string(&journal).unwrap();
    let labels = |kind: &str| -> std::collections::BTreeSet<String> {
        text.lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|v| v["kind"] == kind)
            .map(|v| v["label"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(!labels("started").is_empty(), "{text}");
    assert_eq!(labels("started"), labels("rejected"), "{text}");
    f.transform.select = Some("id, substr(day, 1, 8) AS day".into());
    load(f).await.unwrap();
    assert_eq!(sim.rows("db", "t").len() as i64, n + m);
}

/// A job killed after StarRocks committed its load but before the journal
/// recorded it (only `started` survives) may have put rows in the table:
/// another transform over the same files is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_sent_without_a_recorded_outcome_counts_for_the_guard() {
    let (_sim, state, f) = setup().await;
    let first = load(f.clone()).await.unwrap();
    assert!(first.load.rows_loaded > 0);
    let journal = job_journal(state.path());
    std::fs::write(&journal, sent_only(&std::fs::read_to_string(&journal).unwrap())).unwrap();
    let mut g = f.clone();
    g.transform.filter = Some("dt = '2024-02-28'".into());
    let e = load(g).await.unwrap_err();
    assert!(e.to_string().contains("under another select/where/delete_when"), "{e}");
}

/// A load an earlier run sent and never learned the outcome of, whose label
/// StarRocks no longer knows: never received, or committed and forgotten
/// since (StarRocks forgets a database's oldest finished loads first). It
/// is sent again when a label the job committed before it is still known
/// (it would be known too, had it committed); when that one is forgotten as
/// well, the run stops rather than maybe load the chunk twice, unless
/// --unknown-loads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forgotten_load_is_sent_again_only_while_an_older_label_is_known() {
    for forget in [false, true] {
        let (sim, _state, mut f) = setup().await;
        f.parallel = Some(1);
        f.max_retries = Some(0);
        // The third load's request is lost on the way: the run fails with
        // it in flight, and StarRocks has no trace of its label.
        sim.add_fault(FaultRule::on_request(3, Fault::Unreachable));
        let e = load(f.clone()).await.unwrap_err();
        assert_eq!(e.kind(), starload::ErrorKind::Infra, "{e}");
        let rows = stored(&sim, "corpus", "t").len();
        if forget {
            sim.forget_labels("corpus");
        }
        let requests = sim.be_requests();
        let again = load(f.clone()).await;
        if !forget {
            again.unwrap();
            check_exact(&sim);
            continue;
        }
        let e = again.unwrap_err().to_string();
        assert!(e.contains("--unknown-loads LABEL=resend") && e.contains("no longer knows"), "{e}");
        assert_eq!(sim.be_requests(), requests, "nothing sent");
        assert_eq!(stored(&sim, "corpus", "t").len(), rows);
        // The load it names, and the rows that load carries.
        let label = e.split("load `").nth(1).and_then(|r| r.split('`').next()).expect("a label").to_string();
        assert!(e.contains("(chunk ") && e.contains(".parquet rows "), "{e}");
        // An answer for another label answers nothing.
        f.unknown_loads.insert(format!("{label}x"), "resend".into());
        assert_eq!(load(f.clone()).await.unwrap_err().kind(), starload::ErrorKind::Verify);
        // The rows are not there: the user says so for that load.
        f.unknown_loads.insert(label, "resend".into());
        load(f).await.unwrap();
        check_exact(&sim);
    }
}
