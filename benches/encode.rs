//! Encoding throughput per type family, bitmap serialization, and a
//! lineitem-shaped batch (the end-to-end benchmark's table).
//!
//! `cargo bench --bench encode`

use std::hint::black_box;
use std::sync::Arc;

use arrow::array::*;
use arrow::datatypes::{DataType, Field, Schema};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use roaring::RoaringTreemap;
use starload::encode::{ColumnMapping, Encoded, Encoder, Zone};
use starload::srtype::SrType;

const ROWS: usize = 8192;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn encoder(schema: &Schema, types: &[&str]) -> Encoder {
    let cols = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| ColumnMapping {
            source: i,
            source_name: f.name().clone(),
            target: f.name().clone(),
            ty: SrType::parse(types[i]).unwrap(),
            nullable: true,
            via: Default::default(),
            uuid_text: false,
        })
        .collect();
    Encoder::new(cols, Zone::Utc)
}

fn bench_batch(c: &mut Criterion, name: &str, batch: &RecordBatch, types: &[&str]) {
    bench_batch_split(c, name, batch, types, true)
}

/// `split`: the batch may be rendered on several threads (as `encode`
/// does); without, on the calling thread only (a load whose other batches
/// keep the pool busy).
fn bench_batch_split(c: &mut Criterion, name: &str, batch: &RecordBatch, types: &[&str], split: bool) {
    let enc = encoder(&batch.schema(), types);
    let mut out = Encoded::default();
    enc.encode_split(batch, &mut out, split).unwrap();
    let bytes: usize = out.parts.iter().map(|p| p.data.len()).sum();
    let mut g = c.benchmark_group("encode");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function(name, |b| {
        b.iter(|| {
            let mut out = Encoded::default();
            enc.encode_split(black_box(batch), &mut out, split).unwrap();
            black_box(out);
        })
    });
    g.finish();
}

/// A batch shaped like TPC-H lineitem.
pub fn lineitem(rows: usize) -> (RecordBatch, Vec<&'static str>) {
    let mut r = Rng(7);
    let dec = |r: &mut Rng, m: u64| {
        Decimal128Array::from_iter_values((0..rows).map(|_| (r.next() % m) as i128))
            .with_precision_and_scale(15, 2)
            .unwrap()
    };
    let comments = [
        "carefully final deposits",
        "quickly regular requests nag",
        "furiously ironic",
        "slyly pending theodolites haggle blithely",
    ];
    let schema = Arc::new(Schema::new(vec![
        Field::new("l_orderkey", DataType::Int64, false),
        Field::new("l_partkey", DataType::Int64, false),
        Field::new("l_suppkey", DataType::Int64, false),
        Field::new("l_linenumber", DataType::Int32, false),
        Field::new("l_quantity", DataType::Decimal128(15, 2), false),
        Field::new("l_extendedprice", DataType::Decimal128(15, 2), false),
        Field::new("l_discount", DataType::Decimal128(15, 2), false),
        Field::new("l_tax", DataType::Decimal128(15, 2), false),
        Field::new("l_returnflag", DataType::Utf8View, false),
        Field::new("l_linestatus", DataType::Utf8View, false),
        Field::new("l_shipdate", DataType::Date32, false),
        Field::new("l_commitdate", DataType::Date32, false),
        Field::new("l_receiptdate", DataType::Date32, false),
        Field::new("l_shipinstruct", DataType::Utf8View, false),
        Field::new("l_shipmode", DataType::Utf8View, false),
        Field::new("l_comment", DataType::Utf8View, false),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from_iter_values((0..rows).map(|_| (r.next() % 30_000_000) as i64))),
            Arc::new(Int64Array::from_iter_values((0..rows).map(|_| (r.next() % 1_000_000) as i64))),
            Arc::new(Int64Array::from_iter_values((0..rows).map(|_| (r.next() % 50_000) as i64))),
            Arc::new(Int32Array::from_iter_values((0..rows).map(|_| (r.next() % 7) as i32 + 1))),
            Arc::new(dec(&mut r, 5000)),
            Arc::new(dec(&mut r, 10_000_000)),
            Arc::new(dec(&mut r, 10)),
            Arc::new(dec(&mut r, 8)),
            Arc::new(StringViewArray::from_iter_values((0..rows).map(|_| ["A", "N", "R"][(r.next() % 3) as usize]))),
            Arc::new(StringViewArray::from_iter_values((0..rows).map(|_| ["F", "O"][(r.next() % 2) as usize]))),
            Arc::new(Date32Array::from_iter_values((0..rows).map(|_| 8000 + (r.next() % 2500) as i32))),
            Arc::new(Date32Array::from_iter_values((0..rows).map(|_| 8000 + (r.next() % 2500) as i32))),
            Arc::new(Date32Array::from_iter_values((0..rows).map(|_| 8000 + (r.next() % 2500) as i32))),
            Arc::new(StringViewArray::from_iter_values(
                (0..rows)
                    .map(|_| ["DELIVER IN PERSON", "COLLECT COD", "NONE", "TAKE BACK RETURN"][(r.next() % 4) as usize]),
            )),
            Arc::new(StringViewArray::from_iter_values(
                (0..rows).map(|_| ["AIR", "MAIL", "SHIP", "TRUCK", "RAIL", "FOB", "REG AIR"][(r.next() % 7) as usize]),
            )),
            Arc::new(StringViewArray::from_iter_values((0..rows).map(|_| comments[(r.next() % 4) as usize]))),
        ],
    )
    .unwrap();
    let types = vec![
        "BIGINT",
        "BIGINT",
        "BIGINT",
        "INT",
        "DECIMAL(15,2)",
        "DECIMAL(15,2)",
        "DECIMAL(15,2)",
        "DECIMAL(15,2)",
        "VARCHAR(1)",
        "VARCHAR(1)",
        "DATE",
        "DATE",
        "DATE",
        "VARCHAR(25)",
        "VARCHAR(10)",
        "VARCHAR(44)",
    ];
    (batch, types)
}

fn families(c: &mut Criterion) {
    let mut r = Rng(1);
    let one = |name: &str, a: ArrayRef| {
        let schema = Arc::new(Schema::new(vec![Field::new(name, a.data_type().clone(), true)]));
        RecordBatch::try_new(schema, vec![a]).unwrap()
    };
    let ints = one("i", Arc::new(Int64Array::from_iter_values((0..ROWS).map(|_| r.next() as i64))));
    bench_batch(c, "int64", &ints, &["BIGINT"]);
    let narrow = one("i", Arc::new(Int64Array::from_iter_values((0..ROWS).map(|_| (r.next() % 100_000) as i64))));
    bench_batch(c, "int64_into_int_checked", &narrow, &["INT"]);
    let decs = one(
        "d",
        Arc::new(
            Decimal128Array::from_iter_values((0..ROWS).map(|_| (r.next() % 1_000_000_000) as i128))
                .with_precision_and_scale(18, 4)
                .unwrap(),
        ),
    );
    bench_batch(c, "decimal", &decs, &["DECIMAL(18,4)"]);
    let floats = one("f", Arc::new(Float64Array::from_iter_values((0..ROWS).map(|_| f64::from_bits(r.next() >> 2)))));
    bench_batch(c, "double", &floats, &["DOUBLE"]);
    let two = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("f", DataType::Float64, true), Field::new("i", DataType::Int64, true)])),
        vec![floats.column(0).clone(), ints.column(0).clone()],
    )
    .unwrap();
    // Doubles of any bits beside a BIGINT, a row at a time on one thread.
    bench_batch_split(c, "double_rows_one_thread", &two, &["DOUBLE", "BIGINT"], false);
    // Spark's DECIMAL(38,18) (sums, averages): from 18.45 on beyond 64 bits.
    let wide = Decimal128Array::from_iter_values(
        (0..ROWS).map(|_| (r.next() % 100_000_000) as i128 * 10i128.pow(14) + (r.next() % 10_000) as i128),
    )
    .with_precision_and_scale(38, 18)
    .unwrap();
    let wide = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("d", DataType::Decimal128(38, 18), true),
            Field::new("i", DataType::Int64, true),
        ])),
        vec![Arc::new(wide), ints.column(0).clone()],
    )
    .unwrap();
    bench_batch_split(c, "decimal38_rows_one_thread", &wide, &["DECIMAL(38,18)", "BIGINT"], false);
    let ts = one(
        "t",
        Arc::new(TimestampMicrosecondArray::from_iter_values(
            (0..ROWS).map(|_| (r.next() % 2_000_000_000_000_000) as i64),
        )),
    );
    bench_batch(c, "timestamp_us", &ts, &["DATETIME"]);
    // pandas' default unit, whole microseconds.
    let ns = one(
        "t",
        Arc::new(TimestampNanosecondArray::from_iter_values(
            (0..ROWS).map(|_| (r.next() % 2_000_000_000_000_000) as i64 * 1000),
        )),
    );
    bench_batch(c, "timestamp_ns", &ns, &["DATETIME"]);
    let tz = one(
        "t",
        Arc::new(
            TimestampMicrosecondArray::from_iter_values((0..ROWS).map(|_| (r.next() % 2_000_000_000_000_000) as i64))
                .with_timezone("UTC"),
        ),
    );
    let enc = Encoder::new(
        vec![ColumnMapping {
            source: 0,
            source_name: "t".into(),
            target: "t".into(),
            ty: SrType::Datetime,
            nullable: true,
            via: Default::default(),
            uuid_text: false,
        }],
        Zone::parse("Asia/Shanghai").unwrap(),
    );
    c.bench_function("encode/timestamp_tz_converted", |b| {
        b.iter(|| {
            let mut out = Encoded::default();
            enc.encode(black_box(&tz), &mut out).unwrap();
            black_box(out);
        })
    });
    let strs = one(
        "s",
        Arc::new(StringArray::from_iter_values((0..ROWS).map(|i| format!("string value number {i} with some text")))),
    );
    bench_batch(c, "strings_checked", &strs, &["VARCHAR(100)"]);
    let mut lb = ListBuilder::new(StringBuilder::new());
    for i in 0..ROWS {
        for j in 0..(i % 4) {
            lb.values().append_value(format!("e{j}\"q"));
        }
        lb.append(true);
    }
    let nested = one("l", Arc::new(lb.finish()));
    bench_batch(c, "array_of_strings", &nested, &["ARRAY<VARCHAR(20)>"]);
    let (li, types) = lineitem(ROWS);
    bench_batch(c, "lineitem_batch", &li, &types);
    // On one thread, whole and each column alone: where the batch's time
    // goes (a column alone also pays the batch's fixed costs).
    bench_batch_split(c, "lineitem_batch_one_thread", &li, &types, false);
    for (i, f) in li.schema().fields().iter().enumerate() {
        let col = one(f.name(), li.column(i).clone());
        bench_batch_split(c, &format!("lineitem_column/{}", f.name()), &col, &[types[i]], false);
    }
    let (ev, types) = events(ROWS);
    bench_batch_split(c, "events_batch_one_thread", &ev, &types, false);
}

/// A batch shaped like a Hive fact table of events: doubles and a boolean
/// beside integers, timestamps, dates and strings.
pub fn events(rows: usize) -> (RecordBatch, Vec<&'static str>) {
    let mut r = Rng(11);
    let schema = Arc::new(Schema::new(vec![
        Field::new("event_id", DataType::Int64, false),
        Field::new("user_id", DataType::Int64, true),
        Field::new("amount", DataType::Float64, true),
        Field::new("score", DataType::Float64, true),
        Field::new("is_mobile", DataType::Boolean, true),
        Field::new("ts", DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, None), false),
        Field::new("country", DataType::Utf8View, true),
        Field::new("page", DataType::Utf8View, true),
        Field::new("dt", DataType::Date32, false),
    ]));
    let countries = ["DE", "US", "FR", "BR", "IN", "JP", "CN", "GB"];
    let pages = ["/", "/search", "/cart", "/checkout/payment", "/product/12345/reviews?page=2", "/help"];
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from_iter_values((0..rows).map(|i| 1_700_000_000_000 + i as i64))),
            Arc::new(Int64Array::from_iter(
                (0..rows).map(|_| (!r.next().is_multiple_of(10)).then(|| (r.next() % 50_000_000) as i64)),
            )),
            // Prices in cents, as doubles (`12.34`).
            Arc::new(Float64Array::from_iter(
                (0..rows).map(|_| (!r.next().is_multiple_of(20)).then(|| (r.next() % 100_000) as f64 / 100.0)),
            )),
            Arc::new(Float64Array::from_iter(
                (0..rows)
                    .map(|_| (!r.next().is_multiple_of(20)).then(|| (r.next() >> 11) as f64 / (1u64 << 53) as f64)),
            )),
            Arc::new(BooleanArray::from_iter(
                (0..rows).map(|_| (!r.next().is_multiple_of(20)).then(|| r.next().is_multiple_of(3))),
            )),
            Arc::new(TimestampMicrosecondArray::from_iter_values(
                (0..rows).map(|_| 1_732_000_000_000_000 + (r.next() % 86_400_000) as i64 * 1000),
            )),
            Arc::new(StringViewArray::from_iter(
                (0..rows).map(|_| (!r.next().is_multiple_of(50)).then(|| countries[(r.next() % 8) as usize])),
            )),
            Arc::new(StringViewArray::from_iter(
                (0..rows).map(|_| (!r.next().is_multiple_of(50)).then(|| pages[(r.next() % 6) as usize])),
            )),
            Arc::new(Date32Array::from_iter_values((0..rows).map(|_| 20_050))),
        ],
    )
    .unwrap();
    let types =
        vec!["BIGINT", "BIGINT", "DOUBLE", "DOUBLE", "BOOLEAN", "DATETIME", "VARCHAR(2)", "VARCHAR(128)", "DATE"];
    (batch, types)
}

fn bitmaps(c: &mut Criterion) {
    let mut g = c.benchmark_group("bitmap");
    for (name, vals) in [
        ("serialize_32bit_10k", (0..10_000u64).map(|i| i * 7).collect::<Vec<_>>()),
        ("serialize_64bit_10k", (0..10_000u64).map(|i| (i << 33) + i).collect::<Vec<_>>()),
    ] {
        let b: RoaringTreemap = vals.into_iter().collect();
        g.throughput(Throughput::Elements(b.len()));
        g.bench_function(name, |bench| bench.iter(|| black_box(starload::bitmap::serialize(black_box(&b)))));
    }
    g.finish();
}

criterion_group!(benches, families, bitmaps);
criterion_main!(benches);
