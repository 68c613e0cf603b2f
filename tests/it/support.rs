//! Test harness: the simulator, the corpus, jobs, and comparisons of what
//! the simulator stored against an independent oracle.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use serde_json::{Value as Json, json};
use starload::config::JobFile;
use starload::job::{self, Report, Settings};
use starload::sim::tables::{ColumnSpec, PartitionSpec, TableSpec, validate};
use starload::sim::{Sim, SimConfig};

pub const USER: &str = "loader";
pub const PASSWORD: &str = "s3cr3t-Pa55word!";

/// A simulator with the given tables and the test user.
pub async fn sim(tables: Vec<TableSpec>) -> Sim {
    sim_with(tables, |_| {}).await
}

/// A simulator, with a hook to adjust its config.
/// A MySQL connection to the simulator's FE, as the test user.
pub async fn meta(sim: &Sim) -> starload::meta::Meta {
    starload::meta::Meta::connect(&sim.mysql_addr(), USER, &starload::client::Secret::new(PASSWORD)).await.unwrap()
}

/// Every file under `p` (none when it does not exist).
pub fn files_under(p: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let path = e.path();
            if path.is_dir() {
                out.extend(files_under(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// The journal of the one job whose state directory is `state`.
pub fn job_journal(state: &Path) -> PathBuf {
    files_under(state).into_iter().find(|p| p.extension().is_some_and(|e| e == "journal")).expect("a job journal")
}

/// A journal's text as a kill before any reply leaves it: its loads sent
/// (`started`), none known committed or done.
pub fn sent_only(journal: &str) -> String {
    let cut: String = journal
        .lines()
        .filter(|l| !l.contains("\"kind\":\"committed\"") && !l.contains("\"kind\":\"done\""))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(cut.contains("\"kind\":\"started\""), "{journal}");
    cut
}

pub async fn sim_with(tables: Vec<TableSpec>, f: impl FnOnce(&mut SimConfig)) -> Sim {
    let mut cfg = SimConfig {
        tables: tables.into_iter().map(|t| validate(t).expect("valid table")).collect(),
        users: vec![(USER.into(), PASSWORD.into())],
        ..Default::default()
    };
    f(&mut cfg);
    Sim::start(cfg).await.expect("simulator starts")
}

/// Writes one record batch as a Parquet file (creating its directory).
pub fn write_parquet(path: &Path, batch: &arrow::record_batch::RecordBatch) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let f = std::fs::File::create(path).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(f, batch.schema(), None).unwrap();
    w.write(batch).unwrap();
    w.close().unwrap();
}

/// A file of `testdata/` (files from other writers, kept as they wrote them).
pub fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata").join(name)
}

/// A temporary source directory holding `testdata/<name>` as `file_name`.
pub fn testdata_dir(name: &str, file_name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(testdata(name), dir.path().join(file_name)).unwrap();
    dir
}

/// A column spec.
pub fn col(name: &str, ty: &str) -> ColumnSpec {
    ColumnSpec { name: name.into(), ty: ty.into(), nullable: true, default: None, agg: None }
}

/// A NOT NULL column spec.
pub fn col_nn(name: &str, ty: &str) -> ColumnSpec {
    ColumnSpec { nullable: false, ..col(name, ty) }
}

/// A duplicate-key table.
pub fn dup_table(db: &str, name: &str, key: &str, columns: Vec<ColumnSpec>) -> TableSpec {
    TableSpec {
        db: db.into(),
        name: name.into(),
        keys: "DUP_KEYS".into(),
        key_columns: vec![key.into()],
        partition_by: None,
        partitions: vec![],
        columns,
    }
}

/// A job file pointed at a simulator.
pub fn job_file(sim: &Sim, source: &Path, table: &str, state: &Path) -> JobFile {
    JobFile {
        source: Some(source.display().to_string()),
        table: Some(table.into()),
        fe: Some(sim.fe_url()),
        mysql: Some(sim.mysql_addr()),
        user: Some(USER.into()),
        state_dir: Some(state.to_path_buf()),
        ..JobFile::default()
    }
}

/// Resolves settings with the test password.
pub fn settings(f: JobFile) -> Settings {
    let mut s = Settings::resolve(f).expect("settings resolve");
    s.password = starload::client::Secret::new(PASSWORD);
    s
}

/// Plans and loads.
pub async fn load(f: JobFile) -> starload::Result<Report> {
    let p = job::prepare(settings(f)).await?;
    job::run(p, Arc::new(|_| {})).await
}

/// The corpus directory: `STARLOAD_CORPUS`, or generated once under the
/// target directory with `scripts/gen_corpus.py` (needs pyarrow and duckdb;
/// `.ci/run` installs them).
/// The Python holding the test tools: `$STARLOAD_PYTHON`, else `python3`.
pub fn python() -> String {
    std::env::var("STARLOAD_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Runs a pyarrow `script` with `dir` as its argument (`sys.argv[1]`).
pub fn run_pyarrow(script: &str, dir: &Path) {
    run_pyarrow_args(script, dir, &[]);
}

/// [`run_pyarrow`] with more arguments after `dir`.
pub fn run_pyarrow_args(script: &str, dir: &Path, args: &[&str]) {
    let out = std::process::Command::new(python()).arg("-c").arg(script).arg(dir).args(args).output().expect("python");
    assert!(out.status.success(), "pyarrow: {}", String::from_utf8_lossy(&out.stderr));
}

pub fn corpus() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Ok(d) = std::env::var("STARLOAD_CORPUS") {
            return PathBuf::from(d);
        }
        let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("corpus");
        if !d.join("duckdb/_manifest.json").exists() {
            let st = std::process::Command::new(python())
                .args(["scripts/gen_corpus.py", "--out"])
                .arg(&d)
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status()
                .expect("run scripts/gen_corpus.py");
            assert!(
                st.success(),
                "scripts/gen_corpus.py failed: install scripts/requirements-test.txt (pyarrow, duckdb) or set STARLOAD_CORPUS"
            );
        }
        d
    })
    .clone()
}

/// The simulator table for a corpus dataset, from its manifest.
pub fn corpus_table(dataset: &Path, db: &str, name: &str) -> TableSpec {
    let m: Json =
        serde_json::from_slice(&std::fs::read(dataset.join("_manifest.json")).expect("manifest")).expect("json");
    let mut columns = Vec::new();
    for c in m["columns"].as_array().expect("columns") {
        let ty = c["starrocks_type"].as_str().expect("type");
        let (ty, nn) = match ty.strip_suffix(" NOT NULL") {
            Some(t) => (t, true),
            None => (ty, false),
        };
        let mut spec = col(c["name"].as_str().expect("name"), ty);
        spec.nullable = !nn;
        columns.push(spec);
    }
    for p in m["partition_columns"].as_array().expect("partition columns") {
        columns.push(col(p["name"].as_str().expect("name"), p["starrocks_type"].as_str().expect("type")));
    }
    let mut t = dup_table(db, name, "id", columns);
    t.partition_by = Some("dt".into());
    t.partitions = vec![PartitionSpec {
        name: "p2024".into(),
        values: vec![],
        range: Some(("2024-01-01".into(), "2025-01-01".into())),
    }];
    t
}

/// The oracle rows of a corpus dataset, by id.
pub fn expected(dataset: &Path) -> BTreeMap<String, serde_json::Map<String, Json>> {
    let text = std::fs::read_to_string(dataset.join("_expected.jsonl")).expect("oracle");
    text.lines()
        .map(|l| {
            let v: Json = serde_json::from_str(l).expect("oracle line");
            let o = v.as_object().expect("object").clone();
            (o["id"].as_str().expect("id").to_string(), o)
        })
        .collect()
}

/// What the simulator stored, canonical, by id.
pub fn stored(sim: &Sim, db: &str, table: &str) -> BTreeMap<String, serde_json::Map<String, Json>> {
    let cols = sim.columns(db, table);
    let mut out = BTreeMap::new();
    for row in sim.rows(db, table) {
        let o: serde_json::Map<String, Json> = cols.iter().cloned().zip(row.iter().map(|v| v.canonical())).collect();
        let id = o["id"].as_str().expect("id").to_string();
        assert!(out.insert(id.clone(), o).is_none(), "row id {id} stored twice");
    }
    out
}

/// Converts an oracle struct (canonical fields) to the JSON document a JSON
/// column stores: integers as numbers, strings as strings.
pub fn struct_as_json(v: &Json) -> Json {
    match v {
        Json::Null => Json::Null,
        Json::Object(o) => {
            let doc: serde_json::Map<String, Json> = o
                .iter()
                .map(|(k, v)| {
                    let j = match v {
                        Json::String(s) if k == "a" => {
                            s.parse::<i64>().map(Json::from).unwrap_or(Json::String(s.clone()))
                        }
                        other => other.clone(),
                    };
                    (k.clone(), j)
                })
                .collect();
            json!({"json": Json::Object(doc)})
        }
        other => other.clone(),
    }
}

/// Asserts that every expected row was stored exactly once with exactly the
/// expected values. `adjust` rewrites expected values per column.
pub fn assert_same(
    expected: &BTreeMap<String, serde_json::Map<String, Json>>,
    stored: &BTreeMap<String, serde_json::Map<String, Json>>,
    adjust: &dyn Fn(&str, &Json) -> Json,
) {
    let missing: Vec<&String> = expected.keys().filter(|k| !stored.contains_key(*k)).take(10).collect();
    let extra: Vec<&String> = stored.keys().filter(|k| !expected.contains_key(*k)).take(10).collect();
    assert!(missing.is_empty() && extra.is_empty(), "missing ids {missing:?}, unexpected ids {extra:?}");
    let mut diffs = Vec::new();
    for (id, exp) in expected {
        let got = &stored[id];
        for (k, v) in exp {
            let want = adjust(k, v);
            let have = got.get(k).unwrap_or_else(|| panic!("stored row lacks column {k}"));
            if &want != have {
                diffs.push(format!("id {id} column {k}: expected {want}, stored {have}"));
            }
        }
    }
    assert!(
        diffs.is_empty(),
        "{} differences, first ones:\n{}",
        diffs.len(),
        diffs.iter().take(15).cloned().collect::<Vec<_>>().join("\n")
    );
}

/// Copies a directory tree.
#[allow(dead_code)]
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        let t = to.join(e.file_name());
        if p.is_dir() {
            copy_dir(&p, &t);
        } else {
            std::fs::copy(&p, &t).unwrap();
        }
    }
}

/// A test server's address from the environment (scripts/servers/up.sh);
/// `None` skips the test, unless STARLOAD_REQUIRE_SERVERS=1 makes it fail.
pub fn server(var: &str) -> Option<String> {
    match std::env::var(var).ok().filter(|v| !v.is_empty()) {
        Some(v) => Some(v),
        None => {
            assert!(
                std::env::var("STARLOAD_REQUIRE_SERVERS").as_deref() != Ok("1"),
                "{var} is not set but STARLOAD_REQUIRE_SERVERS=1 (run scripts/servers/up.sh)"
            );
            eprintln!("skipping: {var} is not set (scripts/servers/up.sh starts the test servers)");
            None
        }
    }
}
