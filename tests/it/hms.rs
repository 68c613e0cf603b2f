//! The Hive Metastore client against a real metastore (Hive 3.1.3 from
//! `scripts/servers`, or the one `STARLOAD_TEST_HMS` names), populated with
//! `scripts/servers/hms_populate.py`.
//!
//! Without `STARLOAD_TEST_HMS`, the tests start their own metastore with
//! `scripts/servers/hms.sh run --port 0` and skip (printing why) when it
//! cannot be started, unless `STARLOAD_REQUIRE_SERVERS=1`, which makes a
//! missing server a failure. The populating tool needs `pymetastore==0.4.2`
//! and `thrift==0.25.0` in `$STARLOAD_PYTHON` (else `python3`).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::json;
use starload::ErrorKind;
use starload::hms::{HiveColumn, HivePartition, Metastore, check_plain_parquet, partition_filter};

use crate::support::python;

const DB: &str = "starload_it_hms";
const TIMEOUT: Duration = Duration::from_secs(30);

/// The metastore the tests use and the directory of their table data.
struct Fixture {
    uri: String,
    data: PathBuf,
}

/// A metastore started by these tests (stopped when the test process exits
/// and its stdin closes).
struct Started {
    _child: Mutex<Child>,
}

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn servers_required() -> bool {
    std::env::var("STARLOAD_REQUIRE_SERVERS").is_ok_and(|v| v == "1")
}

/// The populated metastore, or `None` (after printing why) when none can be
/// had and none is required.
fn fixture() -> Option<&'static Fixture> {
    static FIXTURE: OnceLock<Result<Fixture, String>> = OnceLock::new();
    let f = FIXTURE.get_or_init(|| {
        let configured = std::env::var("STARLOAD_TEST_HMS").ok().filter(|s| !s.is_empty());
        if let Err(why) = check_python() {
            assert!(configured.is_none(), "STARLOAD_TEST_HMS is set but {why}");
            return Err(why);
        }
        let uri = match &configured {
            Some(uri) => uri.clone(),
            None => start_metastore()?,
        };
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        remove_stale_dirs(tmp, "hms-data-");
        let data = tmp.join(format!("hms-data-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data);
        std::fs::create_dir_all(&data).expect("create the table data directory");
        if let Err(why) = populate(&uri, &data) {
            // A metastore named by the environment must work.
            assert!(configured.is_none(), "populating {uri} failed: {why}");
            return Err(why);
        }
        Ok(Fixture { uri, data })
    });
    match f {
        Ok(f) => Some(f),
        Err(why) => {
            assert!(!servers_required(), "no Hive Metastore for the tests (STARLOAD_REQUIRE_SERVERS=1): {why}");
            eprintln!("skipping Hive Metastore test: {why}");
            None
        }
    }
}

/// Starts `hms.sh run --port 0` and waits for its readiness line.
fn start_metastore() -> Result<String, String> {
    static STARTED: OnceLock<Started> = OnceLock::new();
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    remove_stale_dirs(tmp, "hms-it-");
    let dir = tmp.join(format!("hms-it-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let log = std::fs::File::create(dir.join("hms.log")).map_err(|e| e.to_string())?;
    let mut child = Command::new("bash")
        .arg(manifest_dir().join("scripts/servers/hms.sh"))
        .args(["run", "--port", "0", "--dir"])
        .arg(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .map_err(|e| format!("cannot run scripts/servers/hms.sh: {e}"))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // The first run builds the Maven project (downloads into ~/.m2).
    let deadline = Instant::now() + Duration::from_secs(600);
    let log_tail = || {
        let text = std::fs::read_to_string(dir.join("hms.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(5)..].join(" | ")
    };
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                if let Some(uri) = line.strip_prefix("Ready! ") {
                    let uri = uri.trim().to_string();
                    let _ = STARTED.set(Started { _child: Mutex::new(child) });
                    return Ok(uri);
                }
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("scripts/servers/hms.sh did not start a metastore: {}", log_tail()));
            }
        }
    }
}

/// Removes `<prefix><pid>` directories of test processes that have exited.
fn remove_stale_dirs(tmp: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(tmp) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name.strip_prefix(prefix).and_then(|p| p.parse::<u32>().ok())
            && pid != std::process::id()
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Whether the Python that runs `hms_populate.py` has its modules.
fn check_python() -> Result<(), String> {
    let py = python();
    match Command::new(&py).args(["-c", "import thrift, pymetastore"]).output() {
        Ok(o) if o.status.success() => Ok(()),
        _ => Err(format!(
            "{py} cannot import thrift and pymetastore (pip install pymetastore==0.4.2 thrift==0.25.0, \
             or set STARLOAD_PYTHON)"
        )),
    }
}

/// Creates the test tables with `hms_populate.py`.
fn populate(uri: &str, data: &Path) -> Result<(), String> {
    let py = python();
    let loc = |p: &str| data.join(p).display().to_string();
    let cols = json!([
        {"name": "id", "type": "bigint"},
        {"name": "amount", "type": "decimal(10,2)"},
        {"name": "name", "type": "string"},
    ]);
    let spec = json!({"tables": [
        {"db": DB, "table": "events", "columns": cols,
         "partition_keys": [{"name": "dt", "type": "string"}, {"name": "region", "type": "int"}],
         "location": loc("events"),
         "format": "parquet",
         "partitions": [
            {"values": ["2024-01-01", 1]},
            {"values": ["2024-01-02", 2], "location": loc("elsewhere/p2")},
            {"values": ["2024-02-01", 10]},
            {"values": ["2024-02-01", 9]},
         ]},
        {"db": DB, "table": "events_text", "columns": cols, "location": loc("events_text"), "format": "textfile"},
        {"db": DB, "table": "flat", "columns": cols, "location": loc("flat")},
    ]});
    let mut child = Command::new(&py)
        .arg(manifest_dir().join("scripts/servers/hms_populate.py"))
        .args(["--uri", uri, "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {py}: {e}"))?;
    child.stdin.take().expect("stdin").write_all(spec.to_string().as_bytes()).map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("hms_populate.py failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(())
}

/// `file:/...` as the metastore stores local paths.
fn file_uri(p: &Path) -> String {
    format!("file:{}", p.display())
}

fn col(name: &str, ty: &str) -> HiveColumn {
    HiveColumn { name: name.into(), hive_type: ty.into() }
}

fn values(parts: &[HivePartition]) -> Vec<(String, String)> {
    parts.iter().map(|p| (p.values[0].clone(), p.values[1].clone())).collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

#[tokio::test]
async fn hms_table_and_partitions() {
    let Some(fx) = fixture() else { return };
    let mut ms = Metastore::connect(&fx.uri, TIMEOUT).await.expect("connect");
    let t = ms.table(DB, "events").await.expect("table");
    assert_eq!((t.db.as_str(), t.name.as_str()), (DB, "events"));
    assert_eq!(t.location, file_uri(&fx.data.join("events")));
    assert_eq!(t.columns, vec![col("id", "bigint"), col("amount", "decimal(10,2)"), col("name", "string")]);
    assert_eq!(t.partition_keys, vec![col("dt", "string"), col("region", "int")]);
    assert_eq!(t.input_format, "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat");
    assert_eq!(t.serde_lib, "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe");
    assert_eq!(t.table_type, "EXTERNAL_TABLE");
    assert_eq!(t.parameters.get("EXTERNAL").map(String::as_str), Some("TRUE"));
    check_plain_parquet(&t).unwrap();

    let all = ms.partitions(DB, "events", None).await.expect("partitions");
    let table_dir = file_uri(&fx.data.join("events"));
    let part = |dt: &str, region: &str, location: String| HivePartition {
        values: vec![dt.to_string(), region.to_string()],
        location,
        input_format: "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat".into(),
    };
    assert_eq!(
        all,
        vec![
            part("2024-01-01", "1", format!("{table_dir}/dt=2024-01-01/region=1")),
            part("2024-01-02", "2", file_uri(&fx.data.join("elsewhere/p2"))),
            part("2024-02-01", "10", format!("{table_dir}/dt=2024-02-01/region=10")),
            part("2024-02-01", "9", format!("{table_dir}/dt=2024-02-01/region=9")),
        ]
    );

    // The outside partition, by a hand-written filter.
    let p2 = ms.partitions(DB, "events", Some(r#"dt = "2024-01-02""#)).await.expect("filtered");
    assert_eq!(p2, vec![all[1].clone()]);
    // A filter that matches nothing.
    assert!(ms.partitions(DB, "events", Some(r#"dt = "1999-01-01""#)).await.expect("filtered").is_empty());
    // A filter the metastore cannot parse: every partition, never fewer.
    assert_eq!(ms.partitions(DB, "events", Some("dt >>> 1")).await.expect("fallback"), all);
}

#[tokio::test]
async fn hms_translated_filters() {
    let Some(fx) = fixture() else { return };
    let mut ms = Metastore::connect(&fx.uri, TIMEOUT).await.expect("connect");
    let keys = ms.table(DB, "events").await.expect("table").partition_keys;
    let cases: &[(&str, &[(&str, &str)])] = &[
        ("dt = '2024-01-02' AND amount > 0", &[("2024-01-02", "2")]),
        // Numeric, not text: "10" > "9".
        ("region > 9 AND dt = '2024-02-01'", &[("2024-02-01", "10")]),
        ("region = 9", &[("2024-02-01", "9")]),
        // Strings are pushed with `=` only (the metastore's collation may
        // pad or fold case): the `dt` range stays for the scan.
        ("region <> 9 AND dt > '2024-01-15'", &[("2024-01-01", "1"), ("2024-01-02", "2"), ("2024-02-01", "10")]),
        ("region IN (1, 2)", &[("2024-01-01", "1"), ("2024-01-02", "2")]),
        ("region BETWEEN 2 AND 9", &[("2024-01-02", "2"), ("2024-02-01", "9")]),
        ("region NOT BETWEEN 2 AND 9", &[("2024-01-01", "1"), ("2024-02-01", "10")]),
        ("region = 2 OR dt = '2024-01-01'", &[("2024-01-01", "1"), ("2024-01-02", "2")]),
        ("dt IN ('2024-01-01', '2024-01-02') AND name <> 'x'", &[("2024-01-01", "1"), ("2024-01-02", "2")]),
        ("source.dt = '2024-01-01' OR region >= 10", &[("2024-01-01", "1"), ("2024-02-01", "10")]),
    ];
    for (sql, want) in cases {
        let filter = partition_filter(sql, &keys).unwrap_or_else(|| panic!("{sql}: nothing translated"));
        let got = ms.partitions(DB, "events", Some(&filter)).await;
        let got = got.unwrap_or_else(|e| panic!("{sql} → {filter}: {e}"));
        assert_eq!(values(&got), pairs(want), "{sql} → {filter}");
    }
    assert_eq!(partition_filter("amount > 0", &keys), None);
    assert_eq!(partition_filter("dt <> '2024-01-01'", &keys), None);
}

#[tokio::test]
async fn hms_other_tables_and_unknown_names() {
    let Some(fx) = fixture() else { return };
    let mut ms = Metastore::connect(&fx.uri, TIMEOUT).await.expect("connect");

    let text = ms.table(DB, "events_text").await.expect("text table");
    assert!(check_plain_parquet(&text).is_err(), "{text:?}");
    assert_eq!(text.input_format, "org.apache.hadoop.mapred.TextInputFormat");

    let flat = ms.table(DB, "flat").await.expect("unpartitioned table");
    check_plain_parquet(&flat).unwrap();
    assert!(flat.partition_keys.is_empty());
    assert_eq!(flat.location, file_uri(&fx.data.join("flat")));
    assert!(ms.partitions(DB, "flat", None).await.expect("no partitions").is_empty());

    let e = ms.table(DB, "no_such_table").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(e.to_string().contains(&format!("`{DB}.no_such_table`")), "{e}");
    let e = ms.table("no_such_db", "events").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(e.to_string().contains("database `no_such_db`"), "{e}");

    let e = ms.partitions(DB, "no_such_table", Some(r#"dt = "a""#)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(e.to_string().contains(&format!("`{DB}.no_such_table`")), "{e}");

    // The connection still works after the errors.
    assert_eq!(ms.table(DB, "flat").await.expect("again").name, "flat");
}

#[tokio::test]
async fn hms_unreachable_is_an_infra_error_naming_the_uri() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let uri = format!("thrift://127.0.0.1:{port}");
    let t0 = Instant::now();
    let e = Metastore::connect(&uri, Duration::from_secs(5)).await.unwrap_err();
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert_eq!(e.kind(), ErrorKind::Infra, "{e}");
    assert!(e.to_string().contains(&uri), "{e}");

    let e = Metastore::connect("hms.example:9083", TIMEOUT).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
}

#[tokio::test]
async fn hms_silent_server_times_out() {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = format!("thrift://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let mut ms = Metastore::connect(&uri, Duration::from_secs(1)).await.expect("connect");
    let t0 = Instant::now();
    let e = ms.table(DB, "events").await.unwrap_err();
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(5), "{took:?}");
    assert_eq!(e.kind(), ErrorKind::Infra, "{e}");
    assert!(e.to_string().contains(&uri) && e.to_string().contains("no answer"), "{e}");
    let e = ms.partitions(DB, "events", None).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Infra, "{e}");
    server.abort();
}
