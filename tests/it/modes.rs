//! Load modes (overwrite, atomic), Primary Key options, and the journal's
//! refusals (changed inputs, changed schema).

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::*;
use arrow::datatypes::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use serde_json::{Value as Json, json};
use starload::sim::tables::{ColumnSpec, PartitionSpec, TableSpec};
use starload::sim::{Fault, FaultRule, Trigger};

use crate::support::*;

type Rows = BTreeMap<String, serde_json::Map<String, Json>>;

const SELECT: &str = "id, c_i32, c_str, dt";

fn table(name: &str, partitioned: bool, keys: &str) -> TableSpec {
    let mut t = dup_table(
        "db",
        name,
        "id",
        vec![
            col_nn("id", "BIGINT"),
            col("c_i32", "INT"),
            col("c_str", "VARCHAR(300)"),
            // What a partial update's new keys get (without a default StarRocks
            // would fill the type's zero, which the simulator refuses to guess).
            ColumnSpec { default: Some("2024-03-01".into()), ..col_nn("dt", "DATE") },
        ],
    );
    t.keys = keys.into();
    if partitioned {
        t.partition_by = Some("dt".into());
        t.partitions = ["2024-02-28", "2024-02-29", "2024-03-01", "2024-03-02"]
            .windows(2)
            .chain(std::iter::once(&["2024-03-02", "2024-03-03"][..]))
            .map(|w| PartitionSpec {
                name: format!("p{}", w[0].replace('-', "")),
                values: vec![],
                range: Some((w[0].into(), w[1].into())),
            })
            .collect();
    }
    t
}

/// The oracle projected on the test table's columns, optionally filtered.
fn oracle(keep: impl Fn(&serde_json::Map<String, Json>) -> bool) -> Rows {
    expected(&corpus().join("pyarrow"))
        .into_iter()
        .filter(|(_, o)| keep(o))
        .map(|(id, o)| {
            let m: serde_json::Map<String, Json> =
                ["id", "c_i32", "c_str", "dt"].iter().map(|k| (k.to_string(), o[*k].clone())).collect();
            (id, m)
        })
        .collect()
}

/// Writes `old.parquet` with rows (id, dt) that exist before an overwrite.
fn old_rows(dir: &std::path::Path, rows: &[(i64, &str)]) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("c_i32", DataType::Int32, true),
        Field::new("c_str", DataType::Utf8, true),
        Field::new("dt", DataType::Utf8, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(rows.iter().map(|r| r.0).collect::<Vec<_>>())),
            Arc::new(Int32Array::from(vec![Some(-1); rows.len()])),
            Arc::new(StringArray::from(vec![Some("old"); rows.len()])),
            Arc::new(StringArray::from(rows.iter().map(|r| r.1).collect::<Vec<_>>())),
        ],
    )
    .unwrap();
    let mut w = ArrowWriter::try_new(std::fs::File::create(dir.join("old.parquet")).unwrap(), schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

fn old_expected(rows: &[(i64, &str)]) -> Rows {
    rows.iter()
        .map(|(id, dt)| {
            let mut m = serde_json::Map::new();
            m.insert("id".into(), json!(id.to_string()));
            m.insert("c_i32".into(), json!("-1"));
            m.insert("c_str".into(), json!("old"));
            m.insert("dt".into(), json!(dt));
            (id.to_string(), m)
        })
        .collect()
}

async fn seed(sim: &starload::sim::Sim, name: &str, rows: &[(i64, &str)]) {
    let dir = tempfile::tempdir().unwrap();
    old_rows(dir.path(), rows);
    let state = tempfile::tempdir().unwrap();
    load(job_file(sim, dir.path(), &format!("db.{name}"), state.path())).await.unwrap();
}

fn overwrite_job(
    sim: &starload::sim::Sim,
    name: &str,
    state: &std::path::Path,
    filter: &str,
) -> starload::config::JobFile {
    let mut f = job_file(sim, &corpus().join("pyarrow"), &format!("db.{name}"), state);
    f.mode = Some("overwrite".into());
    f.transform.select = Some(SELECT.into());
    f.transform.filter = Some(filter.into());
    f.chunk_bytes = Some(starload::config::ByteSize(64 << 10));
    f
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overwrite_replaces_exactly_the_partitions_the_job_touches() {
    let sim = sim(vec![table("t", true, "DUP_KEYS")]).await;
    let old = [(9_000_001, "2024-02-28"), (9_000_002, "2024-03-02"), (9_000_003, "2024-02-29")];
    seed(&sim, "t", &old).await;
    let state = tempfile::tempdir().unwrap();
    let f = overwrite_job(&sim, "t", state.path(), "dt IN ('2024-02-28', '2024-02-29')");
    let r = load(f.clone()).await.unwrap();
    let mut want = oracle(|o| o["dt"] == "2024-02-28" || o["dt"] == "2024-02-29");
    assert_eq!(r.load.rows_loaded as usize, want.len());
    // The untouched partition keeps its row; the touched ones lost theirs.
    want.extend(old_expected(&old[1..2]));
    assert_same(&want, &stored(&sim, "db", "t"), &|_, v| v.clone());
    let temps: Vec<String> = {
        let mut m = meta(&sim).await;
        m.partitions("db", "t", true).await.unwrap().into_iter().map(|p| p.0).collect()
    };
    assert!(temps.is_empty(), "temporary partitions left behind: {temps:?}");
    // The same job again does nothing.
    let requests = sim.be_requests();
    let again = load(f).await.unwrap();
    assert_eq!(again.load.chunks_loaded, 0);
    assert_eq!((again.load.chunks_skipped, again.load.rows_skipped), (again.load.chunks, r.load.rows_loaded));
    assert_eq!(sim.be_requests(), requests);
    assert_same(&want, &stored(&sim, "db", "t"), &|_, v| v.clone());
}

/// A Primary Key (or UNIQUE, AGGREGATE) table partitioned by one of its
/// key columns, as StarRocks requires of Primary Key tables: the census
/// selects the partition column once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overwrite_of_a_table_partitioned_by_a_key_column() {
    for keys in ["PRI_KEYS", "UNQ_KEYS"] {
        let t = table("t", true, keys);
        let mut cols = t.columns.clone();
        cols.rotate_right(1); // dt first: key columns are a prefix
        let t = TableSpec { key_columns: vec!["dt".into(), "id".into()], columns: cols, ..t };
        let sim = sim(vec![t]).await;
        let old = [(9_000_001, "2024-02-28"), (9_000_002, "2024-03-02")];
        seed(&sim, "t", &old).await;
        let state = tempfile::tempdir().unwrap();
        let mut f = overwrite_job(&sim, "t", state.path(), "dt = '2024-02-28'");
        f.transform.select = Some("dt, id, c_i32, c_str".into());
        load(f).await.unwrap();
        let mut want = oracle(|o| o["dt"] == "2024-02-28");
        want.extend(old_expected(&old[1..2]));
        assert_same(&want, &stored(&sim, "db", "t"), &|_, v| v.clone());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_overwrite_leaves_the_live_data_and_no_temporary_partitions() {
    let sim = sim(vec![table("t", true, "DUP_KEYS")]).await;
    let old = [(9_000_001, "2024-02-28"), (9_000_002, "2024-02-29")];
    seed(&sim, "t", &old).await;
    // Every load of this job fails with a non-retryable error.
    sim.add_fault(FaultRule {
        trigger: Trigger::Label("_o0".into()),
        fault: Fault::Fail("Access denied for user 'loader'".into()),
        times: 1000,
    });
    let state = tempfile::tempdir().unwrap();
    let f = overwrite_job(&sim, "t", state.path(), "dt IN ('2024-02-28', '2024-02-29')");
    let e = load(f.clone()).await.unwrap_err();
    assert!(e.to_string().contains("Access denied"), "{e}");
    assert_same(&old_expected(&old), &stored(&sim, "db", "t"), &|_, v| v.clone());
    let mut m = meta(&sim).await;
    assert!(m.partitions("db", "t", true).await.unwrap().is_empty(), "temporary partitions must be dropped");
    // A new attempt (new labels) succeeds once the fault is gone.
    sim.clear_faults();
    load(f).await.unwrap();
    let want = oracle(|o| o["dt"] == "2024-02-28" || o["dt"] == "2024-02-29");
    assert_same(&want, &stored(&sim, "db", "t"), &|_, v| v.clone());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overwrite_of_a_missing_partition_fails_before_loading() {
    let mut t = table("t", true, "DUP_KEYS");
    t.partitions.retain(|p| p.name != "p20240301");
    let sim = sim(vec![t]).await;
    let state = tempfile::tempdir().unwrap();
    let f = overwrite_job(&sim, "t", state.path(), "c_i32 IS NOT NULL");
    let e = load(f).await.unwrap_err();
    assert!(e.to_string().contains("no partition for dt = 2024-03-01"), "{e}");
    assert_eq!(sim.be_requests(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overwrite_of_an_unpartitioned_table_swaps_a_shadow() {
    let sim = sim(vec![table("u", false, "DUP_KEYS")]).await;
    seed(&sim, "u", &[(9_000_001, "2024-02-28")]).await;
    let state = tempfile::tempdir().unwrap();
    let f = overwrite_job(&sim, "u", state.path(), "region = 'eu'");
    load(f).await.unwrap();
    let want = oracle(|o| o["region"] == "eu");
    assert_same(&want, &stored(&sim, "db", "u"), &|_, v| v.clone());
    let mut m = meta(&sim).await;
    let tables = m.query("SHOW TABLES FROM db").await.unwrap();
    assert_eq!(tables.len(), 1, "the shadow table must be dropped: {tables:?}");
}

/// A source with no rows (a where clause that keeps none) would swap an
/// empty table in: refused with nothing created or changed, unless
/// allow_empty. A partitioned table is left as it is either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overwrite_with_no_rows_empties_an_unpartitioned_table_only_when_allowed() {
    let sim = sim(vec![table("u", false, "DUP_KEYS"), table("t", true, "DUP_KEYS")]).await;
    seed(&sim, "u", &[(9_000_001, "2024-02-28")]).await;
    seed(&sim, "t", &[(9_000_001, "2024-02-28")]).await;
    let before = stored(&sim, "db", "u");
    assert_eq!(before.len(), 1);
    let state = tempfile::tempdir().unwrap();
    let f = overwrite_job(&sim, "u", state.path(), "id < -1000000000");
    let e = load(f.clone()).await.unwrap_err();
    assert_eq!(e.kind(), starload::ErrorKind::Config, "{e}");
    assert!(e.to_string().contains("--allow-empty") && e.to_string().contains("db.u"), "{e}");
    assert_eq!(stored(&sim, "db", "u"), before, "the live table is unchanged");
    let mut m = meta(&sim).await;
    assert_eq!(m.query("SHOW TABLES FROM db").await.unwrap().len(), 2, "no shadow table was created");
    let mut g = f.clone();
    g.allow_empty = Some(true);
    let r = load(g).await.unwrap();
    assert_eq!(r.load.rows_loaded, 0);
    assert!(stored(&sim, "db", "u").is_empty(), "allowed: the table is emptied");
    assert_eq!(m.query("SHOW TABLES FROM db").await.unwrap().len(), 2, "the shadow table was dropped");
    // Partitioned: no partition is touched, the job succeeds.
    let state = tempfile::tempdir().unwrap();
    let r = load(overwrite_job(&sim, "t", state.path(), "id < -1000000000")).await.unwrap();
    assert_eq!(r.load.rows_loaded, 0);
    assert_eq!(stored(&sim, "db", "t").len(), 1, "the partitioned table keeps its rows");
}

/// The FE carries out the swap but its reply is lost: the re-run must see
/// that the swap happened. The shadow (or the live partition's old version)
/// then holds the old rows, as many as the source's here, so counting alone
/// would pass and a second swap would put them back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overwrite_whose_swap_reply_was_lost_does_not_swap_back() {
    for (name, partitioned, statement) in [("u", false, "SWAP WITH"), ("t", true, "REPLACE PARTITION")] {
        let sim = sim(vec![table(name, partitioned, "DUP_KEYS")]).await;
        // The old rows: the same ids, another c_str (a job with its own state).
        let old_state = tempfile::tempdir().unwrap();
        let mut old = overwrite_job(&sim, name, old_state.path(), "region = 'eu'");
        old.transform.select = Some("id, c_i32, 'old' AS c_str, dt".into());
        load(old).await.unwrap();
        let want = oracle(|o| o["region"] == "eu");
        assert_eq!(stored(&sim, "db", name).len(), want.len());
        sim.lose_sql_reply(statement, 1);
        let state = tempfile::tempdir().unwrap();
        let f = overwrite_job(&sim, name, state.path(), "region = 'eu'");
        let e = load(f.clone()).await.unwrap_err();
        assert_eq!(e.kind(), starload::ErrorKind::Infra, "{e}");
        assert_eq!(sim.faults_fired(), 1);
        let r = load(f.clone()).await.unwrap();
        assert_eq!(r.load.chunks_loaded, 0, "{name}: nothing is loaded again");
        assert_same(&want, &stored(&sim, "db", name), &|_, v| v.clone());
        let mut m = meta(&sim).await;
        assert_eq!(m.query("SHOW TABLES FROM db").await.unwrap().len(), 1, "{name}: the shadow must be dropped");
        let temps = m.query(&format!("SHOW TEMPORARY PARTITIONS FROM db.{name}")).await.unwrap();
        assert!(temps.is_empty(), "{name}: {temps:?}");
        // And again: done.
        assert_eq!(load(f).await.unwrap().load.chunks_loaded, 0);
        assert_same(&want, &stored(&sim, "db", name), &|_, v| v.clone());
    }
}

/// As above, and before the re-run another job replaced the table again:
/// the shadow then holds the first old rows under other partition ids. The
/// swap is known to have happened, and nothing is swapped back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_swap_reply_then_another_overwrite_leaves_the_newest_rows() {
    let sim = sim(vec![table("u", false, "DUP_KEYS")]).await;
    let overwrite_with = |c_str: &'static str| {
        let state = tempfile::tempdir().unwrap();
        let mut f = overwrite_job(&sim, "u", state.path(), "region = 'eu'");
        f.transform.select = Some(format!("id, c_i32, '{c_str}' AS c_str, dt"));
        (state, f)
    };
    let (_s1, old) = overwrite_with("old");
    load(old).await.unwrap();
    sim.lose_sql_reply("SWAP WITH", 1);
    let state = tempfile::tempdir().unwrap();
    let f = overwrite_job(&sim, "u", state.path(), "region = 'eu'");
    assert_eq!(load(f.clone()).await.unwrap_err().kind(), starload::ErrorKind::Infra);
    let (_s2, newest) = overwrite_with("newest");
    load(newest).await.unwrap();
    let r = load(f).await.unwrap();
    assert_eq!(r.load.chunks_loaded, 0);
    let rows = stored(&sim, "db", "u");
    assert_eq!(rows.len(), oracle(|o| o["region"] == "eu").len());
    let other = rows.values().filter(|o| o["c_str"] != "newest").count();
    assert_eq!(other, 0, "rows other than the newest job's are live");
    let mut m = meta(&sim).await;
    assert_eq!(m.query("SHOW TABLES FROM db").await.unwrap().len(), 1, "the shadow (old rows) is dropped");
}

/// `f` in small chunks, one at a time, not retried, its third load failing
/// with `fault`: the first two chunks are committed before the failure.
fn third_load_fails(
    sim: &starload::sim::Sim,
    mut f: starload::config::JobFile,
    fault: Fault,
) -> starload::config::JobFile {
    f.chunk_bytes = Some(starload::config::ByteSize(16 << 10));
    f.parallel = Some(1);
    f.max_retries = Some(0);
    sim.add_fault(FaultRule::on_request(3, fault));
    f
}

/// A shadow table that went away while the journal still counts chunks
/// loaded into it (dropped by a failed run's cleanup that was killed before
/// it could journal the abort, or by hand): the re-run must not load the
/// rest into a new empty shadow and count the old chunks as in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overwrite_whose_shadow_went_away_starts_over() {
    let sim = sim(vec![table("u", false, "DUP_KEYS")]).await;
    let state = tempfile::tempdir().unwrap();
    let f = third_load_fails(&sim, overwrite_job(&sim, "u", state.path(), "region = 'eu'"), Fault::Http(503));
    let e = load(f.clone()).await.unwrap_err();
    assert_eq!(e.kind(), starload::ErrorKind::Infra, "{e}");
    let mut m = meta(&sim).await;
    let shadow = m
        .query("SHOW TABLES FROM db")
        .await
        .unwrap()
        .into_iter()
        .filter_map(|r| r[0].clone())
        .find(|t| t.starts_with("u__stl_"))
        .expect("a shadow table");
    assert!(!sim.rows("db", &shadow).is_empty(), "chunks were loaded before the failure");
    m.exec(&format!("DROP TABLE db.{shadow}")).await.unwrap();
    let e = load(f.clone()).await.unwrap_err();
    assert!(e.to_string().contains("disappeared"), "{e}");
    load(f).await.unwrap();
    assert_same(&oracle(|o| o["region"] == "eu"), &stored(&sim, "db", "u"), &|_, v| v.clone());
    assert_eq!(m.query("SHOW TABLES FROM db").await.unwrap().len(), 1);
}

/// A run whose journal is gone (a new worker, an ephemeral state
/// directory) must not take the labels an earlier attempt committed into a
/// shadow its cleanup dropped since as loaded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overwrite_with_a_lost_journal_does_not_trust_a_dropped_attempts_labels() {
    let sim = sim(vec![table("u", false, "DUP_KEYS")]).await;
    let state = tempfile::tempdir().unwrap();
    // The third load fails for good: two chunks are committed into the
    // shadow, which the failed attempt's cleanup drops.
    let fault = Fault::Fail("Access denied for user 'loader'".into());
    let f = third_load_fails(&sim, overwrite_job(&sim, "u", state.path(), "region = 'eu'"), fault);
    let e = load(f.clone()).await.unwrap_err();
    assert_ne!(e.kind(), starload::ErrorKind::Infra, "{e}");
    let mut m = meta(&sim).await;
    assert_eq!(m.query("SHOW TABLES FROM db").await.unwrap().len(), 1, "the shadow is dropped");
    std::fs::remove_dir_all(state.path().join("jobs")).unwrap();
    load(f).await.unwrap();
    assert_same(&oracle(|o| o["region"] == "eu"), &stored(&sim, "db", "u"), &|_, v| v.clone());

    // Killed instead (no cleanup): the abandoned attempt's temporary
    // partitions, which the new attempt's could not overlap, are dropped.
    let sim = crate::support::sim(vec![table("t", true, "DUP_KEYS")]).await;
    let state = tempfile::tempdir().unwrap();
    let f = third_load_fails(&sim, overwrite_job(&sim, "t", state.path(), "c_i32 IS NOT NULL"), Fault::Http(503));
    assert_eq!(load(f.clone()).await.unwrap_err().kind(), starload::ErrorKind::Infra);
    let mut m = meta(&sim).await;
    assert!(!m.partitions("db", "t", true).await.unwrap().is_empty());
    std::fs::remove_dir_all(state.path().join("jobs")).unwrap();
    load(f).await.unwrap();
    assert!(m.partitions("db", "t", true).await.unwrap().is_empty());
    assert_same(&oracle(|o| !o["c_i32"].is_null()), &stored(&sim, "db", "t"), &|_, v| v.clone());
}

/// An atomic job killed after its commit was sent but before the journal
/// learned the outcome has (maybe) made its rows visible: another job over
/// the same files in another mode is refused, as after a recorded commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_sent_counts_as_visible_to_the_other_transform_guard() {
    let sim = sim(vec![table("a", false, "DUP_KEYS")]).await;
    let state = tempfile::tempdir().unwrap();
    let mut f = job_file(&sim, &corpus().join("pyarrow"), "db.a", state.path());
    f.mode = Some("atomic".into());
    f.transform.select = Some(SELECT.into());
    load(f.clone()).await.unwrap();
    // The journal as a kill right after the commit leaves it.
    let journal = job_journal(state.path());
    let text = std::fs::read_to_string(&journal).unwrap();
    assert!(text.contains("\"step\":\"atomic_committing\""), "{text}");
    let cut: String =
        text.lines().filter(|l| !l.contains("\"step\":\"atomic_committed\"")).map(|l| format!("{l}\n")).collect();
    std::fs::write(&journal, &cut).unwrap();
    let requests = sim.be_requests();
    let mut g = f.clone();
    g.mode = Some("append".into());
    let e = load(g).await.unwrap_err();
    assert_eq!(e.kind(), starload::ErrorKind::Config, "{e}");
    assert_eq!(sim.be_requests(), requests, "nothing sent");
    assert_same(&oracle(|_| true), &stored(&sim, "db", "a"), &|_, v| v.clone());
    // The same job run again finds the label committed, sends nothing, and
    // reports the rows the transaction had prepared as already loaded.
    let r = load(f.clone()).await.unwrap();
    assert_eq!(sim.be_requests(), requests, "nothing sent");
    assert_eq!((r.load.chunks_skipped, r.load.rows_loaded), (r.load.chunks, 0));
    assert_eq!(r.load.rows_skipped, oracle(|_| true).len() as u64);
    let text = std::fs::read_to_string(&journal).unwrap();
    assert!(text.lines().last().unwrap().contains(&format!("\"rows\":{}", r.load.rows_skipped)), "{text}");
    // Killed the same way, and StarRocks has forgotten the label since (it
    // keeps a database's last 1000 finished loads): the rows may be in the
    // table, so a new transaction is not begun.
    std::fs::write(&journal, &cut).unwrap();
    sim.forget_labels("db");
    let e = load(f.clone()).await.unwrap_err();
    assert_eq!(e.kind(), starload::ErrorKind::Verify, "{e}");
    assert!(e.to_string().contains("--unknown-loads"), "{e}");
    assert_eq!(sim.be_requests(), requests, "nothing sent");
    assert_same(&oracle(|_| true), &stored(&sim, "db", "a"), &|_, v| v.clone());
    // The user finds the rows there and says so: done, nothing sent.
    let label = e.to_string().split("transaction `").nth(1).and_then(|r| r.split('`').next()).unwrap().to_string();
    let mut g = f.clone();
    g.unknown_loads.insert(label, "committed".into());
    let r = load(g).await.unwrap();
    assert_eq!(sim.be_requests(), requests, "nothing sent");
    assert_eq!((r.load.chunks_skipped, r.load.rows_skipped), (r.load.chunks, oracle(|_| true).len() as u64));
    assert_same(&oracle(|_| true), &stored(&sim, "db", "a"), &|_, v| v.clone());
    // And a run after that knows the job is done; so does status.
    assert_eq!(load(f).await.unwrap().load.rows_loaded, 0);
    let st = std::process::Command::new(env!("CARGO_BIN_EXE_starload"))
        .args(["status", "--json", "--state-dir"])
        .arg(state.path())
        .output()
        .unwrap();
    let st: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    assert_eq!(st[0]["rows"], oracle(|_| true).len() as u64, "{st}");
    assert_eq!(st[0]["chunks_done"], st[0]["chunks"], "{st}");
}

/// A value an atomic job cannot deliver is named as an append names it:
/// file, row and column.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_atomic_jobs_data_error_names_file_row_and_column() {
    let mut t = table("a", false, "DUP_KEYS");
    t.columns[2] = col("c_str", "VARCHAR(1)");
    let sim = sim(vec![t]).await;
    let state = tempfile::tempdir().unwrap();
    let mut f = job_file(&sim, &corpus().join("pyarrow"), "db.a", state.path());
    f.mode = Some("atomic".into());
    f.transform.select = Some(SELECT.into());
    let e = load(f).await.unwrap_err().to_string();
    assert!(e.contains(".parquet`, row ") && e.contains("column `c_str`") && e.contains("longer than"), "{e}");
    assert_eq!(sim.count("db", "a"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn atomic_loads_everything_in_one_transaction_or_nothing() {
    let sim = sim(vec![table("a", false, "DUP_KEYS")]).await;
    let state = tempfile::tempdir().unwrap();
    let mut f = job_file(&sim, &corpus().join("pyarrow"), "db.a", state.path());
    f.mode = Some("atomic".into());
    f.transform.select = Some(SELECT.into());
    f.chunk_bytes = Some(starload::config::ByteSize(64 << 10));
    // The first attempt's third load breaks the transaction.
    sim.add_fault(FaultRule::on_request(3, Fault::ResetBeforeBody));
    let r = load(f.clone()).await.unwrap();
    let want = oracle(|_| true);
    assert_eq!(r.load.rows_loaded as usize, want.len());
    assert_same(&want, &stored(&sim, "db", "a"), &|_, v| v.clone());
    assert_eq!(sim.loads("db", "a"), 1, "one transaction committed");
    // Again: nothing.
    let again = load(f.clone()).await.unwrap();
    assert_eq!(again.load.chunks_loaded, 0);
    assert_eq!((again.load.chunks_skipped, again.load.rows_skipped), (again.load.chunks, r.load.rows_loaded));
    assert_same(&want, &stored(&sim, "db", "a"), &|_, v| v.clone());
    // Too large for one transaction: refused before sending.
    let sim2 = crate::support::sim(vec![table("a", false, "DUP_KEYS")]).await;
    let state2 = tempfile::tempdir().unwrap();
    let mut g = job_file(&sim2, &corpus().join("pyarrow"), "db.a", state2.path());
    g.mode = Some("atomic".into());
    g.transform.select = Some(SELECT.into());
    g.max_txn_bytes = Some(starload::config::ByteSize(1000));
    let e = load(g).await.unwrap_err();
    assert!(e.to_string().contains("max_txn_bytes"), "{e}");
    assert_eq!(sim2.be_requests(), 0);
    // A where clause that keeps no row: nothing to commit, like an append.
    let sim3 = crate::support::sim(vec![table("a", false, "DUP_KEYS")]).await;
    let state3 = tempfile::tempdir().unwrap();
    let mut h = job_file(&sim3, &corpus().join("pyarrow"), "db.a", state3.path());
    h.mode = Some("atomic".into());
    h.transform.select = Some(SELECT.into());
    h.transform.filter = Some("1 = 0".into());
    let r = load(h).await.unwrap();
    assert_eq!((r.load.rows_loaded, r.load.chunks_empty), (0, r.load.chunks));
    assert!(sim3.rows("db", "a").is_empty());
    assert_eq!(sim3.loads("db", "a"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn primary_key_upsert_delete_partial_update_and_merge_condition() {
    let sim = sim(vec![table("pk", false, "PRI_KEYS")]).await;
    let src = corpus().join("pyarrow");
    let base = |state: &std::path::Path| {
        let mut f = job_file(&sim, &src, "db.pk", state);
        f.transform.select = Some(SELECT.into());
        f
    };
    let s1 = tempfile::tempdir().unwrap();
    load(base(s1.path())).await.unwrap();
    let all = oracle(|_| true);
    assert_same(&all, &stored(&sim, "db", "pk"), &|_, v| v.clone());
    // Upsert: a second job with other values replaces rows by key.
    let s2 = tempfile::tempdir().unwrap();
    let mut f = base(s2.path());
    f.transform.select = Some("id, c_i32 + 1 AS c_i32, c_str, dt".into());
    f.transform.filter = Some("c_i32 IS NOT NULL AND c_i32 < 2000000000".into());
    load(f).await.unwrap();
    // Delete rows whose c_i32 is negative; c_u8 is read only by the predicate.
    let s3 = tempfile::tempdir().unwrap();
    let mut f = base(s3.path());
    f.transform.select = Some("id, c_i32, c_str, dt, c_u8".into());
    f.delete_when = Some("c_i32 < 0 OR c_u8 = 7".into());
    load(f).await.unwrap();
    let orig = expected(&src);
    let want: Rows = all
        .iter()
        .filter(|(_, o)| {
            let i = o["c_i32"].as_str().map(|s| s.parse::<i64>().unwrap());
            let u8v = orig[o["id"].as_str().unwrap()]["c_u8"].as_str().map(|s| s.parse::<i64>().unwrap());
            !(i.is_some_and(|i| i < 0) || u8v == Some(7))
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert!(want.len() < all.len());
    assert_same(&want, &stored(&sim, "db", "pk"), &|_, v| v.clone());
    // Partial update: only c_str changes.
    let s4 = tempfile::tempdir().unwrap();
    let mut f = base(s4.path());
    f.transform.select = Some("id, concat('p:', c_str) AS c_str".into());
    f.partial_update = Some(true);
    // Not into emptied partitions: the columns left out would be lost.
    let mut o = f.clone();
    o.mode = Some("overwrite".into());
    let e = load(o).await.unwrap_err();
    assert!(e.to_string().contains("--partial-update cannot be combined with --mode overwrite"), "{e}");
    assert_same(&want, &stored(&sim, "db", "pk"), &|_, v| v.clone());
    load(f).await.unwrap();
    let got = stored(&sim, "db", "pk");
    for (id, o) in &want {
        let s = o["c_str"].as_str().unwrap_or("");
        assert_eq!(got[id]["c_str"], json!(format!("p:{s}")), "id {id}");
        assert_eq!(got[id]["c_i32"], o["c_i32"], "partial update must keep c_i32 of id {id}");
    }
    // merge_condition: rows whose c_i32 would decrease are not applied.
    let s5 = tempfile::tempdir().unwrap();
    let mut f = base(s5.path());
    f.transform.select = Some("id, c_i32 - 5 AS c_i32, c_str, dt".into());
    f.transform.filter = Some("c_i32 > -2000000000".into());
    f.merge_condition = Some("c_i32".into());
    load(f).await.unwrap();
    let after = stored(&sim, "db", "pk");
    let mut kept = 0;
    for (id, o) in &got {
        // Rows the partial update re-created (deleted keys) have a NULL
        // c_i32, which any value beats.
        if !o["c_i32"].is_null() {
            assert_eq!(after[id]["c_i32"], o["c_i32"], "merge_condition must keep the larger c_i32 of id {id}");
            kept += 1;
        }
    }
    assert!(kept > 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_options_on_a_duplicate_table_are_refused() {
    let sim = sim(vec![table("d", false, "DUP_KEYS")]).await;
    let state = tempfile::tempdir().unwrap();
    let mut f = job_file(&sim, &corpus().join("pyarrow"), "db.d", state.path());
    f.transform.select = Some(SELECT.into());
    f.delete_when = Some("c_i32 < 0".into());
    let e = load(f).await.unwrap_err();
    assert!(e.to_string().contains("Primary Key"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_inputs_and_changed_schemas_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&corpus().join("pyarrow"), dir.path());
    let sim1 = sim(vec![table("t", false, "DUP_KEYS")]).await;
    let state = tempfile::tempdir().unwrap();
    let mut f = job_file(&sim1, dir.path(), "db.t", state.path());
    f.transform.select = Some(SELECT.into());
    load(f.clone()).await.unwrap();
    let rows = sim1.rows("db", "t").len();
    // The same job in another mode would load its rows again.
    let mut atomic = f.clone();
    atomic.mode = Some("atomic".into());
    let e = load(atomic).await.unwrap_err();
    assert!(e.to_string().contains("in append mode") && e.to_string().contains("would load its rows again"), "{e}");
    assert_eq!(sim1.rows("db", "t").len(), rows);
    // So would the same job under another label prefix (StarRocks sees new
    // labels); --new-job is the way to load it again on purpose.
    let mut other = f.clone();
    other.label_prefix = Some("other".into());
    let e = load(other.clone()).await.unwrap_err();
    assert!(e.to_string().contains("under other labels") && e.to_string().contains("--new-job"), "{e}");
    assert_eq!(sim1.rows("db", "t").len(), rows);
    // Also when the journal only knows its loads were sent (the run was
    // killed before any reply): they may have committed.
    let journal = job_journal(state.path());
    let kept = std::fs::read_to_string(&journal).unwrap();
    std::fs::write(&journal, sent_only(&kept)).unwrap();
    let e = load(other.clone()).await.unwrap_err();
    assert!(e.to_string().contains("under other labels"), "{e}");
    assert_eq!(sim1.rows("db", "t").len(), rows);
    std::fs::write(&journal, kept).unwrap();
    // A source file changes: the same command would load its rows again.
    let victim = std::fs::read_dir(dir.path().join("dt=2024-02-29/region=eu"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "parquet") && std::fs::metadata(p).unwrap().len() > 0)
        .unwrap();
    let bytes = std::fs::read(&victim).unwrap();
    std::fs::write(&victim, &bytes).unwrap();
    filetime_bump(&victim);
    let e = load(f.clone()).await.unwrap_err();
    assert!(e.to_string().contains("would load its rows again"), "{e}");
    assert_eq!(sim1.rows("db", "t").len(), rows);
    // The schema changes under a journal: refused.
    let state2 = tempfile::tempdir().unwrap();
    let src = corpus().join("pyarrow");
    let sim_a = sim(vec![table("t", false, "DUP_KEYS")]).await;
    let mut g = job_file(&sim_a, &src, "db.t", state2.path());
    g.transform.select = Some(SELECT.into());
    load(g).await.unwrap();
    let sim_b = sim(vec![{
        let mut t = table("t", false, "DUP_KEYS");
        t.columns.push(col("extra", "INT"));
        t
    }])
    .await;
    let mut h = job_file(&sim_b, &src, "db.t", state2.path());
    h.transform.select = Some(SELECT.into());
    let e = load(h).await.unwrap_err();
    assert!(e.to_string().contains("schema"), "{e}");
    assert_eq!(sim_b.be_requests(), 0);
}

fn filetime_bump(p: &std::path::Path) {
    let f = std::fs::File::options().write(true).open(p).unwrap();
    let t = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
    f.set_modified(t).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_updates_of_new_keys_and_null_merge_versions_follow_starrocks() {
    // (id, v, ver) files; the table also has `nn`, NOT NULL without a default.
    let write = |dir: &std::path::Path, rows: &[(i64, &str, Option<i64>)]| {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("v", DataType::Utf8, true),
            Field::new("ver", DataType::Int64, true),
        ]));
        let b = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
                Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.2))),
            ],
        )
        .unwrap();
        write_parquet(&dir.join("part-0.parquet"), &b);
    };
    let pk = TableSpec {
        db: "db".into(),
        name: "pk".into(),
        keys: "PRI_KEYS".into(),
        key_columns: vec!["id".into()],
        partition_by: None,
        partitions: vec![],
        columns: vec![col_nn("id", "BIGINT"), col("v", "VARCHAR(8)"), col("ver", "BIGINT"), col_nn("nn", "BIGINT")],
    };
    let sim = sim(vec![pk]).await;
    let run = |rows: Vec<(i64, &'static str, Option<i64>)>, select: &'static str, partial: bool, merge: bool| {
        let sim = &sim;
        async move {
            let dir = tempfile::tempdir().unwrap();
            write(dir.path(), &rows);
            let state = tempfile::tempdir().unwrap();
            let mut f = job_file(sim, dir.path(), "db.pk", state.path());
            f.transform.select = Some(select.into());
            f.partial_update = Some(partial);
            f.merge_condition = merge.then(|| "ver".to_string());
            load(f).await.unwrap();
        }
    };
    run(vec![(1, "a", Some(5)), (2, "b", None)], "id, v, ver, 7 AS nn", false, false).await;
    // A partial update's new key: `nn` gets BIGINT's zero, `ver` NULL.
    run(vec![(1, "p", None), (9, "q", None)], "id, v", true, false).await;
    let got = stored(&sim, "db", "pk");
    assert_eq!((got["1"]["v"].clone(), got["1"]["nn"].clone()), (json!("p"), json!("7")));
    assert_eq!(
        (got["9"]["v"].clone(), got["9"]["ver"].clone(), got["9"]["nn"].clone()),
        (json!("q"), json!(null), json!("0"))
    );
    // merge_condition: NULL is the smallest version. A NULL does not replace
    // 5; any version replaces a stored NULL; NULL replaces NULL.
    run(vec![(1, "x", None), (2, "y", Some(-3)), (9, "z", None)], "id, v, ver, 8 AS nn", false, true).await;
    let got = stored(&sim, "db", "pk");
    assert_eq!(got["1"]["v"], json!("p"));
    assert_eq!((got["2"]["v"].clone(), got["2"]["ver"].clone()), (json!("y"), json!("-3")));
    assert_eq!((got["9"]["v"].clone(), got["9"]["nn"].clone()), (json!("z"), json!("8")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporary_partitions_of_an_abandoned_overwrite_are_named_with_the_sql_to_drop_them() {
    // StarRocks refuses a temporary partition overlapping another one: a
    // sharded overwrite never finalized (or one over other input) leaves
    // some behind, and every later overwrite of those partitions needs them
    // gone. The error names them and the statements that drop them.
    let sim = sim(vec![table("t", true, "DUP_KEYS")]).await;
    let mut m = meta(&sim).await;
    let stale = "stl_0badc0de_s_p20240228";
    m.exec(&format!(
        "ALTER TABLE `db`.`t` ADD TEMPORARY PARTITION `{stale}` VALUES [(\"2024-02-28\"), (\"2024-02-29\"))"
    ))
    .await
    .unwrap();
    // Overlapping temporary partitions are refused by the FE itself.
    let e = m
        .exec("ALTER TABLE `db`.`t` ADD TEMPORARY PARTITION `other` VALUES [(\"2024-02-27\"), (\"2024-03-01\"))")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("intersected"), "{e}");
    let state = tempfile::tempdir().unwrap();
    let f = overwrite_job(&sim, "t", state.path(), "dt IN ('2024-02-28', '2024-02-29')");
    let e = load(f.clone()).await.unwrap_err();
    assert_eq!(e.kind(), starload::error::ErrorKind::Config, "{e}");
    let drop = format!("ALTER TABLE `db`.`t` DROP TEMPORARY PARTITION `{stale}`;");
    assert!(e.to_string().contains(&drop), "{e}");
    assert!(sim.rows("db", "t").is_empty());
    m.exec(drop.trim_end_matches(';')).await.unwrap();
    let r = load(f).await.unwrap();
    let want = oracle(|o| o["dt"] == "2024-02-28" || o["dt"] == "2024-02-29");
    assert_eq!(r.load.rows_loaded as usize, want.len());
    assert_same(&want, &stored(&sim, "db", "t"), &|_, v| v.clone());
}

/// A transaction-interface call to the simulator as a client would make
/// it: to the FE, then to the BE its 307 names. Returns the reply's JSON.
async fn txn_call(sim: &starload::sim::Sim, op: &str, label: &str, body: Option<Vec<u8>>) -> Json {
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let url = format!("{}/api/transaction/{op}", sim.fe_url());
    let method = if op == "load" { reqwest::Method::PUT } else { reqwest::Method::POST };
    let send = |url: String| {
        let mut req = http
            .request(method.clone(), url)
            .basic_auth(USER, Some(PASSWORD))
            .header("label", label)
            .header("db", "db")
            .header("table", "t");
        req = match &body {
            Some(b) => req.body(b.clone()),
            None => req.header(reqwest::header::CONTENT_LENGTH, "0"),
        };
        req.send()
    };
    let resp = send(url.clone()).await.unwrap();
    let resp = if resp.status() == reqwest::StatusCode::TEMPORARY_REDIRECT {
        let to = resp.headers()[reqwest::header::LOCATION].to_str().unwrap().to_string();
        send(reqwest::Url::parse(&url).unwrap().join(&to).unwrap().to_string()).await.unwrap()
    } else {
        resp
    };
    serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap()
}

/// The BE joins a transaction's bodies into one stream and counts them
/// against one size limit: the simulator refuses a CSV body whose last row
/// is not terminated (it would run into the next body's first), and bodies
/// whose sum passes `streaming_load_max_mb`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_treats_a_transactions_bodies_as_one_stream() {
    let table = || dup_table("db", "t", "id", vec![col_nn("id", "BIGINT"), col("v", "INT")]);
    let sim = sim(vec![table()]).await;
    assert_eq!(txn_call(&sim, "begin", "l1", None).await["Status"], "OK");
    let r = txn_call(&sim, "load", "l1", Some(b"1\t10\n2\t20".to_vec())).await;
    assert_ne!(r["Status"], "OK", "{r}");
    assert!(r["Message"].as_str().unwrap().contains("row delimiter"), "{r}");
    assert_eq!(txn_call(&sim, "begin", "l2", None).await["Status"], "OK");
    assert_eq!(txn_call(&sim, "load", "l2", Some(b"1\t10\n2\t20\n".to_vec())).await["Status"], "OK");

    let sim = sim_with(vec![table()], |c| c.max_body_mb = 1).await;
    let rows: Vec<u8> = (0..70_000).flat_map(|i| format!("{i}\t1\n").into_bytes()).collect();
    assert!(rows.len() > 512 << 10 && rows.len() < 1 << 20);
    assert_eq!(txn_call(&sim, "begin", "l3", None).await["Status"], "OK");
    assert_eq!(txn_call(&sim, "load", "l3", Some(rows.clone())).await["Status"], "OK");
    let r = txn_call(&sim, "load", "l3", Some(rows)).await;
    assert!(r["Message"].as_str().unwrap().contains("exceed limit"), "{r}");
    assert_eq!(sim.count("db", "t"), 0);
}
