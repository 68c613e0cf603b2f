//! Sources on real servers: S3 (SeaweedFS), HDFS (MiniDFS) and Hive
//! Metastore tables, plus partition pruning and input checks. The fidelity
//! check is the same as for local files: the simulator stores exactly the
//! oracle's values.
//!
//! The servers come from `scripts/servers/up.sh` (`scripts/test.sh` starts
//! them): `STARLOAD_TEST_S3_ENDPOINT`, `STARLOAD_TEST_HDFS`,
//! `STARLOAD_TEST_HMS`. Without them a test prints why and passes, unless
//! `STARLOAD_REQUIRE_SERVERS=1`, which makes it fail.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use object_store::path::Path as OPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use starload::config::JobFile;

use crate::support::*;

/// Uploads every file under `dir` (hidden and junk files included).
async fn upload(store: &dyn ObjectStore, prefix: &str, dir: &Path) {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let rel = p.strip_prefix(dir).unwrap().to_string_lossy().replace('\\', "/");
            let key = OPath::parse(format!("{prefix}/{rel}")).unwrap();
            store.put(&key, PutPayload::from(std::fs::read(&p).unwrap())).await.unwrap();
        }
    }
}

fn s3_options(endpoint: &str, key: &str, secret: &str) -> std::collections::BTreeMap<String, String> {
    [
        ("endpoint", endpoint),
        ("access_key_id", key),
        ("secret_access_key", secret),
        ("region", "us-east-1"),
        ("allow_http", "true"),
        ("virtual_hosted_style_request", "false"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn s3_store(endpoint: &str, bucket: &str) -> Arc<dyn ObjectStore> {
    Arc::new(
        object_store::aws::AmazonS3Builder::new()
            .with_endpoint(endpoint)
            .with_bucket_name(bucket)
            .with_access_key_id(std::env::var("STARLOAD_TEST_S3_ACCESS_KEY").unwrap_or("testkey".into()))
            .with_secret_access_key(std::env::var("STARLOAD_TEST_S3_SECRET_KEY").unwrap_or("testsecret".into()))
            .with_region("us-east-1")
            .with_allow_http(true)
            .with_virtual_hosted_style_request(false)
            .build()
            .unwrap(),
    )
}

/// Creates a bucket (SeaweedFS creates it on a PUT of `/<bucket>`).
async fn make_bucket(endpoint: &str, bucket: &str) {
    // A signed PUT Bucket through object_store is not exposed; SeaweedFS
    // creates buckets implicitly on the first object write, so write and
    // delete a marker.
    let s = s3_store(endpoint, bucket);
    let marker = OPath::from("_marker");
    s.put(&marker, PutPayload::from_static(b"x")).await.unwrap();
    s.delete(&marker).await.unwrap();
}

async fn fidelity(sim: &starload::sim::Sim, f: JobFile, dataset: &Path, name: &str) {
    let r = load(f).await.unwrap_or_else(|e| panic!("load from {name} failed: {e}"));
    let exp = expected(dataset);
    assert_eq!(r.load.rows_loaded as usize, exp.len());
    assert_same(&exp, &stored(sim, "corpus", name), &|k, v| {
        if k == "c_struct" { struct_as_json(v) } else { v.clone() }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_source_loads_exactly_and_refuses_bad_credentials() {
    let Some(endpoint) = server("STARLOAD_TEST_S3_ENDPOINT") else { return };
    let bucket = format!("stl-{}", std::process::id());
    make_bucket(&endpoint, &bucket).await;
    let data = corpus().join("pyarrow");
    upload(s3_store(&endpoint, &bucket).as_ref(), "warehouse/events", &data).await;
    let sim = sim(vec![corpus_table(&data, "corpus", "s3t")]).await;
    let state = tempfile::tempdir().unwrap();
    let mut f = job_file(&sim, Path::new("/unused"), "corpus.s3t", state.path());
    f.source = Some(format!("s3://{bucket}/warehouse/events"));
    f.s3 = s3_options(&endpoint, "testkey", "testsecret");
    f.chunk_bytes = Some(starload::config::ByteSize(96 << 10));
    fidelity(&sim, f.clone(), &data, "s3t").await;
    // Row groups loaded in parts: each part's pages in ranged GETs.
    let paged = corpus().join("pyarrow_encodings");
    upload(s3_store(&endpoint, &bucket).as_ref(), "warehouse/paged", &paged).await;
    let sim_p = crate::support::sim(vec![corpus_table(&paged, "corpus", "s3p")]).await;
    let state_p = tempfile::tempdir().unwrap();
    let mut p = job_file(&sim_p, Path::new("/unused"), "corpus.s3p", state_p.path());
    p.source = Some(format!("s3://{bucket}/warehouse/paged"));
    p.s3 = f.s3.clone();
    p.chunk_bytes = Some(starload::config::ByteSize(3 << 10));
    fidelity(&sim_p, p, &paged, "s3p").await;
    // Wrong secret: a clear error naming the source, nothing sent.
    let sim2 = crate::support::sim(vec![corpus_table(&data, "corpus", "s3t")]).await;
    let mut g = f.clone();
    g.fe = Some(sim2.fe_url());
    g.mysql = Some(sim2.mysql_addr());
    g.s3 = s3_options(&endpoint, "testkey", "not-the-secret");
    let e = load(g).await.unwrap_err();
    let m = e.to_string();
    assert!(
        m.contains(&bucket) && (m.contains("403") || m.to_lowercase().contains("denied") || m.contains("credentials")),
        "{m}"
    );
    assert!(!m.contains("not-the-secret"), "{m}");
    // A re-run would fail the same way: the job's settings are wrong.
    assert_eq!(e.kind(), starload::ErrorKind::Config, "{m}");
    assert_eq!(sim2.be_requests(), 0);
    // A bucket that does not exist, and a prefix with nothing under it:
    // both the job's settings, not a passing failure.
    let mut h = f.clone();
    h.source = Some("s3://no-such-bucket-xyz/warehouse".into());
    let e = load(h).await.unwrap_err();
    assert!(e.to_string().contains("no-such-bucket-xyz"), "{e}");
    assert_eq!(e.kind(), starload::ErrorKind::Config, "{e}");
    let mut i = f.clone();
    i.source = Some(format!("s3://{bucket}/nothing/here"));
    let e = load(i).await.unwrap_err();
    assert!(e.to_string().contains("does not exist or is empty"), "{e}");
    // A key that is also the prefix of the dataset: an empty one is a
    // directory marker; a non-empty one is ambiguous unless the source ends
    // with `/`, which names the directory.
    let store = s3_store(&endpoint, &bucket);
    let one_file = std::fs::read(
        files_under(&data)
            .into_iter()
            .find(|p| p.extension().is_some_and(|x| x == "parquet") && std::fs::metadata(p).unwrap().len() > 0)
            .unwrap(),
    )
    .unwrap();
    store.put(&OPath::from("warehouse/events"), PutPayload::from_static(b"")).await.unwrap();
    let sim3 = crate::support::sim(vec![corpus_table(&data, "corpus", "s3t")]).await;
    let state3 = tempfile::tempdir().unwrap();
    let mut j = f.clone();
    j.fe = Some(sim3.fe_url());
    j.mysql = Some(sim3.mysql_addr());
    j.state_dir = Some(state3.path().to_path_buf());
    fidelity(&sim3, j.clone(), &data, "s3t").await;
    store.put(&OPath::from("warehouse/events"), PutPayload::from(one_file)).await.unwrap();
    let e = load(j.clone()).await.unwrap_err();
    assert!(e.to_string().contains("both an object and the prefix"), "{e}");
    assert_eq!(e.kind(), starload::ErrorKind::Config, "{e}");
    let sim4 = crate::support::sim(vec![corpus_table(&data, "corpus", "s3t")]).await;
    let state4 = tempfile::tempdir().unwrap();
    j.source = Some(format!("s3://{bucket}/warehouse/events/"));
    j.fe = Some(sim4.fe_url());
    j.mysql = Some(sim4.mysql_addr());
    j.state_dir = Some(state4.path().to_path_buf());
    fidelity(&sim4, j, &data, "s3t").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hdfs_source_loads_exactly() {
    let Some(nn) = server("STARLOAD_TEST_HDFS") else { return };
    let data = corpus().join("duckdb");
    let root = format!("/stl-{}/duckdb", std::process::id());
    let store = hdfs_native_object_store::HdfsObjectStoreBuilder::new().with_url(nn.clone()).build().unwrap();
    upload(&store, root.trim_start_matches('/'), &data).await;
    let sim = sim(vec![corpus_table(&data, "corpus", "hdfst")]).await;
    let state = tempfile::tempdir().unwrap();
    let mut f = job_file(&sim, Path::new("/unused"), "corpus.hdfst", state.path());
    f.source = Some(format!("{nn}{root}"));
    f.chunk_bytes = Some(starload::config::ByteSize(64 << 10));
    fidelity(&sim, f, &data, "hdfst").await;
    // Row groups loaded in parts: each part's pages in ranged reads.
    let paged = corpus().join("pyarrow_encodings");
    let root = format!("/stl-{}/paged", std::process::id());
    upload(&store, root.trim_start_matches('/'), &paged).await;
    let sim = crate::support::sim(vec![corpus_table(&paged, "corpus", "hdfsp")]).await;
    let state = tempfile::tempdir().unwrap();
    let mut f = job_file(&sim, Path::new("/unused"), "corpus.hdfsp", state.path());
    f.source = Some(format!("{nn}{root}"));
    f.chunk_bytes = Some(starload::config::ByteSize(3 << 10));
    fidelity(&sim, f, &paged, "hdfsp").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namenode_that_does_not_answer_fails_within_the_timeout() {
    // A socket that accepts connections and never replies.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let sim = sim(vec![corpus_table(&corpus().join("pyarrow"), "corpus", "t")]).await;
    let state = tempfile::tempdir().unwrap();
    let mut f = job_file(&sim, Path::new("/unused"), "corpus.t", state.path());
    f.source = Some(format!("hdfs://127.0.0.1:{port}/warehouse"));
    f.source_timeout_secs = Some(3);
    let t0 = Instant::now();
    let e = load(f).await.unwrap_err();
    assert!(t0.elapsed() < Duration::from_secs(30), "took {:?}", t0.elapsed());
    assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
    assert_eq!(e.kind(), starload::ErrorKind::Infra);
    drop(silent);
}

fn populate(uri: &str, spec: &serde_json::Value) {
    let out = std::process::Command::new(python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/servers/hms_populate.py"))
        .args(["--uri", uri, "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(spec.to_string().as_bytes())?;
            c.wait_with_output()
        })
        .expect("run hms_populate.py");
    assert!(out.status.success(), "hms_populate.py failed: {}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hive_table_partitions_anywhere_and_pruned_in_the_metastore() {
    let Some(uri) = server("STARLOAD_TEST_HMS") else { return };
    let data = corpus().join("pyarrow");
    // The table lives in a copy of the corpus; one partition is moved
    // outside the table directory.
    let root = tempfile::tempdir().unwrap();
    let table_dir = root.path().join("events");
    copy_dir(&data, &table_dir);
    let outside = root.path().join("elsewhere/p");
    std::fs::create_dir_all(outside.parent().unwrap()).unwrap();
    std::fs::rename(table_dir.join("dt=2024-03-01/region=eu"), &outside).unwrap();
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(data.join("_manifest.json")).unwrap()).unwrap();
    let hive_type = |sr: &str| -> String {
        // Hive column types for the metastore (the loader reads the files'
        // own schema; these are for the catalog).
        let t = sr.split_whitespace().next().unwrap_or("string").to_ascii_lowercase();
        if t.starts_with("decimal") || t.starts_with("varchar") {
            t
        } else {
            match t.as_str() {
                "largeint" => "string".into(),
                "datetime" => "timestamp".into(),
                "varbinary" => "binary".into(),
                "json" => "string".into(),
                _ if t.starts_with("array") || t.starts_with("map") => "string".into(),
                other => other.into(),
            }
        }
    };
    let columns: Vec<serde_json::Value> = m["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| serde_json::json!({"name": c["name"], "type": hive_type(c["starrocks_type"].as_str().unwrap())}))
        .collect();
    let mut partitions = Vec::new();
    for dt in ["2024-02-28", "2024-02-29", "2024-03-01"] {
        for region in ["eu", "us", "ap south"] {
            if !table_dir.join(format!("dt={dt}")).exists() {
                continue;
            }
            let dir = table_dir.join(format!("dt={dt}")).join(format!("region={}", region.replace(' ', "%20")));
            let location = if dt == "2024-03-01" && region == "eu" { outside.clone() } else { dir.clone() };
            if location.exists() {
                partitions.push(
                    serde_json::json!({"values": [dt, region], "location": format!("file://{}", location.display())}),
                );
            }
        }
    }
    let db = format!("stl_{}", std::process::id());
    populate(
        &uri,
        &serde_json::json!({
            "db": db, "table": "events", "columns": columns,
            "partition_keys": [{"name": "dt", "type": "string"}, {"name": "region", "type": "string"}],
            "location": format!("file://{}", table_dir.display()), "format": "parquet", "partitions": partitions
        }),
    );
    let sim = sim(vec![corpus_table(&data, "corpus", "hive")]).await;
    let state = tempfile::tempdir().unwrap();
    let mut f = job_file(&sim, Path::new("/unused"), "corpus.hive", state.path());
    f.source = None;
    f.hive_table = Some(format!("{db}.events"));
    f.metastore = Some(uri.clone());
    fidelity(&sim, f.clone(), &data, "hive").await;
    // A where clause on partition columns lists only the matching partitions.
    let sim2 = crate::support::sim(vec![corpus_table(&data, "corpus", "hive")]).await;
    let mut g = f.clone();
    g.fe = Some(sim2.fe_url());
    g.mysql = Some(sim2.mysql_addr());
    g.state_dir = Some(tempfile::tempdir().unwrap().keep());
    g.transform.filter = Some("dt = '2024-03-01' AND region IN ('eu', 'us')".into());
    let p = starload::job::prepare(settings(g.clone())).await.unwrap();
    let view = starload::job::plan_view(&p);
    assert!(!view.files.is_empty());
    for file in &view.files {
        assert_eq!(file.partition[0].as_deref(), Some("2024-03-01"), "{}", file.path);
        assert!(matches!(file.partition[1].as_deref(), Some("eu") | Some("us")), "{}", file.path);
    }
    assert!(
        view.files.iter().any(|f| f.path.contains("elsewhere")),
        "the partition outside the table directory is read"
    );
    load(g).await.unwrap();
    let want: std::collections::BTreeMap<_, _> = expected(&data)
        .into_iter()
        .filter(|(_, o)| o["dt"] == "2024-03-01" && (o["region"] == "eu" || o["region"] == "us"))
        .collect();
    assert_same(&want, &stored(&sim2, "corpus", "hive"), &|k, v| {
        if k == "c_struct" { struct_as_json(v) } else { v.clone() }
    });
    // A table that is not Parquet is refused.
    populate(
        &uri,
        &serde_json::json!({"db": db, "table": "texty", "columns": [{"name": "id", "type": "bigint"}],
            "location": format!("file://{}", root.path().join("texty").display()), "format": "textfile"}),
    );
    let mut h = f.clone();
    h.hive_table = Some(format!("{db}.texty"));
    let e = load(h).await.unwrap_err();
    assert!(e.to_string().contains("not stored as plain Parquet"), "{e}");
    // Two partitions sharing one location: refused (which values its rows
    // got, and whether they loaded once, depended on listing order).
    let shared = format!("file://{}", table_dir.join("dt=2024-02-29/region=us").display());
    populate(
        &uri,
        &serde_json::json!({
            "db": db, "table": "shared", "columns": columns,
            "partition_keys": [{"name": "dt", "type": "string"}, {"name": "region", "type": "string"}],
            "location": format!("file://{}", table_dir.display()), "format": "parquet",
            "partitions": [{"values": ["2024-02-29", "us"], "location": shared},
                           {"values": ["2024-02-29", "eu"], "location": shared}]
        }),
    );
    let mut h = f.clone();
    h.hive_table = Some(format!("{db}.shared"));
    let e = load(h).await.unwrap_err();
    assert_eq!(e.kind(), starload::ErrorKind::Config, "{e}");
    assert!(e.to_string().contains("two partitions"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn where_on_partition_columns_prunes_directories() {
    let data = corpus().join("pyarrow");
    let sim = sim(vec![corpus_table(&data, "corpus", "t")]).await;
    let state = tempfile::tempdir().unwrap();
    let mut f = job_file(&sim, &data, "corpus.t", state.path());
    f.transform.filter = Some("dt = '2024-02-29' AND region <> 'eu' AND c_i32 > 0".into());
    let p = starload::job::prepare(settings(f)).await.unwrap();
    let view = starload::job::plan_view(&p);
    assert!(!view.files.is_empty());
    for file in &view.files {
        assert!(file.path.contains("dt=2024-02-29") && !file.path.contains("region=eu"), "{}", file.path);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_value_that_is_not_its_type_is_named() {
    let data = corpus().join("pyarrow");
    let sim = sim(vec![corpus_table(&data, "corpus", "t")]).await;
    let state = tempfile::tempdir().unwrap();
    let mut f = job_file(&sim, &data, "corpus.t", state.path());
    f.partition_types.insert("dt".into(), "int".into());
    let e = load(f).await.unwrap_err();
    let m = e.to_string();
    assert!(m.contains("dt=2024-02-") && m.contains("Int32") && m.contains(".parquet"), "{m}");
    assert_eq!(sim.be_requests(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_changes_after_planning_is_not_loaded() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&corpus().join("pyarrow"), dir.path());
    let sim = sim(vec![corpus_table(&corpus().join("pyarrow"), "corpus", "t")]).await;
    let state = tempfile::tempdir().unwrap();
    let f = job_file(&sim, dir.path(), "corpus.t", state.path());
    let p = starload::job::prepare(settings(f)).await.unwrap();
    // Between plan and load, a file is rewritten.
    let victim = dir.path().join("dt=2024-02-29/region=us");
    let file = std::fs::read_dir(&victim)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "parquet"))
        .unwrap();
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() - 1]).unwrap();
    let e = starload::job::run(p, Arc::new(|_| {})).await.unwrap_err();
    assert!(e.to_string().contains("changed since the job was planned"), "{e}");
    assert!(e.to_string().contains("region=us"), "{e}");
}

/// A Hive table on HDFS whose partition directories carry Hive's escapes
/// (`10:00` is written `dt=10%3A00`): the metastore's locations are taken
/// literally, every partition's rows arrive with their own value, and a
/// source URL naming such a directory reads it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hive_partitions_on_hdfs_with_escaped_directory_names() {
    let (Some(uri), Some(nn)) = (server("STARLOAD_TEST_HMS"), server("STARLOAD_TEST_HDFS")) else { return };
    let store = hdfs_native_object_store::HdfsObjectStoreBuilder::new().with_url(nn.clone()).build().unwrap();
    let root = format!("stl-esc-{}", std::process::id());
    // Values as Hive spells their directories (FileUtils.escapePathName
    // escapes `:` `%` `{` and keeps `}` `~` and spaces).
    let parts = [("10:00", "dt=10%3A00"), ("50%", "dt=50%25"), ("a b}~", "dt=a b}~"), ("{x}", "dt=%7Bx}")];
    let local = tempfile::tempdir().unwrap();
    let mut partitions = Vec::new();
    for (i, (value, dir)) in parts.iter().enumerate() {
        let ids: Vec<i64> = (0..3).map(|j| (i * 10 + j) as i64).collect();
        let batch = arrow::record_batch::RecordBatch::try_from_iter([(
            "id",
            Arc::new(arrow::array::Int64Array::from(ids)) as arrow::array::ArrayRef,
        )])
        .unwrap();
        let file = local.path().join(format!("p{i}.parquet"));
        write_parquet(&file, &batch);
        let key = OPath::parse(format!("{root}/t/{dir}/part-0.parquet")).unwrap();
        store.put(&key, PutPayload::from(std::fs::read(&file).unwrap())).await.unwrap();
        partitions.push(serde_json::json!({"values": [value], "location": format!("{nn}/{root}/t/{dir}")}));
    }
    let db = format!("stl_esc_{}", std::process::id());
    populate(
        &uri,
        &serde_json::json!({
            "db": db, "table": "t", "columns": [{"name": "id", "type": "bigint"}],
            "partition_keys": [{"name": "dt", "type": "string"}],
            "location": format!("{nn}/{root}/t"), "format": "parquet", "partitions": partitions
        }),
    );
    let table = dup_table("d", "t", "id", vec![col("id", "BIGINT"), col("dt", "VARCHAR(20)")]);
    let want: std::collections::BTreeMap<i64, String> =
        (0..parts.len()).flat_map(|i| (0..3).map(move |j| ((i * 10 + j) as i64, parts[i].0.to_string()))).collect();
    let got = |sim: &starload::sim::Sim| -> std::collections::BTreeMap<i64, String> {
        sim.rows("d", "t")
            .iter()
            .map(|r| {
                let c: Vec<serde_json::Value> = r.iter().map(|v| v.canonical()).collect();
                (c[0].as_str().unwrap().parse().unwrap(), c[1].as_str().unwrap().to_string())
            })
            .collect()
    };
    let sim = sim(vec![table.clone()]).await;
    let state = tempfile::tempdir().unwrap();
    let mut f = job_file(&sim, Path::new("/unused"), "d.t", state.path());
    f.source = None;
    f.hive_table = Some(format!("{db}.t"));
    f.metastore = Some(uri.clone());
    let r = load(f).await.unwrap();
    assert_eq!(r.load.rows_loaded, 12);
    assert_eq!(got(&sim), want);
    // The same directories as a plain source, and one of them by name.
    let sim2 = crate::support::sim(vec![table.clone()]).await;
    let state2 = tempfile::tempdir().unwrap();
    let mut g = job_file(&sim2, Path::new("/unused"), "d.t", state2.path());
    g.source = Some(format!("{nn}/{root}/t"));
    load(g).await.unwrap();
    assert_eq!(got(&sim2), want);
    let sim3 = crate::support::sim(vec![dup_table("d", "t", "id", vec![col("id", "BIGINT")])]).await;
    let state3 = tempfile::tempdir().unwrap();
    let mut h = job_file(&sim3, Path::new("/unused"), "d.t", state3.path());
    h.source = Some(format!("{nn}/{root}/t/dt=10%3A00"));
    let r = load(h).await.unwrap();
    assert_eq!(r.load.rows_loaded, 3);
}

/// A Hive table's columns are the metastore's: files written before
/// `ADD COLUMNS` lack the new column (NULL in their rows, as Hive reads
/// them), and files written before `REPLACE COLUMNS` dropped one still hold
/// it (not read: Hive no longer returns it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hive_table_columns_added_or_dropped_later_read_as_hive_reads_them() {
    use arrow::array::{ArrayRef, Int64Array, StringArray};
    let Some(uri) = server("STARLOAD_TEST_HMS") else { return };
    let root = tempfile::tempdir().unwrap();
    let table_dir = root.path().join("evolved");
    let file = |dir: &str, cols: Vec<(&str, ArrayRef)>| {
        let batch = arrow::record_batch::RecordBatch::try_from_iter(cols).unwrap();
        write_parquet(&table_dir.join(dir).join("part-0.parquet"), &batch);
    };
    let strings = |v: Vec<Option<&str>>| -> ArrayRef { Arc::new(StringArray::from(v)) };
    // Before: `id`, `secret` (since dropped). After: `id`, `b` (added).
    file(
        "dt=old",
        vec![("id", Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef), ("secret", strings(vec![Some("pw"), None]))],
    );
    file(
        "dt=new",
        vec![("id", Arc::new(Int64Array::from(vec![3, 4])) as ArrayRef), ("b", strings(vec![Some("x"), None]))],
    );
    let db = format!("stl_evo_{}", std::process::id());
    let partitions: Vec<serde_json::Value> = ["old", "new"]
        .iter()
        .map(|v| serde_json::json!({"values": [v], "location": format!("file://{}/dt={v}", table_dir.display())}))
        .collect();
    populate(
        &uri,
        &serde_json::json!({
            "db": db, "table": "evolved",
            "columns": [{"name": "id", "type": "bigint"}, {"name": "b", "type": "string"}],
            "partition_keys": [{"name": "dt", "type": "string"}],
            "location": format!("file://{}", table_dir.display()), "format": "parquet", "partitions": partitions
        }),
    );
    let table = || {
        dup_table(
            "d",
            "t",
            "id",
            vec![col("id", "BIGINT"), col("b", "VARCHAR(10)"), col("secret", "VARCHAR(10)"), col("dt", "VARCHAR(10)")],
        )
    };
    // (rows loaded, what the simulator stored) of the Hive table's load.
    let run = |filter: Option<&'static str>| {
        let (table, hive_table, uri) = (table(), format!("{db}.evolved"), uri.clone());
        async move {
            let sim = crate::support::sim(vec![table]).await;
            let state = tempfile::tempdir().unwrap();
            let mut f = job_file(&sim, Path::new("/unused"), "d.t", state.path());
            f.source = None;
            f.hive_table = Some(hive_table);
            f.metastore = Some(uri);
            f.transform.filter = filter.map(Into::into);
            let r = load(f).await.unwrap_or_else(|e| panic!("{filter:?}: {e}"));
            (r.load.rows_loaded, stored(&sim, "d", "t"))
        }
    };
    let (rows, got) = run(None).await;
    assert_eq!(rows, 4);
    let row = |id: &str| (got[id]["b"].clone(), got[id]["secret"].clone(), got[id]["dt"].clone());
    use serde_json::json;
    assert_eq!(row("1"), (json!(null), json!(null), json!("old")));
    assert_eq!(row("2"), (json!(null), json!(null), json!("old")));
    assert_eq!(row("3"), (json!("x"), json!(null), json!("new")));
    assert_eq!(row("4"), (json!(null), json!(null), json!("new")));
    // A where clause on the added column sees the NULLs (no file or row
    // group pruned on statistics the older files lack).
    for (filter, want) in
        [("b IS NULL", vec!["1", "2", "4"]), ("b = 'x'", vec!["3"]), ("b IS NOT NULL OR id < 2", vec!["1", "3"])]
    {
        let (_, got) = run(Some(filter)).await;
        assert_eq!(got.keys().collect::<Vec<_>>(), want, "{filter}");
    }
    // The same directories without a metastore are files of two schemas.
    let sim2 = crate::support::sim(vec![table()]).await;
    let state2 = tempfile::tempdir().unwrap();
    let mut g = job_file(&sim2, &table_dir, "d.t", state2.path());
    g.source = Some(table_dir.display().to_string());
    let e = load(g).await.unwrap_err().to_string();
    assert!(e.contains("one schema"), "{e}");
}
