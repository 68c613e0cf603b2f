//! The simulator's MySQL-protocol endpoint: `DESC`, `SHOW PARTITIONS`,
//! `SHOW DATABASES/TABLES`, and SELECT over stored rows and
//! `information_schema.{columns, tables_config}` (run by DataFusion).

use std::sync::Arc;

use arrow::array::*;
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use async_trait::async_trait;
use datafusion::catalog::SchemaProvider;
use datafusion::prelude::{SessionConfig, SessionContext};
use opensrv_mysql::{
    AsyncMysqlIntermediary, AsyncMysqlShim, Column, ColumnFlags, ColumnType, ErrorKind, InitWriter, OkResponse,
    ParamParser, QueryResultWriter, StatementMetaWriter,
};
use sha1::{Digest, Sha1};
use tokio::io::AsyncWrite;
use tokio::net::TcpListener;

use super::State;
use super::store::Table;
use crate::srtype::SrType;
use crate::value::Value;

pub(crate) async fn serve(listener: TcpListener, state: Arc<State>) {
    let conn_id = std::sync::atomic::AtomicU32::new(1);
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let id = conn_id.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let shim = Shim { state: state.clone(), id, salt: salt(id) };
        tokio::spawn(async move {
            let (r, w) = stream.into_split();
            let _ = AsyncMysqlIntermediary::run_on(shim, r, w).await;
        });
    }
}

fn salt(id: u32) -> [u8; 20] {
    let mut h = Sha1::new();
    h.update(id.to_le_bytes());
    h.update(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
            .to_le_bytes(),
    );
    let d = h.finalize();
    let mut s = [0u8; 20];
    for (i, b) in d.iter().enumerate() {
        // Printable, never NUL or '$'.
        s[i] = b'!' + (b % 90);
        if s[i] == b'$' {
            s[i] = b'%';
        }
    }
    s
}

/// `mysql_native_password`: SHA1(pw) XOR SHA1(salt ‖ SHA1(SHA1(pw))).
pub(crate) fn native_password_matches(password: &str, salt: &[u8], auth: &[u8]) -> bool {
    let h1 = Sha1::digest(password.as_bytes());
    let h2 = Sha1::digest(h1);
    let mut h = Sha1::new();
    h.update(salt);
    h.update(h2);
    let h3 = h.finalize();
    let expect: Vec<u8> = h1.iter().zip(h3.iter()).map(|(a, b)| a ^ b).collect();
    auth == expect.as_slice()
}

struct Shim {
    state: Arc<State>,
    id: u32,
    salt: [u8; 20],
}

/// A query answer: column names and text rows.
type Answer = (Vec<String>, Vec<Vec<Option<String>>>);

#[async_trait]
impl<W: AsyncWrite + Send + Unpin> AsyncMysqlShim<W> for Shim {
    type Error = std::io::Error;

    fn version(&self) -> String {
        "8.0.33-starload-sim".into()
    }

    fn connect_id(&self) -> u32 {
        self.id
    }

    fn salt(&self) -> [u8; 20] {
        self.salt
    }

    async fn authenticate(&self, _plugin: &str, username: &[u8], salt: &[u8], auth_data: &[u8]) -> bool {
        let user = String::from_utf8_lossy(username);
        self.state.check_password_scramble(&user, salt, auth_data)
    }

    async fn on_prepare<'a>(&'a mut self, _query: &'a str, info: StatementMetaWriter<'a, W>) -> std::io::Result<()> {
        info.error(ErrorKind::ER_UNKNOWN_ERROR, b"prepared statements are not supported by the simulator").await
    }

    async fn on_execute<'a>(
        &'a mut self,
        _id: u32,
        _p: ParamParser<'a>,
        results: QueryResultWriter<'a, W>,
    ) -> std::io::Result<()> {
        results.error(ErrorKind::ER_UNKNOWN_ERROR, b"prepared statements are not supported by the simulator").await
    }

    async fn on_close<'a>(&'a mut self, _stmt: u32)
    where
        W: 'async_trait,
    {
    }

    async fn on_init<'a>(&'a mut self, db: &'a str, w: InitWriter<'a, W>) -> std::io::Result<()> {
        if self.state.with_db(db, |_| ()).is_some() {
            w.ok().await
        } else {
            w.error(ErrorKind::ER_BAD_DB_ERROR, format!("Unknown database '{db}'").as_bytes()).await
        }
    }

    async fn on_query<'a>(&'a mut self, query: &'a str, results: QueryResultWriter<'a, W>) -> std::io::Result<()> {
        let answer = run(&self.state, query).await;
        if self.state.reply_lost(query) {
            return Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reply lost (fault injection)"));
        }
        match answer {
            Ok(None) => results.completed(OkResponse::default()).await,
            Ok(Some((cols, rows))) => {
                let columns: Vec<Column> = cols
                    .iter()
                    .map(|c| Column {
                        table: String::new(),
                        column: c.clone(),
                        coltype: ColumnType::MYSQL_TYPE_VAR_STRING,
                        colflags: ColumnFlags::empty(),
                    })
                    .collect();
                let mut w = results.start(&columns).await?;
                for r in rows {
                    w.write_row(r).await?;
                }
                w.finish().await
            }
            Err((kind, msg)) => results.error(kind, msg.as_bytes()).await,
        }
    }
}

type QErr = (ErrorKind, String);

fn words(q: &str) -> Vec<String> {
    q.split_whitespace().map(|w| w.to_string()).collect()
}

fn split_name(s: &str) -> (Option<String>, String) {
    let s = s.trim().trim_end_matches(';');
    let parts: Vec<String> = s.split('.').map(|p| p.trim().trim_matches('`').to_string()).collect();
    match parts.as_slice() {
        [t] => (None, t.clone()),
        [d, t] => (Some(d.clone()), t.clone()),
        _ => (None, s.to_string()),
    }
}

async fn run(state: &Arc<State>, query: &str) -> Result<Option<Answer>, QErr> {
    let q = query.trim().trim_end_matches(';').trim();
    match super::ddl::run(state, q) {
        Ok(super::ddl::Outcome::NotMine) => {}
        Ok(super::ddl::Outcome::Ok) => return Ok(None),
        Ok(super::ddl::Outcome::Count(n)) => {
            return Ok(Some((vec!["count(*)".into()], vec![vec![Some(n.to_string())]])));
        }
        Err(m) => return Err((ErrorKind::ER_UNKNOWN_ERROR, m)),
    }
    let w = words(q);
    let upper: Vec<String> = w.iter().map(|s| s.to_ascii_uppercase()).collect();
    let first = upper.first().map(|s| s.as_str()).unwrap_or("");
    match first {
        "" => Ok(None),
        "SET" | "USE" | "COMMIT" | "ROLLBACK" | "BEGIN" => Ok(None),
        "DESC" | "DESCRIBE" => {
            let (db, t) = split_name(w.get(1).map(|s| s.as_str()).unwrap_or(""));
            let db = db.ok_or((ErrorKind::ER_NO_DB_ERROR, "No database selected".to_string()))?;
            let rows = state
                .with_db(&db, |d| {
                    d.tables.get(&t).map(|t| {
                        t.def
                            .columns
                            .iter()
                            .map(|c| {
                                vec![
                                    Some(c.name.clone()),
                                    Some(c.ty.to_string()),
                                    Some(if c.nullable { "YES" } else { "NO" }.to_string()),
                                    Some(if c.is_key { "true" } else { "false" }.to_string()),
                                    c.default.clone(),
                                    Some(c.agg.clone().unwrap_or_default()),
                                ]
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .ok_or((ErrorKind::ER_BAD_DB_ERROR, format!("Unknown database '{db}'")))?
                .ok_or((ErrorKind::ER_NO_SUCH_TABLE, format!("Unknown table '{db}.{t}'")))?;
            Ok(Some((
                ["Field", "Type", "Null", "Key", "Default", "Extra"].iter().map(|s| s.to_string()).collect(),
                rows,
            )))
        }
        "SHOW" => show(state, &w, &upper),
        "SELECT" | "WITH" => {
            if upper.iter().any(|u| u.starts_with("@@")) {
                let name = w[1].trim_start_matches("@@").to_string();
                return Ok(Some((vec![format!("@@{name}")], vec![vec![Some("starload simulator".into())]])));
            }
            select(state, q).await.map(Some)
        }
        _ => Err((ErrorKind::ER_NOT_SUPPORTED_YET, format!("statement not supported by the simulator: {}", short(q)))),
    }
}

fn short(s: &str) -> String {
    s.chars().take(120).collect()
}

fn show(state: &Arc<State>, w: &[String], upper: &[String]) -> Result<Option<Answer>, QErr> {
    let kw: Vec<&str> = upper.iter().map(|s| s.as_str()).collect();
    match kw.as_slice() {
        ["SHOW", "DATABASES"] => {
            let dbs = state.dbs.lock().unwrap();
            Ok(Some((vec!["Database".into()], dbs.keys().map(|d| vec![Some(d.clone())]).collect())))
        }
        ["SHOW", "TABLES", "FROM", _] | ["SHOW", "TABLES", "IN", _] => {
            let db = w[3].trim_matches('`');
            let rows = state
                .with_db(db, |d| d.tables.keys().map(|t| vec![Some(t.clone())]).collect::<Vec<_>>())
                .ok_or((ErrorKind::ER_BAD_DB_ERROR, format!("Unknown database '{db}'")))?;
            Ok(Some((vec![format!("Tables_in_{db}")], rows)))
        }
        ["SHOW", "PARTITIONS", "FROM", _, ..] | ["SHOW", "TEMPORARY", "PARTITIONS", "FROM", _, ..] => {
            let temp = kw[1] == "TEMPORARY";
            let (db, t) = split_name(&w[if temp { 4 } else { 3 }]);
            let db = db.ok_or((ErrorKind::ER_NO_DB_ERROR, "No database selected".to_string()))?;
            let rows = state
                .with_db(&db, |d| {
                    d.tables.get(&t).map(|t| {
                        let ty = t.def.partition_col.map(|c| &t.def.columns[c].ty);
                        let list: Vec<(u64, String, u64, String)> = if temp {
                            t.temp
                                .iter()
                                .map(|(p, part)| (part.id, p.name.clone(), part.len() as u64, bound_text(&p.bound, ty)))
                                .collect()
                        } else {
                            t.def
                                .partitions
                                .iter()
                                .zip(&t.parts)
                                .map(|(p, part)| (part.id, p.name.clone(), part.len() as u64, bound_text(&p.bound, ty)))
                                .collect()
                        };
                        list.into_iter()
                            .map(|(id, name, rows, range)| {
                                vec![
                                    Some(id.to_string()),
                                    Some(name),
                                    Some("1".into()),
                                    Some("NORMAL".into()),
                                    t.def.partition_col.map(|c| t.def.columns[c].name.clone()),
                                    Some(range),
                                    Some(rows.to_string()),
                                ]
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .ok_or((ErrorKind::ER_BAD_DB_ERROR, format!("Unknown database '{db}'")))?
                .ok_or((ErrorKind::ER_NO_SUCH_TABLE, format!("Unknown table '{db}.{t}'")))?;
            Ok(Some((
                ["PartitionId", "PartitionName", "VisibleVersion", "State", "PartitionKey", "Range", "RowCount"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
                rows,
            )))
        }
        _ => {
            Err((ErrorKind::ER_NOT_SUPPORTED_YET, format!("statement not supported by the simulator: {}", w.join(" "))))
        }
    }
}

/// The `Range` text of SHOW PARTITIONS, as StarRocks prints it:
/// `[types: [DATE]; keys: [2024-01-01]; ..types: [DATE]; keys: [2024-02-01]; )`.
fn bound_text(b: &super::tables::PartitionBound, ty: Option<&crate::srtype::SrType>) -> String {
    use super::tables::PartitionBound::*;
    let tname = ty.map(|t| t.to_string().split(['(', '<']).next().unwrap_or("").to_string()).unwrap_or_default();
    match b {
        All => String::new(),
        List(v) => format!(
            "(({}))",
            v.iter().filter_map(|x| x.display()).map(|x| format!("'{x}'")).collect::<Vec<_>>().join("), (")
        ),
        Range(lo, hi) => format!(
            "[types: [{tname}]; keys: [{}]; ..types: [{tname}]; keys: [{}]; )",
            lo.display().unwrap_or_default(),
            hi.display().unwrap_or_default()
        ),
    }
}

/// Runs a SELECT with DataFusion over the stored rows.
async fn select(state: &Arc<State>, q: &str) -> Result<Answer, QErr> {
    let mut config = SessionConfig::new().with_information_schema(false).with_target_partitions(1);
    config.options_mut().sql_parser.dialect = datafusion::config::Dialect::MySQL;
    let ctx = SessionContext::new_with_config(config);
    ctx.register_udf(bitmap_count());
    ctx.register_udf(bitmap_max());
    ctx.register_udf(current_version(&state.version));
    let catalog = ctx.catalog("datafusion").ok_or((ErrorKind::ER_UNKNOWN_ERROR, "no catalog".to_string()))?;
    let snapshot: Vec<(String, Vec<Table>)> = {
        let dbs = state.dbs.lock().unwrap();
        dbs.iter().map(|(n, d)| (n.clone(), d.tables.values().cloned().collect())).collect()
    };
    let err = |e: datafusion::error::DataFusionError| (ErrorKind::ER_UNKNOWN_ERROR, e.to_string());
    let info = Arc::new(datafusion::catalog::MemorySchemaProvider::new());
    let (cols_batch, cfg_batch) = information_schema(&snapshot);
    info.register_table("columns".into(), Arc::new(mem(cols_batch).map_err(err)?)).map_err(err)?;
    info.register_table("tables_config".into(), Arc::new(mem(cfg_batch).map_err(err)?)).map_err(err)?;
    catalog.register_schema("information_schema", info).map_err(err)?;
    for (db, tables) in &snapshot {
        let schema = Arc::new(datafusion::catalog::MemorySchemaProvider::new());
        for t in tables {
            let batch = table_batch(t);
            schema.register_table(t.def.name.to_ascii_lowercase(), Arc::new(mem(batch).map_err(err)?)).map_err(err)?;
        }
        catalog.register_schema(&db.to_ascii_lowercase(), schema).map_err(err)?;
    }
    let df = ctx.sql(q).await.map_err(|e| (ErrorKind::ER_PARSE_ERROR, e.to_string()))?;
    let schema = df.schema().clone();
    let batches = df.collect().await.map_err(err)?;
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let mut rows = Vec::new();
    let opts = arrow::util::display::FormatOptions::default()
        .with_timestamp_format(Some("%Y-%m-%d %H:%M:%S%.f"))
        .with_date_format(Some("%Y-%m-%d"));
    for b in batches {
        let fmts: Vec<_> = b
            .columns()
            .iter()
            .map(|c| arrow::util::display::ArrayFormatter::try_new(c.as_ref(), &opts))
            .collect::<Result<_, _>>()
            .map_err(|e| (ErrorKind::ER_UNKNOWN_ERROR, e.to_string()))?;
        // Logical nulls: a column of type Null (`SELECT NULL`) has no null
        // buffer, yet every value is NULL.
        let nulls: Vec<_> = b.columns().iter().map(|c| c.logical_nulls()).collect();
        for r in 0..b.num_rows() {
            rows.push(
                fmts.iter()
                    .zip(&nulls)
                    .map(
                        |(f, n)| {
                            if n.as_ref().is_some_and(|n| n.is_null(r)) { None } else { Some(f.value(r).to_string()) }
                        },
                    )
                    .collect(),
            );
        }
    }
    Ok((names, rows))
}

/// StarRocks' `current_version()`: the version text (`3.3.9-<commit>`).
fn current_version(version: &str) -> datafusion::logical_expr::ScalarUDF {
    use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
    let v = version.to_string();
    let f = move |_: &[ColumnarValue]| -> datafusion::error::Result<ColumnarValue> {
        Ok(ColumnarValue::Scalar(datafusion::scalar::ScalarValue::Utf8(Some(v.clone()))))
    };
    create_udf("current_version", vec![], DataType::Utf8, Volatility::Stable, Arc::new(f))
}

/// StarRocks' `bitmap_count(bitmap)`: the number of ids (a BITMAP column
/// reaches SELECT as its ids joined by commas).
fn bitmap_count() -> datafusion::logical_expr::ScalarUDF {
    use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
    let count = |args: &[ColumnarValue]| -> datafusion::error::Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(args)?;
        let ids = arrays[0].as_string::<i32>();
        let n: Int64Array =
            ids.iter().map(|v| v.map(|t| t.split(',').filter(|x| !x.is_empty()).count() as i64)).collect();
        Ok(ColumnarValue::Array(Arc::new(n)))
    };
    create_udf("bitmap_count", vec![DataType::Utf8], DataType::Int64, Volatility::Immutable, Arc::new(count))
}

/// StarRocks' `bitmap_max(bitmap)`: the largest id (a LARGEINT), NULL for
/// an empty or NULL bitmap.
fn bitmap_max() -> datafusion::logical_expr::ScalarUDF {
    use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
    let max = |args: &[ColumnarValue]| -> datafusion::error::Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(args)?;
        let ids = arrays[0].as_string::<i32>();
        let mut out = Vec::with_capacity(ids.len());
        for v in ids.iter() {
            let mut m: Option<u64> = None;
            for x in v.unwrap_or("").split(',').filter(|x| !x.is_empty()) {
                let id: u64 = x
                    .trim()
                    .parse()
                    .map_err(|_| datafusion::error::DataFusionError::Execution(format!("bad bitmap id `{x}`")))?;
                m = Some(m.map_or(id, |m| m.max(id)));
            }
            out.push(m);
        }
        Ok(ColumnarValue::Array(Arc::new(arrow::array::UInt64Array::from(out))))
    };
    create_udf("bitmap_max", vec![DataType::Utf8], DataType::UInt64, Volatility::Immutable, Arc::new(max))
}

fn mem(batch: RecordBatch) -> datafusion::error::Result<datafusion::datasource::MemTable> {
    datafusion::datasource::MemTable::try_new(batch.schema(), vec![vec![batch]])
}

fn information_schema(snapshot: &[(String, Vec<Table>)]) -> (RecordBatch, RecordBatch) {
    let mut c_schema = Vec::new();
    let mut c_table = Vec::new();
    let mut c_name = Vec::new();
    let mut c_pos = Vec::new();
    let mut c_default: Vec<Option<String>> = Vec::new();
    let mut c_nullable = Vec::new();
    let mut c_dtype = Vec::new();
    let mut c_ctype = Vec::new();
    let mut c_key = Vec::new();
    let mut t_schema = Vec::new();
    let mut t_name = Vec::new();
    let mut t_model = Vec::new();
    let mut t_pk = Vec::new();
    let mut t_part = Vec::new();
    for (db, tables) in snapshot {
        for t in tables {
            for (i, c) in t.def.columns.iter().enumerate() {
                c_schema.push(db.clone());
                c_table.push(t.def.name.clone());
                c_name.push(c.name.clone());
                c_pos.push(i as i64 + 1);
                c_default.push(c.default.clone());
                c_nullable.push(if c.nullable { "YES" } else { "NO" }.to_string());
                let full = c.ty.to_string().to_ascii_lowercase();
                c_dtype.push(full.split(['(', '<']).next().unwrap_or("").to_string());
                c_ctype.push(full);
                c_key.push(
                    if c.is_key {
                        match t.def.keys {
                            crate::meta::KeysType::Primary => "PRI",
                            crate::meta::KeysType::Unique => "UNI",
                            crate::meta::KeysType::Aggregate => "AGG",
                            crate::meta::KeysType::Duplicate => "DUP",
                        }
                    } else {
                        ""
                    }
                    .to_string(),
                );
            }
            t_schema.push(db.clone());
            t_name.push(t.def.name.clone());
            t_model.push(t.def.keys.name().to_string());
            t_pk.push(t.def.columns.iter().filter(|c| c.is_key).map(|c| c.name.clone()).collect::<Vec<_>>().join(", "));
            t_part.push(t.def.partition_col.map(|c| t.def.columns[c].name.clone()).unwrap_or_default());
        }
    }
    let s = |v: Vec<String>| Arc::new(StringArray::from(v)) as ArrayRef;
    let cols = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("table_schema", DataType::Utf8, false),
            Field::new("table_name", DataType::Utf8, false),
            Field::new("column_name", DataType::Utf8, false),
            Field::new("ordinal_position", DataType::Int64, false),
            Field::new("column_default", DataType::Utf8, true),
            Field::new("is_nullable", DataType::Utf8, false),
            Field::new("data_type", DataType::Utf8, false),
            Field::new("column_type", DataType::Utf8, false),
            Field::new("column_key", DataType::Utf8, false),
        ])),
        vec![
            s(c_schema),
            s(c_table),
            s(c_name),
            Arc::new(Int64Array::from(c_pos)),
            Arc::new(StringArray::from(c_default)),
            s(c_nullable),
            s(c_dtype),
            s(c_ctype),
            s(c_key),
        ],
    )
    .expect("information_schema.columns batch");
    let cfg = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("table_schema", DataType::Utf8, false),
            Field::new("table_name", DataType::Utf8, false),
            Field::new("table_model", DataType::Utf8, false),
            Field::new("primary_key", DataType::Utf8, false),
            Field::new("partition_key", DataType::Utf8, false),
        ])),
        vec![s(t_schema), s(t_name), s(t_model), s(t_pk), s(t_part)],
    )
    .expect("information_schema.tables_config batch");
    (cols, cfg)
}

/// The Arrow type a stored column is queried as.
fn arrow_type(t: &SrType) -> DataType {
    match t {
        SrType::Boolean => DataType::Boolean,
        SrType::TinyInt => DataType::Int8,
        SrType::SmallInt => DataType::Int16,
        SrType::Int => DataType::Int32,
        SrType::BigInt => DataType::Int64,
        // 39 digits: -2^127 does not fit DECIMAL(38, 0)'s display.
        SrType::LargeInt => DataType::Decimal256(39, 0),
        SrType::Float => DataType::Float32,
        SrType::Double => DataType::Float64,
        SrType::Decimal { precision, scale } => DataType::Decimal128(*precision, *scale as i8),
        SrType::Date => DataType::Date32,
        SrType::Datetime => DataType::Timestamp(TimeUnit::Microsecond, None),
        SrType::Varbinary(_) => DataType::Binary,
        _ => DataType::Utf8,
    }
}

fn table_batch(t: &Table) -> RecordBatch {
    let rows = t.rows();
    let mut fields = Vec::new();
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for (i, c) in t.def.columns.iter().enumerate() {
        let dt = arrow_type(&c.ty);
        fields.push(Field::new(c.name.to_ascii_lowercase(), dt.clone(), true));
        let col = rows.iter().map(|r| &r[i]);
        let a: ArrayRef = match dt {
            DataType::Boolean => {
                Arc::new(col.map(|v| if let Value::Bool(b) = v { Some(*b) } else { None }).collect::<BooleanArray>())
            }
            DataType::Int8 => Arc::new(col.map(|v| int(v).map(|x| x as i8)).collect::<Int8Array>()),
            DataType::Int16 => Arc::new(col.map(|v| int(v).map(|x| x as i16)).collect::<Int16Array>()),
            DataType::Int32 => Arc::new(col.map(|v| int(v).map(|x| x as i32)).collect::<Int32Array>()),
            DataType::Int64 => Arc::new(col.map(|v| int(v).map(|x| x as i64)).collect::<Int64Array>()),
            DataType::Float32 => {
                Arc::new(col.map(|v| if let Value::Float(f) = v { Some(*f) } else { None }).collect::<Float32Array>())
            }
            DataType::Float64 => {
                Arc::new(col.map(|v| if let Value::Double(f) = v { Some(*f) } else { None }).collect::<Float64Array>())
            }
            DataType::Decimal128(p, s) => Arc::new(
                col.map(|v| match v {
                    Value::Decimal(x, _) => Some(*x),
                    Value::Int(x) => Some(*x),
                    _ => None,
                })
                .collect::<Decimal128Array>()
                .with_precision_and_scale(p, s)
                .expect("valid decimal type"),
            ),
            DataType::Decimal256(p, s) => Arc::new(
                col.map(|v| int(v).map(arrow::datatypes::i256::from_i128))
                    .collect::<Decimal256Array>()
                    .with_precision_and_scale(p, s)
                    .expect("valid decimal type"),
            ),
            DataType::Date32 => Arc::new(
                col.map(|v| if let Value::Date(d) = v { Some(*d as i32) } else { None }).collect::<Date32Array>(),
            ),
            DataType::Timestamp(..) => Arc::new(
                col.map(|v| if let Value::Datetime(d) = v { Some(*d) } else { None })
                    .collect::<TimestampMicrosecondArray>(),
            ),
            DataType::Binary => Arc::new(
                col.map(|v| if let Value::Binary(b) = v { Some(b.as_slice()) } else { None }).collect::<BinaryArray>(),
            ),
            _ => Arc::new(col.map(|v| v.display()).collect::<StringArray>()),
        };
        arrays.push(a);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).expect("table batch")
}

fn int(v: &Value) -> Option<i128> {
    if let Value::Int(i) = v { Some(*i) } else { None }
}
