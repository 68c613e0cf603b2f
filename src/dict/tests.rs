//! Unit tests of the dictionary store (the integration tests in
//! `tests/it/dict.rs` cover the public behaviour end to end).

use std::sync::Arc;

use arrow::array::{AsArray, StringArray, UInt64Array};

use super::*;

fn store() -> (tempfile::TempDir, DictStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = DictStore::open(dir.path().to_str().unwrap(), &StoreOptions::default()).unwrap();
    (dir, s)
}

fn strings(v: &[&str]) -> Vec<RecordBatch> {
    let a: ArrayRef = Arc::new(StringArray::from(v.to_vec()));
    vec![RecordBatch::try_from_iter([("v", a)]).unwrap()]
}

fn opts() -> BuildOptions {
    BuildOptions { poll: Duration::from_millis(10), ..Default::default() }
}

#[test]
fn keys_are_checked_and_normalised() {
    let k = DictKey::new("db.t", "UV").unwrap();
    assert_eq!(k.column, "uv");
    assert_eq!(k.to_string(), "db.t/uv");
    assert!(DictKey::new("t", "c").is_err());
    assert!(DictKey::new("db.", "c").is_err());
    assert!(DictKey::new("db.t.x", "c").is_err());
    assert!(DictKey::new("db.t", "").is_err());
    assert!(DictKey::new("db.t", "a/b").is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_row_groups_roundtrip() {
    // More values than one row group holds: ids run on across groups.
    let (_d, s) = store();
    let key = DictKey::new("db.t", "c").unwrap();
    let n = (1 << 20) + 5000;
    let a: ArrayRef = Arc::new(UInt64Array::from_iter_values((0..n as u64).map(|i| i * 7919 % (n as u64))));
    let r =
        s.build(&key, &DataType::UInt64, vec![RecordBatch::try_from_iter([("v", a)]).unwrap()], &opts()).await.unwrap();
    assert_eq!(r.new_values, n as u64);
    let v = r.version.unwrap();
    let lk = s.lookup(&key, &v).await.unwrap();
    // Canonical text "0" < "1" < "10" < …: ids follow the text order.
    let mut texts: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    texts.sort();
    for (i, t) in texts.iter().enumerate().step_by(997) {
        assert_eq!(lk.get(t.as_bytes()), Some(i as u64 + 1), "{t}");
    }
    let batches = s.export(&key, &v).await.unwrap();
    let mut k = 0usize;
    for b in &batches {
        let ids = b.column(0).as_primitive::<arrow::datatypes::UInt64Type>();
        let vals = b.column(1).as_string::<i32>();
        for i in 0..b.num_rows() {
            assert_eq!(ids.value(i), k as u64 + 1);
            assert_eq!(vals.value(i), texts[k]);
            k += 1;
        }
    }
    assert_eq!(k, n);
}

#[tokio::test]
async fn publishing_an_existing_version_fails_clearly() {
    let (_d, s) = store();
    let key = DictKey::new("db.t", "c").unwrap();
    let r = s.build(&key, &DataType::Utf8, strings(&["a"]), &opts()).await.unwrap();
    let v = r.version.unwrap();
    let e = s.publish(&key, &v).await.unwrap_err();
    assert!(e.to_string().contains("published by another builder"), "{e}");
    assert_eq!(s.current(&key).await.unwrap().unwrap(), v);
}

#[tokio::test]
async fn lost_lease_publishes_nothing() {
    let (_d, s) = store();
    let key = DictKey::new("db.t", "c").unwrap();
    let settings = LeaseSettings {
        owner: "a".into(),
        ttl: Duration::from_secs(60),
        wait: Duration::from_secs(1),
        poll: Duration::from_millis(10),
    };
    let lease = Lease::acquire(s.store().clone(), s.lock_path(&key), "k", &settings).await.unwrap();
    lease.check("k").await.unwrap();
    // Someone removes it and takes it.
    s.store().delete(&s.lock_path(&key)).await.unwrap();
    let other = Lease::acquire(
        s.store().clone(),
        s.lock_path(&key),
        "k",
        &LeaseSettings { owner: "b".into(), ..settings.clone() },
    )
    .await
    .unwrap();
    let e = lease.check("k").await.unwrap_err();
    assert!(e.to_string().contains("lost the build lease"), "{e}");
    other.release().await;
    assert!(lease::holder(s.store(), &s.lock_path(&key)).await.unwrap().is_none());
}

#[tokio::test]
async fn second_lease_waits_then_fails_naming_the_holder() {
    let (_d, s) = store();
    let key = DictKey::new("db.t", "c").unwrap();
    let settings = LeaseSettings {
        owner: "builder-one".into(),
        ttl: Duration::from_secs(60),
        wait: Duration::from_millis(200),
        poll: Duration::from_millis(20),
    };
    let held = Lease::acquire(s.store().clone(), s.lock_path(&key), "k", &settings).await.unwrap();
    let t = std::time::Instant::now();
    let e = Lease::acquire(
        s.store().clone(),
        s.lock_path(&key),
        "db.t/c",
        &LeaseSettings { owner: "two".into(), ..settings.clone() },
    )
    .await
    .unwrap_err();
    assert!(t.elapsed() >= Duration::from_millis(200));
    assert!(e.to_string().contains("being built by `builder-one`"), "{e}");
    held.release().await;
    let again = Lease::acquire(s.store().clone(), s.lock_path(&key), "k", &settings).await.unwrap();
    again.release().await;
}

#[tokio::test]
async fn expired_lease_is_taken_over_and_renewal_keeps_it() {
    let (_d, s) = store();
    let key = DictKey::new("db.t", "c").unwrap();
    let short = LeaseSettings {
        owner: "crashed".into(),
        ttl: Duration::from_millis(150),
        wait: Duration::from_secs(5),
        poll: Duration::from_millis(20),
    };
    // From before the first lease is written: it expires 150 ms after
    // that at the earliest, however long its write takes (a busy machine
    // took over 50 ms, and a clock started after it saw less than 100).
    let t = std::time::Instant::now();
    Lease::acquire(s.store().clone(), s.lock_path(&key), "k", &short).await.unwrap().abandon();
    let next = Lease::acquire(
        s.store().clone(),
        s.lock_path(&key),
        "k",
        &LeaseSettings { owner: "next".into(), ..short.clone() },
    )
    .await
    .unwrap();
    // The expiry is kept in whole milliseconds of the wall clock.
    assert!(t.elapsed() >= Duration::from_millis(148), "{:?}", t.elapsed());
    // Renewed every 50 ms: still ours well after its first expiry.
    tokio::time::sleep(Duration::from_millis(500)).await;
    next.check("k").await.unwrap();
    assert_eq!(lease::holder(s.store(), &s.lock_path(&key)).await.unwrap().unwrap().owner, "next");
    next.release().await;
}
