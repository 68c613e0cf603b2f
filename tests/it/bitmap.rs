//! BITMAP columns end to end: global dictionaries used (and extended) by
//! loads, ids stable across loads months apart, pre-aggregation, integer
//! sources, export, shards, and the refusals.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampNanosecondArray, UInt64Array};
use arrow::datatypes::{Field, Schema};
use serde_json::Value as Json;
use starload::sim::tables::{ColumnSpec, TableSpec};

use crate::support::*;

fn write_parquet(path: &Path, columns: Vec<(&str, ArrayRef)>) {
    let fields: Vec<Field> = columns.iter().map(|(n, a)| Field::new(*n, a.data_type().clone(), true)).collect();
    let batch =
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns.into_iter().map(|(_, a)| a).collect()).unwrap();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let props = parquet::file::properties::WriterProperties::builder().set_max_row_group_row_count(Some(1000)).build();
    let mut w = parquet::arrow::ArrowWriter::try_new(std::fs::File::create(path).unwrap(), batch.schema(), Some(props))
        .unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

/// `k`, `uid` (strings).
fn events(path: &Path, rows: &[(&str, Option<&str>)]) {
    write_parquet(
        path,
        vec![
            ("k", Arc::new(StringArray::from(rows.iter().map(|r| Some(r.0)).collect::<Vec<_>>())) as ArrayRef),
            ("uid", Arc::new(StringArray::from(rows.iter().map(|r| r.1).collect::<Vec<_>>()))),
        ],
    );
}

fn agg_table(name: &str, nullable: bool) -> TableSpec {
    TableSpec {
        db: "bm".into(),
        name: name.into(),
        keys: "AGG_KEYS".into(),
        key_columns: vec!["k".into()],
        partition_by: None,
        partitions: vec![],
        columns: vec![
            col_nn("k", "VARCHAR(64)"),
            ColumnSpec {
                name: "u".into(),
                ty: "BITMAP".into(),
                nullable,
                default: None,
                agg: Some("BITMAP_UNION".into()),
            },
        ],
    }
}

/// What the simulator stored: key → the bitmap's members (None: NULL).
fn bitmaps(sim: &starload::sim::Sim, table: &str) -> BTreeMap<String, Option<BTreeSet<u64>>> {
    sim.rows("bm", table)
        .iter()
        .map(|row| {
            let k = row[0].canonical().as_str().unwrap().to_string();
            let v = match row[1].canonical() {
                Json::Null => None,
                Json::Object(o) => {
                    Some(o["bitmap"].as_array().unwrap().iter().map(|x| x.as_str().unwrap().parse().unwrap()).collect())
                }
                other => panic!("not a bitmap: {other}"),
            };
            (k, v)
        })
        .collect()
}

/// The oracle: per key, the ids of its values under `ids`.
fn expect(
    rows: &[(&str, Option<&str>)],
    ids: &BTreeMap<Vec<u8>, u64>,
    into: &mut BTreeMap<String, Option<BTreeSet<u64>>>,
) {
    for (k, v) in rows {
        let e = into.entry(k.to_string()).or_insert(None);
        if let Some(v) = v {
            e.get_or_insert_with(BTreeSet::new).insert(ids[v.as_bytes()]);
        }
    }
}

/// Assigns ids the way the dictionary must: next ids, new values in
/// byte order.
fn assign(ids: &mut BTreeMap<Vec<u8>, u64>, rows: &[(&str, Option<&str>)]) {
    let new: BTreeSet<Vec<u8>> =
        rows.iter().filter_map(|r| r.1).map(|v| v.as_bytes().to_vec()).filter(|v| !ids.contains_key(v)).collect();
    let first = ids.len() as u64 + 1;
    for (id, v) in (first..).zip(new) {
        ids.insert(v, id);
    }
}

fn dict_job(sim: &starload::sim::Sim, src: &Path, table: &str, state: &Path) -> starload::config::JobFile {
    let mut f = job_file(sim, src, table, state);
    f.bitmap_dict.insert("u".into(), "uid".into());
    f
}

async fn dictionary(state: &Path, table: &str) -> Vec<(u64, Vec<u8>)> {
    let store =
        starload::dict::DictStore::open(&state.join("dicts").display().to_string(), &Default::default()).unwrap();
    let key = starload::dict::DictKey::new(table, "u").unwrap();
    let v = store.current(&key).await.unwrap().expect("a version");
    let mut out = Vec::new();
    for b in store.export(&key, &v).await.unwrap() {
        let ids = b.column(0).as_any().downcast_ref::<UInt64Array>().unwrap();
        let vals = b.column(1).as_any().downcast_ref::<StringArray>().unwrap();
        for i in 0..b.num_rows() {
            out.push((ids.value(i), vals.value(i).as_bytes().to_vec()));
        }
    }
    out
}

const LOAD1: &[(&str, Option<&str>)] = &[
    ("a", Some("alice")),
    ("a", Some("bob")),
    ("b", Some("")),
    ("b", Some("alice")),
    ("c", Some("ü-unicode")),
    ("c", Some("x\u{1}y\nz")),
    ("c", None),
    ("n", None),
    ("a", Some("alice")),
];

const LOAD2: &[(&str, Option<&str>)] = &[
    ("a", Some("carol")),
    ("d", Some("bob")),
    ("d", Some("aaron")),
    ("b", Some("")),
    ("e\u{1}", Some("zed")),
    ("\\N", Some("bob")),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dictionary_ids_are_exact_and_stable_across_loads_months_apart() {
    let sim = sim(vec![agg_table("t", true)]).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    events(&dir.path().join("jan/part-0.parquet"), LOAD1);
    let r1 = load(dict_job(&sim, &dir.path().join("jan"), "bm.t", &state)).await.unwrap();
    let mut ids = BTreeMap::new();
    assign(&mut ids, LOAD1);
    let mut want = BTreeMap::new();
    expect(LOAD1, &ids, &mut want);
    assert_eq!(bitmaps(&sim, "t"), want);
    // ids 1.. in byte order of the values; NULL is no value; "" is one.
    assert_eq!(dictionary(&state, "bm.t").await, ids.iter().map(|(v, i)| (*i, v.clone())).collect::<Vec<_>>());
    assert_eq!(ids[b"".as_slice()], 1);
    let d = &r1.dictionaries[0];
    assert_eq!((d.version, d.values, d.new_values, d.built), (1, 5, 5, true), "{d:?}");

    // Months later: old values keep their ids, new ones get the next ids in
    // sorted order.
    events(&dir.path().join("jun/part-0.parquet"), LOAD2);
    let r2 = load(dict_job(&sim, &dir.path().join("jun"), "bm.t", &state)).await.unwrap();
    let before = ids.clone();
    assign(&mut ids, LOAD2);
    for (v, id) in &before {
        assert_eq!(ids[v], *id);
    }
    assert_eq!(ids[b"aaron".as_slice()], 6);
    assert_eq!(ids[b"carol".as_slice()], 7);
    expect(LOAD2, &ids, &mut want);
    assert_eq!(bitmaps(&sim, "t"), want);
    assert_eq!(dictionary(&state, "bm.t").await.len(), 8);
    let d = &r2.dictionaries[0];
    assert_eq!((d.version, d.new_values, d.max_id), (2, 3, 8), "{d:?}");

    // Loading June again sends nothing and publishes no version.
    let r3 = load(dict_job(&sim, &dir.path().join("jun"), "bm.t", &state)).await.unwrap();
    assert_eq!(r3.load.chunks_loaded, 0);
    assert_eq!(bitmaps(&sim, "t"), want);
    assert_eq!(r3.dictionaries[0].version, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preaggregated_rows_store_the_same_bitmaps_with_fewer_rows() {
    let sim = sim(vec![agg_table("plain", false), agg_table("pre", false)]).await;
    let dir = tempfile::tempdir().unwrap();
    let rows: Vec<(String, Option<String>)> =
        (0..6000u64).map(|i| (format!("key-{}\u{2}", i % 37), Some(format!("user-{}", (i * 7919) % 1500)))).collect();
    let view: Vec<(&str, Option<&str>)> = rows.iter().map(|(k, v)| (k.as_str(), v.as_deref())).collect();
    events(&dir.path().join("src/a.parquet"), &view[..3000]);
    events(&dir.path().join("src/b.parquet"), &view[3000..]);
    let mut plain = dict_job(&sim, &dir.path().join("src"), "bm.plain", &dir.path().join("s1"));
    plain.chunk_bytes = Some(starload::config::ByteSize(16 << 10));
    let mut pre = dict_job(&sim, &dir.path().join("src"), "bm.pre", &dir.path().join("s2"));
    pre.chunk_bytes = Some(starload::config::ByteSize(16 << 10));
    pre.bitmap_preaggregate = Some(true);
    let rp = load(plain).await.unwrap();
    let ra = load(pre).await.unwrap();
    assert!(ra.load.chunks_loaded > 1, "several chunks: {}", ra.load.chunks_loaded);
    let mut ids = BTreeMap::new();
    assign(&mut ids, &view);
    let mut want = BTreeMap::new();
    expect(&view, &ids, &mut want);
    assert_eq!(bitmaps(&sim, "plain"), want);
    assert_eq!(bitmaps(&sim, "pre"), want);
    assert_eq!(rp.load.rows_loaded, 6000);
    // At most one row per key and chunk.
    assert!(ra.load.rows_loaded <= 37 * ra.load.chunks_loaded as u64, "{}", ra.load.rows_loaded);
    assert!(ra.load.bytes_sent < rp.load.bytes_sent, "{} vs {}", ra.load.bytes_sent, rp.load.bytes_sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preaggregated_bitmap_past_a_csv_field_goes_as_json() {
    // 60,000 ids in as many 32-bit buckets serialize to ~1.4 MB of base64:
    // over the 1 MiB a CSV field of the expression's VARCHAR source can
    // hold. That row goes in the JSON body; the small one stays in CSV.
    let sim = sim(vec![agg_table("big", false)]).await;
    let dir = tempfile::tempdir().unwrap();
    let n = 60_000u64;
    let k: ArrayRef = Arc::new(StringArray::from_iter_values((0..=n).map(|i| if i < n { "a" } else { "b" })));
    let u: ArrayRef = Arc::new(UInt64Array::from_iter_values((0..=n).map(|i| (i << 32) | i)));
    write_parquet(&dir.path().join("src/x.parquet"), vec![("k", k), ("u", u)]);
    let mut f = job_file(&sim, &dir.path().join("src"), "bm.big", &dir.path().join("s"));
    f.bitmap_preaggregate = Some(true);
    let r = load(f).await.unwrap();
    assert_eq!(r.load.rows_loaded, 2);
    assert_eq!(r.load.chunks_json, 1, "{:?}", r.load);
    let got = bitmaps(&sim, "big");
    assert_eq!(got["a"], Some((0..n).map(|i| (i << 32) | i).collect::<BTreeSet<u64>>()));
    assert_eq!(got["b"], Some(BTreeSet::from([(n << 32) | n])));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integer_sources_load_directly_and_negative_values_fail_with_their_row() {
    let sim = sim(vec![agg_table("ints", true)]).await;
    let dir = tempfile::tempdir().unwrap();
    let k: ArrayRef = Arc::new(StringArray::from(vec!["a", "a", "b", "c"]));
    let big: ArrayRef = Arc::new(UInt64Array::from(vec![Some(0), Some(u64::MAX), Some(1 << 40), None]));
    write_parquet(&dir.path().join("u/x.parquet"), vec![("k", k.clone()), ("u", big)]);
    load(job_file(&sim, &dir.path().join("u"), "bm.ints", &dir.path().join("s"))).await.unwrap();
    let got = bitmaps(&sim, "ints");
    assert_eq!(got["a"], Some(BTreeSet::from([0, u64::MAX])));
    assert_eq!(got["b"], Some(BTreeSet::from([1 << 40])));
    assert_eq!(got["c"], None);

    let neg: ArrayRef = Arc::new(Int64Array::from(vec![1, 2, -5, 4]));
    write_parquet(&dir.path().join("n/x.parquet"), vec![("k", k), ("u", neg)]);
    let e = load(job_file(&sim, &dir.path().join("n"), "bm.ints", &dir.path().join("s"))).await.unwrap_err();
    let m = e.to_string();
    assert_eq!(e.kind(), starload::ErrorKind::Data, "{m}");
    assert!(m.contains("x.parquet") && m.contains("row 3") && m.contains("`u`") && m.contains("-5"), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_no_dictionary_can_key_fails_the_build_with_file_row_and_column() {
    // A dictionary keys timestamps by microsecond: file b's row 1234 has
    // nanoseconds. The build reads every file at once; the error still
    // names the file row (counting the rows the where clause drops).
    let sim = sim(vec![agg_table("t", true)]).await;
    let dir = tempfile::tempdir().unwrap();
    let n = 1500;
    for (file, bad) in [("a", None), ("b", Some(1233))] {
        let k: ArrayRef = Arc::new(StringArray::from_iter_values((0..n).map(|i| if i < 10 { "drop" } else { "k" })));
        let ts: ArrayRef = Arc::new(TimestampNanosecondArray::from_iter_values(
            (0..n).map(|i| i as i64 * 1_000_000_000 + if Some(i) == bad { 7 } else { 0 }),
        ));
        write_parquet(&dir.path().join(format!("src/{file}.parquet")), vec![("k", k), ("ts", ts)]);
    }
    let mut f = job_file(&sim, &dir.path().join("src"), "bm.t", &dir.path().join("s"));
    f.bitmap_dict.insert("u".into(), "ts".into());
    f.transform.filter = Some("k <> 'drop'".into());
    let e = load(f).await.unwrap_err();
    let m = e.to_string();
    assert_eq!(e.kind(), starload::ErrorKind::Data, "{m}");
    assert!(m.contains("b.parquet") && m.contains("row 1234") && m.contains("`u`"), "{m}");
    assert!(m.contains("sub-microsecond"), "{m}");
    assert!(bitmaps(&sim, "t").is_empty(), "nothing loaded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dictionary_expression_that_is_not_a_function_of_the_row_is_refused() {
    // The build and the load compute the expression separately: random(),
    // now() or a random() filter would give the load values the build never
    // saw. Refused before anything is read or built.
    let sim = sim(vec![agg_table("t", true)]).await;
    let dir = tempfile::tempdir().unwrap();
    events(&dir.path().join("src/e.parquet"), LOAD1);
    let cases = [
        ("concat(uid, CAST(random() AS VARCHAR))", None, "random()"),
        ("concat(uid, CAST(now() AS VARCHAR))", None, "now()"),
        ("upper(uid)", Some("random() < 2"), "random()"),
        ("uuid()", None, "uuid()"),
    ];
    for (i, (expr, filter, named)) in cases.into_iter().enumerate() {
        let state = dir.path().join(format!("s{i}"));
        let mut f = job_file(&sim, &dir.path().join("src"), "bm.t", &state);
        f.bitmap_dict.insert("u".into(), expr.into());
        f.transform.filter = filter.map(Into::into);
        let e = load(f).await.unwrap_err();
        let m = e.to_string();
        assert_eq!(e.kind(), starload::ErrorKind::Config, "{m}");
        assert!(m.contains(named) && m.contains("not a function of the row"), "{m}");
        assert!(!state.join("dicts/bm.t/u/versions").exists(), "no dictionary built: {m}");
    }
    assert!(bitmaps(&sim, "t").is_empty(), "nothing loaded");
    // A stable filter is the same in the build and the load of one run.
    let mut f = job_file(&sim, &dir.path().join("src"), "bm.t", &dir.path().join("ok"));
    f.bitmap_dict.insert("u".into(), "upper(uid)".into());
    f.transform.filter = Some("current_date() > DATE '2000-01-01'".into());
    load(f).await.unwrap();
    let d = dictionary(&dir.path().join("ok"), "bm.t").await;
    assert!(d.iter().any(|(_, v)| v == b"ALICE"), "{d:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn null_for_a_not_null_bitmap_fails_with_file_row_and_column() {
    let sim = sim(vec![agg_table("nn", false)]).await;
    let dir = tempfile::tempdir().unwrap();
    events(&dir.path().join("src/e.parquet"), &[("a", Some("x")), ("b", Some("y")), ("c", None)]);
    for pre in [false, true] {
        let mut f = dict_job(&sim, &dir.path().join("src"), "bm.nn", &dir.path().join(format!("s{pre}")));
        f.bitmap_preaggregate = Some(pre);
        let e = load(f).await.unwrap_err();
        let m = e.to_string();
        assert!(m.contains("e.parquet") && m.contains("row 3") && m.contains("column `u`"), "{m}");
    }
    assert!(bitmaps(&sim, "nn").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_read_dictionaries_and_never_build_them() {
    let sim = sim(vec![agg_table("sh", true)]).await;
    let dir = tempfile::tempdir().unwrap();
    let rows: Vec<(String, Option<String>)> =
        (0..3000u64).map(|i| (format!("k{}", i % 11), Some(format!("v{}", i % 700)))).collect();
    let view: Vec<(&str, Option<&str>)> = rows.iter().map(|(k, v)| (k.as_str(), v.as_deref())).collect();
    for (i, part) in view.chunks(1000).enumerate() {
        events(&dir.path().join(format!("src/p{i}.parquet")), part);
    }
    let state = dir.path().join("state");
    let job = |shard: &str| {
        let mut f = dict_job(&sim, &dir.path().join("src"), "bm.sh", &state);
        f.chunk_bytes = Some(starload::config::ByteSize(8 << 10));
        f.shard = Some(shard.into());
        f
    };
    let e = load(job("0/2")).await.unwrap_err();
    assert!(e.to_string().contains("dict build"), "{e}");
    assert!(bitmaps(&sim, "sh").is_empty());
    // Build once, then the shards.
    let mut f = job("0/2");
    f.shard = None;
    let p = starload::job::prepare(settings(f)).await.unwrap();
    let built = starload::dictjob::build(&p, &Default::default()).await.unwrap();
    assert_eq!(built[0].report.new_values, 700);
    for s in ["0/2", "1/2"] {
        let r = load(job(s)).await.unwrap();
        assert!(!r.dictionaries[0].built);
    }
    let mut ids = BTreeMap::new();
    assign(&mut ids, &view);
    let mut want = BTreeMap::new();
    expect(&view, &ids, &mut want);
    assert_eq!(bitmaps(&sim, "sh"), want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_loads_id_value_pairs_through_the_load_path() {
    let dict_pk = TableSpec {
        db: "bm".into(),
        name: "dict_u".into(),
        keys: "PRIMARY_KEYS".into(),
        key_columns: vec!["id".into()],
        partition_by: None,
        partitions: vec![],
        columns: vec![col_nn("id", "BIGINT"), col("value", "VARCHAR(256)")],
    };
    let dict_dup = dup_table("bm", "dict_dup", "id", vec![col_nn("id", "BIGINT"), col("value", "VARCHAR(256)")]);
    let sim = sim(vec![agg_table("t", true), dict_pk, dict_dup]).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    events(&dir.path().join("src/e.parquet"), LOAD1);
    load(dict_job(&sim, &dir.path().join("src"), "bm.t", &state)).await.unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, format!("{PASSWORD}\n")).unwrap();
    let mut f = dict_job(&sim, &dir.path().join("src"), "bm.t", &state);
    f.password_file = Some(pw);
    // The job's own select and where are over its source, not over the
    // pairs: neither may drop or refuse pairs.
    f.transform.select = Some("no_such_column".into());
    f.transform.filter = Some("1 = 0".into());
    let r = starload::dictjob::export(f.clone(), "u", "bm.dict_u", None, Arc::new(|_| {})).await.unwrap();
    assert_eq!(r.load.rows_loaded, 5);
    let mut stored: Vec<(u64, Vec<u8>)> = sim
        .rows("bm", "dict_u")
        .iter()
        .map(|row| {
            let id = match row[0].canonical() {
                Json::String(s) => s.parse().unwrap(),
                Json::Number(n) => n.as_u64().unwrap(),
                other => panic!("{other}"),
            };
            (id, row[1].canonical().as_str().unwrap().as_bytes().to_vec())
        })
        .collect();
    stored.sort();
    assert_eq!(stored, dictionary(&state, "bm.t").await);
    // Again: the same files and labels, nothing sent.
    let again = starload::dictjob::export(f.clone(), "u", "bm.dict_u", None, Arc::new(|_| {})).await.unwrap();
    assert_eq!(again.load.chunks_loaded, 0);
    // A duplicate-key table would collect copies: refused.
    let e = starload::dictjob::export(f, "u", "bm.dict_dup", None, Arc::new(|_| {})).await.unwrap_err();
    assert_eq!(e.kind(), starload::ErrorKind::Config, "{e}");
    assert!(sim.rows("bm", "dict_dup").is_empty());
}

/// A store restored from a backup taken before the last loads ends below
/// ids the table holds: extending it would give new values those ids again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dictionary_store_older_than_the_table_is_refused() {
    let sim = sim(vec![agg_table("t", true)]).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    events(&dir.path().join("d1/e.parquet"), LOAD1);
    load(dict_job(&sim, &dir.path().join("d1"), "bm.t", &state)).await.unwrap();
    let backup = dir.path().join("backup");
    copy_dir(&state.join("dicts"), &backup);
    events(&dir.path().join("d2/e.parquet"), LOAD2);
    load(dict_job(&sim, &dir.path().join("d2"), "bm.t", &state)).await.unwrap();
    let stored = bitmaps(&sim, "t");
    std::fs::remove_dir_all(state.join("dicts")).unwrap();
    copy_dir(&backup, &state.join("dicts"));
    events(&dir.path().join("d3/e.parquet"), &[("c", Some("zed")), ("c", Some("yan"))]);
    let e = load(dict_job(&sim, &dir.path().join("d3"), "bm.t", &state)).await.unwrap_err();
    assert_eq!(e.kind(), starload::ErrorKind::Config, "{e}");
    assert!(e.to_string().contains("older than the table"), "{e}");
    assert_eq!(bitmaps(&sim, "t"), stored, "nothing loaded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_dictionary_fails_the_load_and_is_never_rebuilt() {
    let sim = sim(vec![agg_table("t", true), agg_table("other", true)]).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    events(&dir.path().join("jan/e.parquet"), LOAD1);
    load(dict_job(&sim, &dir.path().join("jan"), "bm.t", &state)).await.unwrap();
    let stored = bitmaps(&sim, "t");
    let data = state.join("dicts/bm.t/u/data");
    let files: Vec<_> = std::fs::read_dir(&data).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let mut bytes = std::fs::read(&files[0]).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&files[0], &bytes).unwrap();
    events(&dir.path().join("jun/e.parquet"), LOAD2);
    let e = load(dict_job(&sim, &dir.path().join("jun"), "bm.t", &state)).await.unwrap_err();
    assert!(e.to_string().contains("bm.t"), "{e}");
    assert_eq!(bitmaps(&sim, "t"), stored, "nothing loaded");
    let versions: Vec<_> = std::fs::read_dir(state.join("dicts/bm.t/u/versions")).unwrap().collect();
    assert_eq!(versions.len(), 1, "no new version");
    std::fs::remove_file(&files[0]).unwrap();
    let e = load(dict_job(&sim, &dir.path().join("jun"), "bm.t", &state)).await.unwrap_err();
    assert!(e.to_string().contains("bm.t"), "{e}");

    // The store wiped, or another machine's state directory (the default
    // store is under it): the column holds ids, so no new dictionary starts
    // over from id 1.
    std::fs::remove_dir_all(state.join("dicts")).unwrap();
    for st in [state.clone(), dir.path().join("elsewhere")] {
        let e = load(dict_job(&sim, &dir.path().join("jun"), "bm.t", &st)).await.unwrap_err();
        assert!(e.to_string().contains("already holds bitmap ids"), "{e}");
        assert_eq!(bitmaps(&sim, "t"), stored, "nothing loaded");
        assert!(!st.join("dicts/bm.t/u/versions").exists(), "no dictionary created");
    }

    // A dictionary column that is not BITMAP, or not in the table, is a
    // configuration error before anything is read.
    let mut f = job_file(&sim, &dir.path().join("jan"), "bm.other", &dir.path().join("s2"));
    f.bitmap_dict.insert("k".into(), "uid".into());
    let e = load(f).await.unwrap_err();
    assert_eq!(e.kind(), starload::ErrorKind::Config, "{e}");
    let mut f = job_file(&sim, &dir.path().join("jan"), "bm.other", &dir.path().join("s2"));
    f.bitmap_dict.insert("nope".into(), "uid".into());
    let e = load(f).await.unwrap_err();
    assert!(e.to_string().contains("nope"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dict_commands_build_show_and_export() {
    let dict_pk = TableSpec {
        db: "bm".into(),
        name: "dict_u".into(),
        keys: "PRIMARY_KEYS".into(),
        key_columns: vec!["id".into()],
        partition_by: None,
        partitions: vec![],
        columns: vec![col_nn("id", "BIGINT"), col("value", "VARCHAR(256)")],
    };
    let sim = sim(vec![agg_table("t", true), dict_pk]).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    events(&dir.path().join("src/e.parquet"), LOAD1);
    let job = dir.path().join("job.toml");
    std::fs::write(
        &job,
        format!(
            "source = {:?}\ntable = \"bm.t\"\nfe = {:?}\nmysql = {:?}\nuser = {:?}\nstate_dir = {:?}\n\n[bitmap_dict]\nu = \"uid\"\n",
            dir.path().join("src").display().to_string(),
            sim.fe_url(),
            sim.mysql_addr(),
            USER,
            state.display().to_string()
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_starload"))
            .args(args)
            .arg("--config")
            .arg(&job)
            .env("STARROCKS_PASSWORD", PASSWORD)
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(o.status.success(), "{args:?}: {out}{}", String::from_utf8_lossy(&o.stderr));
        out
    };
    let built: Json = serde_json::from_str(&run(&["dict", "build", "--json"])).unwrap();
    assert_eq!(built[0]["new_values"], 5, "{built}");
    assert_eq!(built[0]["first_new_id"], 1, "{built}");
    let shown: Json = serde_json::from_str(&run(&["dict", "show", "--json"])).unwrap();
    assert_eq!((shown[0]["version"].as_u64(), shown[0]["max_id"].as_u64()), (Some(1), Some(5)), "{shown}");
    let text = run(&["dict", "show"]);
    assert!(text.contains("version 1") && text.contains("5 values"), "{text}");
    // The load finds every value in place: nothing new is published.
    let report: Json = serde_json::from_str(&run(&["load", "--json"])).unwrap();
    assert_eq!(report["dictionaries"][0]["new_values"], 0, "{report}");
    assert_eq!(report["dictionaries"][0]["version"], 1, "{report}");
    let text = run(&["dict", "export", "--column", "u", "--to", "bm.dict_u"]);
    assert!(text.contains("exported 5 of the 5 values"), "{text}");
    assert_eq!(sim.rows("bm", "dict_u").len(), 5);
    // A version that was never published is a usage error (exit 2).
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_starload"))
        .args(["dict", "export", "--column", "u", "--to", "bm.dict_u", "--version", "9", "--config"])
        .arg(&job)
        .env("STARROCKS_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("no version 9 (published: 1)"), "{err}");
}

/// Spark Load's global dictionary table: `dict_key`, `dict_value`,
/// partitioned by `dict_column`, as Parquet.
fn spark_dict(dir: &Path, column: &str, pairs: &[(&str, i64)]) {
    write_parquet(
        &dir.join(format!("dict_column={column}/part-00000.parquet")),
        vec![
            ("dict_key", Arc::new(StringArray::from(pairs.iter().map(|p| p.0).collect::<Vec<_>>())) as ArrayRef),
            ("dict_value", Arc::new(Int64Array::from(pairs.iter().map(|p| p.1).collect::<Vec<_>>()))),
        ],
    );
}

/// Ids loaded into `u` directly (a table Spark Load filled).
async fn seed_ids(sim: &starload::sim::Sim, dir: &Path, rows: &[(&str, i64)]) {
    let src = dir.join("seed");
    write_parquet(
        &src.join("part-0.parquet"),
        vec![
            ("k", Arc::new(StringArray::from(rows.iter().map(|r| r.0).collect::<Vec<_>>())) as ArrayRef),
            ("u", Arc::new(Int64Array::from(rows.iter().map(|r| r.1).collect::<Vec<_>>()))),
        ],
    );
    load(job_file(sim, &src, "bm.t", &dir.join("seed-state"))).await.unwrap();
}

/// Migrating from Spark Load: its dictionary is imported as version 1, and
/// loads give its values the ids the table holds and new values the next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spark_load_dictionary_is_imported_then_extended() {
    let sim = sim(vec![agg_table("t", true)]).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    // Two Spark Load builds: ids in value order within each, not overall.
    let dict = dir.path().join("spark_dict");
    spark_dict(&dict, "uid", &[("zed", 1), ("alice", 3), ("bob", 2), ("", 4), ("bob", 2)]);
    spark_dict(&dict, "other", &[("x", 1)]);
    seed_ids(&sim, dir.path(), &[("a", 1), ("a", 3), ("b", 2)]).await;
    // A new dictionary would give these values other ids: refused.
    events(&dir.path().join("jan/part-0.parquet"), &[("a", Some("alice")), ("b", Some("carol")), ("c", Some("zed"))]);
    let e = load(dict_job(&sim, &dir.path().join("jan"), "bm.t", &state)).await.unwrap_err();
    assert!(e.to_string().contains("already holds bitmap ids"), "{e}");

    let pw = dir.path().join("pw");
    std::fs::write(&pw, format!("{PASSWORD}\n")).unwrap();
    let f = || starload::config::JobFile {
        password_file: Some(pw.clone()),
        ..dict_job(&sim, &dir.path().join("jan"), "bm.t", &state)
    };
    let dict_url = dict.display().to_string();
    // The table holds every column's dictionary: without a where, ids repeat.
    let e = starload::dictjob::import(f(), "u", &dict_url, "dict_key", "dict_value", None).await.unwrap_err();
    assert!(e.to_string().contains("id 1 is given to two values") && e.to_string().contains("--from-where"), "{e}");
    // The command, with no job file and no source of its own.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_starload"))
        .args(["dict", "import", "--table", "bm.t", "--column", "u", "--from", &dict_url])
        .args(["--from-where", "dict_column = 'uid'", "--fe", &sim.fe_url(), "--mysql", &sim.mysql_addr()])
        .args(["--user", USER, "--state-dir", &state.display().to_string(), "--json"])
        .env("STARROCKS_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: Json = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!((&r["values"], &r["version"], &r["table_max_id"]), (&Json::from(4), &Json::from(1), &Json::from(3)));
    assert_eq!(
        dictionary(&state, "bm.t").await,
        vec![(1, b"zed".to_vec()), (2, b"bob".to_vec()), (3, b"alice".to_vec()), (4, b"".to_vec())]
    );
    // Only once.
    let e = starload::dictjob::import(f(), "u", &dict_url, "dict_key", "dict_value", Some("dict_column = 'uid'"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("already has version 1"), "{e}");
    // Loads use it, and extend it: carol gets 5.
    load(f()).await.unwrap();
    let set = |ids: &[u64]| Some(ids.iter().copied().collect::<BTreeSet<u64>>());
    let want: BTreeMap<String, Option<BTreeSet<u64>>> =
        [("a".to_string(), set(&[1, 3])), ("b".to_string(), set(&[2, 5])), ("c".to_string(), set(&[1]))].into();
    assert_eq!(bitmaps(&sim, "t"), want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_that_is_not_the_columns_dictionary_is_refused() {
    let sim = sim(vec![agg_table("t", true)]).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    events(&dir.path().join("jan/part-0.parquet"), &[("a", Some("alice"))]);
    let pw = dir.path().join("pw");
    std::fs::write(&pw, format!("{PASSWORD}\n")).unwrap();
    let f = || starload::config::JobFile {
        password_file: Some(pw.clone()),
        ..dict_job(&sim, &dir.path().join("jan"), "bm.t", &state)
    };
    let try_import = |name: &str, pairs: &[(&str, i64)]| {
        let d = dir.path().join(name);
        spark_dict(&d, "uid", pairs);
        let (job, url) = (f(), d.display().to_string());
        // Hive's column names are not case-sensitive.
        async move { starload::dictjob::import(job, "u", &url, "DICT_KEY", "Dict_Value", None).await }
    };
    let e = try_import("gap", &[("a", 1), ("b", 3)]).await.unwrap_err();
    assert!(e.to_string().contains("id 2 is missing"), "{e}");
    let url = dir.path().join("gap").display().to_string();
    let e = starload::dictjob::import(f(), "u", &url, "key", "dict_value", None).await.unwrap_err().to_string();
    assert!(e.contains("no column `key`") && e.contains("dict_key"), "{e}");
    let e = try_import("twice", &[("a", 1), ("a", 2)]).await.unwrap_err();
    assert!(e.to_string().contains("has ids 1 and 2"), "{e}");
    // The same pair twice (a row a table holds twice) is one pair; its id
    // given to another value is not.
    let e = try_import("same_id", &[("a", 1), ("b", 1), ("a", 1)]).await.unwrap_err();
    assert!(e.to_string().contains("id 1 is given to two values, \"a\" and \"b\""), "{e}");
    let e = try_import("zero", &[("a", 0), ("b", 1)]).await.unwrap_err();
    assert!(e.to_string().contains("ids start at 1"), "{e}");
    // Not a BITMAP column; no such column.
    let d = dir.path().join("ok");
    spark_dict(&d, "uid", &[("a", 1)]);
    let url = d.display().to_string();
    let e = starload::dictjob::import(f(), "k", &url, "dict_key", "dict_value", None).await.unwrap_err();
    assert!(e.to_string().contains("not BITMAP"), "{e}");
    let e = starload::dictjob::import(f(), "nope", &url, "dict_key", "dict_value", None).await.unwrap_err();
    assert!(e.to_string().contains("has no column `nope`"), "{e}");
    // The table holds an id the dictionary does not have.
    seed_ids(&sim, dir.path(), &[("a", 9)]).await;
    let e = try_import("short", &[("a", 1), ("b", 2)]).await.unwrap_err();
    assert!(e.to_string().contains("holds id 9"), "{e}");
    // Nothing was published by any of them.
    let store =
        starload::dict::DictStore::open(&state.join("dicts").display().to_string(), &Default::default()).unwrap();
    let key = starload::dict::DictKey::new("bm.t", "u").unwrap();
    assert!(store.current(&key).await.unwrap().is_none());
}
