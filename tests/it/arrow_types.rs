//! Arrow types that pyarrow and DuckDB do not write (view types, float16,
//! date64, zoned nanoseconds, large and fixed-size lists, fixed-size binary,
//! dictionaries, decimal256, maps with integer keys, STRUCT targets) and the
//! conversions starload allows (bool → TINYINT, int → DECIMAL, uint64 →
//! VARCHAR, canonical text → DATE), written by arrow-rs from values whose
//! canonical form the test computes itself.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use arrow::array::*;
use arrow::datatypes::{DataType, Field, Fields, Int8Type, Schema, TimeUnit, i256};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;
use serde_json::{Value as Json, json};

use crate::support::*;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[(self.next() % v.len() as u64) as usize]
    }
    fn chance(&mut self, n: u64) -> bool {
        self.next().is_multiple_of(n)
    }
}

const STRINGS: &[&str] = &[
    "",
    "plain",
    "\\N",
    "N",
    "null",
    "a\u{1}b",
    "x\u{2}",
    "line\nbreak",
    "tab\tx",
    "q\"uote",
    "back\\slash",
    "😀𝄞",
    "日本語",
    "  ",
];
const ELEMS: &[&str] = &["", "e", "\"q\"", "\\N", "null", "a,b", "[x]", "{y}", "😀", "ctl\u{1}"];

fn b64(b: &[u8]) -> Json {
    use base64::Engine;
    json!({"b64": base64::engine::general_purpose::STANDARD.encode(b)})
}

fn days(y: i64, m: u32, d: u32) -> i64 {
    starload::value::days_from_civil(y, m, d)
}

/// Writes the dataset under `dir/p=<n>/part-<k>.parquet` and returns the
/// expected canonical rows by id.
fn write_dataset(dir: &Path, rows: usize) -> BTreeMap<String, serde_json::Map<String, Json>> {
    let mut rng = Rng(0x5eed);
    let tokyo = 9 * 3600 * 1_000_000i64;
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("h", DataType::Float16, true),
        Field::new("d64", DataType::Date64, true),
        Field::new("ts_s", DataType::Timestamp(TimeUnit::Second, None), true),
        Field::new("ts_tz", DataType::Timestamp(TimeUnit::Nanosecond, Some("+08:00".into())), true),
        Field::new("sv", DataType::Utf8View, true),
        Field::new("bv", DataType::BinaryView, true),
        Field::new("lb", DataType::LargeBinary, true),
        Field::new("fsb", DataType::FixedSizeBinary(3), true),
        Field::new("ll", DataType::LargeList(Arc::new(Field::new("item", DataType::Utf8, true))), true),
        Field::new("fsl", DataType::FixedSizeList(Arc::new(Field::new("item", DataType::Int32, true)), 2), true),
        Field::new("dict", DataType::Dictionary(Box::new(DataType::Int8), Box::new(DataType::Utf8)), true),
        Field::new("d256", DataType::Decimal256(40, 3), true),
        Field::new(
            "m",
            DataType::Map(
                Arc::new(Field::new(
                    "entries",
                    DataType::Struct(Fields::from(vec![
                        Field::new("keys", DataType::Int32, false),
                        Field::new("values", DataType::Utf8, true),
                    ])),
                    false,
                )),
                false,
            ),
            true,
        ),
        Field::new("b", DataType::Boolean, true),
        Field::new("i", DataType::Int32, true),
        Field::new("u", DataType::UInt64, true),
        Field::new("s", DataType::Utf8, true),
    ]));
    let mut expected = BTreeMap::new();
    let parts = 3;
    let per = rows / parts;
    let mut id = 0i64;
    for p in 0..parts {
        let n = if p == parts - 1 { rows - per * (parts - 1) } else { per };
        let mut ids = Vec::new();
        let mut h = Vec::new();
        let mut d64 = Vec::new();
        let mut ts_s = Vec::new();
        let mut ts_tz = Vec::new();
        let mut sv = StringViewBuilder::new();
        let mut bv = BinaryViewBuilder::new();
        let mut lb = LargeBinaryBuilder::new();
        let mut fsb = FixedSizeBinaryBuilder::new(3);
        let mut ll = LargeListBuilder::new(StringBuilder::new());
        let mut fsl = FixedSizeListBuilder::new(Int32Builder::new(), 2);
        let mut dict = StringDictionaryBuilder::<Int8Type>::new();
        let mut d256 = Vec::new();
        let mut m = MapBuilder::new(None, Int32Builder::new(), StringBuilder::new());
        let mut b = Vec::new();
        let mut iv = Vec::new();
        let mut u = Vec::new();
        let mut s = StringBuilder::new();
        for _ in 0..n {
            let mut e = serde_json::Map::new();
            e.insert("id".into(), json!(id.to_string()));
            e.insert("p".into(), json!(p.to_string()));
            ids.push(id);
            let null = |rng: &mut Rng| rng.chance(9);
            // float16: exactly representable values, specials included.
            let hv = *rng.pick(&[0.5f32, -2.0, 65504.0, 6.1035156e-5, 0.0, -0.0, f32::INFINITY, 1.0009766]);
            if null(&mut rng) {
                h.push(None);
                e.insert("h".into(), Json::Null);
            } else {
                h.push(Some(half::f16::from_f32(hv)));
                e.insert("h".into(), json!({"f32": format!("{:08x}", half::f16::from_f32(hv).to_f32().to_bits())}));
            }
            let day = *rng.pick(&[days(1, 1, 1), days(1969, 12, 31), days(2024, 2, 29), days(9999, 12, 31)]);
            let ms = day * 86_400_000 + (rng.next() % 86_400_000) as i64;
            d64.push(Some(ms));
            e.insert("d64".into(), json!({"ts_us": (ms * 1000).to_string()}));
            let secs = days(1900 + (rng.next() % 200) as i64, 1, 1) * 86_400 + (rng.next() % 86_400) as i64;
            ts_s.push(Some(secs));
            e.insert("ts_s".into(), json!({"ts_us": (secs * 1_000_000).to_string()}));
            let us =
                days(1971 + (rng.next() % 100) as i64, 6, 1) * 86_400_000_000 + (rng.next() % 86_400_000_000) as i64;
            ts_tz.push(Some(us * 1000));
            e.insert("ts_tz".into(), json!({"ts_us": (us + tokyo).to_string()}));
            let sval = *rng.pick(STRINGS);
            if null(&mut rng) {
                sv.append_null();
                e.insert("sv".into(), Json::Null);
            } else {
                sv.append_value(sval);
                e.insert("sv".into(), json!(sval));
            }
            let bytes: Vec<u8> = (0..(rng.next() % 6)).map(|_| rng.next() as u8).collect();
            bv.append_value(&bytes);
            e.insert("bv".into(), b64(&bytes));
            lb.append_value([1u8, 0, 255, b'\n']);
            e.insert("lb".into(), b64(&[1, 0, 255, b'\n']));
            let f3 = [rng.next() as u8, 2, 1];
            fsb.append_value(f3).unwrap();
            e.insert("fsb".into(), b64(&f3));
            if null(&mut rng) {
                ll.append(false);
                e.insert("ll".into(), Json::Null);
            } else {
                let k = rng.next() % 4;
                let mut items = Vec::new();
                for _ in 0..k {
                    if rng.chance(7) {
                        ll.values().append_null();
                        items.push(Json::Null);
                    } else {
                        let v = *rng.pick(ELEMS);
                        ll.values().append_value(v);
                        items.push(json!(v));
                    }
                }
                ll.append(true);
                e.insert("ll".into(), Json::Array(items));
            }
            let (x, y) = (rng.next() as i32, rng.next() as i32);
            fsl.values().append_value(x);
            fsl.values().append_null();
            fsl.append(true);
            let _ = y;
            e.insert("fsl".into(), json!([x.to_string(), null]));
            let dv = *rng.pick(&["red", "green", "\\N", "blue\u{1}"]);
            dict.append_value(dv);
            e.insert("dict".into(), json!(dv));
            let dec = (rng.next() as i64 / 3) as i128 * if rng.chance(2) { -1 } else { 1 };
            d256.push(Some(i256::from_i128(dec)));
            e.insert("d256".into(), json!({"dec": dec.to_string(), "scale": 3}));
            let mut pairs = Vec::new();
            for k in 0..(rng.next() % 3) as i32 {
                m.keys().append_value(k * 7 - 3);
                let v = *rng.pick(&["v", "\"", "\\", "é"]);
                m.values().append_value(v);
                pairs.push(json!([(k * 7 - 3).to_string(), v]));
            }
            m.append(true).unwrap();
            e.insert("m".into(), json!({"map": pairs}));
            let bb = rng.chance(2);
            b.push(Some(bb));
            e.insert("b".into(), json!(if bb { "1" } else { "0" }));
            let ii = rng.next() as i32 % 1_000_000;
            iv.push(Some(ii));
            e.insert("i".into(), json!({"dec": (ii as i64 * 100).to_string(), "scale": 2}));
            let uu = rng.next();
            u.push(Some(uu));
            e.insert("u".into(), json!(uu.to_string()));
            let sd = *rng.pick(&["2024-02-29", "0001-01-01", "9999-12-31", "1970-01-01"]);
            s.append_value(sd);
            e.insert("s".into(), json!(sd));
            expected.insert(id.to_string(), e);
            id += 1;
        }
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(ids)),
                Arc::new(Float16Array::from(h)),
                Arc::new(Date64Array::from(d64)),
                Arc::new(TimestampSecondArray::from(ts_s)),
                Arc::new(TimestampNanosecondArray::from(ts_tz).with_timezone("+08:00")),
                Arc::new(sv.finish()),
                Arc::new(bv.finish()),
                Arc::new(lb.finish()),
                Arc::new(fsb.finish()),
                Arc::new(ll.finish()),
                Arc::new(fsl.finish()),
                Arc::new(dict.finish()),
                Arc::new(Decimal256Array::from(d256).with_precision_and_scale(40, 3).unwrap()),
                Arc::new(m.finish()),
                Arc::new(BooleanArray::from(b)),
                Arc::new(Int32Array::from(iv)),
                Arc::new(UInt64Array::from(u)),
                Arc::new(s.finish()),
            ],
        )
        .unwrap();
        let dirp = dir.join(format!("p={p}"));
        std::fs::create_dir_all(&dirp).unwrap();
        let props = WriterProperties::builder().set_max_row_group_row_count(Some(37)).build();
        let mut w = ArrowWriter::try_new(
            std::fs::File::create(dirp.join("part-0.parquet")).unwrap(),
            schema.clone(),
            Some(props),
        )
        .unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
    }
    expected
}

fn target() -> starload::sim::tables::TableSpec {
    dup_table(
        "db",
        "arrow",
        "id",
        vec![
            col_nn("id", "BIGINT"),
            col("h", "FLOAT"),
            col("d64", "DATETIME"),
            col("ts_s", "DATETIME"),
            col("ts_tz", "DATETIME"),
            col("sv", "VARCHAR(100)"),
            col("bv", "VARBINARY"),
            col("lb", "VARBINARY"),
            col("fsb", "VARBINARY(3)"),
            col("ll", "ARRAY<VARCHAR(50)>"),
            col("fsl", "ARRAY<INT>"),
            col("dict", "VARCHAR(20)"),
            col("d256", "DECIMAL(38,3)"),
            col("m", "MAP<INT,VARCHAR(20)>"),
            col("b", "TINYINT"),
            col("i", "DECIMAL(12,2)"),
            col("u", "VARCHAR(30)"),
            col("s", "DATE"),
            col("p", "INT"),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arrow_rs_types_and_conversions_arrive_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let exp = write_dataset(dir.path(), 700);
    let sim = sim(vec![target()]).await;
    let state = tempfile::tempdir().unwrap();
    let mut f = job_file(&sim, dir.path(), "db.arrow", state.path());
    f.chunk_bytes = Some(starload::config::ByteSize(24 << 10));
    f.timezone = Some("Asia/Tokyo".into());
    f.partition_types.insert("p".into(), "int".into());
    let r = load(f).await.unwrap();
    assert_eq!(r.load.rows_loaded, 700);
    assert!(r.load.chunks_json > 0, "list elements holding \\x01 need JSON");
    assert!(r.load.chunks_base64 > 0, "strings equal to \\N need the base64 part");
    let got = stored(&sim, "db", "arrow");
    assert_same(&exp, &got, &|_, v| v.clone());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn struct_columns_go_as_json_and_arrive_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let inner = Fields::from(vec![
        Field::new("x", DataType::Float64, true),
        Field::new("y", DataType::List(Arc::new(Field::new("item", DataType::Int32, true))), true),
    ]);
    let doc = Fields::from(vec![
        Field::new("a", DataType::Int64, true),
        Field::new("t", DataType::Timestamp(TimeUnit::Microsecond, None), true),
        Field::new("l", DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))), true),
    ]);
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("st", DataType::Struct(inner.clone()), true),
        Field::new("j", DataType::Struct(doc.clone()), true),
    ]));
    let mut st = StructBuilder::from_fields(inner, 4);
    let mut jb = StructBuilder::from_fields(doc, 4);
    let xs = [Some(1.5f64), None, Some(-0.0), Some(f64::NAN)];
    let mut exp = BTreeMap::new();
    for (i, x) in xs.iter().enumerate() {
        st.field_builder::<Float64Builder>(0).unwrap().append_option(*x);
        let lb = st.field_builder::<ListBuilder<Box<dyn ArrayBuilder>>>(1).unwrap();
        lb.values().as_any_mut().downcast_mut::<Int32Builder>().unwrap().append_value(i as i32);
        lb.append(true);
        st.append(i != 1);
        jb.field_builder::<Int64Builder>(0).unwrap().append_value(-(i as i64));
        jb.field_builder::<TimestampMicrosecondBuilder>(1).unwrap().append_value(1_500_000);
        let lb = jb.field_builder::<ListBuilder<Box<dyn ArrayBuilder>>>(2).unwrap();
        lb.values().as_any_mut().downcast_mut::<StringBuilder>().unwrap().append_value("say \"hi\"\n");
        lb.append(true);
        jb.append(true);
        let x_json = match x {
            Some(v) => json!({"f64": format!("{:016x}", v.to_bits())}),
            None => Json::Null,
        };
        let mut e = serde_json::Map::new();
        e.insert("id".into(), json!(i.to_string()));
        e.insert("st".into(), if i == 1 { Json::Null } else { json!({"x": x_json, "y": [i.to_string()]}) });
        e.insert(
            "j".into(),
            json!({"json": {"a": -(i as i64), "t": "1970-01-01 00:00:01.500000", "l": ["say \"hi\"\n"]}}),
        );
        exp.insert(i.to_string(), e);
    }
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(Int64Array::from_iter_values(0..4)), Arc::new(st.finish()), Arc::new(jb.finish())],
    )
    .unwrap();
    let mut w =
        ArrowWriter::try_new(std::fs::File::create(dir.path().join("s.parquet")).unwrap(), schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let sim = sim(vec![dup_table(
        "db",
        "s",
        "id",
        vec![col_nn("id", "BIGINT"), col("st", "STRUCT<x DOUBLE, y ARRAY<INT>>"), col("j", "JSON")],
    )])
    .await;
    let state = tempfile::tempdir().unwrap();
    let r = load(job_file(&sim, dir.path(), "db.s", state.path())).await.unwrap();
    assert_eq!(r.load.chunks_json, 1);
    assert_same(&exp, &stored(&sim, "db", "s"), &|_, v| v.clone());
}

/// Hive DECIMAL(38,0) keys into BIGINT, whole DECIMAL(10,2) amounts into
/// INT, decimals into VARCHAR (every scale digit) and DOUBLE; a fraction an
/// integer column cannot hold fails the load naming file, row and column.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decimals_load_into_integer_and_varchar_columns_exactly() {
    let table = || {
        dup_table(
            "db",
            "dec",
            "id",
            vec![
                col_nn("id", "BIGINT"),
                col("qty", "INT"),
                col("price", "VARCHAR(20)"),
                col("big", "LARGEINT"),
                col("amount", "DOUBLE"),
            ],
        )
    };
    let sim = crate::support::sim(vec![table()]).await;
    let dir = tempfile::tempdir().unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Decimal128(38, 0), false),
        Field::new("qty", DataType::Decimal64(10, 2), true),
        Field::new("price", DataType::Decimal128(12, 3), true),
        Field::new("big", DataType::Decimal128(38, 0), true),
        Field::new("amount", DataType::Decimal128(12, 3), true),
    ]));
    let ids = [1i128, 9_007_199_254_740_993, i64::MAX as i128, -42];
    let qty = [Some(100i64), None, Some(i32::MIN as i64 * 100), Some(0)];
    let price = [Some(1_500i128), Some(-7), None, Some(999_999_999_999)];
    let big = [Some(10i128.pow(37) + 1), Some(-(10i128.pow(38) - 1)), None, Some(0)];
    // Every column but `qty` the same in both files.
    let batch = |qty: &[Option<i64>]| {
        arrow::record_batch::RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Decimal128Array::from(ids.to_vec()).with_precision_and_scale(38, 0).unwrap()),
                Arc::new(Decimal64Array::from(qty.to_vec()).with_precision_and_scale(10, 2).unwrap()),
                Arc::new(Decimal128Array::from(price.to_vec()).with_precision_and_scale(12, 3).unwrap()),
                Arc::new(Decimal128Array::from(big.to_vec()).with_precision_and_scale(38, 0).unwrap()),
                Arc::new(Decimal128Array::from(price.to_vec()).with_precision_and_scale(12, 3).unwrap()),
            ],
        )
        .unwrap()
    };
    write_parquet(&dir.path().join("a.parquet"), &batch(&qty));
    let state = tempfile::tempdir().unwrap();
    let r = load(job_file(&sim, dir.path(), "db.dec", state.path())).await.unwrap();
    assert_eq!(r.load.rows_loaded, 4);
    let got = stored(&sim, "db", "dec");
    let row = |id: i128| got[&id.to_string()].clone();
    assert_eq!(row(1)["qty"], json!("1"));
    assert_eq!(row(1)["price"], json!("1.500"));
    assert_eq!(row(1)["big"], json!((10i128.pow(37) + 1).to_string()));
    assert_eq!(row(9_007_199_254_740_993)["qty"], Json::Null);
    assert_eq!(row(9_007_199_254_740_993)["price"], json!("-0.007"));
    assert_eq!(row(9_007_199_254_740_993)["big"], json!((-(10i128.pow(38) - 1)).to_string()));
    assert_eq!(row(i64::MAX as i128)["qty"], json!("-2147483648"));
    assert_eq!(row(-42)["price"], json!("999999999.999"));
    let f64_of = |x: f64| json!({ "f64": format!("{:016x}", x.to_bits()) });
    assert_eq!(row(1)["amount"], f64_of(1.5));
    assert_eq!(row(9_007_199_254_740_993)["amount"], f64_of(-0.007));
    assert_eq!(row(i64::MAX as i128)["amount"], Json::Null);
    assert_eq!(row(-42)["amount"], f64_of(999_999_999.999));

    // 2.50 into INT: refused, naming the file, the row and the column.
    let sim = crate::support::sim(vec![table()]).await;
    let bad = tempfile::tempdir().unwrap();
    write_parquet(&bad.path().join("fraction.parquet"), &batch(&[Some(100), Some(250), Some(300), Some(400)]));
    let state = tempfile::tempdir().unwrap();
    let e = load(job_file(&sim, bad.path(), "db.dec", state.path())).await.unwrap_err();
    let m = e.to_string();
    assert!(m.contains("fraction.parquet") && m.contains("`qty`") && m.contains("2.50 has a fraction"), "{m}");
    assert!(m.contains("row 1") || m.contains("row 2"), "{m}");
    assert!(sim.rows("db", "dec").is_empty());
}

/// Loads the three rows (ids 1 to 3) of the files in `dir` into a table of
/// `id` and `columns`; what the simulator stored.
async fn load_three_rows(
    dir: &std::path::Path,
    columns: &[(&str, &str)],
) -> std::collections::BTreeMap<String, serde_json::Map<String, Json>> {
    let mut cols = vec![col_nn("id", "BIGINT")];
    cols.extend(columns.iter().map(|(name, ty)| col(name, ty)));
    let sim = crate::support::sim(vec![dup_table("db", "legacy", "id", cols)]).await;
    let state = tempfile::tempdir().unwrap();
    let r = load(job_file(&sim, dir, "db.legacy", state.path())).await.unwrap();
    assert_eq!(r.load.rows_loaded, 3);
    stored(&sim, "db", "legacy")
}

/// The list and map shapes older writers use, which Arrow writers never
/// produce: a 2-level list (`repeated int32 array`, parquet-avro and
/// Impala), a bare repeated field with no LIST annotation (protobuf-style),
/// Hive's `bag`/`array_element` list and a legacy MAP_KEY_VALUE map.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_list_and_map_shapes_arrive_exactly() {
    use parquet::data_type::{ByteArray, ByteArrayType, Int32Type, Int64Type};
    use parquet::file::writer::SerializedFileWriter;
    let dir = tempfile::tempdir().unwrap();
    let schema = Arc::new(
        parquet::schema::parser::parse_message_type(
            "message hive_schema {
               required int64 id;
               optional group two_level (LIST) { repeated int32 array; }
               repeated int32 bare;
               optional group hive (LIST) { repeated group bag { optional int32 array_element; } }
               optional group m (MAP) {
                 repeated group map (MAP_KEY_VALUE) { required binary key (UTF8); optional int32 value; }
               }
             }",
        )
        .unwrap(),
    );
    let file = std::fs::File::create(dir.path().join("legacy.parquet")).unwrap();
    let mut w = SerializedFileWriter::new(file, schema, Default::default()).unwrap();
    let mut rg = w.next_row_group().unwrap();
    // Rows: id 1, 2, 3.
    // two_level: [1, 2], NULL, []          bare: [5], [], [6, 7]
    // hive: [10, NULL], [], NULL           m: {a: 1, b: NULL}, NULL, {}
    let mut c = rg.next_column().unwrap().unwrap();
    c.typed::<Int64Type>().write_batch(&[1, 2, 3], None, None).unwrap();
    c.close().unwrap();
    let ints: [(&[i32], &[i16], &[i16]); 3] = [
        (&[1, 2], &[2, 2, 0, 1], &[0, 1, 0, 0]),
        (&[5, 6, 7], &[1, 0, 1, 1], &[0, 0, 0, 1]),
        (&[10], &[3, 2, 1, 0], &[0, 1, 0, 0]),
    ];
    for (values, defs, reps) in ints {
        let mut c = rg.next_column().unwrap().unwrap();
        c.typed::<Int32Type>().write_batch(values, Some(defs), Some(reps)).unwrap();
        c.close().unwrap();
    }
    let mut c = rg.next_column().unwrap().unwrap();
    let keys = [ByteArray::from("a"), ByteArray::from("b")];
    c.typed::<ByteArrayType>().write_batch(&keys, Some(&[2, 2, 0, 1]), Some(&[0, 1, 0, 0])).unwrap();
    c.close().unwrap();
    let mut c = rg.next_column().unwrap().unwrap();
    c.typed::<Int32Type>().write_batch(&[1], Some(&[3, 2, 0, 1]), Some(&[0, 1, 0, 0])).unwrap();
    c.close().unwrap();
    rg.close().unwrap();
    w.close().unwrap();

    let got = load_three_rows(
        dir.path(),
        &[("two_level", "ARRAY<INT>"), ("bare", "ARRAY<INT>"), ("hive", "ARRAY<INT>"), ("m", "MAP<VARCHAR(10),INT>")],
    )
    .await;
    let row = |id: &str, c: &str| got[id][c].clone();
    assert_eq!(row("1", "two_level"), json!(["1", "2"]));
    assert_eq!(row("2", "two_level"), Json::Null);
    assert_eq!(row("3", "two_level"), json!([]));
    assert_eq!(row("1", "bare"), json!(["5"]));
    assert_eq!(row("2", "bare"), json!([]));
    assert_eq!(row("3", "bare"), json!(["6", "7"]));
    assert_eq!(row("1", "hive"), json!(["10", null]));
    assert_eq!(row("2", "hive"), json!([]));
    assert_eq!(row("3", "hive"), Json::Null);
    assert_eq!(row("1", "m"), json!({"map": [["a", "1"], ["b", null]]}));
    assert_eq!(row("2", "m"), Json::Null);
    assert_eq!(row("3", "m"), json!({"map": []}));
}

/// INT96 timestamps (Spark's default, Hive's) inside the legacy list
/// shapes of `spark.sql.parquet.writeLegacyFormat` and Hive: read in µs at
/// every depth. They were read in ns inside a 2-level list, where
/// 9999-12-31 (a "valid until" sentinel) wrapped and was refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn int96_timestamps_in_legacy_lists_keep_years_1000_to_9999() {
    use parquet::data_type::{Int64Type, Int96, Int96Type};
    use parquet::file::writer::SerializedFileWriter;
    let dir = tempfile::tempdir().unwrap();
    let schema = Arc::new(
        parquet::schema::parser::parse_message_type(
            "message spark_schema {
               required int64 id;
               optional group a (LIST) { repeated int96 array; }
               optional group s (LIST) { repeated group array { optional int96 t; } }
               optional group hive (LIST) { repeated group bag { optional int96 array_element; } }
               optional int96 top;
             }",
        )
        .unwrap(),
    );
    // (Julian day, nanoseconds of the day): 9999-12-31 23:59:59.999999,
    // 1000-01-01 00:00:00, 2024-01-02 03:04:05.000006.
    let int96 = |day: u32, nanos: u64| Int96::from(vec![nanos as u32, (nanos >> 32) as u32, day]);
    let (last, first, now) =
        (int96(5_373_484, 86_399_999_999_000), int96(2_086_303, 0), int96(2_460_312, 11_045_000_006_000));
    let file = std::fs::File::create(dir.path().join("legacy.parquet")).unwrap();
    let mut w = SerializedFileWriter::new(file, schema, Default::default()).unwrap();
    let mut rg = w.next_row_group().unwrap();
    // Rows: id 1: each list [last, first], top last; id 2: each list
    // [now], top first; id 3: NULL lists (the struct's t NULL), top NULL.
    let mut c = rg.next_column().unwrap().unwrap();
    c.typed::<Int64Type>().write_batch(&[1, 2, 3], None, None).unwrap();
    c.close().unwrap();
    let values = [last, first, now];
    let shapes: [(&[i16], &[i16]); 3] =
        [(&[2, 2, 2, 0], &[0, 1, 0, 0]), (&[3, 3, 3, 2], &[0, 1, 0, 0]), (&[3, 3, 3, 0], &[0, 1, 0, 0])];
    for (defs, reps) in shapes {
        let mut c = rg.next_column().unwrap().unwrap();
        c.typed::<Int96Type>().write_batch(&values, Some(defs), Some(reps)).unwrap();
        c.close().unwrap();
    }
    let mut c = rg.next_column().unwrap().unwrap();
    c.typed::<Int96Type>().write_batch(&[last, first], Some(&[1, 1, 0]), None).unwrap();
    c.close().unwrap();
    rg.close().unwrap();
    w.close().unwrap();

    let got = load_three_rows(
        dir.path(),
        &[
            ("a", "ARRAY<DATETIME>"),
            ("s", "ARRAY<STRUCT<t DATETIME>>"),
            ("hive", "ARRAY<DATETIME>"),
            ("top", "DATETIME"),
        ],
    )
    .await;
    let ts = |us: &str| json!({ "ts_us": us });
    let (last, first, now) = (ts("253402300799999999"), ts("-30610224000000000"), ts("1704164645000006"));
    for c in ["a", "hive"] {
        assert_eq!(got["1"][c], json!([last, first]), "{c}");
        assert_eq!(got["2"][c], json!([now]), "{c}");
        assert_eq!(got["3"][c], Json::Null, "{c}");
    }
    assert_eq!(got["1"]["s"], json!([{ "t": last }, { "t": first }]));
    assert_eq!(got["2"]["s"], json!([{ "t": now }]));
    assert_eq!(got["3"]["s"], json!([{ "t": null }]));
    assert_eq!((got["1"]["top"].clone(), got["2"]["top"].clone()), (last, first));
    assert_eq!(got["3"]["top"], Json::Null);
}
