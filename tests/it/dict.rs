//! Global dictionaries (`starload::dict`): id semantics, incremental builds,
//! determinism, concurrent builders, crashes, corruption and refusals — on a
//! local directory, and on S3 (SeaweedFS) and HDFS (MiniDFS) when
//! `STARLOAD_TEST_S3_ENDPOINT` / `STARLOAD_TEST_HDFS` are set (without them
//! those tests print why and pass, unless `STARLOAD_REQUIRE_SERVERS=1`).

use crate::support::server;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{
    Array, ArrayRef, AsArray, Date32Array, Decimal128Array, DictionaryArray, Int8Array, Int32Array, Int64Array,
    RecordBatch, StringArray, StringViewArray,
};
use arrow::datatypes::{DataType, UInt64Type};
use starload::dict::{BuildOptions, DictKey, DictStore, Distinct, Fault, Version};
use starload::source::StoreOptions;

fn batch(a: ArrayRef) -> Vec<RecordBatch> {
    vec![RecordBatch::try_from_iter([("v", a)]).unwrap()]
}

fn strs(v: &[Option<&str>]) -> Vec<RecordBatch> {
    batch(Arc::new(StringArray::from(v.to_vec())))
}

fn some(v: &[&str]) -> Vec<RecordBatch> {
    strs(&v.iter().map(|s| Some(*s)).collect::<Vec<_>>())
}

fn opts(owner: &str) -> BuildOptions {
    BuildOptions {
        owner: owner.into(),
        poll: Duration::from_millis(20),
        lease_ttl: Duration::from_secs(30),
        ..Default::default()
    }
}

fn local() -> (tempfile::TempDir, DictStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = DictStore::open(dir.path().to_str().unwrap(), &StoreOptions::default()).unwrap();
    (dir, s)
}

/// Every (value, id) of a version, through export.
async fn contents(s: &DictStore, key: &DictKey, v: &Version) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let mut last = 0;
    for b in s.export(key, v).await.unwrap() {
        let ids = b.column(0).as_primitive::<UInt64Type>();
        let vals = b.column(1).as_string::<i32>();
        for i in 0..b.num_rows() {
            assert_eq!(ids.value(i), last + 1, "export is in id order without gaps");
            last = ids.value(i);
            assert!(out.insert(vals.value(i).to_string(), ids.value(i)).is_none());
        }
    }
    out
}

fn ids(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// The core semantics, on any store.
async fn semantics(s: &DictStore) {
    let key = DictKey::new("db.events", "uv").unwrap();
    assert!(s.current(&key).await.unwrap().is_none());
    // v1: sorted, from 1; NULL is not a value, the empty string is.
    let r = s
        .build(
            &key,
            &DataType::Utf8,
            strs(&[Some("pear"), Some("apple"), None, Some("fig"), Some(""), Some("apple")]),
            &opts("a"),
        )
        .await
        .unwrap();
    assert!(r.published);
    assert_eq!((r.input_rows, r.null_rows, r.distinct_values, r.new_values), (6, 1, 4, 4));
    assert_eq!(r.first_new_id, Some(1));
    let v1 = r.version.unwrap();
    assert_eq!((v1.version, v1.count, v1.max_id), (1, 4, 4));
    assert_eq!(contents(s, &key, &v1).await, ids(&[("", 1), ("apple", 2), ("fig", 3), ("pear", 4)]));

    // v2: only new values get ids, after the old ones, sorted.
    let r = s
        .build(
            &key,
            &DataType::Utf8View,
            batch(Arc::new(StringViewArray::from(vec!["zebra", "apple", "banana", ""]))),
            &opts("b"),
        )
        .await
        .unwrap();
    assert_eq!((r.published, r.new_values, r.first_new_id), (true, 2, Some(5)));
    let v2 = r.version.unwrap();
    assert_eq!(v2.version, 2);
    assert_eq!(
        contents(s, &key, &v2).await,
        ids(&[("", 1), ("apple", 2), ("fig", 3), ("pear", 4), ("banana", 5), ("zebra", 6)])
    );

    // Nothing new: no new version.
    let r = s.build(&key, &DataType::Utf8, strs(&[Some("fig"), None, Some("zebra")]), &opts("c")).await.unwrap();
    assert!(!r.published);
    assert_eq!(r.new_values, 0);
    assert_eq!(r.version.as_ref().unwrap(), &v2);
    assert_eq!(s.versions(&key).await.unwrap(), vec![1, 2]);

    // Lookups of a whole array, NULL kept.
    let lk = s.lookup(&key, &v2).await.unwrap();
    assert_eq!(lk.len(), 6);
    let a = StringArray::from(vec![Some("zebra"), None, Some(""), Some("apple")]);
    assert_eq!(lk.map_array(&a).unwrap(), vec![Some(6), None, Some(1), Some(2)]);
    let e = lk.map_array(&StringArray::from(vec!["apple", "kiwi"])).unwrap_err();
    assert!(e.to_string().contains("\"kiwi\" is not in dictionary db.events/uv version 2"), "{e}");
    // An older version is still readable and unchanged.
    let lk1 = s.lookup(&key, &v1).await.unwrap();
    assert_eq!(lk1.get(b"banana"), None);
    assert_eq!(lk1.get(b"pear"), Some(4));

    // Summary.
    let sum = s.summary(&key).await.unwrap().unwrap();
    assert_eq!((sum.version, sum.count, sum.max_id, sum.files.len()), (2, 6, 6, 2));
    assert_eq!(sum.total_bytes, v2.files.iter().map(|f| f.size).sum::<u64>());
    assert!(sum.lease.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_start_at_one_sorted_incremental_null_and_empty_string() {
    let (_d, s) = local();
    semantics(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_value_same_id_months_later() {
    let (dir, s) = local();
    let key = DictKey::new("db.t", "c").unwrap();
    let day1: Vec<String> = (0..5000).map(|i| format!("user-{i:05}")).collect();
    let v =
        s.build(&key, &DataType::Utf8, batch(Arc::new(StringArray::from(day1.clone()))), &opts("day1")).await.unwrap();
    let v1 = v.version.unwrap();
    let before = contents(&s, &key, &v1).await;
    // "Months later", another process (a fresh store handle), other inputs
    // that overlap, in another order and batching.
    drop(s);
    let s = DictStore::open(dir.path().to_str().unwrap(), &StoreOptions::default()).unwrap();
    let later: Vec<String> = (2500..9000).rev().map(|i| format!("user-{i:05}")).collect();
    let parts: Vec<RecordBatch> = later
        .chunks(777)
        .map(|c| RecordBatch::try_from_iter([("v", Arc::new(StringArray::from(c.to_vec())) as ArrayRef)]).unwrap())
        .collect();
    let r = s.build(&key, &DataType::Utf8, parts, &opts("later")).await.unwrap();
    assert_eq!(r.new_values, 4000);
    assert_eq!(r.first_new_id, Some(5001));
    let after = contents(&s, &key, r.version.as_ref().unwrap()).await;
    for (k, id) in &before {
        assert_eq!(after[k], *id, "{k} kept its id");
    }
    // New values: the next ids, in sorted order.
    let new: Vec<(&String, &u64)> = after.iter().filter(|(k, _)| !before.contains_key(*k)).collect();
    assert!(new.iter().enumerate().all(|(i, (_, id))| **id == 5001 + i as u64));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_inputs_give_identical_bytes() {
    let values: Vec<String> =
        (0..20_000).map(|i| format!("{:x}", (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))).collect();
    let (d1, s1) = local();
    let (d2, s2) = local();
    let key = DictKey::new("db.t", "c").unwrap();
    s1.build(&key, &DataType::Utf8, batch(Arc::new(StringArray::from(values.clone()))), &opts("one")).await.unwrap();
    // Other order, other batching, duplicates and NULLs: the same dictionary.
    let mut shuffled: Vec<Option<String>> = values.iter().rev().cloned().map(Some).collect();
    shuffled.extend(values.iter().take(100).cloned().map(Some));
    shuffled.push(None);
    let parts: Vec<RecordBatch> = shuffled
        .chunks(999)
        .map(|c| RecordBatch::try_from_iter([("v", Arc::new(StringArray::from(c.to_vec())) as ArrayRef)]).unwrap())
        .collect();
    // LargeUtf8 and Utf8 are one value type.
    s2.build(&key, &DataType::LargeUtf8, parts, &opts("two")).await.unwrap();
    let files = |d: &tempfile::TempDir| -> BTreeMap<String, Vec<u8>> {
        let dir = d.path().join("db.t/c/data");
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                // The name ends with the build's lease token.
                let name = e.file_name().to_string_lossy().to_string();
                let stem = name.rsplit_once('-').unwrap().0.to_string();
                (stem, std::fs::read(e.path()).unwrap())
            })
            .collect()
    };
    let (f1, f2) = (files(&d1), files(&d2));
    assert_eq!(f1.len(), 1);
    assert_eq!(f1.keys().collect::<Vec<_>>(), f2.keys().collect::<Vec<_>>(), "same file names but the token");
    assert!(f1 == f2, "same delta bytes");
    let (v1, v2) = (s1.current(&key).await.unwrap().unwrap(), s2.current(&key).await.unwrap().unwrap());
    let strip = |v: &Version| -> Vec<_> {
        v.files
            .iter()
            .map(|f| (f.path.rsplit_once('-').unwrap().0.to_string(), f.count, f.size, f.blake3.clone()))
            .collect()
    };
    assert_eq!(strip(&v1), strip(&v2));
}

/// Two builders race on one dictionary: exactly one publishes each
/// version, no id is duplicated or changed.
async fn race(s: &DictStore) {
    let key = DictKey::new("db.race", "c").unwrap();
    let base: Vec<String> = (0..3000).map(|i| format!("base-{i}")).collect();
    s.build(&key, &DataType::Utf8, batch(Arc::new(StringArray::from(base.clone()))), &opts("setup")).await.unwrap();
    let before = contents(s, &key, &s.current(&key).await.unwrap().unwrap()).await;
    for round in 0..3 {
        let a: Vec<String> =
            (0..4000).map(|i| format!("r{round}-a-{i}")).chain(base.iter().take(500).cloned()).collect();
        let b: Vec<String> =
            (0..4000).map(|i| format!("r{round}-b-{i}")).chain((0..2000).map(|i| format!("r{round}-a-{i}"))).collect();
        let (sa, sb) = (s.clone(), s.clone());
        let (ka, kb) = (key.clone(), key.clone());
        let (ba, bb) = (a.clone(), b.clone());
        let ta = tokio::spawn(async move {
            sa.build(&ka, &DataType::Utf8, batch(Arc::new(StringArray::from(ba))), &opts("racer-a")).await
        });
        let tb = tokio::spawn(async move {
            sb.build(&kb, &DataType::Utf8, batch(Arc::new(StringArray::from(bb))), &opts("racer-b")).await
        });
        let (ra, rb) = (ta.await.unwrap().unwrap(), tb.await.unwrap().unwrap());
        assert!(ra.published && rb.published);
        let mut vs = [ra.version.unwrap().version, rb.version.unwrap().version];
        vs.sort();
        assert_eq!(vs[1], vs[0] + 1, "one published N, the other N + 1");
        let v = s.current(&key).await.unwrap().unwrap();
        let now = contents(s, &key, &v).await;
        for (k, id) in &before {
            assert_eq!(now[k], *id);
        }
        for x in a.iter().chain(&b) {
            assert!(now.contains_key(x), "{x} has an id");
        }
        let mut all: Vec<u64> = now.values().copied().collect();
        all.sort();
        assert!(all.iter().enumerate().all(|(i, id)| *id == i as u64 + 1), "ids 1..=n, no duplicates");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_builders_serialise() {
    let (_d, s) = local();
    race(&s).await;
}

/// A crash after the delta is written and before the manifest: the previous
/// version is served; the next builder waits for the lease to lapse, takes
/// it over and publishes; a builder that cannot wait fails naming the
/// holder; cleanup removes the orphan.
async fn crash(s: &DictStore, data_dir: Option<&std::path::Path>) {
    let key = DictKey::new("db.crash", "c").unwrap();
    let v1 = s.build(&key, &DataType::Utf8, some(&["a", "b"]), &opts("first")).await.unwrap().version.unwrap();
    let crashing = BuildOptions {
        fault: Some(Fault::CrashBeforePublish),
        lease_ttl: Duration::from_secs(3),
        ..opts("crashing-builder")
    };
    let e = s.build(&key, &DataType::Utf8, some(&["c", "a"]), &crashing).await.unwrap_err();
    assert!(e.to_string().contains("simulated crash"), "{e}");
    assert_eq!(s.current(&key).await.unwrap().unwrap(), v1, "previous version served");
    let lk = s.lookup(&key, &v1).await.unwrap();
    assert_eq!((lk.get(b"a"), lk.get(b"b"), lk.get(b"c")), (Some(1), Some(2), None));
    if let Some(d) = data_dir {
        assert_eq!(std::fs::read_dir(d.join("db.crash/c/data")).unwrap().count(), 2, "an orphan delta");
    }
    // Held by the crashed builder: an impatient builder fails naming it.
    let impatient = BuildOptions { lock_wait: Duration::from_millis(100), ..opts("impatient") };
    let e = s.build(&key, &DataType::Utf8, some(&["d"]), &impatient).await.unwrap_err();
    assert!(e.to_string().contains("being built by `crashing-builder`"), "{e}");
    // A patient one takes the lapsed lease over.
    let r = s.build(&key, &DataType::Utf8, some(&["d", "c"]), &opts("patient")).await.unwrap();
    let v2 = r.version.unwrap();
    assert_eq!(v2.version, 2);
    assert_eq!(contents(s, &key, &v2).await, ids(&[("a", 1), ("b", 2), ("c", 3), ("d", 4)]));
    // The crashed builder's file stays until version 2 is taken (a builder
    // only paused may still publish it); then cleanup removes the orphan.
    if let Some(d) = data_dir {
        assert_eq!(std::fs::read_dir(d.join("db.crash/c/data")).unwrap().count(), 3, "the orphan is kept");
    }
    let removed = s.cleanup(&key, &opts("cleaner")).await.unwrap();
    assert_eq!(removed.len(), 1, "{removed:?}");
    if let Some(d) = data_dir {
        assert_eq!(std::fs::read_dir(d.join("db.crash/c/data")).unwrap().count(), 2, "the orphan was removed");
    }
    assert_eq!(contents(s, &key, &v2).await.len(), 4);
}

/// The newest manifest removed (by hand, or a bucket lifecycle rule): its
/// ids may be in StarRocks tables, so the next build must not hand them to
/// other values. Refused, naming the file, until the manifest is restored;
/// cleanup keeps the evidence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_newest_manifest_is_refused_never_rebuilt() {
    let (d, s) = local();
    let key = DictKey::new("db.t", "c").unwrap();
    s.build(&key, &DataType::Utf8, some(&["b", "d"]), &opts("a")).await.unwrap();
    let v2 = s.build(&key, &DataType::Utf8, some(&["c", "a"]), &opts("a")).await.unwrap().version.unwrap();
    let manifest = d.path().join("db.t/c/versions/v00000002.json");
    let saved = std::fs::read(&manifest).unwrap();
    std::fs::remove_file(&manifest).unwrap();
    // Without the check this build would publish version 2 again with
    // a=3, e=4: `c` had id 4.
    let e = s.build(&key, &DataType::Utf8, some(&["e", "a"]), &opts("a")).await.unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("holds version 2, but no manifest publishes it") && msg.contains("v00000002"), "{msg}");
    assert_eq!(e.kind(), starload::ErrorKind::Data);
    assert!(s.cleanup(&key, &opts("cleaner")).await.unwrap().is_empty(), "the evidence is kept");
    assert!(s.build(&key, &DataType::Utf8, some(&["e"]), &opts("a")).await.is_err(), "still refused");
    // A crashed builder's lapsed lease: taking it over removes only that
    // builder's own files (named by its token), not version 2's.
    let lock = d.path().join("db.t/c/lock.json");
    let ghost = r#"{"owner":"ghost","token":"0123456789abcdef01234567","acquired_at":"2026-01-01T00:00:00Z","expires_at":"2026-01-01T00:00:01Z","expires_at_ms":1}"#;
    std::fs::write(&lock, ghost).unwrap();
    let e = s.build(&key, &DataType::Utf8, some(&["e"]), &opts("a")).await.unwrap_err();
    assert!(e.to_string().contains("holds version 2, but no manifest publishes it"), "{e}");
    std::fs::write(&manifest, saved).unwrap();
    let v3 = s.build(&key, &DataType::Utf8, some(&["e", "a"]), &opts("a")).await.unwrap().version.unwrap();
    assert_eq!(v3.version, 3);
    let all = contents(&s, &key, &v3).await;
    assert_eq!(all, ids(&[("b", 1), ("d", 2), ("a", 3), ("c", 4), ("e", 5)]));
    assert_eq!(contents(&s, &key, &v2).await.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_before_publish_keeps_previous_version() {
    let (d, s) = local();
    crash(&s, Some(d.path())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_or_missing_delta_is_an_error_never_a_rebuild() {
    let (d, s) = local();
    let key = DictKey::new("db.t", "c").unwrap();
    let v1 = s.build(&key, &DataType::Utf8, some(&["x", "y", "z"]), &opts("a")).await.unwrap().version.unwrap();
    let file = d.path().join("db.t/c").join(&v1.files[0].path);
    let good = std::fs::read(&file).unwrap();
    // One flipped byte in the middle: the checksum catches it.
    let mut bad = good.clone();
    let mid = bad.len() / 3;
    bad[mid] ^= 0x55;
    std::fs::write(&file, &bad).unwrap();
    let e = s.lookup(&key, &v1).await.unwrap_err();
    assert!(e.to_string().contains("is corrupt"), "{e}");
    assert_eq!(e.kind(), starload::ErrorKind::Data);
    let e = s.build(&key, &DataType::Utf8, some(&["w"]), &opts("b")).await.unwrap_err();
    assert!(e.to_string().contains("is corrupt") && e.to_string().contains("never rebuilt"), "{e}");
    assert_eq!(s.versions(&key).await.unwrap(), vec![1], "nothing published");
    // Truncated: the size check catches it.
    std::fs::write(&file, &good[..good.len() - 1]).unwrap();
    assert!(s.lookup(&key, &v1).await.unwrap_err().to_string().contains("is corrupt"));
    // Gone.
    std::fs::remove_file(&file).unwrap();
    let e = s.export(&key, &v1).await.unwrap_err();
    assert!(e.to_string().contains("is missing"), "{e}");
    let e = s.build(&key, &DataType::Utf8, some(&["w"]), &opts("c")).await.unwrap_err();
    assert!(e.to_string().contains("is missing"), "{e}");
    // Restored: all is well again, with the same ids.
    std::fs::write(&file, &good).unwrap();
    assert_eq!(contents(&s, &key, &v1).await, ids(&[("x", 1), ("y", 2), ("z", 3)]));
    // A corrupt manifest is an error too, not an empty dictionary.
    std::fs::write(d.path().join("db.t/c/versions/v00000001.json"), b"{ not json").unwrap();
    let e = s.current(&key).await.unwrap_err();
    assert!(e.to_string().contains("is corrupt"), "{e}");
    let e = s.build(&key, &DataType::Utf8, some(&["w"]), &opts("d")).await.unwrap_err();
    assert!(e.to_string().contains("is corrupt"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_another_tables_dictionary_and_type_changes() {
    let (d, s) = local();
    let key = DictKey::new("db.a", "c").unwrap();
    s.build(&key, &DataType::Utf8, some(&["x"]), &opts("a")).await.unwrap();
    // A dictionary directory copied under another table is refused.
    let from = d.path().join("db.a");
    let to = d.path().join("db.b");
    copy_tree(&from, &to);
    let other = DictKey::new("db.b", "c").unwrap();
    let e = s.current(&other).await.unwrap_err();
    assert!(e.to_string().contains("belongs to db.a/c, not db.b/c"), "{e}");
    let e = s.build(&other, &DataType::Utf8, some(&["y"]), &opts("b")).await.unwrap_err();
    assert!(e.to_string().contains("from another table"), "{e}");
    // A version of one dictionary cannot be loaded as another's.
    let v = s.current(&key).await.unwrap().unwrap();
    assert!(s.lookup(&other, &v).await.unwrap_err().to_string().contains("another table"));
    // Type changes are refused, before and after the lease.
    let e = s.build(&key, &DataType::Int64, batch(Arc::new(Int64Array::from(vec![1]))), &opts("c")).await.unwrap_err();
    assert!(e.to_string().contains("holds string values"), "{e}");
    assert_eq!(e.kind(), starload::ErrorKind::Config);
    let mut set = Distinct::new(&DataType::Int32).unwrap();
    set.push(Arc::new(Int32Array::from(vec![5]))).unwrap();
    let e = s.build_from(&key, set, &opts("d")).await.unwrap_err();
    assert!(e.to_string().contains("holds string values"), "{e}");
    // Lookups refuse other types too.
    let lk = s.lookup(&key, &v).await.unwrap();
    assert!(lk.map_array(&Int64Array::from(vec![1])).is_err());
    // Floats cannot key a dictionary at all.
    let e = s
        .build(&key, &DataType::Float64, batch(Arc::new(arrow::array::Float64Array::from(vec![1.0]))), &opts("e"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("cannot hold"), "{e}");
}

fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if p.is_dir() {
            copy_tree(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn id_overflow_is_refused() {
    let (d, s) = local();
    let key = DictKey::new("db.t", "c").unwrap();
    s.build(&key, &DataType::Utf8, some(&["a", "b"]), &opts("a")).await.unwrap();
    // A crafted manifest whose ids end just below u64::MAX.
    let path = d.path().join("db.t/c/versions/v00000001.json");
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    m["files"][0]["first_id"] = serde_json::json!(u64::MAX - 2);
    m["max_id"] = serde_json::json!(u64::MAX - 1);
    std::fs::write(&path, serde_json::to_vec(&m).unwrap()).unwrap();
    assert_eq!(s.current(&key).await.unwrap().unwrap().max_id, u64::MAX - 1);
    // Two new values would need id u64::MAX + 1.
    let e = s.build(&key, &DataType::Utf8, some(&["a", "c", "d"]), &opts("b")).await.unwrap_err();
    assert!(e.to_string().contains("would pass the largest id"), "{e}");
    assert_eq!(e.kind(), starload::ErrorKind::Data);
    assert_eq!(s.versions(&key).await.unwrap(), vec![1]);
    // One fits exactly: its id is u64::MAX.
    let r = s.build(&key, &DataType::Utf8, some(&["b", "c"]), &opts("c")).await.unwrap();
    assert_eq!(r.first_new_id, Some(u64::MAX));
    assert_eq!(r.version.unwrap().max_id, u64::MAX);
    let e = s.build(&key, &DataType::Utf8, some(&["e"]), &opts("d")).await.unwrap_err();
    assert!(e.to_string().contains("would pass the largest id"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_value_types_use_canonical_text() {
    let (_d, s) = local();
    // Integers: all widths are one type; ids follow the text order.
    let key = DictKey::new("db.t", "ints").unwrap();
    s.build(
        &key,
        &DataType::Int32,
        batch(Arc::new(Int32Array::from(vec![Some(10), Some(-1), None, Some(9)]))),
        &opts("a"),
    )
    .await
    .unwrap();
    let r = s.build(&key, &DataType::Int8, batch(Arc::new(Int8Array::from(vec![9, 2]))), &opts("a")).await.unwrap();
    let v = r.version.unwrap();
    assert_eq!(contents(&s, &key, &v).await, ids(&[("-1", 1), ("10", 2), ("9", 3), ("2", 4)]));
    let lk = s.lookup(&key, &v).await.unwrap();
    assert_eq!(lk.map_array(&Int64Array::from(vec![Some(2), None, Some(-1)])).unwrap(), vec![Some(4), None, Some(1)]);
    // Dates.
    let key = DictKey::new("db.t", "days").unwrap();
    let v = s
        .build(&key, &DataType::Date32, batch(Arc::new(Date32Array::from(vec![19723, 0]))), &opts("a"))
        .await
        .unwrap()
        .version
        .unwrap();
    assert_eq!(contents(&s, &key, &v).await, ids(&[("1970-01-01", 1), ("2024-01-01", 2)]));
    // Decimals: unscaled@scale.
    let key = DictKey::new("db.t", "amounts").unwrap();
    let dec = Decimal128Array::from(vec![150, -5]).with_precision_and_scale(10, 2).unwrap();
    let v = s.build(&key, dec.data_type(), batch(Arc::new(dec.clone())), &opts("a")).await.unwrap().version.unwrap();
    assert_eq!(contents(&s, &key, &v).await, ids(&[("-5@2", 1), ("150@2", 2)]));
    let other_scale = Decimal128Array::from(vec![1]).with_precision_and_scale(10, 3).unwrap();
    let dt = other_scale.data_type().clone();
    assert!(s.build(&key, &dt, batch(Arc::new(other_scale)), &opts("a")).await.is_err());
    // Exported for SQL users as the decimal's text (into DECIMAL or VARCHAR).
    let exported = |key: DictKey, zone: &'static str| {
        let s = &s;
        async move {
            let out = tempfile::tempdir().unwrap();
            let zone = starload::encode::Zone::parse(zone).unwrap();
            let (dir, _) = starload::dictjob::export_files(s, &key, None, out.path(), zone).await.unwrap();
            let f = std::fs::File::open(dir.join("part-00000.parquet")).unwrap();
            let mut got = Vec::new();
            for b in parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f).unwrap().build().unwrap()
            {
                let b = b.unwrap();
                let v = b.column(1).as_string::<i32>();
                got.extend((0..b.num_rows()).map(|i| v.value(i).to_string()));
            }
            got
        }
    };
    assert_eq!(exported(key.clone(), "UTC").await, ["-0.05", "1.50"]);
    // Zoned timestamps as the wall clock of the job's zone.
    let key = DictKey::new("db.t", "instants").unwrap();
    let ts = arrow::array::TimestampMicrosecondArray::from(vec![0, 1_500_000]).with_timezone("UTC");
    s.build(&key, ts.data_type(), batch(Arc::new(ts.clone())), &opts("a")).await.unwrap();
    assert_eq!(exported(key, "Asia/Shanghai").await, ["1970-01-01 08:00:00", "1970-01-01 08:00:01.500000"]);
    // Dictionary-encoded strings count as strings; unused dictionary
    // entries are not values.
    let key = DictKey::new("db.t", "dict").unwrap();
    let keys = Int8Array::from(vec![Some(0), None, Some(2)]);
    let da = DictionaryArray::try_new(keys, Arc::new(StringArray::from(vec!["q", "unused", "p"]))).unwrap();
    let v = s.build(&key, da.data_type(), batch(Arc::new(da.clone())), &opts("a")).await.unwrap().version.unwrap();
    assert_eq!(contents(&s, &key, &v).await, ids(&[("p", 1), ("q", 2)]));
    let lk = s.lookup(&key, &v).await.unwrap();
    assert_eq!(lk.map_array(&da).unwrap(), vec![Some(2), None, Some(1)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builds_from_a_datafusion_stream() {
    let (_d, s) = local();
    let ctx = datafusion::prelude::SessionContext::new();
    let a: ArrayRef = Arc::new(StringArray::from((0..50_000).map(|i| format!("k{}", i % 20_000)).collect::<Vec<_>>()));
    let b = RecordBatch::try_from_iter([("v", a)]).unwrap();
    ctx.register_batch("t", b).unwrap();
    let df = ctx.sql("SELECT upper(v) AS v FROM t").await.unwrap();
    let dt = df.schema().field(0).data_type().clone();
    let stream = df.execute_stream().await.unwrap();
    let key = DictKey::new("db.t", "c").unwrap();
    let r = s.build_stream(&key, &dt, stream, &opts("df")).await.unwrap();
    assert_eq!((r.input_rows, r.distinct_values, r.new_values), (50_000, 20_000, 20_000));
    let lk = s.lookup(&key, r.version.as_ref().unwrap()).await.unwrap();
    let mut sorted: Vec<String> = (0..20_000).map(|i| format!("K{i}")).collect();
    sorted.sort();
    for (i, v) in sorted.iter().enumerate() {
        assert_eq!(lk.get(v.as_bytes()), Some(i as u64 + 1));
    }
}

async fn s3_dicts(endpoint: &str, bucket: &str) -> DictStore {
    use object_store::ObjectStoreExt;
    let key = std::env::var("STARLOAD_TEST_S3_ACCESS_KEY").unwrap_or("testkey".into());
    let secret = std::env::var("STARLOAD_TEST_S3_SECRET_KEY").unwrap_or("testsecret".into());
    let opts = StoreOptions {
        s3: [
            ("endpoint", endpoint),
            ("access_key_id", key.as_str()),
            ("secret_access_key", secret.as_str()),
            ("region", "us-east-1"),
            ("allow_http", "true"),
            ("virtual_hosted_style_request", "false"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        ..Default::default()
    };
    let s = DictStore::open(&format!("s3://{bucket}/dicts"), &opts).unwrap();
    // SeaweedFS creates a bucket on its first write.
    let marker = object_store::path::Path::from("_marker");
    s.store().put(&marker, object_store::PutPayload::from_static(b"x")).await.unwrap();
    s.store().delete(&marker).await.unwrap();
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_dictionaries_publish_conditionally() {
    let Some(endpoint) = server("STARLOAD_TEST_S3_ENDPOINT") else { return };
    let s = s3_dicts(&endpoint, &format!("stl-dict-{}", std::process::id())).await;
    // Conditional create is honoured: a second create of one key fails.
    {
        use object_store::{ObjectStoreExt, PutMode};
        let p = object_store::path::Path::from("dicts/probe.json");
        let _ = s.store().delete(&p).await;
        s.store().put_opts(&p, "1".into(), PutMode::Create.into()).await.unwrap();
        let e = s.store().put_opts(&p, "2".into(), PutMode::Create.into()).await.unwrap_err();
        assert!(matches!(e, object_store::Error::AlreadyExists { .. }), "{e:?}");
    }
    semantics(&s).await;
    race(&s).await;
    crash(&s, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hdfs_dictionaries_publish_conditionally() {
    let Some(nn) = server("STARLOAD_TEST_HDFS") else { return };
    let url = format!("{}/starload-dicts-{}-{}", nn.trim_end_matches('/'), std::process::id(), rand_suffix());
    let s = DictStore::open(&url, &StoreOptions::default()).unwrap();
    semantics(&s).await;
    race(&s).await;
    crash(&s, None).await;
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() % 1_000_000
}

/// Two crashes in a row: A crashes after writing its data file; B takes
/// A's lapsed lease over and crashes at once; C, taking B's lease over,
/// still knows A's file for a crashed builder's (the lease carries the
/// chain, and C records it) and publishes, also when C has nothing new; A's
/// file is kept (a builder only paused could still publish it) and stops
/// no later build.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_of_crashed_builds_leaves_nothing_stuck() {
    for nothing_new in [false, true] {
        let (d, s) = local();
        let key = DictKey::new("db.t", "c").unwrap();
        s.build(&key, &DataType::Utf8, some(&["a"]), &opts("first")).await.unwrap();
        let crashing =
            BuildOptions { fault: Some(Fault::CrashBeforePublish), lease_ttl: Duration::from_millis(300), ..opts("a") };
        s.build(&key, &DataType::Utf8, some(&["b"]), &crashing).await.unwrap_err();
        let lock = d.path().join("db.t/c/lock.json");
        let a: serde_json::Value = serde_json::from_slice(&std::fs::read(&lock).unwrap()).unwrap();
        // B took A's lease over (inheriting A) and crashed at once.
        let b = serde_json::json!({
            "owner": "b", "token": "bbbbbbbbbbbbbbbbbbbbbbbb", "acquired_at": "2026-01-01T00:00:00Z",
            "expires_at": "2026-01-01T00:00:01Z", "expires_at_ms": 1, "crashed": [a["token"]],
        });
        std::fs::write(&lock, serde_json::to_vec(&b).unwrap()).unwrap();
        let input = if nothing_new { some(&["a"]) } else { some(&["c"]) };
        let r = s.build(&key, &DataType::Utf8, input, &opts("c")).await.unwrap();
        let files: Vec<String> = std::fs::read_dir(d.path().join("db.t/c/data"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        assert!(files.iter().any(|f| f.ends_with(&format!("-{}.parquet", a["token"].as_str().unwrap()))), "{files:?}");
        assert_eq!(r.published, !nothing_new);
        // The next ordinary builds, with a lease of their own, are not stuck
        // either: crashed.json remembers A.
        let v = s.build(&key, &DataType::Utf8, some(&["d"]), &opts("d")).await.unwrap().version.unwrap();
        s.build(&key, &DataType::Utf8, some(&["e"]), &opts("e")).await.unwrap();
        assert_eq!(contents(&s, &key, &v).await.get("d").copied(), Some(v.max_id));
    }
}

/// A build killed while writing its data file leaves the local store's
/// staging file (`<file>#<n>`, which listings skip). The next builds remove
/// it once its version is published by another build, as they do orphans;
/// a staging file of the version still to come is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_builds_staging_file_is_removed_once_its_version_is_taken() {
    // A store path the object store percent-encodes.
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("my dicts %41 ü");
    let s = DictStore::open(root.to_str().unwrap(), &StoreOptions::default()).unwrap();
    let key = DictKey::new("db.t", "c").unwrap();
    s.build(&key, &DataType::Utf8, some(&["a"]), &opts("first")).await.unwrap();
    let data = root.join("db.t/c/data");
    assert!(data.is_dir());
    let old = data.join("v00000001-0123abcd-deadbeef.parquet#1");
    let next = data.join("v00000002-0123abcd-deadbeef.parquet#17");
    let other = data.join("notes#1");
    for f in [&old, &next, &other] {
        std::fs::write(f, b"partial").unwrap();
    }
    let r = s.build(&key, &DataType::Utf8, some(&["b"]), &opts("second")).await.unwrap();
    assert!(r.published);
    assert!(!old.exists(), "version 1 is published: its staging file goes");
    assert!(next.exists() && other.exists(), "version 2 was still to come when the build began");
    s.build(&key, &DataType::Utf8, some(&["c"]), &opts("third")).await.unwrap();
    assert!(!next.exists() && other.exists());
    let v = s.current(&key).await.unwrap().unwrap();
    assert_eq!(contents(&s, &key, &v).await, ids(&[("a", 1), ("b", 2), ("c", 3)]));
}

/// A builder paused past its lease (not crashed) after writing its data
/// file: the builder that takes the lease over with nothing new to publish
/// leaves that file alone, so the paused one can still publish a complete
/// version (a version naming a removed file would stop every load).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_takeover_leaves_the_data_file_of_a_paused_builder() {
    let (d, s) = local();
    let key = DictKey::new("db.t", "c").unwrap();
    s.build(&key, &DataType::Utf8, some(&["a"]), &opts("first")).await.unwrap();
    let paused = BuildOptions {
        fault: Some(Fault::CrashBeforePublish),
        lease_ttl: Duration::from_millis(300),
        ..opts("paused")
    };
    s.build(&key, &DataType::Utf8, some(&["b"]), &paused).await.unwrap_err();
    let data = d.path().join("db.t/c/data");
    let files = || std::fs::read_dir(&data).unwrap().count();
    assert_eq!(files(), 2);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let r = s.build(&key, &DataType::Utf8, some(&["a"]), &opts("taker")).await.unwrap();
    assert!(!r.published);
    assert_eq!(files(), 2, "the paused builder's data file is still there");
    // Once another build takes version 2, the file is an orphan cleanup
    // removes.
    s.build(&key, &DataType::Utf8, some(&["c"]), &opts("next")).await.unwrap();
    assert_eq!(s.cleanup(&key, &opts("cleaner")).await.unwrap().len(), 1);
    assert_eq!(files(), 2);
}
