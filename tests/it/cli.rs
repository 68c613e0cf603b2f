//! The `starload` binary: plan sends nothing, load reports JSON, exit codes,
//! and the password never appears in any output.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::*;

fn starload(args: &[&str], password: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_starload"))
        .args(args)
        .env("STARROCKS_PASSWORD", password)
        .env("STARLOAD_LOG", "info")
        .output()
        .expect("run starload")
}

fn job_args<'a>(
    sim: &'a starload::sim::Sim,
    fe: &'a str,
    mysql: &'a str,
    src: &'a str,
    state: &'a str,
) -> Vec<&'a str> {
    let _ = sim;
    vec![
        "--source",
        src,
        "--table",
        "corpus.t",
        "--fe",
        fe,
        "--mysql",
        mysql,
        "--user",
        USER,
        "--state-dir",
        state,
        "--chunk-bytes",
        "128KiB",
    ]
}

fn all_output(o: &Output, state: &Path) -> String {
    let mut s = String::from_utf8_lossy(&o.stdout).into_owned();
    s.push_str(&String::from_utf8_lossy(&o.stderr));
    for e in files_under(state) {
        s.push_str(&String::from_utf8_lossy(&std::fs::read(e).unwrap_or_default()));
    }
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_then_load_then_rerun_through_the_binary() {
    let src = corpus().join("pyarrow");
    // A column the source lacks: loaded with its default, and said so.
    let mut table = corpus_table(&src, "corpus", "t");
    table.columns.push(col("added_later", "VARCHAR(10)"));
    let sim = sim(vec![table]).await;
    let state = tempfile::tempdir().unwrap();
    let (fe, mysql) = (sim.fe_url(), sim.mysql_addr());
    let (src_s, state_s) = (src.display().to_string(), state.path().display().to_string());
    let args = job_args(&sim, &fe, &mysql, &src_s, &state_s);

    let plan = tokio::task::spawn_blocking({
        let mut a = vec!["plan", "--json"];
        a.extend(args.iter().copied());
        let a: Vec<String> = a.iter().map(|s| s.to_string()).collect();
        move || starload(&a.iter().map(|s| s.as_str()).collect::<Vec<_>>(), PASSWORD)
    })
    .await
    .unwrap();
    assert!(plan.status.success(), "{}", String::from_utf8_lossy(&plan.stderr));
    let v: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let chunks = v["chunks"].as_array().unwrap();
    assert!(chunks.len() > 2);
    assert!(chunks[0]["label"].as_str().unwrap().starts_with("starload_"));
    assert_eq!(v["partition_keys"], serde_json::json!(["dt", "region"]));
    assert_eq!(v["files"].as_array().unwrap().len(), 23, "hidden, temporary and empty files are skipped");
    assert!(v["columns"].as_array().unwrap().iter().any(|c| c["target"] == "c_u64" && c["target_type"] == "LARGEINT"));
    assert_eq!(sim.be_requests(), 0, "plan sends nothing");
    assert!(sim.rows("corpus", "t").is_empty());

    let run = |extra: &'static str| {
        let mut a: Vec<String> = vec!["load".into(), extra.into()];
        a.extend(args.iter().map(|s| s.to_string()));
        tokio::task::spawn_blocking(move || starload(&a.iter().map(|s| s.as_str()).collect::<Vec<_>>(), PASSWORD))
    };
    let load = run("--json").await.unwrap();
    assert!(load.status.success(), "{}", String::from_utf8_lossy(&load.stderr));
    let warned = String::from_utf8_lossy(&load.stderr);
    assert!(warned.contains("no source column maps to `added_later` of `corpus.t`"), "{warned}");
    let r: serde_json::Value = serde_json::from_slice(&load.stdout).unwrap();
    assert_eq!(r["status"], "ok");
    assert_eq!(r["rows_loaded"], 3000);
    assert_eq!(r["chunks"].as_u64().unwrap() as usize, chunks.len());
    assert_eq!(sim.rows("corpus", "t").len(), 3000);
    let again = run("--json").await.unwrap();
    let r2: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(r2["chunks_loaded"], 0);
    assert_eq!(r2["rows_sent"], 0);
    assert_eq!(sim.rows("corpus", "t").len(), 3000);
    let out = all_output(&load, state.path()) + &all_output(&plan, state.path());
    assert!(!out.contains(PASSWORD), "the password leaked into an output");

    // status shows the journal.
    let st = tokio::task::spawn_blocking({
        let s = state_s.clone();
        move || starload(&["status", "--state-dir", &s], PASSWORD)
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&st.stdout);
    assert!(text.contains(&format!("{0}/{0} chunks done (3000 rows)", chunks.len())), "{text}");
    // And the instant the job's transform reads as now(), as RFC 3339.
    let clock = text.lines().find_map(|l| l.trim().strip_prefix("clock ")).expect("a clock line");
    let at = chrono::DateTime::parse_from_rfc3339(clock.split(' ').next().unwrap()).unwrap();
    assert!((chrono::Utc::now() - at.to_utc()).num_seconds().abs() < 600, "{clock}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_and_secrets_on_failure() {
    let src = corpus().join("pyarrow");
    let sim = sim(vec![corpus_table(&src, "corpus", "t")]).await;
    let state = tempfile::tempdir().unwrap();
    let (fe, mysql) = (sim.fe_url(), sim.mysql_addr());
    let (src_s, state_s) = (src.display().to_string(), state.path().display().to_string());
    let args: Vec<String> = job_args(&sim, &fe, &mysql, &src_s, &state_s).iter().map(|s| s.to_string()).collect();
    let run = |cmd: Vec<String>, pw: &'static str| {
        tokio::task::spawn_blocking(move || starload(&cmd.iter().map(|s| s.as_str()).collect::<Vec<_>>(), pw))
    };
    // Wrong password: configuration error, one line, no password anywhere.
    let mut a = vec!["load".to_string()];
    a.extend(args.clone());
    let o = run(a.clone(), "not-the-password-42").await.unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    let last = err.lines().last().unwrap_or("");
    assert!(last.starts_with("starload: ") && last.contains("rejected the credentials"), "{err}");
    assert!(!all_output(&o, state.path()).contains("not-the-password-42"));
    // With --json the failure is also a JSON object on stdout.
    let mut j = a.clone();
    j.push("--json".into());
    let o = run(j, "not-the-password-42").await.unwrap();
    assert_eq!(o.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("a JSON error on stdout");
    assert_eq!(v["error"]["kind"], "config", "{v}");
    assert_eq!(v["error"]["exit_code"], 2, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("rejected the credentials"), "{v}");
    assert!(!all_output(&o, state.path()).contains("not-the-password-42"));
    // STARROCKS_PASSWORD (as a scheduler injects it) wins over the job
    // file's password_file; the file is read when the variable is empty.
    let files = tempfile::tempdir().unwrap();
    let pw_file = files.path().join("stale-password");
    std::fs::write(&pw_file, "an-old-password\n").unwrap();
    let job = files.path().join("job.toml");
    std::fs::write(&job, format!("password_file = {:?}\n", pw_file.display().to_string())).unwrap();
    let mut p = vec!["plan".to_string(), "--config".into(), job.display().to_string()];
    p.extend(args.clone());
    let o = run(p.clone(), PASSWORD).await.unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let o = run(p, "").await.unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!all_output(&o, state.path()).contains("an-old-password"));
    // A password on the command line is not accepted.
    let mut b = a.clone();
    b.extend(["--password".to_string(), "x".to_string()]);
    let o = run(b, PASSWORD).await.unwrap();
    assert_eq!(o.status.code(), Some(2));
    // A missing source: configuration error.
    let mut c = vec!["load".to_string(), "--source".into(), "/no/such/dir".into()];
    c.extend(args[2..].iter().cloned());
    let o = run(c, PASSWORD).await.unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/no/such/dir"));
    // Rows StarRocks rejects: a data error (exit 3). A NOT NULL column the
    // data has NULLs for is caught by the encoder before sending.
    let mut t = corpus_table(&src, "corpus", "t2");
    for c in t.columns.iter_mut() {
        if c.name == "c_i32" {
            c.nullable = false;
        }
    }
    let sim2 = sim_with(vec![t], |_| {}).await;
    let (fe2, mysql2) = (sim2.fe_url(), sim2.mysql_addr());
    let d = vec![
        "load",
        "--source",
        &src_s,
        "--table",
        "corpus.t2",
        "--fe",
        &fe2,
        "--mysql",
        &mysql2,
        "--user",
        USER,
        "--state-dir",
        &state_s,
    ]
    .into_iter()
    .map(String::from)
    .collect();
    let o = run(d, PASSWORD).await.unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("c_i32"));
    assert!(!all_output(&o, state.path()).contains(PASSWORD));
}

/// A Pushgateway stand-in: accepts one request, answers 200, returns the
/// request line and body.
async fn one_push(listener: tokio::net::TcpListener) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut s, _) = listener.accept().await.unwrap();
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    loop {
        let n = s.read(&mut tmp).await.unwrap();
        buf.extend_from_slice(&tmp[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let len = text[..end]
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string()))
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len || n == 0 {
                s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await.unwrap();
                let line = text.lines().next().unwrap_or("").to_string();
                return (line, text[end + 4..].to_string());
            }
        }
        if n == 0 {
            return (String::new(), String::new());
        }
    }
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(&format!("starload_{name}{{")))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no starload_{name} in\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_go_to_a_textfile_and_a_pushgateway() {
    let src = corpus().join("pyarrow");
    let sim = sim(vec![corpus_table(&src, "corpus", "t")]).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let prom = dir.path().join("starload.prom");
    let gateway = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gw_url = format!("http://{}", gateway.local_addr().unwrap());
    let pushed = tokio::spawn(one_push(gateway));
    let job = dir.path().join("job.toml");
    std::fs::write(
        &job,
        format!(
            "metrics_file = \"{}\"\nmetrics_pushgateway = \"{gw_url}\"\nchunk_bytes = \"128KiB\"\n",
            prom.display()
        ),
    )
    .unwrap();
    let (fe, mysql) = (sim.fe_url(), sim.mysql_addr());
    let args: Vec<String> = [
        "load",
        "--config",
        &job.display().to_string(),
        "--source",
        &src.display().to_string(),
        "--table",
        "corpus.t",
        "--fe",
        &fe,
        "--mysql",
        &mysql,
        "--user",
        USER,
        "--state-dir",
        &state.display().to_string(),
        "--json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let o =
        tokio::task::spawn_blocking(move || starload(&args.iter().map(|s| s.as_str()).collect::<Vec<_>>(), PASSWORD))
            .await
            .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let text = std::fs::read_to_string(&prom).expect("the textfile is written");
    let rows = expected(&src).len() as f64;
    assert_eq!(metric(&text, "success"), 1.0);
    assert_eq!(metric(&text, "exit_code"), 0.0);
    assert_eq!(metric(&text, "rows_loaded"), rows);
    assert_eq!(metric(&text, "chunks"), report["chunks"].as_f64().unwrap());
    // Plain bodies, no retry: what went on the wire is the text.
    assert_eq!(metric(&text, "bytes_on_wire"), report["bytes_on_wire"].as_f64().unwrap());
    assert_eq!(report["bytes_on_wire"], report["bytes_sent"], "{report}");
    assert!(metric(&text, "run_seconds") > 0.0);
    assert!(text.contains("target=\"corpus.t\""), "{text}");
    assert!(!text.contains(PASSWORD));
    let (line, body) = tokio::time::timeout(std::time::Duration::from_secs(10), pushed).await.unwrap().unwrap();
    assert!(line.starts_with("PUT /metrics/job/starload/target/corpus.t "), "{line}");
    assert_eq!(metric(&body, "rows_loaded"), rows);
    assert!(!body.contains(PASSWORD));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_in_urls_never_show_and_print_config_only_prints() {
    let sim = sim(vec![corpus_table(&corpus().join("pyarrow"), "corpus", "t")]).await;
    let state = tempfile::tempdir().unwrap();
    let src = corpus().join("pyarrow").display().to_string();
    let st = state.path().display().to_string();
    let secret = "TopSecret99";
    // An FE URL or a MySQL address with credentials: refused, not echoed.
    for (fe, mysql) in [
        (format!("http://root:{secret}@127.0.0.1:1"), sim.mysql_addr()),
        ("http://[::1".to_string() + &format!(":{secret}@x"), sim.mysql_addr()),
        (sim.fe_url(), format!("root:{secret}@{}", sim.mysql_addr())),
    ] {
        let o = starload(&[&["load"][..], &job_args(&sim, &fe, &mysql, &src, &st)].concat(), PASSWORD);
        assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(!all_output(&o, state.path()).contains(secret), "{}", String::from_utf8_lossy(&o.stderr));
        let o =
            starload(&[&["plan", "--print-config"][..], &job_args(&sim, &fe, &mysql, &src, &st)].concat(), PASSWORD);
        assert!(o.status.success());
        assert!(!all_output(&o, state.path()).contains(secret), "{}", String::from_utf8_lossy(&o.stdout));
    }
    // Nor in the source, the metastore or the dictionary store (the stores'
    // own errors would echo them): refused, and --print-config hides them.
    let (fe, mysql) = (sim.fe_url(), sim.mysql_addr());
    let s3 = format!("s3://AKID:{secret}@bucket/warehouse");
    let thrift = format!("thrift://hive:{secret}@127.0.0.1:1");
    for (cmd, extra) in [
        (&["load"][..], vec!["--source", s3.as_str()]),
        (&["load"][..], vec!["--metastore", thrift.as_str()]),
        (&["dict", "show"][..], vec!["--dict-store", s3.as_str(), "--column", "x"]),
    ] {
        let mut args = job_args(&sim, &fe, &mysql, &src, &st);
        if extra[0] == "--source" {
            args.retain(|a| *a != src.as_str() && *a != "--source");
        }
        args.extend(extra.iter().copied());
        let o = starload(&[cmd, &args].concat(), PASSWORD);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {}", String::from_utf8_lossy(&o.stderr));
        assert!(!all_output(&o, state.path()).contains(secret), "{}", String::from_utf8_lossy(&o.stderr));
        let o = starload(&[cmd, &["--print-config"][..], &args].concat(), PASSWORD);
        assert!(o.status.success(), "{extra:?}: {}", String::from_utf8_lossy(&o.stderr));
        assert!(!all_output(&o, state.path()).contains(secret), "{}", String::from_utf8_lossy(&o.stdout));
    }
    // --print-config prints and does nothing else, for every job command.
    let args = job_args(&sim, &fe, &mysql, &src, &st);
    for cmd in [&["finalize", "--shards", "1"][..], &["dict", "build", "--bitmap-dict", "x=c_str"][..]] {
        let o = starload(&[cmd, &["--print-config"][..], &args].concat(), PASSWORD);
        assert!(o.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&o.stderr));
        assert!(String::from_utf8_lossy(&o.stdout).contains("corpus.t"), "{cmd:?}");
    }
    assert_eq!(sim.be_requests(), 0);
    assert!(!state.path().join("dicts").exists(), "no dictionary was built");
}

#[test]
fn status_survives_a_torn_journal_and_finalize_needs_a_shard() {
    let state = tempfile::tempdir().unwrap();
    let dir = state.path().join("jobs/0123456789abcdef");
    std::fs::create_dir_all(&dir).unwrap();
    // A crash right after the journal was created: an empty file.
    std::fs::write(dir.join("deadbeef.journal"), b"").unwrap();
    let o = starload(&["status", "--state-dir", &state.path().display().to_string()], PASSWORD);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unreadable"));
    let o = starload(&["finalize", "--shards", "0", "--source", "/tmp/x", "--table", "db.t"], PASSWORD);
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
}

/// `starload … | head -1`: a reader that went away ends the process
/// quietly (exit 0), not with a panic on the broken pipe.
#[test]
fn a_closed_stdout_is_not_a_panic() {
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_starload"))
        .args(["load", "--print-config", "--source", "/tmp/x", "--table", "db.t", "--fe", "http://127.0.0.1:1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run starload");
    // The only read end of the pipe, closed before the child writes.
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// An FE that refuses connections (down, wrong port) fails the load within
/// `--max-retries`, naming the FE, as a retryable infrastructure error —
/// not after the throttling budget (an hour of back-off).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_fe_refusing_connections_fails_within_max_retries() {
    let src = corpus().join("pyarrow");
    let sim = sim(vec![corpus_table(&src, "corpus", "t")]).await;
    let state = tempfile::tempdir().unwrap();
    // A port nothing listens on (bound, then released).
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let fe = format!("http://{dead}");
    let mysql = sim.mysql_addr();
    let (src_s, state_s) = (src.display().to_string(), state.path().display().to_string());
    let mut a: Vec<String> = vec!["load".into(), "--max-retries".into(), "1".into()];
    a.extend(job_args(&sim, &fe, &mysql, &src_s, &state_s).iter().map(|s| s.to_string()));
    let start = std::time::Instant::now();
    let o = tokio::task::spawn_blocking(move || starload(&a.iter().map(|s| s.as_str()).collect::<Vec<_>>(), PASSWORD))
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(4), "{err}");
    assert!(err.contains(&format!("FE {fe}/ did not answer")), "{err}");
    assert!(start.elapsed() < std::time::Duration::from_secs(120), "took {:?}", start.elapsed());
    assert!(sim.rows("corpus", "t").is_empty());
}

#[test]
fn one_dictionary_column_named_twice_is_refused() {
    let o = starload(
        &["load", "--print-config", "--source", "/tmp/x", "--table", "db.t", "--bitmap-dict", "u=a", "--bitmap-dict"]
            .into_iter()
            .chain(["u=upper(a)"])
            .collect::<Vec<_>>(),
        PASSWORD,
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("names column `u` twice"), "{err}");
}

/// `starload sql` prints a header and tab-separated rows (NULL as `NULL`)
/// and exits 0; a statement the server refuses, a wrong password and a bad
/// address exit 2, with the server's message and never the password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_prints_rows_and_refusals_exit_2() {
    let src = corpus().join("pyarrow");
    let sim = sim(vec![corpus_table(&src, "corpus", "t")]).await;
    let mysql = sim.mysql_addr();
    let run = |stmt: &'static str, mysql: String, pw: &'static str| {
        tokio::task::spawn_blocking(move || starload(&["sql", "--mysql", &mysql, "--user", USER, stmt], pw))
    };
    let text =
        |o: &Output| (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned());

    let o = run("SHOW TABLES FROM corpus", mysql.clone(), PASSWORD).await.unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert_eq!(out, "Tables_in_corpus\nt\n");

    let o = run("SELECT COUNT(*) AS n, NULL AS nothing FROM corpus.t", mysql.clone(), PASSWORD).await.unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert_eq!(out, "n\tnothing\n0\tNULL\n");

    let o = run("SELECT * FROM corpus.no_such_table", mysql.clone(), PASSWORD).await.unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}{err}");
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("statement failed") && err.contains("no_such_table"), "{err}");

    let o = run("SHOW DATABASES", mysql.clone(), "not-the-password-42").await.unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}{err}");
    assert!(!out.contains("not-the-password-42") && !err.contains("not-the-password-42"), "{err}");

    let o = run("SHOW DATABASES", "no-port-here".into(), PASSWORD).await.unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o).1);
}

/// A panic a dependency raises on some input, which starload turns into a
/// refusal naming the file (arrow-ipc on polars' `Int128` in the embedded
/// Arrow schema), prints that refusal alone: no panic message or backtrace
/// before it, even with RUST_BACKTRACE set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_turned_into_a_refusal_prints_only_the_refusal() {
    let sim = sim(vec![dup_table("corpus", "t", "id", vec![col_nn("id", "BIGINT")])]).await;
    let dir = testdata_dir("polars-int128.parquet", "wide.parquet");
    let state = tempfile::tempdir().unwrap();
    let (fe, mysql) = (sim.fe_url(), sim.mysql_addr());
    let (src, st) = (dir.path().display().to_string(), state.path().display().to_string());
    let mut args = vec!["load"];
    args.extend(job_args(&sim, &fe, &mysql, &src, &st));
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let o = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_starload"))
            .args(&args)
            .env("STARROCKS_PASSWORD", PASSWORD)
            .env("RUST_BACKTRACE", "1")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(err.contains("wide.parquet") && err.contains("ARROW:schema"), "{err}");
    assert!(!err.contains("panicked") && !err.contains("backtrace"), "{err}");
    assert_eq!(sim.be_requests(), 0);
}
