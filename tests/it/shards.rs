//! Scale-out: n processes load disjoint shards of one chunk plan with the
//! labels a single run would use; `finalize` verifies (and swaps, for
//! overwrite).

use std::process::{Command, Stdio};

use crate::support::*;

const SELECT: &str = "id, c_i64, c_str, dt";

fn table(partitioned: bool) -> starload::sim::tables::TableSpec {
    let mut t = dup_table(
        "db",
        "t",
        "id",
        vec![col_nn("id", "BIGINT"), col("c_i64", "BIGINT"), col("c_str", "VARCHAR(255)"), col_nn("dt", "DATE")],
    );
    if partitioned {
        t.partition_by = Some("dt".into());
        t.partitions = ["2024-02-28", "2024-02-29", "2024-03-01"]
            .iter()
            .zip(["2024-02-29", "2024-03-01", "2024-03-02"])
            .map(|(lo, hi)| starload::sim::tables::PartitionSpec {
                name: format!("p{}", lo.replace('-', "")),
                values: vec![],
                range: Some((lo.to_string(), hi.to_string())),
            })
            .collect();
    }
    t
}

fn oracle() -> std::collections::BTreeMap<String, serde_json::Map<String, serde_json::Value>> {
    expected(&corpus().join("pyarrow"))
        .into_iter()
        .map(|(id, o)| (id, ["id", "c_i64", "c_str", "dt"].iter().map(|k| (k.to_string(), o[*k].clone())).collect()))
        .collect()
}

fn args(sim: &starload::sim::Sim, state: &std::path::Path, mode: &str) -> Vec<String> {
    [
        "--source",
        &corpus().join("pyarrow").display().to_string(),
        "--table",
        "db.t",
        "--fe",
        &sim.fe_url(),
        "--mysql",
        &sim.mysql_addr(),
        "--user",
        USER,
        "--state-dir",
        &state.display().to_string(),
        "--chunk-bytes",
        "48KiB",
        "--select",
        SELECT,
        "--mode",
        mode,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

async fn run_shards(sim: &starload::sim::Sim, state: &std::path::Path, mode: &str, n: usize) {
    let mut children = Vec::new();
    for i in 0..n {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_starload"));
        cmd.arg("load").args(args(sim, state, mode)).args(["--shard", &format!("{i}/{n}")]);
        cmd.env("STARROCKS_PASSWORD", PASSWORD).stdout(Stdio::null()).stderr(Stdio::piped());
        children.push(cmd.spawn().unwrap());
    }
    let outs = tokio::task::spawn_blocking(move || {
        children.into_iter().map(|c| c.wait_with_output().unwrap()).collect::<Vec<_>>()
    })
    .await
    .unwrap();
    for (i, o) in outs.iter().enumerate() {
        assert!(o.status.success(), "shard {i}: {}", String::from_utf8_lossy(&o.stderr));
    }
}

async fn finalize(sim: &starload::sim::Sim, state: &std::path::Path, mode: &str, n: usize) -> serde_json::Value {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_starload"));
    cmd.arg("finalize").args(args(sim, state, mode)).args(["--shards", &n.to_string(), "--json"]);
    cmd.env("STARROCKS_PASSWORD", PASSWORD);
    let o = tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap();
    assert!(o.status.success(), "finalize: {}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// `starload status` of a state directory: its JSON, and its text.
async fn status(state: &std::path::Path) -> (Vec<serde_json::Value>, String) {
    let run = |json: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_starload"));
        cmd.args(["status", "--state-dir"]).arg(state);
        if json {
            cmd.arg("--json");
        }
        async move {
            let o = tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap();
            assert!(o.status.success(), "status: {}", String::from_utf8_lossy(&o.stderr));
            o.stdout
        }
    };
    (serde_json::from_slice(&run(true).await).unwrap(), String::from_utf8(run(false).await).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_shards_load_every_row_exactly_once() {
    let sim = sim(vec![table(false)]).await;
    let state = tempfile::tempdir().unwrap();
    run_shards(&sim, state.path(), "append", 4).await;
    assert_same(&oracle(), &stored(&sim, "db", "t"), &|_, v| v.clone());
    let r = finalize(&sim, state.path(), "append", 4).await;
    assert_eq!(r["status"], "ok");
    assert_eq!(r["verified_by"], "journals");
    assert_eq!(r["rows"], 3000);
    // The labels are the ones a single run uses: a single run loads nothing.
    let requests = sim.be_requests();
    let mut f = job_file(&sim, &corpus().join("pyarrow"), "db.t", tempfile::tempdir().unwrap().path());
    f.transform.select = Some(SELECT.into());
    f.chunk_bytes = Some(starload::config::ByteSize(48 << 10));
    let single = load(f).await.unwrap();
    assert_eq!(single.load.chunks_loaded, 0);
    // It asked the FE for each chunk's CSV label and found it FINISHED: only
    // bodies of the few chunks with rows in other parts reached the BE.
    let bodies = sim.be_requests() - requests;
    assert!(bodies < single.load.chunks as u64 / 4, "{bodies} bodies for {} chunks", single.load.chunks);
    assert_same(&oracle(), &stored(&sim, "db", "t"), &|_, v| v.clone());
    // finalize without the shards' journals checks label states instead.
    let empty = tempfile::tempdir().unwrap();
    let r = finalize(&sim, empty.path(), "append", 4).await;
    assert_eq!(r["verified_by"], "label states");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharded_overwrite_swaps_once_finalized() {
    let sim = sim(vec![table(true)]).await;
    let state = tempfile::tempdir().unwrap();
    run_shards(&sim, state.path(), "overwrite", 3).await;
    assert!(sim.rows("db", "t").is_empty(), "nothing is visible before finalize");
    // status counts each shard's own chunks (chunk k is shard k mod 3's).
    let (st, text) = status(state.path()).await;
    assert_eq!(st.len(), 3, "{st:?}");
    let chunks = st[0]["chunks"].as_u64().unwrap();
    for (i, j) in st.iter().enumerate() {
        assert_eq!(j["run"], serde_json::json!({"role": "shard", "index": i, "of": 3}), "{j}");
        let owned = j["chunks_owned"].as_u64().unwrap();
        assert_eq!(owned, (0..chunks).filter(|k| k % 3 == i as u64).count() as u64);
        assert_eq!(j["done"].as_array().unwrap().len() as u64, owned);
        assert!(text.contains(&format!("shard {i}/3 -> db.t from ")), "{text}");
        assert!(text.contains(&format!(": {owned}/{owned} of its chunks done (")), "{text}");
    }
    let r = finalize(&sim, state.path(), "overwrite", 3).await;
    assert_eq!(r["partitions_replaced"].as_array().unwrap().len(), 3);
    let (st, text) = status(state.path()).await;
    let fin = st.iter().find(|j| j["run"]["role"] == "finalize").expect("finalize's journal");
    assert!(fin["state"].as_str().unwrap().starts_with("overwrite swapped in"), "{fin}");
    assert!(text.contains(" finalize -> db.t from ") && text.contains("  overwrite swapped in"), "{text}");
    assert_same(&oracle(), &stored(&sim, "db", "t"), &|_, v| v.clone());
    // A shard run again (its exit status was lost, say) leaves no empty
    // temporary partitions behind, which would block the next overwrite.
    let mut again = Command::new(env!("CARGO_BIN_EXE_starload"));
    again.arg("load").args(args(&sim, state.path(), "overwrite")).args(["--shard", "1/3", "--json"]);
    again.env("STARROCKS_PASSWORD", PASSWORD);
    let o = tokio::task::spawn_blocking(move || again.output().unwrap()).await.unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // It reports its chunks and their rows as done before.
    let rep: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(rep["chunks_skipped"], rep["chunks"], "{rep}");
    assert!(rep["rows_skipped"].as_u64().unwrap() > 0 && rep["rows_loaded"] == 0, "{rep}");
    let mut m = meta(&sim).await;
    let temps = m.query("SHOW TEMPORARY PARTITIONS FROM db.t").await.unwrap();
    assert!(temps.is_empty(), "{temps:?}");
    assert_same(&oracle(), &stored(&sim, "db", "t"), &|_, v| v.clone());
}
