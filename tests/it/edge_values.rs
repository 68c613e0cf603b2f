//! Values and files at the edges of what the wire formats carry: empty
//! strings beside strings that need base64, JSON documents that are `null`,
//! files of one source that differ in column order or nullability, INT96
//! written with Arrow type hints, column names the FE's SQL parser reserves.
//! Each either arrives exactly or fails naming its file, row and column.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use arrow::array::*;
use arrow::datatypes::{Field, Schema};
use parquet::arrow::ArrowWriter;
use serde_json::json;

use crate::support::*;

fn batch(fields: Vec<(&str, ArrayRef, bool)>) -> RecordBatch {
    let schema = Schema::new(
        fields.iter().map(|(n, a, nullable)| Field::new(*n, a.data_type().clone(), *nullable)).collect::<Vec<_>>(),
    );
    RecordBatch::try_new(Arc::new(schema), fields.into_iter().map(|(_, a, _)| a).collect()).unwrap()
}

fn ids(n: i64) -> ArrayRef {
    Arc::new(Int64Array::from_iter_values(1..=n))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_strings_beside_strings_that_need_base64_stay_empty() {
    // Row 1 needs the base64 part (a separator byte); its empty `b` must not
    // become from_base64('') — NULL in StarRocks.
    let dir = tempfile::tempdir().unwrap();
    let a: ArrayRef = Arc::new(StringArray::from(vec![Some("a\u{1}b"), Some("x"), Some(""), Some("\\N")]));
    let b: ArrayRef = Arc::new(StringArray::from(vec![Some(""), Some(""), Some("y"), None]));
    write_parquet(
        &dir.path().join("part-0.parquet"),
        &batch(vec![("id", ids(4), false), ("a", a, true), ("b", b, true)]),
    );
    for mode in ["append", "atomic"] {
        let sim = sim(vec![dup_table(
            "db",
            "t",
            "id",
            vec![col_nn("id", "BIGINT"), col("a", "VARCHAR(10)"), col("b", "VARCHAR(10)")],
        )])
        .await;
        let state = tempfile::tempdir().unwrap();
        let mut f = job_file(&sim, dir.path(), "db.t", state.path());
        f.mode = Some(mode.into());
        let r = load(f).await.unwrap_or_else(|e| panic!("{mode}: {e}"));
        assert_eq!(r.load.rows_loaded, 4);
        let got = stored(&sim, "db", "t");
        let row = |id: &str| (got[id]["a"].clone(), got[id]["b"].clone());
        assert_eq!(row("1"), (json!("a\u{1}b"), json!("")), "{mode}");
        assert_eq!(row("2"), (json!("x"), json!("")), "{mode}");
        assert_eq!(row("3"), (json!(""), json!("y")), "{mode}");
        assert_eq!(row("4"), (json!("\\N"), json!(null)), "{mode}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_string_column_of_an_escaped_row_is_escaped() {
    // `s` needs the escaped part; the row's other string-typed columns (from
    // a TIME, an integer, bytes, a decimal, a date, a timestamp) must be
    // escaped too, since the header decodes every string column of that part
    // (the decimal 1250 sent as its text would arrive as the bytes 0x12 0x50).
    let dir = tempfile::tempdir().unwrap();
    let s: ArrayRef = Arc::new(StringArray::from(vec!["a\u{1}", "plain"]));
    let t: ArrayRef = Arc::new(Time32SecondArray::from(vec![3723, 86399]));
    let i: ArrayRef = Arc::new(Int64Array::from(vec![-42, 7]));
    let b: ArrayRef = Arc::new(BinaryArray::from(vec![&b"xy"[..], &b""[..]]));
    let d: ArrayRef = Arc::new(Decimal128Array::from(vec![1250, -5]).with_precision_and_scale(4, 0).unwrap());
    let day: ArrayRef = Arc::new(Date32Array::from(vec![19_724, -719_162]));
    let ts: ArrayRef = Arc::new(TimestampMicrosecondArray::from(vec![1_704_164_645_000_006, 0]));
    write_parquet(
        &dir.path().join("part-0.parquet"),
        &batch(vec![
            ("id", ids(2), false),
            ("s", s, true),
            ("t", t, true),
            ("i", i, true),
            ("b", b, true),
            ("d", d, true),
            ("day", day, true),
            ("ts", ts, true),
        ]),
    );
    let sim = sim(vec![dup_table(
        "db",
        "t",
        "id",
        vec![
            col_nn("id", "BIGINT"),
            col("s", "VARCHAR(8)"),
            col("t", "VARCHAR(8)"),
            col("i", "VARCHAR(8)"),
            col("b", "VARCHAR(8)"),
            col("d", "VARCHAR(8)"),
            col("day", "CHAR(10)"),
            col("ts", "VARCHAR(26)"),
        ],
    )])
    .await;
    let state = tempfile::tempdir().unwrap();
    let r = load(job_file(&sim, dir.path(), "db.t", state.path())).await.unwrap();
    assert_eq!(r.load.chunks_base64, 1);
    let got = stored(&sim, "db", "t");
    let row = |id: &str| ["s", "t", "i", "b", "d", "day", "ts"].map(|c| got[id][c].clone());
    assert_eq!(
        row("1"),
        [
            json!("a\u{1}"),
            json!("01:02:03"),
            json!("-42"),
            json!("xy"),
            json!("1250"),
            json!("2024-01-02"),
            json!("2024-01-02 03:04:05.000006")
        ]
    );
    assert_eq!(
        row("2"),
        [
            json!("plain"),
            json!("23:59:59"),
            json!("7"),
            json!(""),
            json!("-5"),
            json!("0001-01-01"),
            json!("1970-01-01 00:00:00")
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_past_a_hex_field_or_a_64_bit_json_number_arrive_exactly() {
    // A string over 512 KiB in a row that needs the escaped part would be a
    // hex field over the BE's 1 MiB: the row goes as JSON. LARGEINTs past 64
    // bits in JSON rows; NULL in a duplicate-key table's (nullable) key.
    let dir = tempfile::tempdir().unwrap();
    let long = "x".repeat(600_000);
    let with_sep = format!("{long}\u{1}");
    let a: ArrayRef = Arc::new(StringArray::from(vec![Some(with_sep.as_str()), Some("\u{2}"), Some("short")]));
    let b: ArrayRef = Arc::new(StringArray::from(vec![Some("b"), Some(long.as_str()), None]));
    let k: ArrayRef = Arc::new(Int32Array::from(vec![Some(1), None, Some(3)]));
    write_parquet(&dir.path().join("long.parquet"), &batch(vec![("k", k, true), ("a", a, true), ("b", b, true)]));
    let sim1 = sim(vec![dup_table(
        "db",
        "t",
        "k",
        vec![col("k", "INT"), col("a", "VARCHAR(1048576)"), col("b", "VARCHAR(1048576)")],
    )])
    .await;
    let state = tempfile::tempdir().unwrap();
    let r = load(job_file(&sim1, dir.path(), "db.t", state.path())).await.unwrap();
    assert_eq!((r.load.rows_loaded, r.load.chunks_json), (3, 1));
    let mut rows = sim1.rows("db", "t");
    rows.sort_by_key(|r| format!("{:?}", r[0]));
    let text = |v: &starload::value::Value| match v {
        starload::value::Value::Str(s) => Some(s.clone()),
        _ => None,
    };
    let got: Vec<(Option<String>, Option<String>)> = rows.iter().map(|r| (text(&r[1]), text(&r[2]))).collect();
    assert!(got.contains(&(Some(with_sep.clone()), Some("b".into()))));
    assert!(got.contains(&(Some("\u{2}".into()), Some(long.clone()))));
    assert!(got.contains(&(Some("short".into()), None)));
    assert!(rows.iter().any(|r| r[0] == starload::value::Value::Null), "the NULL key arrives");

    let dir = tempfile::tempdir().unwrap();
    let big: ArrayRef = Arc::new(
        Decimal128Array::from(vec![10i128.pow(37), -(10i128.pow(38) - 1), 7]).with_precision_and_scale(38, 0).unwrap(),
    );
    let st: ArrayRef = Arc::new(StructArray::from(vec![(
        Arc::new(Field::new("a", arrow::datatypes::DataType::Int32, true)),
        Arc::new(Int32Array::from(vec![1, 2, 3])) as ArrayRef,
    )]));
    write_parquet(
        &dir.path().join("big.parquet"),
        &batch(vec![("id", ids(3), false), ("big", big, true), ("st", st, true)]),
    );
    let sim2 = sim(vec![dup_table(
        "db",
        "t",
        "id",
        vec![col_nn("id", "BIGINT"), col("big", "LARGEINT"), col("st", "STRUCT<a INT>")],
    )])
    .await;
    let state = tempfile::tempdir().unwrap();
    let r = load(job_file(&sim2, dir.path(), "db.t", state.path())).await.unwrap();
    assert_eq!(r.load.chunks_json, 1);
    let got = stored(&sim2, "db", "t");
    assert_eq!(got["1"]["big"], json!(10i128.pow(37).to_string()));
    assert_eq!(got["2"]["big"], json!((-(10i128.pow(38) - 1)).to_string()));
    assert_eq!(got["3"]["big"], json!("7"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_rows_keep_empty_binaries_and_refuse_null_documents() {
    let table = || dup_table("db", "t", "id", vec![col_nn("id", "BIGINT"), col("j", "JSON"), col("b", "VARBINARY")]);
    // A JSON scalar sends its row as JSON; the row's VARBINARY goes in hex
    // through unhex, which keeps an empty value empty (from_base64('') would
    // be NULL).
    let dir = tempfile::tempdir().unwrap();
    let j: ArrayRef = Arc::new(StringArray::from(vec![Some("{}"), Some("7"), Some("\"s\"")]));
    let b: ArrayRef = Arc::new(BinaryArray::from(vec![Some(&b""[..]), Some(&b""[..]), Some(&b"\x00\x02"[..])]));
    write_parquet(&dir.path().join("bin.parquet"), &batch(vec![("id", ids(3), false), ("j", j, true), ("b", b, true)]));
    let sim1 = sim(vec![table()]).await;
    let state = tempfile::tempdir().unwrap();
    let r = load(job_file(&sim1, dir.path(), "db.t", state.path())).await.unwrap();
    assert_eq!(r.load.chunks_json, 1);
    let got = stored(&sim1, "db", "t");
    assert_eq!(got["1"]["b"], json!({"b64": ""}));
    assert_eq!(got["2"]["b"], json!({"b64": ""}));
    assert_eq!(got["3"]["b"], json!({"b64": "AAI="}));
    assert_eq!(got["2"]["j"], json!({"json": 7}));

    // A JSON document `null` would be stored as SQL NULL: refused.
    let dir = tempfile::tempdir().unwrap();
    let j: ArrayRef = Arc::new(StringArray::from(vec![Some("{\"a\":1}"), Some(" null ")]));
    let b: ArrayRef = Arc::new(BinaryArray::from(vec![Some(&b"\x00"[..]), Some(&b"\x01"[..])]));
    write_parquet(
        &dir.path().join("nulldoc.parquet"),
        &batch(vec![("id", ids(2), false), ("j", j, true), ("b", b, true)]),
    );
    let sim2 = sim(vec![table()]).await;
    let state = tempfile::tempdir().unwrap();
    let e = load(job_file(&sim2, dir.path(), "db.t", state.path())).await.unwrap_err().to_string();
    assert!(e.contains("nulldoc.parquet") && e.contains("row 2") && e.contains("`j`") && e.contains("null"), "{e}");
    assert!(sim2.rows("db", "t").is_empty(), "nothing of the failing chunk may commit");

    // Numbers StarRocks would turn into doubles (or refuse) are refused
    // naming the row; those it keeps load as they are.
    for (doc, ok) in [
        (r#"{"big":123456789012345678901234567890}"#, false),
        (r#"{"u":18446744073709551616}"#, false),
        (r#"{"e":1e400}"#, false),
        (r#"[3.14159265358979323846]"#, false),
        // StarRocks keeps both pairs; which one `->` finds is unspecified.
        (r#"{"a":1,"b":{"a":2,"a":3}}"#, false),
        (r#"{"u":18446744073709551615,"i":-9223372036854775808,"f":0.1}"#, true),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let j: ArrayRef = Arc::new(StringArray::from(vec![Some("{\"a\":1}"), Some(doc)]));
        let b: ArrayRef = Arc::new(BinaryArray::from(vec![Some(&b"\x00"[..]), Some(&b"\x01"[..])]));
        write_parquet(
            &dir.path().join("nums.parquet"),
            &batch(vec![("id", ids(2), false), ("j", j, true), ("b", b, true)]),
        );
        let sim3 = sim(vec![table()]).await;
        let state = tempfile::tempdir().unwrap();
        let r = load(job_file(&sim3, dir.path(), "db.t", state.path())).await;
        if ok {
            r.unwrap();
            let got = stored(&sim3, "db", "t");
            assert_eq!(got["2"]["j"], json!({"json": serde_json::from_str::<serde_json::Value>(doc).unwrap()}));
        } else {
            let e = r.unwrap_err().to_string();
            assert!(e.contains("nums.parquet") && e.contains("row 2") && e.contains("`j`"), "{doc}: {e}");
            assert!(sim3.rows("db", "t").is_empty(), "{doc}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_differing_in_column_order_and_nullability_load_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let x = |v: Vec<Option<i64>>| -> ArrayRef { Arc::new(Int64Array::from(v)) };
    let s = |v: Vec<&str>| -> ArrayRef { Arc::new(StringArray::from(v)) };
    // a: x NOT NULL; b: x nullable with a NULL, columns in another order;
    // c: like a again. Several chunks, so every file is read on its own.
    write_parquet(
        &dir.path().join("a.parquet"),
        &batch(vec![("id", ids(2), false), ("x", x(vec![Some(10), Some(20)]), false), ("s", s(vec!["a", "b"]), false)]),
    );
    write_parquet(
        &dir.path().join("b.parquet"),
        &batch(vec![
            ("s", s(vec!["c", "d"]), true),
            ("x", x(vec![None, Some(40)]), true),
            ("id", Arc::new(Int64Array::from(vec![3, 4])), false),
        ]),
    );
    write_parquet(
        &dir.path().join("c.parquet"),
        &batch(vec![
            ("id", Arc::new(Int64Array::from(vec![5])), false),
            ("x", x(vec![Some(50)]), false),
            ("s", s(vec!["e"]), false),
        ]),
    );
    let sim =
        sim(vec![dup_table("db", "t", "id", vec![col_nn("id", "BIGINT"), col("x", "BIGINT"), col("s", "VARCHAR(8)")])])
            .await;
    let state = tempfile::tempdir().unwrap();
    let mut f = job_file(&sim, dir.path(), "db.t", state.path());
    f.chunk_bytes = Some(starload::config::ByteSize(1));
    let r = load(f).await.unwrap();
    // A one-byte chunk size: each row group is loaded in parts of one row.
    assert_eq!((r.load.rows_loaded, r.load.chunks), (5, 5));
    let got = stored(&sim, "db", "t");
    let xs: Vec<(String, serde_json::Value, serde_json::Value)> =
        got.iter().map(|(id, o)| (id.clone(), o["x"].clone(), o["s"].clone())).collect();
    assert_eq!(
        xs,
        vec![
            ("1".into(), json!("10"), json!("a")),
            ("2".into(), json!("20"), json!("b")),
            ("3".into(), json!(null), json!("c")),
            ("4".into(), json!("40"), json!("d")),
            ("5".into(), json!("50"), json!("e")),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserved_and_unusual_column_names_are_quoted() {
    let dir = tempfile::tempdir().unwrap();
    let v = |n: i64| -> ArrayRef { Arc::new(Int64Array::from(vec![n])) };
    let s: ArrayRef = Arc::new(StringArray::from(vec!["p\u{2}q"]));
    write_parquet(
        &dir.path().join("part-0.parquet"),
        &batch(vec![("id", ids(1), false), ("order", v(1), true), ("a-b", v(2), true), ("key", s, true)]),
    );
    let sim = sim(vec![dup_table(
        "db",
        "t",
        "id",
        vec![col_nn("id", "BIGINT"), col("order", "INT"), col("a-b", "INT"), col("key", "VARCHAR(8)")],
    )])
    .await;
    let state = tempfile::tempdir().unwrap();
    load(job_file(&sim, dir.path(), "db.t", state.path())).await.unwrap();
    let got = stored(&sim, "db", "t");
    assert_eq!(got["1"]["order"], json!("1"));
    assert_eq!(got["1"]["a-b"], json!("2"));
    assert_eq!(got["1"]["key"], json!("p\u{2}q"));
}

/// Column names outside ASCII go in the `columns` header as UTF-8, which
/// StarRocks' BE reads as bytes and maps by name: in another order than
/// the table's, and through the escaped load's `unhex` (a simulator that
/// could not read the header mapped fields by position and stored hex).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn column_names_outside_ascii_map_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let s = |v: [&str; 2]| -> ArrayRef { Arc::new(StringArray::from(v.to_vec())) };
    write_parquet(
        &dir.path().join("part-0.parquet"),
        &batch(vec![
            ("id", ids(2), false),
            ("ok", s(["k0", "k1"]), true),
            ("ünï", s(["u0", "q\u{1}"]), true),
            ("名前", s(["n0", "n\t1"]), true),
        ]),
    );
    let sim = sim(vec![dup_table(
        "db",
        "t",
        "id",
        vec![col_nn("id", "BIGINT"), col("名前", "VARCHAR(8)"), col("ünï", "VARCHAR(8)"), col("ok", "VARCHAR(8)")],
    )])
    .await;
    let state = tempfile::tempdir().unwrap();
    load(job_file(&sim, dir.path(), "db.t", state.path())).await.unwrap();
    let got = stored(&sim, "db", "t");
    assert_eq!((&got["1"]["ok"], &got["1"]["ünï"], &got["1"]["名前"]), (&json!("k0"), &json!("u0"), &json!("n0")));
    assert_eq!(
        (&got["2"]["ok"], &got["2"]["ünï"], &got["2"]["名前"]),
        (&json!("k1"), &json!("q\u{1}"), &json!("n\t1"))
    );
}

/// pyarrow writes `list_view` columns as plain Parquet LISTs with an Arrow
/// hint the reader would honour: they load like lists (NULL, empty, NULL
/// elements, nested in a struct).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_view_columns_load_as_lists() {
    let dir = tempfile::tempdir().unwrap();
    let script = r#"
import sys, pyarrow as pa, pyarrow.parquet as pq
lv = pa.array([[1, 2], None, [], [None, 7]], pa.list_view(pa.int32()))
llv = pa.array([["a"], ["b", None], None, []], pa.large_list_view(pa.string()))
st = pa.StructArray.from_arrays([pa.array([[1], [], None, [3, 4]], pa.list_view(pa.int64()))], names=["x"])
pq.write_table(pa.table({"id": pa.array([1, 2, 3, 4], pa.int64()), "lv": lv, "llv": llv, "st": st}), sys.argv[1] + "/f.parquet")
"#;
    run_pyarrow(script, dir.path());
    let sim = sim(vec![dup_table(
        "db",
        "t",
        "id",
        vec![
            col_nn("id", "BIGINT"),
            col("lv", "ARRAY<INT>"),
            col("llv", "ARRAY<VARCHAR(4)>"),
            col("st", "STRUCT<x ARRAY<BIGINT>>"),
        ],
    )])
    .await;
    let state = tempfile::tempdir().unwrap();
    load(job_file(&sim, dir.path(), "db.t", state.path())).await.unwrap();
    let got = stored(&sim, "db", "t");
    assert_eq!(got["1"]["lv"], json!(["1", "2"]));
    assert_eq!(got["2"]["lv"], json!(null));
    assert_eq!(got["3"]["lv"], json!([]));
    assert_eq!(got["4"]["lv"], json!([null, "7"]));
    assert_eq!(got["1"]["llv"], json!(["a"]));
    assert_eq!(got["2"]["llv"], json!(["b", null]));
    assert_eq!(got["3"]["llv"], json!(null));
    assert_eq!(got["4"]["llv"], json!([]));
    assert_eq!(got["4"]["st"], json!({"x": ["3", "4"]}));
    assert_eq!(got["3"]["st"], json!({"x": null}));
}

/// Hive 3.1+ writes INT96 from its local zone and names it
/// (`writer.time.zone`); it shows the values as that zone's wall clock.
/// starload reads INT96 as UTC instants (as Spark and StarRocks do), so a
/// job that names no zone is refused for such a file from another zone
/// than UTC, and a job that names one stores its wall clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn int96_that_hive_wrote_from_another_zone_needs_a_named_zone() {
    let write = |zone: &str| {
        let dir = tempfile::tempdir().unwrap();
        let script = r#"
import sys, datetime as dt, pyarrow as pa, pyarrow.parquet as pq
t = pa.table({"id": pa.array([1], pa.int64()),
              "ts": pa.array([dt.datetime(2024, 1, 1, 0, 30)], pa.timestamp("us"))})
t = t.replace_schema_metadata({"writer.time.zone": sys.argv[2]})
pq.write_table(t, sys.argv[1] + "/000000_0", use_deprecated_int96_timestamps=True)
"#;
        run_pyarrow_args(script, dir.path(), &[zone]);
        dir
    };
    let sim = ts_table_sim().await;
    let stored_ts = |local: &str| {
        let d = chrono::NaiveDateTime::parse_from_str(local, "%Y-%m-%d %H:%M:%S").unwrap();
        json!({"ts_us": d.and_utc().timestamp_micros().to_string()})
    };
    let shanghai = write("Asia/Shanghai");
    let state = tempfile::tempdir().unwrap();
    let e = load(job_file(&sim, shanghai.path(), "db.t", state.path())).await.unwrap_err();
    assert_eq!(e.kind(), starload::ErrorKind::Config, "{e}");
    assert!(e.to_string().contains("000000_0") && e.to_string().contains("--timezone Asia/Shanghai"), "{e}");
    assert_eq!(sim.be_requests(), 0);
    // Named: Hive's wall clock, or the instants as they are.
    for (zone, want) in [("Asia/Shanghai", "2024-01-01 08:30:00"), ("UTC", "2024-01-01 00:30:00")] {
        let sim = ts_table_sim().await;
        let state = tempfile::tempdir().unwrap();
        let mut f = job_file(&sim, shanghai.path(), "db.t", state.path());
        f.timezone = Some(zone.into());
        load(f).await.unwrap();
        assert_eq!(stored(&sim, "db", "t")["1"]["ts"], stored_ts(want), "--timezone {zone}");
    }
    // Files from two zones: no one named zone stores what Hive shows for
    // both; every zone is named, and UTC (the instants) loads.
    let both = write("Asia/Shanghai");
    std::fs::copy(write("America/New_York").path().join("000000_0"), both.path().join("000001_0")).unwrap();
    for zone in [None, Some("Asia/Shanghai")] {
        let state = tempfile::tempdir().unwrap();
        let mut f = job_file(&sim, both.path(), "db.t", state.path());
        f.timezone = zone.map(str::to_string);
        let e = load(f).await.unwrap_err().to_string();
        assert!(e.contains("America/New_York") && e.contains("each zone"), "{zone:?}: {e}");
    }
    let sim4 = ts_table_sim().await;
    let state = tempfile::tempdir().unwrap();
    let mut f = job_file(&sim4, both.path(), "db.t", state.path());
    f.timezone = Some("UTC".into());
    load(f).await.unwrap();
    // A job that does not read the INT96 column has nothing to decide.
    let sim2 = ts_table_sim().await;
    let state = tempfile::tempdir().unwrap();
    let mut f = job_file(&sim2, shanghai.path(), "db.t", state.path());
    f.transform.select = Some("id".into());
    load(f).await.unwrap();
    assert_eq!(stored(&sim2, "db", "t")["1"]["ts"], json!(null));
    // Java's name for a fixed offset: suggested as starload spells it.
    let java = write("GMT+08:00");
    let state = tempfile::tempdir().unwrap();
    let e = load(job_file(&sim, java.path(), "db.t", state.path())).await.unwrap_err();
    assert!(e.to_string().contains("--timezone +08:00 "), "{e}");
    let sim3 = ts_table_sim().await;
    let mut f = job_file(&sim3, java.path(), "db.t", state.path());
    f.timezone = Some("+08:00".into());
    load(f).await.unwrap();
    assert_eq!(stored(&sim3, "db", "t")["1"]["ts"], stored_ts("2024-01-01 08:30:00"));
    // Written from UTC (or GMT, as Java names it): nothing to decide.
    for zone in ["UTC", "GMT", "Etc/UTC", "GMT+00:00"] {
        let dir = write(zone);
        let sim = ts_table_sim().await;
        let state = tempfile::tempdir().unwrap();
        load(job_file(&sim, dir.path(), "db.t", state.path())).await.unwrap();
        assert_eq!(stored(&sim, "db", "t")["1"]["ts"], stored_ts("2024-01-01 00:30:00"), "written from {zone}");
    }
}

/// A fresh simulator with `db.t` (id BIGINT, ts DATETIME).
async fn ts_table_sim() -> starload::sim::Sim {
    sim(vec![dup_table("db", "t", "id", vec![col_nn("id", "BIGINT"), col("ts", "DATETIME")])]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn int96_is_a_utc_instant_whatever_arrow_hint_the_writer_stored() {
    // pyarrow stores an ARROW:schema hint (unit, zone) beside INT96; the
    // same bytes must mean the same instant with or without it.
    let dir = tempfile::tempdir().unwrap();
    let script = r#"
import sys, datetime as dt, pyarrow as pa, pyarrow.parquet as pq
d = sys.argv[1]
us = (dt.datetime(2024, 1, 1, 12) - dt.datetime(1970, 1, 1)) // dt.timedelta(microseconds=1)
for i, (name, ty, hint) in enumerate([("hint_us", pa.timestamp("us"), True), ("hint_ns", pa.timestamp("ns"), True),
                       ("hint_ms_tz", pa.timestamp("ms", tz="Asia/Tokyo"), True), ("no_hint", pa.timestamp("us"), False)]):
    v = us * 1000 if ty.unit == "ns" else us // 1000 if ty.unit == "ms" else us
    t = pa.table({"id": pa.array([i + 1], pa.int64()), "t": pa.array([v], pa.int64()).cast(ty), "tag": [name]})
    pq.write_table(t, f"{d}/{name}.parquet", use_deprecated_int96_timestamps=True, store_schema=hint)
"#;
    run_pyarrow(script, dir.path());
    let sim = sim(vec![dup_table(
        "db",
        "t",
        "id",
        vec![col_nn("id", "BIGINT"), col("t", "DATETIME"), col("tag", "VARCHAR(16)")],
    )])
    .await;
    let state = tempfile::tempdir().unwrap();
    let mut f = job_file(&sim, dir.path(), "db.t", state.path());
    f.timezone = Some("+08:00".into());
    load(f).await.unwrap();
    let rows = sim.rows("db", "t");
    assert_eq!(rows.len(), 4);
    let cols = sim.columns("db", "t");
    let (ti, gi) = (cols.iter().position(|c| c == "t").unwrap(), cols.iter().position(|c| c == "tag").unwrap());
    for r in rows {
        // 12:00 UTC is 20:00 at +08:00 for every file.
        assert_eq!(r[ti].display().as_deref(), Some("2024-01-01 20:00:00"), "{:?}", r[gi]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_partition_values_must_read_as_what_they_say() {
    let table = || {
        dup_table(
            "db",
            "t",
            "id",
            vec![col_nn("id", "BIGINT"), col("flag", "BOOLEAN"), col("d", "DATE"), col("m", "INT")],
        )
    };
    let run = |dirs: &'static str| async move {
        let root = tempfile::tempdir().unwrap();
        write_parquet(&root.path().join(dirs).join("part-0.parquet"), &batch(vec![("id", ids(1), false)]));
        let sim = sim(vec![table()]).await;
        let state = tempfile::tempdir().unwrap();
        let mut f = job_file(&sim, root.path(), "db.t", state.path());
        for (k, t) in [("flag", "boolean"), ("d", "date"), ("m", "int")] {
            f.partition_types.insert(k.into(), t.into());
        }
        let r = load(f).await.map(|_| stored(&sim, "db", "t")["1"].clone());
        (r, sim.be_requests())
    };
    let (ok, _) = run("flag=true/d=2024-01-07/m=07").await;
    let ok = ok.unwrap();
    assert_eq!((ok["flag"].clone(), ok["d"].clone(), ok["m"].clone()), (json!(true), json!("2024-01-07"), json!("7")));
    for (dirs, shown) in [
        ("flag=yes/d=2024-01-07/m=1", "flag=yes"),
        ("flag=false/d=2024-01-07T23:59:59Z/m=1", "d=2024-01-07T23:59:59Z"),
        ("flag=false/d=2024-01-07/m=1.5", "m=1.5"),
    ] {
        let (e, sent) = run(dirs).await;
        let e = e.unwrap_err().to_string();
        assert!(e.contains(shown), "{dirs}: {e}");
        assert_eq!(sent, 0, "{dirs}: nothing may be sent");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decimal_double_and_timestamp_partitions_compare_as_numbers_and_times() {
    // Hive's decimal, double and timestamp partition keys were strings:
    // `p > '9.6'` compared text and dropped p=10 and p=11.25; `p = 10`
    // failed to cast '9.7' to an integer.
    let root = tempfile::tempdir().unwrap();
    let dirs = [
        "p=9.7/x=9.7/ts=2024-01-01 10%3A00%3A00",
        "p=10/x=10/ts=2024-01-01 09%3A00%3A00",
        "p=11.25/x=11.25/ts=2023-12-31 23%3A00%3A00.5",
        "p=5/x=5/ts=2024-01-02 00%3A00%3A00",
    ];
    for (i, d) in dirs.iter().enumerate() {
        let id: ArrayRef = Arc::new(Int64Array::from(vec![i as i64 + 1]));
        write_parquet(&root.path().join(d).join("part-0.parquet"), &batch(vec![("id", id, false)]));
    }
    let types = [("p", "decimal(6,2)"), ("x", "double"), ("ts", "timestamp")];
    async fn run(
        root: &Path,
        types: &[(&str, &str)],
        filter: Option<&str>,
    ) -> starload::error::Result<BTreeMap<String, serde_json::Map<String, serde_json::Value>>> {
        let table = dup_table(
            "db",
            "t",
            "id",
            vec![col_nn("id", "BIGINT"), col("p", "DECIMAL(6,2)"), col("x", "DOUBLE"), col("ts", "DATETIME")],
        );
        let sim = sim(vec![table]).await;
        let state = tempfile::tempdir().unwrap();
        let mut f = job_file(&sim, root, "db.t", state.path());
        for (k, t) in types {
            f.partition_types.insert(k.to_string(), t.to_string());
        }
        f.transform.filter = filter.map(Into::into);
        load(f).await?;
        Ok(stored(&sim, "db", "t"))
    }
    let all = run(root.path(), &types, None).await.unwrap();
    assert_eq!(all.len(), 4);
    for (filter, want) in [
        ("p > '9.6'", vec!["1", "2", "3"]),
        ("p >= 5", vec!["1", "2", "3", "4"]),
        ("p = 10", vec!["2"]),
        ("p IN (9.7, 11.25)", vec!["1", "3"]),
        ("x > 9.6 AND x < 11", vec!["1", "2"]),
        ("ts > '2024-01-01 09:30:00'", vec!["1", "4"]),
        ("ts < '2024-01-01'", vec!["3"]),
    ] {
        let got = run(root.path(), &types, Some(filter)).await.unwrap_or_else(|e| panic!("{filter}: {e}"));
        assert_eq!(got.keys().collect::<Vec<_>>(), want, "{filter}");
        for id in got.keys() {
            assert_eq!(got[id], all[id], "{filter}: row {id} as without the filter");
        }
    }
    // A value its type would round, or a time in another form, is refused.
    for (dir, shown) in
        [("p=1.005/x=1/ts=2024-01-01 00%3A00%3A00", "p=1.005"), ("p=1/x=1/ts=2024-01-01T10%3A00%3A00Z", "ts=")]
    {
        let root = tempfile::tempdir().unwrap();
        write_parquet(&root.path().join(dir).join("part-0.parquet"), &batch(vec![("id", ids(1), false)]));
        let e = run(root.path(), &types, None).await.unwrap_err().to_string();
        assert!(e.contains(shown), "{dir}: {e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_null_partition_value_goes_to_the_partition_from_the_least_value() {
    // StarRocks' first `VALUES LESS THAN` partition starts at the type's
    // least value and holds NULL (the BE's range check has no lower key);
    // the simulator refused the row, and overwrite refused the job.
    use starload::sim::tables::PartitionSpec;
    let dir = tempfile::tempdir().unwrap();
    let dt: ArrayRef = Arc::new(Date32Array::from(vec![Some(19_844), None, Some(10)]));
    write_parquet(&dir.path().join("part-0.parquet"), &batch(vec![("id", ids(3), false), ("dt", dt, true)]));
    let table = |lowest: &str| {
        let mut t = dup_table("db", "t", "id", vec![col_nn("id", "BIGINT"), col("dt", "DATE")]);
        t.partition_by = Some("dt".into());
        t.partitions = vec![
            PartitionSpec { name: "p_old".into(), values: vec![], range: Some((lowest.into(), "2024-01-01".into())) },
            PartitionSpec {
                name: "p2024".into(),
                values: vec![],
                range: Some(("2024-01-01".into(), "2025-01-01".into())),
            },
        ];
        t
    };
    for mode in ["append", "overwrite"] {
        let sim = sim(vec![table("0000-01-01")]).await;
        let state = tempfile::tempdir().unwrap();
        let mut f = job_file(&sim, dir.path(), "db.t", state.path());
        f.mode = Some(mode.into());
        load(f).await.unwrap_or_else(|e| panic!("{mode}: {e}"));
        let got = stored(&sim, "db", "t");
        assert_eq!(got.keys().collect::<Vec<_>>(), ["1", "2", "3"], "{mode}");
        assert_eq!(got["2"]["dt"], json!(null), "{mode}");
    }
    // A first partition from another lower bound holds no NULL.
    for mode in ["append", "overwrite"] {
        let sim = sim(vec![table("1970-01-01")]).await;
        let state = tempfile::tempdir().unwrap();
        let mut f = job_file(&sim, dir.path(), "db.t", state.path());
        f.mode = Some(mode.into());
        let e = load(f).await.unwrap_err().to_string();
        assert!(e.contains("NULL") || e.contains("partition"), "{mode}: {e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_not_null_hll_or_bitmap_the_source_lacks_is_refused_before_sending() {
    // (PERCENTILE alike; the simulator has no PERCENTILE_UNION.)
    // StarRocks fills only an aggregate table's missing BITMAP column; the
    // others fail every load with "Column has no default value", which was
    // retried as if it might pass.
    use starload::sim::tables::{ColumnSpec, TableSpec};
    let dir = tempfile::tempdir().unwrap();
    write_parquet(&dir.path().join("part-0.parquet"), &batch(vec![("id", ids(2), false)]));
    let extra = |ty: &str, agg: Option<&str>| ColumnSpec {
        name: "x".into(),
        ty: ty.into(),
        nullable: false,
        default: None,
        agg: agg.map(Into::into),
    };
    let agg = |ty: &str, f: &str| TableSpec {
        keys: "AGG_KEYS".into(),
        ..dup_table("db", "t", "id", vec![col_nn("id", "BIGINT"), extra(ty, Some(f))])
    };
    let pk = TableSpec {
        keys: "PRI_KEYS".into(),
        ..dup_table("db", "t", "id", vec![col_nn("id", "BIGINT"), extra("BITMAP", None)])
    };
    for (t, refused) in [(agg("HLL", "HLL_UNION"), true), (pk, true), (agg("BITMAP", "BITMAP_UNION"), false)] {
        let what = format!("{} {}", t.keys, t.columns[1].ty);
        let sim = sim(vec![t]).await;
        let state = tempfile::tempdir().unwrap();
        let r = load(job_file(&sim, dir.path(), "db.t", state.path())).await;
        if refused {
            let e = r.unwrap_err();
            assert_eq!(e.kind(), starload::ErrorKind::Config, "{what}: {e}");
            assert!(e.to_string().contains("`x`"), "{what}: {e}");
            assert_eq!(sim.be_requests(), 0, "{what}");
        } else {
            assert_eq!(r.unwrap_or_else(|e| panic!("{what}: {e}")).load.rows_loaded, 2, "{what}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_inside_arrays_is_exact_in_json_rows_or_refused() {
    let table =
        || dup_table("db", "t", "id", vec![col_nn("id", "BIGINT"), col("j", "JSON"), col("ab", "ARRAY<VARBINARY>")]);
    let lists = |vals: &[&[u8]]| -> ArrayRef {
        let mut b = ListBuilder::new(BinaryBuilder::new());
        for v in vals {
            b.values().append_value(v);
            b.append(true);
        }
        Arc::new(b.finish())
    };
    // Row 1 goes as JSON (a JSON scalar): its UTF-8 bytes go as a JSON string,
    // stored as they are. Row 2 goes as CSV (base64 in the array text).
    let dir = tempfile::tempdir().unwrap();
    let j: ArrayRef = Arc::new(StringArray::from(vec!["7", "{}"]));
    write_parquet(
        &dir.path().join("ok.parquet"),
        &batch(vec![("id", ids(2), false), ("j", j, true), ("ab", lists(&[b"ab", b"\x00\xff"]), true)]),
    );
    let sim1 = sim(vec![table()]).await;
    let state = tempfile::tempdir().unwrap();
    load(job_file(&sim1, dir.path(), "db.t", state.path())).await.unwrap();
    let got = stored(&sim1, "db", "t");
    assert_eq!(got["1"]["ab"], json!([{"b64": "YWI="}]));
    assert_eq!(got["2"]["ab"], json!([{"b64": "AP8="}]));
    // Bytes that are not UTF-8 in a JSON row cannot travel exactly: refused.
    let dir = tempfile::tempdir().unwrap();
    let j: ArrayRef = Arc::new(StringArray::from(vec!["{}", "7"]));
    write_parquet(
        &dir.path().join("bad.parquet"),
        &batch(vec![("id", ids(2), false), ("j", j, true), ("ab", lists(&[b"ok", b"\x00\xff"]), true)]),
    );
    let sim2 = sim(vec![table()]).await;
    let state = tempfile::tempdir().unwrap();
    let e = load(job_file(&sim2, dir.path(), "db.t", state.path())).await.unwrap_err().to_string();
    assert!(e.contains("bad.parquet") && e.contains("row 2") && e.contains("`ab`") && e.contains("UTF-8"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statistics_old_writers_ordered_as_signed_bytes_do_not_prune() {
    // parquet-mr before 1.10 compared byte arrays as signed bytes
    // (PARQUET-686): a row group of `ab` and `é` got min `é`, max `ab`.
    // Readers ignore such statistics; pruning on them dropped the row.
    use parquet::arrow::arrow_writer::ArrowWriterOptions;
    use parquet::file::properties::{EnabledStatistics, WriterProperties};
    let write = |path: &Path, created_by: &str| {
        let b = batch(vec![
            ("id", ids(4), false),
            ("s", Arc::new(StringArray::from(vec!["ab", "é", "zz", "zz"])) as ArrayRef, true),
        ]);
        let props = WriterProperties::builder()
            .set_created_by(created_by.into())
            .set_statistics_enabled(EnabledStatistics::Chunk)
            .set_max_row_group_row_count(Some(2))
            .build();
        let options = ArrowWriterOptions::new().with_properties(props).with_skip_arrow_metadata(true);
        let mut bytes = Vec::new();
        let mut w = ArrowWriter::try_new_with_options(&mut bytes, b.schema(), options).unwrap();
        w.write(&b).unwrap();
        w.close().unwrap();
        // The first row group's min and max as that writer had them: the
        // two 2-byte values swapped in the footer.
        let len = u32::from_le_bytes(bytes[bytes.len() - 8..bytes.len() - 4].try_into().unwrap()) as usize;
        let footer = bytes.len() - 8 - len..bytes.len() - 8;
        let at = |v: &[u8]| {
            let hits: Vec<usize> =
                footer.clone().filter(|&i| bytes[i..].starts_with(&[&[2u8][..], v].concat())).collect();
            assert_eq!(hits.len(), 1, "{v:?} once in the footer");
            hits[0] + 1
        };
        let (lo, hi) = (at(b"ab"), at("é".as_bytes()));
        bytes[lo..lo + 2].copy_from_slice("é".as_bytes());
        bytes[hi..hi + 2].copy_from_slice(b"ab");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    };
    for (created_by, filter, rows) in [
        ("parquet-mr version 1.8.1 (build 1234)", "s = 'é'", 1),
        ("parquet-mr version 1.9.0 (build 1234)", "s > 'b'", 3),
        ("parquet-cpp version 1.2.0", "s >= 'é'", 1),
    ] {
        let dir = tempfile::tempdir().unwrap();
        write(&dir.path().join("old.parquet"), created_by);
        let sim = sim(vec![dup_table("db", "t", "id", vec![col_nn("id", "BIGINT"), col("s", "VARCHAR(8)")])]).await;
        let state = tempfile::tempdir().unwrap();
        let mut f = job_file(&sim, dir.path(), "db.t", state.path());
        f.transform.filter = Some(filter.into());
        let r = load(f).await.unwrap();
        assert_eq!(r.load.rows_loaded, rows, "{created_by}: {filter}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_where_on_a_cast_that_drops_fraction_digits_keeps_the_rows_the_cast_gives() {
    // DataFusion's simplifier turned `CAST(d AS INT) = 0` into `d = 0.00`:
    // the rows whose d is -0.01, 0.01, 0.49 and 0.50 cast to 0 in the
    // select list, yet the where clause dropped them.
    let dir = tempfile::tempdir().unwrap();
    let d: ArrayRef = Arc::new(
        Decimal128Array::from(vec![999, 1000, -1, 1, 9999, -9999, 100, 101, 50, 49])
            .with_precision_and_scale(10, 2)
            .unwrap(),
    );
    write_parquet(&dir.path().join("part-0.parquet"), &batch(vec![("id", ids(10), false), ("d", d, true)]));
    async fn run(dir: &Path, filter: Option<&str>) -> BTreeMap<String, serde_json::Map<String, serde_json::Value>> {
        let table =
            dup_table("db", "t", "id", vec![col_nn("id", "BIGINT"), col("di", "BIGINT"), col("d0", "DECIMAL(10,0)")]);
        let sim = sim(vec![table]).await;
        let state = tempfile::tempdir().unwrap();
        let mut f = job_file(&sim, dir, "db.t", state.path());
        f.transform.select = Some("id, CAST(d AS INT) AS di, CAST(d AS DECIMAL(10,0)) AS d0".into());
        f.transform.filter = filter.map(Into::into);
        load(f).await.unwrap();
        stored(&sim, "db", "t")
    }
    let all = run(dir.path(), None).await;
    assert_eq!(all["3"]["di"], json!("0"), "-0.01 casts to 0");
    let (zero, one) = (all["3"]["di"].clone(), all["7"]["d0"].clone());
    let di = |o: &serde_json::Map<String, serde_json::Value>| o["di"].as_str().unwrap().parse::<i64>().unwrap();
    type Keep = Box<dyn Fn(&serde_json::Map<String, serde_json::Value>) -> bool>;
    let cases: Vec<(&str, Keep)> = vec![
        ("CAST(d AS INT) = 0", Box::new(move |o| o["di"] == zero)),
        ("CAST(d AS INT) > 0 AND CAST(d AS INT) < 2", Box::new(move |o| di(o) == 1)),
        ("CAST(d AS INT) <> 0", Box::new(move |o| di(o) != 0)),
        ("TRY_CAST(d AS INT) = -99", Box::new(move |o| di(o) == -99)),
        ("CAST(d AS DECIMAL(10,0)) = 1", Box::new(move |o| o["d0"] == one)),
    ];
    for (filter, keep) in cases {
        let want: Vec<&String> = all.iter().filter(|(_, o)| keep(o)).map(|(id, _)| id).collect();
        assert!(!want.is_empty() && want.len() < all.len(), "{filter}");
        let got = run(dir.path(), Some(filter)).await;
        assert_eq!(got.keys().collect::<Vec<_>>(), want, "{filter}");
    }
}

/// Writes `b` in row groups of two rows, then gives the footer the
/// statistics `edit` returns for (row group, column): what another writer
/// would have written for the same pages.
fn write_with_statistics(
    path: &Path,
    b: &RecordBatch,
    created_by: &str,
    edit: impl Fn(usize, usize, &parquet::file::statistics::Statistics) -> parquet::file::statistics::Statistics,
) {
    use parquet::file::metadata::{ParquetMetaDataBuilder, ParquetMetaDataReader, ParquetMetaDataWriter};
    use parquet::file::properties::{EnabledStatistics, WriterProperties};
    let props = WriterProperties::builder()
        .set_created_by(created_by.into())
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .set_offset_index_disabled(true)
        .set_max_row_group_row_count(Some(2))
        .build();
    let options =
        parquet::arrow::arrow_writer::ArrowWriterOptions::new().with_properties(props).with_skip_arrow_metadata(true);
    let mut bytes = Vec::new();
    let mut w = ArrowWriter::try_new_with_options(&mut bytes, b.schema(), options).unwrap();
    w.write(b).unwrap();
    w.close().unwrap();
    let md = ParquetMetaDataReader::new().parse_and_finish(&bytes::Bytes::from(bytes.clone())).unwrap();
    let footer = u32::from_le_bytes(bytes[bytes.len() - 8..bytes.len() - 4].try_into().unwrap()) as usize;
    let mut builder = ParquetMetaDataBuilder::new_from_metadata(md);
    let groups = builder.take_row_groups();
    for (g, rg) in groups.into_iter().enumerate() {
        let columns = rg
            .columns()
            .iter()
            .enumerate()
            .map(|(c, cc)| {
                let stats = edit(g, c, cc.statistics().unwrap());
                cc.clone().into_builder().set_statistics(stats).build().unwrap()
            })
            .collect();
        builder = builder.add_row_group(rg.into_builder().set_column_metadata(columns).build().unwrap());
    }
    let md = builder.build();
    bytes.truncate(bytes.len() - 8 - footer);
    ParquetMetaDataWriter::new(&mut bytes, &md).finish().unwrap();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statistics_without_a_null_count_or_of_signed_byte_decimals_do_not_prune() {
    use parquet::data_type::FixedLenByteArray;
    use parquet::file::statistics::{Statistics, ValueStatistics};
    // Hive 2 (parquet-mr 1.8) wrote a FIXED_LEN_BYTE_ARRAY decimal's min
    // and max in the deprecated fields, its two's complement bytes compared
    // as signed bytes: 1.27 (0x..7F) and 1.28 (0x..80) gave min 1.28, max
    // 1.27, and a filter between them skipped the row group.
    let dir = tempfile::tempdir().unwrap();
    let d: ArrayRef =
        Arc::new(Decimal128Array::from(vec![127, 128, 300, 400]).with_precision_and_scale(20, 2).unwrap());
    let x: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), None, Some(2), Some(3)]));
    write_with_statistics(
        &dir.path().join("dec/old.parquet"),
        &batch(vec![("id", ids(4), false), ("d", d, true)]),
        "parquet-mr version 1.8.1 (build 4aba4dae7bb0d4edbcf7923ae1339f28fd3f7fcf)",
        |g, c, s| match (g, c, s) {
            (0, 1, Statistics::FixedLenByteArray(v)) => {
                let (lo, hi) = (v.min_opt().unwrap().clone(), v.max_opt().unwrap().clone());
                Statistics::FixedLenByteArray(ValueStatistics::<FixedLenByteArray>::new(
                    Some(hi),
                    Some(lo),
                    None,
                    v.null_count_opt(),
                    true,
                ))
            }
            _ => s.clone(),
        },
    );
    // The format makes a row group's null count optional, and its absence
    // means unknown: arrow-rs reads it as none, so `x IS NULL` skipped the
    // group that holds the NULL.
    write_with_statistics(
        &dir.path().join("nulls/part-0.parquet"),
        &batch(vec![("id", ids(4), false), ("x", x, true)]),
        "parquet-cpp-arrow version 21.0.0",
        |_, c, s| match s {
            Statistics::Int64(v) if c == 1 => {
                Statistics::Int64(ValueStatistics::new(v.min_opt().copied(), v.max_opt().copied(), None, None, false))
            }
            _ => s.clone(),
        },
    );
    for (source, column, filter, want) in [
        ("dec", ("d", "DECIMAL(20,2)"), "d = 1.27", vec!["1"]),
        ("dec", ("d", "DECIMAL(20,2)"), "d > 1.2 AND d < 2", vec!["1", "2"]),
        ("nulls", ("x", "BIGINT"), "x IS NULL", vec!["2"]),
        ("nulls", ("x", "BIGINT"), "x IS NOT NULL AND x < 3", vec!["1", "3"]),
    ] {
        let sim = sim(vec![dup_table("db", "t", "id", vec![col_nn("id", "BIGINT"), col(column.0, column.1)])]).await;
        let state = tempfile::tempdir().unwrap();
        let mut f = job_file(&sim, &dir.path().join(source), "db.t", state.path());
        f.transform.filter = Some(filter.into());
        load(f).await.unwrap();
        let got: Vec<String> = stored(&sim, "db", "t").keys().cloned().collect();
        assert_eq!(got, want, "{source}: {filter}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_parquet_type_wins_over_the_arrow_type_hint_beside_it() {
    use parquet::file::metadata::KeyValue;
    use parquet::file::properties::WriterProperties;
    // A local (not UTC-adjusted) timestamp whose ARROW:schema hint names a
    // zone: read as the local time the file stores, not converted. A
    // duration (a plain INT64 with a hint) loads into BIGINT as its count.
    let dir = tempfile::tempdir().unwrap();
    let ts: ArrayRef = Arc::new(TimestampMicrosecondArray::from(vec![1_704_164_645_123_456]));
    let dur: ArrayRef = Arc::new(DurationMicrosecondArray::from(vec![-90_000_000]));
    // The same inside a list and a struct.
    let item = Arc::new(Field::new("item", ts.data_type().clone(), true));
    let tl: ArrayRef = Arc::new(arrow::array::ListArray::new(
        item.clone(),
        arrow::buffer::OffsetBuffer::from_lengths([1]),
        ts.clone(),
        None,
    ));
    let ts_field = Arc::new(Field::new("t", ts.data_type().clone(), true));
    let tst: ArrayRef = Arc::new(arrow::array::StructArray::new(vec![ts_field].into(), vec![ts.clone()], None));
    let b =
        batch(vec![("id", ids(1), false), ("ts", ts, true), ("dur", dur, true), ("tl", tl, true), ("tst", tst, true)]);
    let tokyo =
        arrow::datatypes::DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, Some("Asia/Tokyo".into()));
    let hint = Schema::new(vec![
        Field::new("id", arrow::datatypes::DataType::Int64, false),
        Field::new("ts", tokyo.clone(), true),
        Field::new("dur", arrow::datatypes::DataType::Duration(arrow::datatypes::TimeUnit::Microsecond), true),
        Field::new("tl", arrow::datatypes::DataType::List(Arc::new(Field::new("item", tokyo.clone(), true))), true),
        Field::new(
            "tst",
            arrow::datatypes::DataType::Struct(vec![Arc::new(Field::new("t", tokyo, true))].into()),
            true,
        ),
    ]);
    let props = WriterProperties::builder()
        .set_key_value_metadata(Some(vec![KeyValue::new(
            "ARROW:schema".to_string(),
            parquet::arrow::encode_arrow_schema(&hint),
        )]))
        .build();
    let options =
        parquet::arrow::arrow_writer::ArrowWriterOptions::new().with_properties(props).with_skip_arrow_metadata(true);
    let f = std::fs::File::create(dir.path().join("hint.parquet")).unwrap();
    let mut w = ArrowWriter::try_new_with_options(f, b.schema(), options).unwrap();
    w.write(&b).unwrap();
    w.close().unwrap();
    let got = load_in_new_york(dir.path(), &[("ts", "DATETIME"), ("dur", "BIGINT")]).await;
    assert_eq!(got["1"]["ts"], json!({"ts_us": "1704164645123456"}), "2024-01-02 03:04:05.123456 as stored");
    assert_eq!(got["1"]["dur"], json!("-90000000"));
    let local = json!({"ts_us": "1704164645123456"});
    assert_eq!(got["1"]["tl"], json!([local]), "the same in a list");
    assert_eq!(got["1"]["tst"], json!({"t": local}), "and in a struct");
}

/// Loads `dir` with `timezone = "America/New_York"` into `db.t`: `id`, the
/// `top` columns, then `tl ARRAY<DATETIME>` and `tst STRUCT<t DATETIME>`.
/// The stored rows.
async fn load_in_new_york(
    dir: &Path,
    top: &[(&str, &str)],
) -> BTreeMap<String, serde_json::Map<String, serde_json::Value>> {
    load_in_zone(dir, top, "America/New_York").await
}

/// [`load_in_new_york`] in another zone.
async fn load_in_zone(
    dir: &Path,
    top: &[(&str, &str)],
    zone: &str,
) -> BTreeMap<String, serde_json::Map<String, serde_json::Value>> {
    let mut columns = vec![col_nn("id", "BIGINT")];
    columns.extend(top.iter().map(|(name, ty)| col(name, ty)));
    columns.extend([col("tl", "ARRAY<DATETIME>"), col("tst", "STRUCT<t DATETIME>")]);
    let sim = sim(vec![dup_table("db", "t", "id", columns)]).await;
    let state = tempfile::tempdir().unwrap();
    let mut f = job_file(&sim, dir, "db.t", state.path());
    f.timezone = Some(zone.into());
    load(f).await.unwrap();
    stored(&sim, "db", "t")
}

/// Before 1970 a zone's offsets are the system zoneinfo's (StarRocks' cctz
/// reads the BE's own), which for zones the tz database merged into a
/// neighbour keeps their own history where chrono-tz has the neighbour's
/// (Debian's tzdata: Amsterdam on +01:19:32 in summer 1930, Oslo on summer
/// time in 1960, Reykjavik on -01): at every depth, and as text. Python's
/// zoneinfo, which reads the same files, is the oracle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zoned_timestamps_before_1970_follow_the_system_zoneinfo() {
    for zone in ["Europe/Amsterdam", "Europe/Oslo", "Atlantic/Reykjavik"] {
        if !Path::new("/usr/share/zoneinfo").join(zone).exists() {
            continue; // no zoneinfo: chrono-tz's tables serve, and Python has none to compare
        }
        let dir = tempfile::tempdir().unwrap();
        let script = r#"
import sys, json, datetime as dt, zoneinfo, pyarrow as pa, pyarrow.parquet as pq
U = dt.timezone.utc
v = [dt.datetime(1930, 7, 1, 12, tzinfo=U), dt.datetime(1939, 1, 1, 12, tzinfo=U), dt.datetime(1960, 7, 1, 12, tzinfo=U),
     dt.datetime(1965, 1, 1, 12, tzinfo=U), dt.datetime(1899, 12, 31, 23, 59, 59, 999999, tzinfo=U)]
ts = pa.timestamp("us", tz="UTC")
pq.write_table(pa.table({
    "id": pa.array(range(1, len(v) + 1), pa.int64()),
    "ts": pa.array(v, ts),
    "s": pa.array(v, ts),
    "tl": pa.array([[x] for x in v], pa.list_(ts)),
    "tst": pa.array([{"t": x} for x in v], pa.struct([("t", ts)])),
}), f"{sys.argv[1]}/p.parquet")
z = zoneinfo.ZoneInfo(sys.argv[2])
local = [x.astimezone(z).replace(tzinfo=None).isoformat(sep=" ") for x in v]
json.dump(local, open(f"{sys.argv[1]}/local.json", "w"))
"#;
        run_pyarrow_args(script, dir.path(), &[zone]);
        let local: Vec<String> =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("local.json")).unwrap()).unwrap();
        std::fs::remove_file(dir.path().join("local.json")).unwrap();
        let got = load_in_zone(dir.path(), &[("ts", "DATETIME"), ("s", "VARCHAR(40)")], zone).await;
        for (i, local) in local.iter().enumerate() {
            let id = (i + 1).to_string();
            let d = chrono::NaiveDateTime::parse_from_str(local, "%Y-%m-%d %H:%M:%S%.f").unwrap();
            let stored_ts = json!({"ts_us": d.and_utc().timestamp_micros().to_string()});
            assert_eq!(got[&id]["ts"], stored_ts, "{zone} row {id}: top level, want {local}");
            assert_eq!(got[&id]["s"], json!(local), "{zone} row {id}: as text");
            assert_eq!(got[&id]["tl"], json!([stored_ts]), "{zone} row {id}: in a list");
            assert_eq!(got[&id]["tst"], json!({"t": stored_ts}), "{zone} row {id}: in a struct");
        }
    }
}

/// From 2100 on a named zone goes on with its daylight-saving rule
/// (chrono-tz, which DataFusion's own `to_local_time` uses, keeps the
/// offset of 2099's last change): the same wall-clock time at the top level,
/// in a list and in a struct, and as text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zoned_timestamps_from_2100_keep_the_zones_summer_time_at_every_depth() {
    let dir = tempfile::tempdir().unwrap();
    let script = r#"
import sys, datetime as dt, pyarrow as pa, pyarrow.parquet as pq
U = dt.timezone.utc
v = [dt.datetime(2099, 7, 1, 12, tzinfo=U), dt.datetime(2100, 7, 1, 12, tzinfo=U), dt.datetime(2244, 7, 10, 10, tzinfo=U),
     dt.datetime(2150, 1, 10, 12, tzinfo=U)]
ts = pa.timestamp("us", tz="UTC")
pq.write_table(pa.table({
    "id": pa.array(range(1, 5), pa.int64()),
    "ts": pa.array(v, ts),
    "s": pa.array(v, ts),
    "tl": pa.array([[x] for x in v], pa.list_(ts)),
    "tst": pa.array([{"t": x} for x in v], pa.struct([("t", ts)])),
}), f"{sys.argv[1]}/p.parquet")
"#;
    run_pyarrow(script, dir.path());
    let got = load_in_new_york(dir.path(), &[("ts", "DATETIME"), ("s", "VARCHAR(40)")]).await;
    for (id, local) in [
        ("1", "2099-07-01 08:00:00"),
        ("2", "2100-07-01 08:00:00"),
        ("3", "2244-07-10 06:00:00"),
        ("4", "2150-01-10 07:00:00"),
    ] {
        let d = chrono::NaiveDateTime::parse_from_str(local, "%Y-%m-%d %H:%M:%S").unwrap();
        let stored_ts = json!({"ts_us": d.and_utc().timestamp_micros().to_string()});
        assert_eq!(got[id]["ts"], stored_ts, "row {id}: top level");
        assert_eq!(got[id]["s"], json!(local), "row {id}: as text");
        assert_eq!(got[id]["tl"], json!([stored_ts]), "row {id}: in a list");
        assert_eq!(got[id]["tst"], json!({"t": stored_ts}), "row {id}: in a struct");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ancient_values_of_spark_legacy_calendar_files_are_refused() {
    use parquet::file::metadata::KeyValue;
    use parquet::file::properties::WriterProperties;
    let write = |path: &Path, kv: &[(&str, &str)], days: Vec<i32>, micros: Vec<i64>| {
        let b = batch(vec![
            ("id", ids(days.len() as i64), false),
            ("d", Arc::new(Date32Array::from(days)) as ArrayRef, true),
            ("ts", Arc::new(TimestampMicrosecondArray::from(micros).with_timezone("UTC")) as ArrayRef, true),
        ]);
        let props = WriterProperties::builder()
            .set_key_value_metadata(Some(kv.iter().map(|(k, v)| KeyValue::new(k.to_string(), v.to_string())).collect()))
            .build();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut w = ArrowWriter::try_new(std::fs::File::create(path).unwrap(), b.schema(), Some(props)).unwrap();
        w.write(&b).unwrap();
        w.close().unwrap();
    };
    let table = || dup_table("db", "t", "id", vec![col_nn("id", "BIGINT"), col("d", "DATE"), col("ts", "DATETIME")]);
    let (y1, y2024) = (-719_162, 19_723); // 0001-01-01, 2024-01-01
    let (t1850, t2024) = (-3_786_825_600_000_000i64, 1_704_067_200_000_000i64);
    // (footer key-values, dates, timestamps, the column refused in row 2)
    type Case<'a> = (&'a [(&'a str, &'a str)], Vec<i32>, Vec<i64>, Option<&'a str>);
    let cases: [Case; 5] = [
        // Spark 3 with LEGACY rebase: a date before 1582-10-15.
        (
            &[("org.apache.spark.version", "3.5.1"), ("org.apache.spark.legacyDateTime", "")],
            vec![y2024, y1],
            vec![t2024, t2024],
            Some("`d`"),
        ),
        // Spark 2.x: a timestamp before 1900.
        (&[("org.apache.spark.version", "2.4.8")], vec![y2024, y2024], vec![t2024, t1850], Some("`ts`")),
        // Spark 3 in CORRECTED mode, and a file from elsewhere: exact.
        (&[("org.apache.spark.version", "3.5.1")], vec![y1, y2024], vec![t1850, t2024], None),
        // Only INT96 in the old calendar, and the file has none: exact.
        (
            &[("org.apache.spark.version", "3.5.1"), ("org.apache.spark.legacyINT96", "")],
            vec![y1, y2024],
            vec![t1850, t2024],
            None,
        ),
        (&[], vec![y1, y2024], vec![t1850, t2024], None),
    ];
    for (kv, days, micros, refused) in cases {
        let dir = tempfile::tempdir().unwrap();
        write(&dir.path().join("part-0.parquet"), kv, days, micros);
        let sim = sim(vec![table()]).await;
        let state = tempfile::tempdir().unwrap();
        let r = load(job_file(&sim, dir.path(), "db.t", state.path())).await;
        match refused {
            Some(col) => {
                let e = r.unwrap_err().to_string();
                assert!(e.contains("part-0.parquet") && e.contains("row 2") && e.contains(col), "{kv:?}: {e}");
                assert!(e.contains("Julian"), "{e}");
                // After a where clause that drops row 1: still the file's row 2.
                let sim2 = crate::support::sim(vec![table()]).await;
                let state = tempfile::tempdir().unwrap();
                let mut f = job_file(&sim2, dir.path(), "db.t", state.path());
                f.transform.filter = Some("id <> 1".into());
                let e = load(f).await.unwrap_err().to_string();
                assert!(e.contains("part-0.parquet`, row 2, column") && e.contains(col), "{kv:?}: {e}");
                assert!(e.contains("Julian"), "{e}");
            }
            None => {
                r.unwrap_or_else(|e| panic!("{kv:?}: {e}"));
                let got = stored(&sim, "db", "t");
                assert_eq!(got["1"]["d"], json!("0001-01-01"), "{kv:?}");
            }
        }
    }

    // Inside arrays, structs and maps too (they loaded shifted by days).
    let list_of = |rows: Vec<Vec<i32>>| -> ArrayRef {
        let mut b = arrow::array::ListBuilder::new(arrow::array::Date32Builder::new());
        for r in rows {
            b.values().append_slice(&r);
            b.append(true);
        }
        Arc::new(b.finish())
    };
    let st = |micros: Vec<i64>| -> ArrayRef {
        let t: ArrayRef = Arc::new(TimestampMicrosecondArray::from(micros).with_timezone("UTC"));
        Arc::new(arrow::array::StructArray::from(vec![(
            Arc::new(arrow::datatypes::Field::new("t", t.data_type().clone(), true)),
            t,
        )]))
    };
    let nested_table = || {
        dup_table(
            "db",
            "t",
            "id",
            vec![col_nn("id", "BIGINT"), col("ad", "ARRAY<DATE>"), col("st", "STRUCT<t DATETIME>")],
        )
    };
    for (kv, ad, ts, refused) in [
        (
            &[("org.apache.spark.version", "3.5.1"), ("org.apache.spark.legacyDateTime", "")][..],
            vec![vec![y2024], vec![y2024, y1]],
            vec![t2024, t2024],
            Some("`ad`"),
        ),
        (&[("org.apache.spark.version", "2.4.8")][..], vec![vec![y2024], vec![]], vec![t2024, t1850], Some("`st`")),
        (&[("org.apache.spark.version", "3.5.1")][..], vec![vec![y1], vec![y1]], vec![t1850, t1850], None),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let b = batch(vec![("id", ids(2), false), ("ad", list_of(ad), true), ("st", st(ts), true)]);
        let props = WriterProperties::builder()
            .set_key_value_metadata(Some(kv.iter().map(|(k, v)| KeyValue::new(k.to_string(), v.to_string())).collect()))
            .build();
        let path = dir.path().join("part-0.parquet");
        let mut w = ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), b.schema(), Some(props)).unwrap();
        w.write(&b).unwrap();
        w.close().unwrap();
        let sim = sim(vec![nested_table()]).await;
        let state = tempfile::tempdir().unwrap();
        let r = load(job_file(&sim, dir.path(), "db.t", state.path())).await;
        match refused {
            Some(col) => {
                let e = r.unwrap_err().to_string();
                assert!(e.contains("part-0.parquet") && e.contains("row 2") && e.contains(col), "{kv:?}: {e}");
            }
            None => {
                r.unwrap_or_else(|e| panic!("{kv:?}: {e}"));
                assert_eq!(stored(&sim, "db", "t")["1"]["ad"], json!(["0001-01-01"]));
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_load_is_named_by_its_own_label() {
    // Row 2 needs the escaped part and has no partition: StarRocks rejects
    // that load (`…_b`); the plain load of rows 1 and 3 commits.
    let dir = tempfile::tempdir().unwrap();
    let s: ArrayRef = Arc::new(StringArray::from(vec!["a", "b\u{1}", "c"]));
    let dt: ArrayRef = Arc::new(Date32Array::from(vec![19_723, 19_800, 19_724]));
    write_parquet(
        &dir.path().join("part-0.parquet"),
        &batch(vec![("id", ids(3), false), ("s", s, true), ("dt", dt, true)]),
    );
    let mut t = dup_table("db", "t", "id", vec![col_nn("id", "BIGINT"), col("s", "VARCHAR(8)"), col("dt", "DATE")]);
    t.partition_by = Some("dt".into());
    t.partitions = vec![starload::sim::tables::PartitionSpec {
        name: "p202401".into(),
        values: vec![],
        range: Some(("2024-01-01".into(), "2024-02-01".into())),
    }];
    let sim = sim(vec![t]).await;
    let state = tempfile::tempdir().unwrap();
    let e = load(job_file(&sim, dir.path(), "db.t", state.path())).await.unwrap_err().to_string();
    assert!(e.contains("_0_b`"), "{e}");
    assert_eq!(sim.rows("db", "t").len(), 2, "the chunk's plain load committed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finalize_without_journals_refuses_a_chunk_whose_load_aborted() {
    use starload::sim::{Fault, FaultRule};
    let dir = tempfile::tempdir().unwrap();
    let s: ArrayRef = Arc::new(StringArray::from(vec!["a", "b\u{1}", "c"]));
    write_parquet(&dir.path().join("part-0.parquet"), &batch(vec![("id", ids(3), false), ("s", s, true)]));
    let sim = sim(vec![dup_table("db", "t", "id", vec![col_nn("id", "BIGINT"), col("s", "VARCHAR(8)")])]).await;
    // The chunk's escaped load (`…_0_b`) is refused; its plain load commits.
    sim.add_fault(FaultRule::on_label("_0_b", Fault::Fail("too many filtered rows".into())));
    let state = tempfile::tempdir().unwrap();
    let f = job_file(&sim, dir.path(), "db.t", state.path());
    load(f.clone()).await.unwrap_err();
    assert_eq!(sim.rows("db", "t").len(), 2);
    // finalize elsewhere (no journals): the plain label is committed, but the
    // chunk is not complete.
    let other = tempfile::tempdir().unwrap();
    let g = job_file(&sim, dir.path(), "db.t", other.path());
    let p = starload::job::prepare(settings(g)).await.unwrap();
    let e = starload::job::finalize(p, 1).await.unwrap_err().to_string();
    assert!(e.contains("_0_b`") && e.contains("aborted"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_where_clause_on_floats_keeps_the_nan_rows_it_matches() {
    // Row group 1 is [0.1, NaN]: its statistics (max 0.1, NaN left out) must
    // not prune it for `f > 0.5`, which NaN satisfies (NaN sorts above every
    // number).
    use parquet::file::properties::WriterProperties;
    let dir = tempfile::tempdir().unwrap();
    let b = batch(vec![
        ("id", ids(4), false),
        ("f", Arc::new(Float64Array::from(vec![0.1, f64::NAN, 0.9, 0.2])) as ArrayRef, true),
    ]);
    let props = WriterProperties::builder().set_max_row_group_row_count(Some(2)).build();
    let mut w = ArrowWriter::try_new(
        std::fs::File::create(dir.path().join("part-0.parquet")).unwrap(),
        b.schema(),
        Some(props),
    )
    .unwrap();
    w.write(&b).unwrap();
    w.close().unwrap();
    let sim = sim(vec![dup_table("db", "t", "id", vec![col_nn("id", "BIGINT"), col("f", "DOUBLE")])]).await;
    let state = tempfile::tempdir().unwrap();
    let mut f = job_file(&sim, dir.path(), "db.t", state.path());
    f.transform.filter = Some("f > 0.5".into());
    load(f).await.unwrap();
    let got: Vec<String> = stored(&sim, "db", "t").into_keys().collect();
    assert_eq!(got, ["2", "3"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_documents_keep_their_types_in_every_body_kind() {
    use arrow::buffer::OffsetBuffer;
    use arrow::datatypes::DataType;
    // Row 1 goes as CSV, row 2 as JSON (its `s` is a JSON scalar).
    let mut lb = ListBuilder::new(BooleanBuilder::new());
    for _ in 0..2 {
        lb.values().append_value(true);
        lb.values().append_value(false);
        lb.values().append_null();
        lb.append(true);
    }
    let bools: ArrayRef = Arc::new(lb.finish());
    let dec: ArrayRef = Arc::new(Decimal128Array::from(vec![25, -5]).with_precision_and_scale(10, 1).unwrap());
    let flag: ArrayRef = Arc::new(BooleanArray::from(vec![true, false]));
    let quoted: ArrayRef = Arc::new(StringArray::from(vec!["a\"b", "c"]));
    let st = StructArray::from(vec![
        (Arc::new(Field::new("d", DataType::Decimal128(10, 1), true)), dec),
        (Arc::new(Field::new("b", DataType::Boolean, true)), flag),
        (Arc::new(Field::new("q", DataType::Utf8, true)), quoted),
    ]);
    let item = Arc::new(Field::new("item", st.data_type().clone(), true));
    let structs: ArrayRef =
        Arc::new(ListArray::new(item, OffsetBuffer::from_lengths([1, 1]), Arc::new(st) as ArrayRef, None));
    let s: ArrayRef = Arc::new(StringArray::from(vec!["{}", "7"]));
    let dir = tempfile::tempdir().unwrap();
    write_parquet(
        &dir.path().join("part-0.parquet"),
        &batch(vec![("id", ids(2), false), ("s", s, true), ("lb", bools, true), ("ls", structs, true)]),
    );
    let sim = sim(vec![dup_table(
        "db",
        "t",
        "id",
        vec![col_nn("id", "BIGINT"), col("s", "JSON"), col("lb", "JSON"), col("ls", "JSON")],
    )])
    .await;
    let state = tempfile::tempdir().unwrap();
    let r = load(job_file(&sim, dir.path(), "db.t", state.path())).await.unwrap();
    assert_eq!(r.load.chunks_json, 1);
    let got = stored(&sim, "db", "t");
    for id in ["1", "2"] {
        assert_eq!(got[id]["lb"], json!({"json": [true, false, null]}), "row {id}");
    }
    assert_eq!(got["1"]["ls"], json!({"json": [{"d": 2.5, "b": true, "q": "a\"b"}]}));
    assert_eq!(got["2"]["ls"], json!({"json": [{"d": -0.5, "b": false, "q": "c"}]}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn int96_nanoseconds_below_a_microsecond_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let script = r#"
import sys, pyarrow as pa, pyarrow.parquet as pq
ns = 1_704_067_200_000_000_000
for name, second in [("ok", ns + 123_456_000), ("bad", ns + 123_456_789)]:
    t = pa.table({"id": pa.array([1, 2], pa.int64()), "t": pa.array([ns, second], pa.timestamp("ns"))})
    pq.write_table(t, f"{sys.argv[1]}/{name}/part-0.parquet", use_deprecated_int96_timestamps=True, row_group_size=1)
# Nested: the reader drops the nanoseconds there too. Row 4's list holds the
# value, after an empty and a NULL list (rows counted by repetition level).
ts = pa.timestamp("ns")
l = pa.array([[ns], [], None, [ns, ns + 123_456_789]], pa.list_(ts))
m = pa.array([[("a", ns)], [], None, [("b", ns + 1_000)]], pa.map_(pa.string(), ts))
t = pa.table({"id": pa.array([1, 2, 3, 4], pa.int64()), "l": l, "m": m})
pq.write_table(t, f"{sys.argv[1]}/nested/part-0.parquet", use_deprecated_int96_timestamps=True)
t = pa.table({"id": pa.array([1, 2], pa.int64()), "st": pa.array([{"t": ns}, {"t": ns - 1}], pa.struct([("t", ts)]))})
pq.write_table(t, f"{sys.argv[1]}/nested_struct/part-0.parquet", use_deprecated_int96_timestamps=True)
"#;
    for d in ["ok", "bad", "nested", "nested_struct"] {
        std::fs::create_dir_all(dir.path().join(d)).unwrap();
    }
    run_pyarrow(script, dir.path());
    let table = || dup_table("db", "t", "id", vec![col_nn("id", "BIGINT"), col("t", "DATETIME")]);
    let sim1 = sim(vec![table()]).await;
    let state = tempfile::tempdir().unwrap();
    load(job_file(&sim1, &dir.path().join("ok"), "db.t", state.path())).await.unwrap();
    let mut got: Vec<Option<String>> = sim1.rows("db", "t").iter().map(|r| r[1].display()).collect();
    got.sort();
    assert_eq!(got, [Some("2024-01-01 00:00:00".into()), Some("2024-01-01 00:00:00.123456".into())]);
    let sim2 = sim(vec![table()]).await;
    let state = tempfile::tempdir().unwrap();
    let e = load(job_file(&sim2, &dir.path().join("bad"), "db.t", state.path())).await.unwrap_err().to_string();
    assert!(
        e.contains("part-0.parquet") && e.contains("row 2") && e.contains("`t`") && e.contains("nanoseconds"),
        "{e}"
    );
    let nested = dup_table(
        "db",
        "t",
        "id",
        vec![col_nn("id", "BIGINT"), col("l", "ARRAY<DATETIME>"), col("m", "MAP<VARCHAR(5),DATETIME>")],
    );
    let sim4 = sim(vec![nested]).await;
    let state = tempfile::tempdir().unwrap();
    let e = load(job_file(&sim4, &dir.path().join("nested"), "db.t", state.path())).await.unwrap_err().to_string();
    assert!(
        e.contains("part-0.parquet") && e.contains("row 4") && e.contains("`l`") && e.contains("nanoseconds"),
        "{e}"
    );
    assert_eq!(sim4.rows("db", "t").len(), 0);
    let sim5 =
        sim(vec![dup_table("db", "t", "id", vec![col_nn("id", "BIGINT"), col("st", "STRUCT<t DATETIME>")])]).await;
    let state = tempfile::tempdir().unwrap();
    let e =
        load(job_file(&sim5, &dir.path().join("nested_struct"), "db.t", state.path())).await.unwrap_err().to_string();
    assert!(e.contains("row 2") && e.contains("`st`") && e.contains("nanoseconds"), "{e}");
    // A negative time of day (older pyarrow, before 1970): StarRocks reads
    // it as unsigned, another time; refused too.
    use parquet::data_type::{Int64Type, Int96, Int96Type};
    let neg = tempfile::tempdir().unwrap();
    let schema = std::sync::Arc::new(
        parquet::schema::parser::parse_message_type("message m { required int64 id; optional int96 t; }").unwrap(),
    );
    let f = std::fs::File::create(neg.path().join("neg.parquet")).unwrap();
    let mut w = parquet::file::writer::SerializedFileWriter::new(f, schema, Default::default()).unwrap();
    let mut rg = w.next_row_group().unwrap();
    let mut c = rg.next_column().unwrap().unwrap();
    c.typed::<Int64Type>().write_batch(&[1, 2], None, None).unwrap();
    c.close().unwrap();
    let (ok, minus_1ms) = (Int96::from(vec![0, 0, 2_440_588]), (-1_000_000i64) as u64);
    let bad = Int96::from(vec![minus_1ms as u32, (minus_1ms >> 32) as u32, 2_440_588]);
    let mut c = rg.next_column().unwrap().unwrap();
    c.typed::<Int96Type>().write_batch(&[ok, bad], Some(&[1, 1]), None).unwrap();
    c.close().unwrap();
    rg.close().unwrap();
    w.close().unwrap();
    let sim3 = sim(vec![table()]).await;
    let state = tempfile::tempdir().unwrap();
    let e = load(job_file(&sim3, neg.path(), "db.t", state.path())).await.unwrap_err().to_string();
    assert!(e.contains("neg.parquet") && e.contains("row 2") && e.contains("outside 0–24 h"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_whose_writers_chose_other_string_layouts_load_together() {
    // pyarrow writes Utf8, polars LargeUtf8 or a dictionary (categorical):
    // one Parquet type, one source.
    let dir = tempfile::tempdir().unwrap();
    let small: ArrayRef = Arc::new(StringArray::from(vec!["a", "b"]));
    let large: ArrayRef = Arc::new(LargeStringArray::from(vec!["c", "d\u{1}"]));
    let dict: ArrayRef = Arc::new(vec!["e", "e"].into_iter().collect::<DictionaryArray<arrow::datatypes::Int32Type>>());
    write_parquet(&dir.path().join("a.parquet"), &batch(vec![("id", ids(2), false), ("s", small, true)]));
    write_parquet(
        &dir.path().join("b.parquet"),
        &batch(vec![("id", Arc::new(Int64Array::from(vec![3, 4])), false), ("s", large, true)]),
    );
    write_parquet(
        &dir.path().join("c.parquet"),
        &batch(vec![("id", Arc::new(Int64Array::from(vec![5, 6])), false), ("s", dict, true)]),
    );
    let sim = sim(vec![dup_table("db", "t", "id", vec![col_nn("id", "BIGINT"), col("s", "VARCHAR(8)")])]).await;
    let state = tempfile::tempdir().unwrap();
    load(job_file(&sim, dir.path(), "db.t", state.path())).await.unwrap();
    let got: Vec<serde_json::Value> = stored(&sim, "db", "t").values().map(|o| o["s"].clone()).collect();
    assert_eq!(got, [json!("a"), json!("b"), json!("c"), json!("d\u{1}"), json!("e"), json!("e")]);
}

/// Integers into FLOAT/DOUBLE are exact when their significant bits fit
/// the mantissa, whatever their magnitude (2^60 is an exact double).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integers_into_floats_are_checked_by_their_bits() {
    let table = || dup_table("db", "t", "id", vec![col_nn("id", "BIGINT"), col("d", "DOUBLE"), col("f", "FLOAT")]);
    let dir = tempfile::tempdir().unwrap();
    let d: ArrayRef = Arc::new(Int64Array::from(vec![1 << 60, (1 << 53) + 2, -(1 << 62)]));
    let f: ArrayRef = Arc::new(Int64Array::from(vec![1 << 53, 3 << 40, -(1 << 24)]));
    write_parquet(&dir.path().join("a.parquet"), &batch(vec![("id", ids(3), false), ("d", d, true), ("f", f, true)]));
    let sim1 = sim(vec![table()]).await;
    let state = tempfile::tempdir().unwrap();
    load(job_file(&sim1, dir.path(), "db.t", state.path())).await.unwrap();
    let got = stored(&sim1, "db", "t");
    let bits = |x: f64| json!({"f64": format!("{:016x}", x.to_bits())});
    let bits32 = |x: f32| json!({"f32": format!("{:08x}", x.to_bits())});
    assert_eq!(got["1"]["d"], bits((1u64 << 60) as f64));
    assert_eq!(got["2"]["d"], bits(((1u64 << 53) + 2) as f64));
    assert_eq!(got["3"]["d"], bits(-((1u64 << 62) as f64)));
    assert_eq!(got["1"]["f"], bits32((1u64 << 53) as f32));
    assert_eq!(got["2"]["f"], bits32((3u64 << 40) as f32));
    assert_eq!(got["3"]["f"], bits32(-16_777_216.0));
    for (col, v) in [("d", (1i64 << 53) + 1), ("f", 16_777_217)] {
        let dir = tempfile::tempdir().unwrap();
        let (d, f) = if col == "d" { (v, 1) } else { (1, v) };
        let d: ArrayRef = Arc::new(Int64Array::from(vec![1, d]));
        let f: ArrayRef = Arc::new(Int64Array::from(vec![1, f]));
        write_parquet(
            &dir.path().join("b.parquet"),
            &batch(vec![("id", ids(2), false), ("d", d, true), ("f", f, true)]),
        );
        let sim2 = sim(vec![table()]).await;
        let state = tempfile::tempdir().unwrap();
        let e = load(job_file(&sim2, dir.path(), "db.t", state.path())).await.unwrap_err().to_string();
        assert!(e.contains("row 2") && e.contains(&format!("`{col}`")) && e.contains("exactly"), "{v}: {e}");
    }
}

/// pandas types an all-None object column `null` in a file that holds no
/// value: it loads beside the files where the column is a string.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_all_null_column_goes_with_the_other_files_type() {
    let dir = tempfile::tempdir().unwrap();
    let n: ArrayRef = Arc::new(NullArray::new(2));
    let s: ArrayRef = Arc::new(StringArray::from(vec![Some("x"), None]));
    write_parquet(&dir.path().join("a.parquet"), &batch(vec![("id", ids(2), false), ("s", n, true)]));
    write_parquet(
        &dir.path().join("b.parquet"),
        &batch(vec![("id", Arc::new(Int64Array::from(vec![3, 4])), false), ("s", s, true)]),
    );
    let sim = sim(vec![dup_table("db", "t", "id", vec![col_nn("id", "BIGINT"), col("s", "VARCHAR(8)")])]).await;
    let state = tempfile::tempdir().unwrap();
    load(job_file(&sim, dir.path(), "db.t", state.path())).await.unwrap();
    let got: Vec<serde_json::Value> = stored(&sim, "db", "t").into_values().map(|o| o["s"].clone()).collect();
    assert_eq!(got, [json!(null), json!(null), json!("x"), json!(null)]);
}

/// A struct with two fields of one name into JSON: the object would keep
/// one of them (pyarrow allows such structs). Refused naming the column.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_struct_with_a_repeated_field_name_is_not_folded_into_json() {
    let dir = tempfile::tempdir().unwrap();
    let a: ArrayRef = Arc::new(Int64Array::from(vec![1, 2]));
    let b: ArrayRef = Arc::new(Int64Array::from(vec![3, 4]));
    let v: ArrayRef = Arc::new(arrow::array::StructArray::from(vec![
        (Arc::new(Field::new("a", arrow::datatypes::DataType::Int64, true)), a),
        (Arc::new(Field::new("a", arrow::datatypes::DataType::Int64, true)), b),
    ]));
    write_parquet(&dir.path().join("a.parquet"), &batch(vec![("id", ids(2), false), ("v", v, true)]));
    let sim = sim(vec![dup_table("db", "t", "id", vec![col_nn("id", "BIGINT"), col("v", "JSON")])]).await;
    let state = tempfile::tempdir().unwrap();
    let e = load(job_file(&sim, dir.path(), "db.t", state.path())).await.unwrap_err().to_string();
    assert!(e.contains("`v`") && e.contains("two fields named `a`"), "{e}");
    assert_eq!(sim.be_requests(), 0);
}

/// Text into FLOAT/DOUBLE (a Hive `double` partition key, a string column):
/// loaded when the number it spells is the float's own, refused otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn number_text_into_floats_is_exact_or_refused() {
    let table = || dup_table("db", "t", "id", vec![col_nn("id", "BIGINT"), col("d", "DOUBLE"), col("f", "FLOAT")]);
    let dir = tempfile::tempdir().unwrap();
    let d: ArrayRef = Arc::new(StringArray::from(vec![Some("1.50"), Some("1e20"), Some(".5"), None]));
    let f: ArrayRef = Arc::new(StringArray::from(vec![Some("0.1"), Some("-0"), Some("3.4028235e38"), Some("2")]));
    write_parquet(&dir.path().join("a.parquet"), &batch(vec![("id", ids(4), false), ("d", d, true), ("f", f, true)]));
    let sim1 = sim(vec![table()]).await;
    let state = tempfile::tempdir().unwrap();
    load(job_file(&sim1, dir.path(), "db.t", state.path())).await.unwrap();
    let got = stored(&sim1, "db", "t");
    let bits = |x: f64| json!({"f64": format!("{:016x}", x.to_bits())});
    let bits32 = |x: f32| json!({"f32": format!("{:08x}", x.to_bits())});
    assert_eq!(got["1"]["d"], bits(1.5));
    assert_eq!(got["2"]["d"], bits(1e20));
    assert_eq!(got["3"]["d"], bits(0.5));
    assert_eq!(got["4"]["d"], json!(null));
    assert_eq!(got["1"]["f"], bits32(0.1));
    assert_eq!(got["2"]["f"], bits32(-0.0));
    assert_eq!(got["3"]["f"], bits32(f32::MAX));
    assert_eq!(got["4"]["f"], bits32(2.0));
    for (col, text) in [("d", "0.30000000000000000001"), ("d", "NaN"), ("f", "0.123456789"), ("d", " 1")] {
        let dir = tempfile::tempdir().unwrap();
        let (d, f) = if col == "d" { (text, "1") } else { ("1", text) };
        let d: ArrayRef = Arc::new(StringArray::from(vec!["1", d]));
        let f: ArrayRef = Arc::new(StringArray::from(vec!["1", f]));
        write_parquet(
            &dir.path().join("b.parquet"),
            &batch(vec![("id", ids(2), false), ("d", d, true), ("f", f, true)]),
        );
        let sim2 = sim(vec![table()]).await;
        let state = tempfile::tempdir().unwrap();
        let e = load(job_file(&sim2, dir.path(), "db.t", state.path())).await.unwrap_err().to_string();
        assert!(e.contains("b.parquet") && e.contains("row 2") && e.contains(&format!("`{col}`")), "{text}: {e}");
    }
}

/// pyarrow's decimal32/decimal64 (stored as INT32/INT64, read back as such
/// through the embedded Arrow schema) load like any decimal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decimal32_and_decimal64_load_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let d32: ArrayRef =
        Arc::new(Decimal32Array::from(vec![Some(999_999_999), Some(-5), None]).with_precision_and_scale(9, 2).unwrap());
    let d64: ArrayRef = Arc::new(
        Decimal64Array::from(vec![Some(-999_999_999_999_999_999), Some(1), Some(0)])
            .with_precision_and_scale(18, 18)
            .unwrap(),
    );
    write_parquet(
        &dir.path().join("a.parquet"),
        &batch(vec![("id", ids(3), false), ("a", d32, true), ("b", d64, true)]),
    );
    let sim = sim(vec![dup_table(
        "db",
        "t",
        "id",
        vec![col_nn("id", "BIGINT"), col("a", "DECIMAL(10,3)"), col("b", "DECIMAL(38,18)")],
    )])
    .await;
    let state = tempfile::tempdir().unwrap();
    load(job_file(&sim, dir.path(), "db.t", state.path())).await.unwrap();
    let got = stored(&sim, "db", "t");
    let row = |id: &str| [got[id]["a"].clone(), got[id]["b"].clone()];
    let dec = |d: &str, scale: u8| json!({"dec": d, "scale": scale});
    assert_eq!(row("1"), [dec("9999999990", 3), dec("-999999999999999999", 18)]);
    assert_eq!(row("2"), [dec("-50", 3), dec("1", 18)]);
    assert_eq!(row("3"), [json!(null), dec("0", 18)]);
}

/// Files of one table written with timestamps in other units (polars
/// switched from ms to µs) or zones load together, exactly; a file in
/// nanoseconds beside one in µs is refused (a cast would truncate).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamps_in_other_units_and_zones_load_together() {
    let dir = tempfile::tempdir().unwrap();
    let ms: ArrayRef = Arc::new(TimestampMillisecondArray::from(vec![1_704_067_200_123]).with_timezone("UTC"));
    let us: ArrayRef =
        Arc::new(TimestampMicrosecondArray::from(vec![1_704_067_200_123_456]).with_timezone("Europe/Berlin"));
    let s: ArrayRef = Arc::new(TimestampSecondArray::from(vec![-62_135_596_800]).with_timezone("UTC"));
    write_parquet(&dir.path().join("a.parquet"), &batch(vec![("id", ids(1), false), ("t", ms, true)]));
    write_parquet(
        &dir.path().join("b.parquet"),
        &batch(vec![("id", Arc::new(Int64Array::from(vec![2])), false), ("t", us, true)]),
    );
    write_parquet(
        &dir.path().join("c.parquet"),
        &batch(vec![("id", Arc::new(Int64Array::from(vec![3])), false), ("t", s, true)]),
    );
    let table = || dup_table("db", "t", "id", vec![col_nn("id", "BIGINT"), col("t", "DATETIME")]);
    let sim1 = sim(vec![table()]).await;
    let state = tempfile::tempdir().unwrap();
    load(job_file(&sim1, dir.path(), "db.t", state.path())).await.unwrap();
    let got: Vec<serde_json::Value> = stored(&sim1, "db", "t").into_values().map(|o| o["t"].clone()).collect();
    assert_eq!(
        got,
        [
            json!({"ts_us": "1704067200123000"}),
            json!({"ts_us": "1704067200123456"}),
            json!({"ts_us": "-62135596800000000"})
        ]
    );
    let ns: ArrayRef = Arc::new(TimestampNanosecondArray::from(vec![1_704_067_200_123_456_789]).with_timezone("UTC"));
    write_parquet(
        &dir.path().join("d.parquet"),
        &batch(vec![("id", Arc::new(Int64Array::from(vec![4])), false), ("t", ns, true)]),
    );
    let sim2 = sim(vec![table()]).await;
    let state = tempfile::tempdir().unwrap();
    let e = load(job_file(&sim2, dir.path(), "db.t", state.path())).await.unwrap_err().to_string();
    assert!(e.contains("`t`") && e.contains("d.parquet"), "{e}");
}

/// polars' Enum is a dictionary with `UInt8` keys: a first file holding one
/// and a second plain file with 300 distinct values load together (the
/// second was cast into the first's dictionary type and overflowed its keys).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_dictionary_first_does_not_bound_the_other_files() {
    let dir = tempfile::tempdir().unwrap();
    let e: ArrayRef = Arc::new(vec!["x", "y"].into_iter().collect::<DictionaryArray<arrow::datatypes::UInt8Type>>());
    write_parquet(&dir.path().join("a.parquet"), &batch(vec![("id", ids(2), false), ("s", e, true)]));
    let many: Vec<String> = (0..300).map(|i| format!("v{i}")).collect();
    let plain: ArrayRef = Arc::new(StringArray::from(many.clone()));
    write_parquet(
        &dir.path().join("b.parquet"),
        &batch(vec![("id", Arc::new(Int64Array::from_iter_values(3..303)), false), ("s", plain, true)]),
    );
    let sim = sim(vec![dup_table("db", "t", "id", vec![col_nn("id", "BIGINT"), col("s", "VARCHAR(8)")])]).await;
    let state = tempfile::tempdir().unwrap();
    load(job_file(&sim, dir.path(), "db.t", state.path())).await.unwrap();
    let got: Vec<serde_json::Value> = stored(&sim, "db", "t").into_values().map(|o| o["s"].clone()).collect();
    let mut want = vec![json!("x"), json!("y")];
    want.extend(many.iter().map(|v| json!(v)));
    let mut got_sorted = got.clone();
    got_sorted.sort_by_key(|v| v.to_string());
    want.sort_by_key(|v| v.to_string());
    assert_eq!(got_sorted, want);
}

/// A Parquet UUID goes into a string column as its canonical text (its 16
/// bytes loaded as they were: NULs, or `ABCDEFGHIJKLMNOP` when they happen
/// to be UTF-8), and into VARBINARY as its 16 bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uuids_go_into_strings_as_text_and_into_binaries_as_bytes() {
    let dir = testdata_dir("duckdb-uuid.parquet", "part-0.parquet");
    let texts = [
        json!("00000000-0000-0000-0000-000000000000"),
        json!("41424344-4546-4748-494a-4b4c4d4e4f50"),
        json!(null),
        json!("f81d4fae-7dec-11d0-a765-00a0c91e6bf6"),
        json!("ffffffff-ffff-ffff-ffff-ffffffffffff"),
    ];
    for (ty, select) in [("VARCHAR(36)", None), ("CHAR(36)", None), ("VARCHAR(64)", Some("id, u AS u"))] {
        let sim = sim(vec![dup_table("db", "t", "id", vec![col_nn("id", "INT"), col("u", ty)])]).await;
        let state = tempfile::tempdir().unwrap();
        let mut f = job_file(&sim, dir.path(), "db.t", state.path());
        f.transform.select = select.map(String::from);
        load(f).await.unwrap_or_else(|e| panic!("{ty}: {e}"));
        let got: Vec<serde_json::Value> = stored(&sim, "db", "t").into_values().map(|o| o["u"].clone()).collect();
        assert_eq!(got, texts, "{ty}");
    }
    let bin = sim(vec![dup_table("db", "t", "id", vec![col_nn("id", "INT"), col("u", "VARBINARY(16)")])]).await;
    let state = tempfile::tempdir().unwrap();
    load(job_file(&bin, dir.path(), "db.t", state.path())).await.unwrap();
    let got = stored(&bin, "db", "t");
    assert_eq!(got["2"]["u"], json!({"b64": "QUJDREVGR0hJSktMTU5PUA=="}));
    // Too long for the column: refused naming the row.
    let short = sim(vec![dup_table("db", "t", "id", vec![col_nn("id", "INT"), col("u", "VARCHAR(20)")])]).await;
    let state = tempfile::tempdir().unwrap();
    let e = load(job_file(&short, dir.path(), "db.t", state.path())).await.unwrap_err().to_string();
    assert!(e.contains("part-0.parquet") && e.contains("row 1") && e.contains("`u`"), "{e}");
    // Beside a file whose `u` is plain 16-byte binary: refused, since one
    // column type is read for both and the plain bytes would become text.
    let id: ArrayRef = Arc::new(Int32Array::from(vec![9]));
    let plain: ArrayRef =
        Arc::new(FixedSizeBinaryArray::try_from_iter([b"abcdefghijklmnop".as_slice()].into_iter()).unwrap());
    write_parquet(&dir.path().join("part-1.parquet"), &batch(vec![("id", id, true), ("u", plain, true)]));
    let mixed = sim(vec![dup_table("db", "t", "id", vec![col_nn("id", "INT"), col("u", "VARCHAR(64)")])]).await;
    let state = tempfile::tempdir().unwrap();
    let e = load(job_file(&mixed, dir.path(), "db.t", state.path())).await.unwrap_err().to_string();
    assert!(e.contains("is a UUID in") && e.contains("part-1.parquet"), "{e}");
}

/// Integer arithmetic in the transform fails instead of wrapping around
/// (`i16 * i16` of 30000 was -5888, `-i64::MIN` stayed negative).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transform_arithmetic_that_overflows_fails_the_load() {
    let dir = tempfile::tempdir().unwrap();
    let mn: ArrayRef = Arc::new(Int64Array::from(vec![i64::MIN, 0]));
    let i16s: ArrayRef = Arc::new(Int16Array::from(vec![30000, 1]));
    let u8s: ArrayRef = Arc::new(UInt8Array::from(vec![200, 1]));
    let i32s: ArrayRef = Arc::new(Int32Array::from(vec![2_000_000_000, 1]));
    write_parquet(
        &dir.path().join("part-0.parquet"),
        &batch(vec![
            ("id", ids(2), false),
            ("mn", mn, true),
            ("i16", i16s, true),
            ("u8", u8s, true),
            ("i32", i32s, true),
        ]),
    );
    for (expr, target) in [
        // Literal-only arithmetic is not folded with wrapping at planning.
        ("9223372036854775807 + 1", "LARGEINT"),
        ("CAST(2147483647 AS INT) * CAST(2 AS INT)", "BIGINT"),
        ("CASE WHEN id > 0 THEN CAST(-128 AS TINYINT) * CAST(-1 AS TINYINT) END", "BIGINT"),
        // Constants that appear only after the simplifier's rewrites.
        ("coalesce(9223372036854775807, id) + 1", "LARGEINT"),
        ("CASE WHEN true THEN 9223372036854775807 ELSE id END * 2", "LARGEINT"),
        ("nullif(9223372036854775807, id) + 9223372036854775807", "LARGEINT"),
        ("-(coalesce(-9223372036854775808, id))", "LARGEINT"),
        ("-mn", "LARGEINT"),
        ("mn - 1", "LARGEINT"),
        ("i16 * i16", "BIGINT"),
        ("u8 + u8", "BIGINT"),
        ("i32 * i32", "BIGINT"),
    ] {
        let sim = sim(vec![dup_table("db", "t", "id", vec![col_nn("id", "BIGINT"), col("v", target)])]).await;
        let state = tempfile::tempdir().unwrap();
        let mut f = job_file(&sim, dir.path(), "db.t", state.path());
        f.transform.select = Some(format!("id, {expr} AS v"));
        let e = load(f).await.expect_err(expr).to_string();
        assert!(e.to_lowercase().contains("overflow"), "{expr}: {e}");
        // The expression as written, not the checked functions it became.
        assert!(!e.contains("checked_") && !e.contains("constant `v`"), "{expr}: {e}");
        assert!(stored(&sim, "db", "t").is_empty(), "{expr}");
    }
    // Widened first, the same products are exact.
    let sim = sim(vec![dup_table("db", "t", "id", vec![col_nn("id", "BIGINT"), col("v", "BIGINT")])]).await;
    let state = tempfile::tempdir().unwrap();
    let mut f = job_file(&sim, dir.path(), "db.t", state.path());
    f.transform.select = Some("id, CAST(i32 AS BIGINT) * i32 - CAST(i16 AS BIGINT) * -i16 AS v".into());
    load(f).await.unwrap();
    let got = stored(&sim, "db", "t");
    let v = |id: &str| got[id]["v"].to_string().trim_matches('"').to_string();
    assert_eq!(v("1"), (4_000_000_000_000_000_000i64 + 900_000_000).to_string());
    assert_eq!(v("2"), "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decimal_arithmetic_past_its_precision_fails_the_load() {
    // DataFusion caps a result at 38 digits and checks only its 128 bits:
    // 2 × 6e27 at scale 10 has 39 digits in a DECIMAL(38,10), which a cast
    // to text cut to 1.2e27. StarRocks fails on a decimal overflow.
    let dir = tempfile::tempdir().unwrap();
    let d: ArrayRef = Arc::new(
        Decimal128Array::from(vec![6 * 10i128.pow(37) + 1, 5 * 10i128.pow(10)])
            .with_precision_and_scale(38, 10)
            .unwrap(),
    );
    let e: ArrayRef =
        Arc::new(Decimal128Array::from(vec![1_000_000_000, 100]).with_precision_and_scale(10, 2).unwrap());
    // 12345678901234567890.0 × 10000000.00 at scale 12: 39 digits, 128 bits.
    let g: ArrayRef = Arc::new(
        Decimal128Array::from(vec![123_456_789_012_345_678_900_000_000_000, 0])
            .with_precision_and_scale(38, 10)
            .unwrap(),
    );
    write_parquet(
        &dir.path().join("part-0.parquet"),
        &batch(vec![("id", ids(2), false), ("d", d, true), ("e", e, true), ("g", g, true)]),
    );
    for (expr, target) in
        [("CAST(d + d AS VARCHAR)", "VARCHAR(80)"), ("d - -d", "DECIMAL(38, 0)"), ("g * e", "DECIMAL(38, 0)")]
    {
        let sim = sim(vec![dup_table("db", "t", "id", vec![col_nn("id", "BIGINT"), col("v", target)])]).await;
        let state = tempfile::tempdir().unwrap();
        let mut f = job_file(&sim, dir.path(), "db.t", state.path());
        f.transform.select = Some(format!("id, {expr} AS v"));
        let err = load(f).await.expect_err(expr).to_string();
        assert!(err.contains("precision") && !err.contains("decimal_fits"), "{expr}: {err}");
        assert!(stored(&sim, "db", "t").is_empty(), "{expr}");
    }
    // Within the precision, the same arithmetic is exact.
    let sim = sim(vec![dup_table("db", "t", "id", vec![col_nn("id", "BIGINT"), col("v", "VARCHAR(80)")])]).await;
    let state = tempfile::tempdir().unwrap();
    let mut f = job_file(&sim, dir.path(), "db.t", state.path());
    f.transform.select = Some("id, CAST(d + d AS VARCHAR) AS v".into());
    f.transform.filter = Some("id = 2".into());
    load(f).await.unwrap();
    assert_eq!(stored(&sim, "db", "t")["2"]["v"], json!("10.0000000000"));
}

/// A transform that looks at more than one row would be answered per chunk
/// (DISTINCT, aggregates, windows, LIMIT, subqueries): refused at planning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transforms_that_are_not_row_by_row_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let g: ArrayRef = Arc::new(Int64Array::from_iter_values((0..300).map(|i| i % 3)));
    write_parquet(&dir.path().join("part-0.parquet"), &batch(vec![("id", ids(300), false), ("g", g, true)]));
    let sim = sim(vec![dup_table("db", "t", "id", vec![col_nn("id", "BIGINT"), col("a", "BIGINT")])]).await;
    for (select, filter) in [
        ("DISTINCT g AS id, 0 AS a", None),
        ("min(g) AS id, count(*) AS a", None),
        ("id, row_number() OVER () AS a", None),
        ("id, sum(g) OVER (ORDER BY id) AS a", None),
        ("id, 0 AS a", Some("id IN (SELECT max(id) FROM source)")),
        ("id, 0 AS a", Some("id < 100 LIMIT 10")),
        ("id, 0 AS a", Some("EXISTS (SELECT 1 FROM source s WHERE s.id = 7)")),
        ("id, (SELECT max(g) FROM source) AS a", None),
        // Shifts wrap around and have no checked kernel.
        ("id, g << 62 AS a", None),
        ("id, 0 AS a", Some("id >> 64 = id")),
    ] {
        let state = tempfile::tempdir().unwrap();
        let mut f = job_file(&sim, dir.path(), "db.t", state.path());
        f.transform.select = Some(select.into());
        f.transform.filter = filter.map(Into::into);
        let e = load(f).await.expect_err(select);
        assert_eq!(e.kind(), starload::ErrorKind::Config, "{select} {filter:?}: {e}");
        let msg = e.to_string();
        assert!(msg.contains("row by row") || msg.contains("bit shift"), "{select} {filter:?}: {e}");
    }
    assert_eq!(sim.be_requests(), 0);
    // Row-wise expressions, CASE and scalar functions are fine.
    let state = tempfile::tempdir().unwrap();
    let mut f = job_file(&sim, dir.path(), "db.t", state.path());
    // (coalesce, nvl and arrow_cast need DataFusion's expression simplifier.)
    f.transform.select = Some(
        "arrow_cast(id, 'Int64') AS id, coalesce(CASE WHEN g = 0 THEN abs(id - 1000) ELSE g END, nvl(g, 0)) AS a"
            .into(),
    );
    f.transform.filter = Some("g IN (0, 2)".into());
    load(f).await.unwrap();
    let got = stored(&sim, "db", "t");
    assert_eq!(got.len(), 200);
    let a = |id: &str| got[id]["a"].to_string().trim_matches('"').to_string();
    assert_eq!((a("1"), a("3")), ("999".to_string(), "2".to_string()));
    assert!(!got.contains_key("2"));
}

/// The transform sees zoned timestamps in the job's zone: its dates,
/// `date_trunc` and comparisons with zone-less literals agree with the
/// DATETIME values loaded (they used UTC days).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_transform_computes_in_the_job_time_zone() {
    use arrow::datatypes::TimeUnit;
    let dir = tempfile::tempdir().unwrap();
    let h = 3_600_000_000i64;
    // 2024-03-10 20:00, 16:00 and 00:00 UTC.
    let base = 1_710_028_800_000_000i64;
    let ts = TimestampMicrosecondArray::from(vec![base + 20 * h, base + 16 * h, base]).with_timezone("UTC");
    let list = ListArray::new(
        Arc::new(Field::new(
            "item",
            arrow::datatypes::DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        )),
        arrow::buffer::OffsetBuffer::from_lengths([1, 0, 2]),
        Arc::new(ts.clone().slice(0, 3)),
        None,
    );
    write_parquet(
        &dir.path().join("part-0.parquet"),
        &batch(vec![("id", ids(3), false), ("tsz", Arc::new(ts), true), ("l", Arc::new(list), true)]),
    );
    let table = || {
        dup_table(
            "db",
            "t",
            "id",
            vec![
                col_nn("id", "BIGINT"),
                col("a", "DATETIME"),
                col("b", "DATE"),
                col("c", "DATETIME"),
                col("l", "ARRAY<DATETIME>"),
            ],
        )
    };
    let s1 = sim(vec![table()]).await;
    let state = tempfile::tempdir().unwrap();
    let mut f = job_file(&s1, dir.path(), "db.t", state.path());
    f.timezone = Some("Asia/Shanghai".into());
    f.transform.select = Some("id, tsz AS a, CAST(tsz AS DATE) AS b, date_trunc('day', tsz) AS c, l".into());
    load(f.clone()).await.unwrap();
    let got = stored(&s1, "db", "t");
    // DATETIME is stored as wall-clock microseconds: hours after base.
    let hours = |v: &serde_json::Value| (v["ts_us"].as_str().unwrap().parse::<i64>().unwrap() - base) / h;
    let row = |id: &str| (hours(&got[id]["a"]), got[id]["b"].as_str().unwrap().to_string(), hours(&got[id]["c"]));
    assert_eq!(row("1"), (28, "2024-03-11".to_string(), 24));
    assert_eq!(row("2"), (24, "2024-03-11".to_string(), 24));
    assert_eq!(row("3"), (8, "2024-03-10".to_string(), 0));
    let l: Vec<i64> = got["3"]["l"].as_array().unwrap().iter().map(hours).collect();
    assert_eq!(l, vec![24, 8]);

    let s2 = sim(vec![table()]).await;
    let state = tempfile::tempdir().unwrap();
    f = job_file(&s2, dir.path(), "db.t", state.path());
    f.timezone = Some("Asia/Shanghai".into());
    f.transform.select = Some("id, tsz AS a".into());
    f.transform.filter = Some("tsz >= '2024-03-11 00:00:00'".into());
    let r = load(f).await.unwrap();
    assert_eq!(r.load.rows_loaded, 2);
    let got = stored(&s2, "db", "t");
    assert_eq!((hours(&got["1"]["a"]), hours(&got["2"]["a"])), (28, 24));
}

/// polars' `write_parquet(partition_by=…)` keeps the key inside the files:
/// loaded from there when every row holds its directory's value (by the
/// row groups' statistics); otherwise refused naming the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_keys_also_stored_in_the_files_load_when_they_agree() {
    let dir = tempfile::tempdir().unwrap();
    let write = |sub: &str, first: i64, k: Option<i64>, s: &str| {
        let d = dir.path().join(sub);
        std::fs::create_dir_all(&d).unwrap();
        let id: ArrayRef = Arc::new(Int64Array::from_iter_values(first..first + 3));
        let kk: ArrayRef = Arc::new(Int64Array::from(vec![k; 3]));
        let ss: ArrayRef = Arc::new(StringArray::from(vec![s; 3]));
        write_parquet(&d.join("0.parquet"), &batch(vec![("id", id, false), ("k", kk, true), ("s", ss, true)]));
    };
    write("k=7/s=a%2Fb", 1, Some(7), "a/b");
    write("k=8/s=c", 4, Some(8), "c");
    write("k=__HIVE_DEFAULT_PARTITION__/s=c", 7, None, "c");
    let table = || dup_table("db", "t", "id", vec![col_nn("id", "BIGINT"), col("k", "BIGINT"), col("s", "VARCHAR(8)")]);
    let s1 = sim(vec![table()]).await;
    let state = tempfile::tempdir().unwrap();
    let r = load(job_file(&s1, dir.path(), "db.t", state.path())).await.unwrap();
    assert_eq!(r.load.rows_loaded, 9);
    let got = stored(&s1, "db", "t");
    let row = |id: &str| (got[id]["k"].clone(), got[id]["s"].clone());
    assert_eq!(row("1"), (json!("7"), json!("a/b")));
    assert_eq!(row("6"), (json!("8"), json!("c")));
    assert_eq!(row("9"), (json!(null), json!("c")));

    // A where clause on a stored key filters the files' typed values; the
    // directories' text must not prune ('10' < '7' as text, 10 > 7).
    write("k=10/s=c", 10, Some(10), "c");
    let s3 = sim(vec![table()]).await;
    let state = tempfile::tempdir().unwrap();
    let mut f = job_file(&s3, dir.path(), "db.t", state.path());
    f.transform.filter = Some("k > '7'".into());
    let r = load(f).await.unwrap();
    assert_eq!(r.load.rows_loaded, 6);
    let got = stored(&s3, "db", "t");
    assert!(got.contains_key("4") && got.contains_key("12") && !got.contains_key("1"), "{got:?}");
    // Even when the directories' text prunes every directory ('10' < '9').
    let s4 = sim(vec![table()]).await;
    let state = tempfile::tempdir().unwrap();
    let mut f = job_file(&s4, dir.path(), "db.t", state.path());
    f.transform.filter = Some("k > '9' AND k < '11' AND k IS NOT NULL".into());
    let r = load(f).await.unwrap();
    assert_eq!(r.load.rows_loaded, 3);
    assert!(stored(&s4, "db", "t").contains_key("10"));

    // A file whose stored key differs from its directory.
    write("k=9/s=c", 20, Some(10), "c");
    let s2 = sim(vec![table()]).await;
    let state = tempfile::tempdir().unwrap();
    let e = load(job_file(&s2, dir.path(), "db.t", state.path())).await.unwrap_err().to_string();
    assert!(e.contains("partition column `k` is also stored") && e.contains("k=9/s=c/0.parquet"), "{e}");
    assert_eq!(s2.be_requests(), 0);
}

/// With the default zone (UTC) too, a file's zoned timestamps reach the
/// transform as the wall-clock time loaded; local times a DST change skips
/// or repeats are ordinary DATETIME literals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zoned_timestamps_are_wall_clock_in_the_transform() {
    let dir = tempfile::tempdir().unwrap();
    let h = 3_600_000_000i64;
    // 2024-01-01 03:00 UTC (2023-12-31 22:00 in New York), and
    // 2024-11-03 05:30 UTC (01:30 EDT, the first of the repeated hour).
    let ts = TimestampMicrosecondArray::from(vec![1_704_067_200_000_000 + 3 * h, 1_730_592_000_000_000 + 11 * h / 2])
        .with_timezone("America/New_York");
    write_parquet(&dir.path().join("part-0.parquet"), &batch(vec![("id", ids(2), false), ("ts", Arc::new(ts), true)]));
    let table = || dup_table("db", "t", "id", vec![col_nn("id", "BIGINT"), col("d", "DATE")]);
    for (zone, filter, want) in [
        (None, "ts >= '2024-01-01 00:00:00' AND ts < '2024-01-02'", vec![("1", "2024-01-01")]),
        (
            Some("America/New_York"),
            "ts >= '2024-11-03 01:00:00' AND ts < '2024-11-03 02:00:00'",
            vec![("2", "2024-11-03")],
        ),
        (Some("America/New_York"), "CAST(ts AS DATE) = '2023-12-31'", vec![("1", "2023-12-31")]),
    ] {
        let s = sim(vec![table()]).await;
        let state = tempfile::tempdir().unwrap();
        let mut f = job_file(&s, dir.path(), "db.t", state.path());
        f.timezone = zone.map(Into::into);
        f.transform.select = Some("id, CAST(ts AS DATE) AS d".into());
        f.transform.filter = Some(filter.into());
        load(f).await.unwrap_or_else(|e| panic!("{zone:?} {filter}: {e}"));
        let got = stored(&s, "db", "t");
        assert_eq!(got.len(), want.len(), "{zone:?} {filter}: {got:?}");
        for (id, d) in want {
            assert_eq!(got[id]["d"], json!(d), "{zone:?} {filter}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instant_conversions_of_wall_clock_timestamps_are_refused_outside_utc() {
    // The transform sees a zoned column as the job zone's wall clock; epoch
    // functions would read that as UTC (off by the zone's offset, and the two
    // 01:30 of a DST fold would get one epoch).
    let dir = tempfile::tempdir().unwrap();
    let ts = TimestampMicrosecondArray::from(vec![1_730_611_800_000_000]).with_timezone("UTC");
    let n: ArrayRef = Arc::new(Int64Array::from(vec![1_730_611_800]));
    let s: ArrayRef = Arc::new(StringArray::from(vec!["2024-01-01 00:00:00"]));
    write_parquet(
        &dir.path().join("part-0.parquet"),
        &batch(vec![("id", ids(1), false), ("ts", Arc::new(ts), true), ("n", n, true), ("s", s, true)]),
    );
    let run = |zone: &str, expr: &str, ty: &str| {
        let (zone, expr, ty) = (zone.to_string(), expr.to_string(), ty.to_string());
        let dir = dir.path().to_path_buf();
        async move {
            let s = sim(vec![dup_table("db", "t", "id", vec![col_nn("id", "BIGINT"), col("v", &ty)])]).await;
            let state = tempfile::tempdir().unwrap();
            let mut f = job_file(&s, &dir, "db.t", state.path());
            f.timezone = Some(zone);
            f.transform.select = Some(format!("id, {expr} AS v"));
            load(f).await.map(|_| stored(&s, "db", "t")["1"]["v"].clone()).map_err(|e| e.to_string())
        }
    };
    for (expr, ty) in [
        ("to_unixtime(ts)", "BIGINT"),
        ("CAST(to_unixtime(ts) AS VARCHAR)", "VARCHAR(20)"),
        ("extract(epoch FROM ts)", "DOUBLE"),
        ("date_part('epoch', ts)", "DOUBLE"),
        ("from_unixtime(n)", "DATETIME"),
        ("to_timestamp(n)", "DATETIME"),
        ("to_timestamp(s)", "DATETIME"),
        ("CAST(ts AS BIGINT)", "BIGINT"),
        ("CAST(n AS TIMESTAMP)", "DATETIME"),
    ] {
        let e = run("America/New_York", expr, ty).await.expect_err(expr);
        assert!(e.contains("wall-clock time in the job's zone"), "{expr}: {e}");
    }
    // In UTC the wall clock is the instant; text cast to a timestamp is the
    // same wall clock in any zone.
    assert_eq!(run("UTC", "to_unixtime(ts)", "BIGINT").await.unwrap(), json!("1730611800"));
    assert_eq!(
        run("America/New_York", "CAST(s AS TIMESTAMP)", "DATETIME").await.unwrap(),
        json!({"ts_us": "1704067200000000"})
    );
}

/// Arithmetic over partition values in `--where` is not used to prune (it
/// would be unchecked): the checked row filter fails instead of files being
/// skipped; a struct may be unnested (one row per row).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arithmetic_on_partitions_is_checked_and_structs_unnest() {
    let dir = tempfile::tempdir().unwrap();
    for n in [3i64, 50_000] {
        let d = dir.path().join(format!("n={n}"));
        std::fs::create_dir_all(&d).unwrap();
        let st = StructArray::from(vec![
            (
                Arc::new(Field::new("a", arrow::datatypes::DataType::Int64, true)),
                Arc::new(Int64Array::from(vec![n])) as ArrayRef,
            ),
            (
                Arc::new(Field::new("b", arrow::datatypes::DataType::Utf8, true)),
                Arc::new(StringArray::from(vec!["x"])) as ArrayRef,
            ),
        ]);
        write_parquet(
            &d.join("0.parquet"),
            &batch(vec![("id", Arc::new(Int64Array::from(vec![n])), false), ("st", Arc::new(st), true)]),
        );
    }
    let table = || dup_table("db", "t", "id", vec![col_nn("id", "BIGINT"), col("a", "BIGINT"), col("b", "VARCHAR(4)")]);
    let s1 = sim(vec![table()]).await;
    let state = tempfile::tempdir().unwrap();
    let mut f = job_file(&s1, dir.path(), "db.t", state.path());
    f.partition_types.insert("n".into(), "int".into());
    f.transform.select = Some("id, st.a AS a, st.b AS b".into());
    f.transform.filter = Some("n * n > 0".into());
    let e = load(f.clone()).await.unwrap_err().to_string();
    assert!(e.to_lowercase().contains("overflow"), "{e}");
    assert!(stored(&s1, "db", "t").is_empty());

    let s2 = sim(vec![table()]).await;
    let state = tempfile::tempdir().unwrap();
    let mut f = job_file(&s2, dir.path(), "db.t", state.path());
    f.transform.select = Some("id, unnest(st)".into());
    // Not refused as "not row by row": it plans, and its columns (named
    // `source.st.a`, `source.st.b` by DataFusion) are then matched to the table.
    let e = load(f).await.unwrap_err().to_string();
    assert!(e.contains("`source.st.a`") && e.contains("has no column"), "{e}");
}

/// A file reachable twice in a local source (a symbolic link to a file or
/// directory of another partition) would load its rows twice: refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_reachable_twice_through_a_symlink_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d1 = dir.path().join("k=1");
    std::fs::create_dir_all(&d1).unwrap();
    std::fs::create_dir_all(dir.path().join("k=2")).unwrap();
    write_parquet(&d1.join("0.parquet"), &batch(vec![("id", ids(3), false)]));
    std::os::unix::fs::symlink(d1.join("0.parquet"), dir.path().join("k=2/0.parquet")).unwrap();
    let s = sim(vec![dup_table("db", "t", "id", vec![col_nn("id", "BIGINT"), col("k", "VARCHAR(4)")])]).await;
    let state = tempfile::tempdir().unwrap();
    let e = load(job_file(&s, dir.path(), "db.t", state.path())).await.unwrap_err().to_string();
    assert!(e.contains("are the same file") && e.contains("k=1/0.parquet") && e.contains("k=2/0.parquet"), "{e}");
    assert_eq!(s.be_requests(), 0);
}

/// `now()` is in the job's zone, like the zoned timestamps it is compared
/// with ("the last hours" must not shift by the zone's offset).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn now_follows_the_job_time_zone() {
    let dir = tempfile::tempdir().unwrap();
    let now_us = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as i64;
    let h = 3_600_000_000i64;
    let ts = TimestampMicrosecondArray::from(vec![now_us - 3 * h, now_us + 3 * h]).with_timezone("UTC");
    write_parquet(&dir.path().join("part-0.parquet"), &batch(vec![("id", ids(2), false), ("ts", Arc::new(ts), true)]));
    for zone in [None, Some("Asia/Tokyo"), Some("America/New_York")] {
        let s = sim(vec![dup_table("db", "t", "id", vec![col_nn("id", "BIGINT")])]).await;
        let state = tempfile::tempdir().unwrap();
        let mut f = job_file(&s, dir.path(), "db.t", state.path());
        f.timezone = zone.map(Into::into);
        f.transform.select = Some("id".into());
        f.transform.filter = Some("ts < now()".into());
        let r = load(f).await.unwrap_or_else(|e| panic!("{zone:?}: {e}"));
        assert_eq!(r.load.rows_loaded, 1, "{zone:?}");
        assert!(stored(&s, "db", "t").contains_key("1"), "{zone:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nul_byte_loads_into_varchar_and_is_refused_for_char() {
    // StarRocks pads CHAR with NUL bytes and reads it back cut at the first
    // one: "a\0b" would come back as "a". VARCHAR keeps every byte.
    let dir = tempfile::tempdir().unwrap();
    let s: ArrayRef = Arc::new(StringArray::from(vec![Some("ab"), Some("a\0b"), None]));
    let bin: ArrayRef =
        Arc::new(BinaryArray::from(vec![Some(b"x".as_slice()), Some(b"y".as_slice()), Some(b"\0\x01")]));
    write_parquet(
        &dir.path().join("part-0.parquet"),
        &batch(vec![("id", ids(3), false), ("s", s, true), ("bin", bin, true)]),
    );
    let table = |ty: &str, bin_ty: &str| {
        dup_table("db", "t", "id", vec![col_nn("id", "BIGINT"), col("s", ty), col("bin", bin_ty)])
    };
    let sim1 = sim(vec![table("VARCHAR(5)", "VARCHAR(5)")]).await;
    let state = tempfile::tempdir().unwrap();
    load(job_file(&sim1, dir.path(), "db.t", state.path())).await.unwrap();
    let got = stored(&sim1, "db", "t");
    assert_eq!((got["2"]["s"].clone(), got["3"]["bin"].clone()), (json!("a\0b"), json!("\0\u{1}")));
    for (ty, bin_ty, row, column) in
        [("CHAR(5)", "VARCHAR(5)", "row 2", "`s`"), ("VARCHAR(5)", "CHAR(5)", "row 3", "`bin`")]
    {
        let sim = sim(vec![table(ty, bin_ty)]).await;
        let state = tempfile::tempdir().unwrap();
        let e = load(job_file(&sim, dir.path(), "db.t", state.path())).await.unwrap_err();
        let m = e.to_string();
        assert!(m.contains("part-0.parquet") && m.contains(row) && m.contains(column) && m.contains("NUL"), "{m}");
        assert!(stored(&sim, "db", "t").is_empty(), "nothing loaded");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn varbinary_needs_a_server_that_reads_base64() {
    // StarRocks 3.0 and 3.1 read a VARBINARY CSV field as hex: `AAAA`
    // (three zero bytes in base64) would be stored as 0xAAAA.
    let dir = tempfile::tempdir().unwrap();
    let b: ArrayRef = Arc::new(BinaryArray::from(vec![Some(b"\0\0\0".as_slice())]));
    write_parquet(&dir.path().join("part-0.parquet"), &batch(vec![("id", ids(1), false), ("b", b, true)]));
    for (version, ok) in [("3.1.11-5dd3d31", false), ("3.2.0-1a2b3c4", true), ("4.0.1", true)] {
        let table = dup_table("db", "t", "id", vec![col_nn("id", "BIGINT"), col("b", "VARBINARY")]);
        let sim = sim_with(vec![table], |c| c.version = version.into()).await;
        let state = tempfile::tempdir().unwrap();
        let r = load(job_file(&sim, dir.path(), "db.t", state.path())).await;
        if ok {
            r.unwrap_or_else(|e| panic!("{version}: {e}"));
            assert_eq!(stored(&sim, "db", "t")["1"]["b"], json!({"b64": "AAAA"}), "{version}");
        } else {
            let e = r.unwrap_err();
            assert!(e.to_string().contains("StarRocks 3.1 reads VARBINARY in CSV as hex"), "{e}");
            assert!(stored(&sim, "db", "t").is_empty());
        }
    }
    // On 3.1: a VARBINARY the job does not send is no reason to refuse; one
    // inside an ARRAY is.
    let old = |cols| sim_with(vec![dup_table("db", "t", "id", cols)], |c| c.version = "3.1.11".into());
    let sim1 = old(vec![col_nn("id", "BIGINT"), col("other", "VARBINARY")]).await;
    let state = tempfile::tempdir().unwrap();
    let mut f = job_file(&sim1, dir.path(), "db.t", state.path());
    f.transform.select = Some("id".into());
    load(f).await.unwrap();
    let arr: ArrayRef = Arc::new(ListArray::new(
        Arc::new(Field::new("item", arrow::datatypes::DataType::Binary, true)),
        arrow::buffer::OffsetBuffer::from_lengths([1]),
        Arc::new(BinaryArray::from(vec![Some(b"\0\0\0".as_slice())])),
        None,
    ));
    let nested = tempfile::tempdir().unwrap();
    write_parquet(&nested.path().join("part-0.parquet"), &batch(vec![("id", ids(1), false), ("b", arr, true)]));
    let sim2 = old(vec![col_nn("id", "BIGINT"), col("b", "ARRAY<VARBINARY>")]).await;
    let state = tempfile::tempdir().unwrap();
    let e = load(job_file(&sim2, nested.path(), "db.t", state.path())).await.unwrap_err();
    assert!(e.to_string().contains("reads VARBINARY in CSV as hex"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_column_named_op_is_not_taken_as_the_delete_flag() {
    // A CDC export's own `__op` column would be StarRocks' delete flag: its
    // 1s would delete keys. Only delete_when makes that column.
    let dir = tempfile::tempdir().unwrap();
    let op: ArrayRef = Arc::new(Int8Array::from(vec![1, 0]));
    let v: ArrayRef = Arc::new(StringArray::from(vec!["a", "b"]));
    write_parquet(
        &dir.path().join("part-0.parquet"),
        &batch(vec![("id", ids(2), false), ("v", v, true), ("__op", op, true)]),
    );
    let mut pk = dup_table("db", "t", "id", vec![col_nn("id", "BIGINT"), col("v", "VARCHAR(10)")]);
    pk.keys = "PRIMARY_KEYS".into();
    let sim = sim(vec![pk]).await;
    let state = tempfile::tempdir().unwrap();
    let e = load(job_file(&sim, dir.path(), "db.t", state.path())).await.unwrap_err();
    assert!(e.to_string().contains("delete flag"), "{e}");
    assert!(stored(&sim, "db", "t").is_empty());
    // Deletes on purpose: delete_when over the source's column.
    let mut f = job_file(&sim, dir.path(), "db.t", state.path());
    f.transform.select = Some("id, v".into());
    f.delete_when = Some("__op = 1".into());
    load(f).await.unwrap();
    assert_eq!(stored(&sim, "db", "t").keys().collect::<Vec<_>>(), ["2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_and_large_lists_of_timestamps_in_two_files_keep_every_digit() {
    // pyarrow writes list<timestamp[ms]>, polars large_list<timestamp[us]>:
    // the shared type must hold microseconds (it was List<ms>, and the cast
    // cut .123456 to .123000).
    use arrow::datatypes::{DataType, TimeUnit};
    let dir = tempfile::tempdir().unwrap();
    let ms: ArrayRef = Arc::new(TimestampMillisecondArray::from(vec![1_704_164_645_123]));
    let us: ArrayRef = Arc::new(TimestampMicrosecondArray::from(vec![1_704_164_645_123_456]));
    let a: ArrayRef = Arc::new(ListArray::new(
        Arc::new(Field::new("item", DataType::Timestamp(TimeUnit::Millisecond, None), true)),
        arrow::buffer::OffsetBuffer::from_lengths([1]),
        ms,
        None,
    ));
    let b: ArrayRef = Arc::new(LargeListArray::new(
        Arc::new(Field::new("item", DataType::Timestamp(TimeUnit::Microsecond, None), true)),
        arrow::buffer::OffsetBuffer::from_lengths([1]),
        us,
        None,
    ));
    write_parquet(&dir.path().join("a.parquet"), &batch(vec![("id", ids(1), false), ("l", a, true)]));
    let two: ArrayRef = Arc::new(Int64Array::from(vec![2]));
    write_parquet(&dir.path().join("b.parquet"), &batch(vec![("id", two, false), ("l", b, true)]));
    let sim = sim(vec![dup_table("db", "t", "id", vec![col_nn("id", "BIGINT"), col("l", "ARRAY<DATETIME>")])]).await;
    let state = tempfile::tempdir().unwrap();
    load(job_file(&sim, dir.path(), "db.t", state.path())).await.unwrap();
    let got = stored(&sim, "db", "t");
    assert_eq!(got["1"]["l"], json!([{"ts_us": "1704164645123000"}]));
    assert_eq!(got["2"]["l"], json!([{"ts_us": "1704164645123456"}]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_float_partition_column_stored_in_the_files_is_refused() {
    // Statistics leave NaN out: min = max = 1.5 does not show that every row
    // holds the directory's 1.5.
    let dir = tempfile::tempdir().unwrap();
    let k: ArrayRef = Arc::new(Float64Array::from(vec![1.5, f64::NAN]));
    write_parquet(&dir.path().join("k=1.5/0.parquet"), &batch(vec![("id", ids(2), false), ("k", k, true)]));
    let sim = sim(vec![dup_table("db", "t", "id", vec![col_nn("id", "BIGINT"), col("k", "DOUBLE")])]).await;
    let state = tempfile::tempdir().unwrap();
    let e = load(job_file(&sim, dir.path(), "db.t", state.path())).await.unwrap_err().to_string();
    assert!(e.contains("partition column `k` is also stored"), "{e}");
    assert_eq!(sim.be_requests(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_body_too_large_for_starrocks_is_refused_before_loading() {
    // StarRocks reads a JSON body whole (4 GiB at most): a table whose rows
    // all go as JSON is planned so that no chunk's body comes near it. Debug
    // builds lower the limit to 1 KiB for a file so named.
    let dir = tempfile::tempdir().unwrap();
    let field = Arc::new(Field::new("x", arrow::datatypes::DataType::Int64, true));
    let s: ArrayRef = Arc::new(StructArray::from(vec![(field, ids(200))]));
    let file = "a__starload_test_json_body_limit__.parquet";
    write_parquet(&dir.path().join(file), &batch(vec![("id", ids(200), false), ("s", s, true)]));
    let table = || dup_table("db", "t", "id", vec![col_nn("id", "BIGINT"), col("s", "STRUCT<x BIGINT>")]);
    let sim1 = sim(vec![table()]).await;
    let state = tempfile::tempdir().unwrap();
    let e = load(job_file(&sim1, dir.path(), "db.t", state.path())).await.unwrap_err();
    assert!(e.to_string().contains("would be a JSON body") && e.to_string().contains(file), "{e}");
    assert_eq!(sim1.be_requests(), 0);
    // The same rows under another name load.
    std::fs::rename(dir.path().join(file), dir.path().join("a.parquet")).unwrap();
    let sim2 = sim(vec![table()]).await;
    let state = tempfile::tempdir().unwrap();
    load(job_file(&sim2, dir.path(), "db.t", state.path())).await.unwrap();
    assert_eq!(stored(&sim2, "db", "t").len(), 200);
}
