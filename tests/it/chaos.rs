//! Fault injection, seeded and bounded: many jobs under random server
//! faults, and the loader process killed with SIGKILL at random moments and
//! restarted. Every job must end with each source row stored exactly once.
//!
//! `STARLOAD_CHAOS_SEED`, `STARLOAD_CHAOS_JOBS` and `STARLOAD_CHAOS_KILL_JOBS`
//! change the seed and the sizes.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use starload::sim::tables::{PartitionSpec, TableSpec};
use starload::sim::{Fault, FaultRule, Sim};

use crate::support::*;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn env_u64(k: &str, default: u64) -> u64 {
    std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn random_fault(rng: &mut Rng) -> Fault {
    match rng.below(11) {
        0 => Fault::ResetBeforeBody,
        1 => Fault::ResetAfterCommit,
        2 => Fault::Fail("[E1008]Reached timeout".into()),
        3 => Fault::Fail(
            "Failed to load data into tablet 10021, because of too many versions, current/limit: 1001/1000".into(),
        ),
        4 => Fault::Fail("current running txns on db 10010 is 1000, larger than limit 1000".into()),
        5 => Fault::PublishTimeout,
        6 => Fault::Http(503),
        7 => Fault::Garbage,
        8 => Fault::LabelRunning,
        9 => Fault::Fail("Memory of process exceed limit. Used: 1, Limit: 1".into()),
        _ => Fault::Delay(rng.below(400)),
    }
}

fn chaos_table(name: &str, partitioned: bool) -> TableSpec {
    let mut t = dup_table(
        "db",
        name,
        "id",
        vec![
            col_nn("id", "BIGINT"),
            col("c_i64", "BIGINT"),
            col("c_str", "VARCHAR(255)"),
            col("c_map", "MAP<VARCHAR(50),INT>"),
            col_nn("dt", "DATE"),
        ],
    );
    if partitioned {
        t.partition_by = Some("dt".into());
        t.partitions = vec![PartitionSpec {
            name: "p2024".into(),
            values: vec![],
            range: Some(("2024-01-01".into(), "2025-01-01".into())),
        }];
    }
    t
}

const SELECT: &str = "id, c_i64, c_str, c_map, dt";

fn check(sim: &Sim, name: &str) {
    let exp: std::collections::BTreeMap<String, serde_json::Map<String, serde_json::Value>> =
        expected(&corpus().join("pyarrow"))
            .into_iter()
            .map(|(id, o)| {
                (id, ["id", "c_i64", "c_str", "c_map", "dt"].iter().map(|k| (k.to_string(), o[*k].clone())).collect())
            })
            .collect();
    assert_same(&exp, &stored(sim, "db", name), &|_, v| v.clone());
}

fn schedule(sim: &Sim, rng: &mut Rng, requests: u64, percent: u64) -> u64 {
    let mut n = 0;
    for r in 1..=requests {
        if rng.below(100) < percent {
            sim.add_fault(FaultRule::on_request(r, random_fault(rng)));
            n += 1;
        }
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_server_faults_never_load_a_row_twice() {
    let seed = env_u64("STARLOAD_CHAOS_SEED", 20261125);
    let jobs = env_u64("STARLOAD_CHAOS_JOBS", 12);
    let mut rng = Rng(seed);
    let (mut fired, mut runs) = (0u64, 0u64);
    let started = Instant::now();
    for j in 0..jobs {
        let mode = match rng.below(10) {
            0..=5 => "append",
            6 | 7 => "overwrite",
            _ => "atomic",
        };
        let name = format!("c{j}");
        let sim = sim(vec![chaos_table(&name, rng.below(2) == 0)]).await;
        schedule(&sim, &mut rng, 60, 30);
        if rng.below(3) == 0 {
            sim.fe_outage(Duration::from_millis(300 + rng.below(700)));
        }
        let state = tempfile::tempdir().unwrap();
        let mut f = job_file(&sim, &corpus().join("pyarrow"), &format!("db.{name}"), state.path());
        f.transform.select = Some(SELECT.into());
        f.mode = Some(mode.into());
        f.chunk_bytes = Some(starload::config::ByteSize((24 + rng.below(200)) << 10));
        f.parallel = Some(1 + rng.below(4) as usize);
        f.retry_base_ms = Some(20);
        f.max_retries = Some(6);
        f.http_timeout_secs = Some(5);
        // Re-run until it succeeds, as an operator (or Airflow) would.
        let mut ok = false;
        for _ in 0..8 {
            runs += 1;
            match load(f.clone()).await {
                Ok(_) => {
                    ok = true;
                    break;
                }
                Err(e) => {
                    eprintln!("chaos: job {j} ({mode}) run failed, re-running: {e}");
                    assert_eq!(e.kind(), starload::ErrorKind::Infra, "job {j} ({mode}) failed for good: {e}")
                }
            }
        }
        assert!(ok, "job {j} ({mode}) did not finish in 8 runs");
        check(&sim, &name);
        fired += sim.faults_fired();
    }
    println!(
        "chaos: seed {seed}: {jobs} jobs, {fired} faults fired, {runs} runs, exactly once every time ({:.1} s)",
        started.elapsed().as_secs_f64()
    );
    assert!(fired > jobs * 3, "too few faults fired ({fired}) to mean anything");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_never_loads_a_row_twice() {
    let seed = env_u64("STARLOAD_CHAOS_SEED", 20261125) ^ 0x5151;
    let jobs = env_u64("STARLOAD_CHAOS_KILL_JOBS", 6);
    let mut rng = Rng(seed);
    let (mut kills, mut fired) = (0u64, 0u64);
    let started = Instant::now();
    for j in 0..jobs {
        let mode = ["append", "append", "overwrite", "atomic"][rng.below(4) as usize];
        let name = format!("k{j}");
        let sim = sim(vec![chaos_table(&name, j % 2 == 0)]).await;
        schedule(&sim, &mut rng, 40, 15);
        // Slow replies keep the process busy long enough to be killed
        // mid-load.
        sim.add_fault(FaultRule { trigger: starload::sim::Trigger::Any, fault: Fault::Delay(60), times: 1000 });
        let state = tempfile::tempdir().unwrap();
        let cfg = state.path().join("job.toml");
        std::fs::write(
            &cfg,
            format!(
                "source = {:?}\ntable = \"db.{name}\"\nfe = {:?}\nmysql = {:?}\nuser = {:?}\nstate_dir = {:?}\nmode = {:?}\n\
                 chunk_bytes = {}\nparallel = {}\nretry_base_ms = 20\nmax_retries = 6\nhttp_timeout_secs = 5\n\
                 [transform]\nselect = {:?}\n",
                corpus().join("pyarrow").display().to_string(),
                sim.fe_url(),
                sim.mysql_addr(),
                USER,
                state.path().display().to_string(),
                mode,
                (16 + rng.below(48)) << 10,
                1 + rng.below(3),
                SELECT,
            ),
        )
        .unwrap();
        let mut done = false;
        for attempt in 0..12 {
            // The child's messages are kept, to be shown if it fails in a way
            // the test does not allow.
            let log = state.path().join(format!("attempt{attempt}.log"));
            let mut child = Command::new(env!("CARGO_BIN_EXE_starload"))
                .args(["load", "--config"])
                .arg(&cfg)
                .env("STARROCKS_PASSWORD", PASSWORD)
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .unwrap();
            // The last attempts run to the end.
            let kill_after = if attempt < 8 { Some(Duration::from_millis(150 + rng.below(900))) } else { None };
            let t0 = Instant::now();
            let status = loop {
                if let Some(st) = child.try_wait().unwrap() {
                    break Some(st);
                }
                if kill_after.is_some_and(|k| t0.elapsed() >= k) {
                    // SIGKILL: no cleanup, no flush, mid-anything.
                    child.kill().unwrap();
                    child.wait().unwrap();
                    kills += 1;
                    break None;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            };
            if let Some(st) = status {
                if st.success() {
                    done = true;
                    break;
                }
                if st.code() != Some(4) {
                    let earlier: String = (0..=attempt)
                        .map(|a| {
                            let l = state.path().join(format!("attempt{a}.log"));
                            format!("--- attempt {a}:\n{}\n", std::fs::read_to_string(l).unwrap_or_default())
                        })
                        .collect();
                    panic!("job {j} ({mode}) exited with {st}; its messages:\n{earlier}");
                }
            }
        }
        assert!(done, "job {j} ({mode}) never finished");
        check(&sim, &name);
        fired += sim.faults_fired();
    }
    println!(
        "chaos: seed {seed}: {jobs} jobs killed {kills} times with SIGKILL, {fired} faults fired, exactly once every time ({:.1} s)",
        started.elapsed().as_secs_f64()
    );
    assert!(kills >= jobs, "too few kills ({kills})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_goes_away_mid_body_leaves_no_running_label() {
    // As a BE cancels a Stream Load whose connection dropped, the simulator
    // must not keep its label in PREPARE (a re-run would wait on it).
    let sim = crate::support::sim(vec![dup_table("db", "t", "id", vec![col_nn("id", "BIGINT")])]).await;
    // A slow BE: the handler is waiting between reads when the client goes.
    sim.add_fault(FaultRule::on_label("gone_mid_body", Fault::SlowRead(1)));
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let url = format!("{}/api/db/t/_stream_load", sim.fe_url());
    let auth = |r: reqwest::RequestBuilder| {
        r.basic_auth(USER, Some(PASSWORD)).header("label", "gone_mid_body").header("format", "csv")
    };
    let redirect = auth(client.put(&url)).header("Expect", "100-continue").send().await.unwrap();
    let be = redirect.headers()["location"].to_str().unwrap().to_string();
    // A body that sends a little, then never ends; the client gives up.
    use futures::StreamExt;
    let body = futures::stream::once(async { Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"1\n2\n3\n")) })
        .chain(futures::stream::pending());
    let r = auth(client.put(&be)).timeout(std::time::Duration::from_millis(500)).body(reqwest::Body::wrap_stream(body));
    assert!(r.send().await.is_err());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let s = sim.label_state("db", "gone_mid_body");
        if s != "PREPARE" && s != "PREPARED" {
            assert_eq!(s, "ABORTED");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "label still {s}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
