//! Hive Metastore client: a table's location, schema and partitions over
//! Thrift, and the translation of a SQL predicate into a partition filter.
//!
//! The client speaks the Thrift binary protocol over an unframed (buffered)
//! socket, as Hive Metastore 2, 3 and 4 serve it by default (no SASL, no
//! Kerberos). It sends only the calls it needs (`get_table_req`, falling back
//! to `get_table` on metastores that predate it, `get_partitions`,
//! `get_partitions_by_filter`, `get_database`) and decodes replies into a
//! generic tree, reading the fields it knows by id and skipping the rest, so
//! fields added by later Hive versions never break it. Every call has a
//! deadline: a metastore that does not answer is an infrastructure error
//! naming its URI once the timeout has passed.
//!
//! ```no_run
//! # async fn f() -> starload::Result<()> {
//! use starload::hms::{Metastore, partition_filter};
//! let mut ms = Metastore::connect("thrift://hms:9083", std::time::Duration::from_secs(30)).await?;
//! let t = ms.table("sales", "orders").await?;
//! let filter = partition_filter("dt >= '2024-01-01' AND amount > 0", &t.partition_keys);
//! let parts = ms.partitions("sales", "orders", filter.as_deref()).await?;
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::io::{self, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use datafusion::sql::sqlparser::ast::Expr;

use crate::error::{Error, Result};

/// The metastore's default port.
pub const DEFAULT_PORT: u16 = 9083;

/// A column of a Hive table: its name and Hive type (`bigint`,
/// `decimal(10,2)`, `array<string>`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HiveColumn {
    /// The column name (Hive stores it in lower case).
    pub name: String,
    /// The Hive type, as the metastore stores it.
    pub hive_type: String,
}

/// A Hive table as the metastore describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HiveTable {
    /// The database.
    pub db: String,
    /// The table name.
    pub name: String,
    /// The table's storage location (`hdfs://nn:8020/warehouse/t`,
    /// `s3a://bucket/t`, `file:/data/t`); empty when it has none (views).
    pub location: String,
    /// The data columns, in order (partition columns not included).
    pub columns: Vec<HiveColumn>,
    /// The partition columns, in order; empty for an unpartitioned table.
    pub partition_keys: Vec<HiveColumn>,
    /// The input format class (`...MapredParquetInputFormat`).
    pub input_format: String,
    /// The serde class (`...ParquetHiveSerDe`).
    pub serde_lib: String,
    /// `EXTERNAL_TABLE`, `MANAGED_TABLE`, `VIRTUAL_VIEW`, ...
    pub table_type: String,
    /// The table parameters (`EXTERNAL`, `transient_lastDdlTime`, ...).
    pub parameters: BTreeMap<String, String>,
}

/// One partition of a Hive table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HivePartition {
    /// The partition values, in the order of the table's partition keys, as
    /// text (`__HIVE_DEFAULT_PARTITION__` stands for NULL).
    pub values: Vec<String>,
    /// Where the partition's files are; anywhere, not necessarily under the
    /// table location. Empty when the metastore has none.
    pub location: String,
    /// The partition's own input format class (`ALTER TABLE ... PARTITION
    /// ... SET FILEFORMAT` changes it from the table's); empty when unset.
    pub input_format: String,
}

impl HivePartition {
    /// Refuses a partition its metastore says is not stored as Parquet.
    pub fn check_plain_parquet(&self, t: &HiveTable, keys: &[String]) -> Result<()> {
        let f = self.input_format.trim();
        if f.is_empty() || PARQUET_INPUT_FORMATS.contains(&f) {
            return Ok(());
        }
        Err(Error::config(format!(
            "partition `{}` of Hive table `{}.{}` is not stored as plain Parquet (input format `{f}`)",
            self.name(keys),
            t.db,
            t.name
        )))
    }

    /// `k1=v1/k2=v2`, as Hive names the partition's directory (values
    /// escaped as Hive's `FileUtils.escapePathName` does).
    pub fn name(&self, keys: &[String]) -> String {
        keys.iter().zip(&self.values).map(|(k, v)| format!("{k}={}", escape_path_name(v))).collect::<Vec<_>>().join("/")
    }

    /// Where the partition's files are: its location, or (none recorded)
    /// where Hive looks then, its name under the table's location.
    pub fn location_in(&self, t: &HiveTable, keys: &[String]) -> Result<String> {
        if !self.location.trim().is_empty() {
            return Ok(self.location.clone());
        }
        if t.location.trim().is_empty() {
            return Err(Error::config(format!(
                "partition `{}` of Hive table `{}.{}` has no location, nor has the table",
                self.name(keys),
                t.db,
                t.name
            )));
        }
        Ok(format!("{}/{}", t.location.trim_end_matches('/'), self.name(keys)))
    }
}

/// A partition value as Hive writes it in a directory name.
fn escape_path_name(v: &str) -> String {
    if v.is_empty() {
        return "__HIVE_DEFAULT_PARTITION__".into();
    }
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        let escaped =
            matches!(c, '"' | '#' | '%' | '\'' | '*' | '/' | ':' | '=' | '?' | '\\' | '\u{7f}' | '{' | '[' | ']' | '^')
                || ('\u{1}'..='\u{1f}').contains(&c);
        if escaped {
            out.push_str(&format!("%{:02X}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// The input formats of plain Parquet tables (every file a complete part
/// of the table).
const PARQUET_INPUT_FORMATS: &[&str] = &[
    "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "parquet.hive.DeprecatedParquetInputFormat",
    "parquet.hive.MapredParquetInputFormat",
    // Tables Impala 1.x created.
    "com.cloudera.impala.hive.serde.ParquetInputFormat",
];

/// Refuses a table whose files are not all plain Parquet rows of the table:
/// another storage format; a table format whose files are versions or
/// deltas that only its own reader merges (Hudi's `HoodieParquetInputFormat`
/// names Parquet too; Iceberg, Delta); a Hive transactional (ACID) table,
/// whose `base_`/`delta_` directories hold the same rows more than once.
pub fn check_plain_parquet(t: &HiveTable) -> Result<()> {
    let name = format!("{}.{}", t.db, t.name);
    let param = |k: &str| t.parameters.iter().find(|(pk, _)| pk.eq_ignore_ascii_case(k)).map(|(_, v)| v.trim());
    if param("transactional").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return Err(Error::config(format!(
            "Hive table `{name}` is transactional (ACID): its base and delta directories are merged only by Hive's \
             reader, so reading its files would load rows twice; load from a non-transactional copy"
        )));
    }
    let table_format = param("table_type")
        .filter(|v| ["iceberg", "hudi", "delta"].iter().any(|f| v.eq_ignore_ascii_case(f)))
        .map(String::from);
    let spark_provider = param("spark.sql.sources.provider")
        .filter(|v| !v.eq_ignore_ascii_case("parquet") && !v.eq_ignore_ascii_case("hive"))
        .map(String::from);
    let other_format = table_format.or(spark_provider);
    if let Some(f) = other_format {
        return Err(Error::config(format!(
            "Hive table `{name}` is a `{f}` table: its files are read through that format's own reader; load from \
             a plain Parquet copy"
        )));
    }
    if t.table_type.eq_ignore_ascii_case("VIRTUAL_VIEW") || t.table_type.eq_ignore_ascii_case("MATERIALIZED_VIEW") {
        return Err(Error::config(format!(
            "`{name}` is a Hive view, not a table: it has no files of its own; load the tables it reads"
        )));
    }
    if !PARQUET_INPUT_FORMATS.contains(&t.input_format.trim()) {
        return Err(Error::config(format!(
            "Hive table `{name}` is not stored as plain Parquet (input format `{}`, serde `{}`)",
            t.input_format, t.serde_lib
        )));
    }
    Ok(())
}

/// A connection to a Hive Metastore.
///
/// One call at a time runs over one socket; the socket is reopened after a
/// failure. Every call (connecting included) must complete within the
/// timeout given to [`Metastore::connect`].
pub struct Metastore {
    uri: String,
    addrs: Vec<SocketAddr>,
    timeout: Duration,
    conn: Option<TcpStream>,
    seq: i32,
}

impl std::fmt::Debug for Metastore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metastore").field("uri", &self.uri).field("timeout", &self.timeout).finish()
    }
}

/// Why a call did not produce a reply.
#[derive(Debug)]
enum Fail {
    /// No complete answer before the deadline.
    Timeout,
    /// Connecting, sending or receiving failed.
    Io(io::Error),
    /// The metastore answered with a Thrift application exception.
    App { kind: i32, message: String },
    /// The peer does not speak the Thrift binary protocol (or a reply did not
    /// match the call).
    Protocol(String),
}

impl From<io::Error> for Fail {
    fn from(e: io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => Fail::Timeout,
            io::ErrorKind::InvalidData => Fail::Protocol(e.to_string()),
            _ => Fail::Io(e),
        }
    }
}

/// A call's outcome: the result, or one of the declared exceptions (its field
/// id in the reply and its `message`).
enum Reply {
    Ok(thrift::Value),
    Exception(i16, String),
}

/// `TApplicationException` type: the server does not know the method.
const UNKNOWN_METHOD: i32 = 1;

impl Metastore {
    /// Connects to the metastore at `uri` (`thrift://host:port`; several
    /// comma-separated URIs are tried in order, as in `hive.metastore.uris`).
    ///
    /// `timeout` bounds connecting and every later call. A malformed URI is a
    /// configuration error; a metastore that cannot be reached is an
    /// infrastructure error naming the URI.
    pub async fn connect(uri: &str, timeout: Duration) -> Result<Metastore> {
        let deadline = Instant::now() + timeout;
        let endpoints = parse_uris(uri)?;
        let mut addrs = Vec::new();
        let mut resolve_err = None;
        for (host, port) in &endpoints {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, tokio::net::lookup_host((host.as_str(), *port))).await {
                Ok(Ok(found)) => addrs.extend(found),
                Ok(Err(e)) => resolve_err = Some(format!("cannot resolve {host}: {e}")),
                Err(_) => resolve_err = Some(format!("cannot resolve {host} within {timeout:?}")),
            }
        }
        if addrs.is_empty() {
            let why = resolve_err.unwrap_or_else(|| "no address".into());
            return Err(Error::infra(format!("Hive Metastore {uri} unreachable: {why}")));
        }
        let mut ms = Metastore { uri: uri.to_string(), addrs, timeout, conn: None, seq: 0 };
        let addrs = ms.addrs.clone();
        let conn = tokio::task::spawn_blocking(move || open(&addrs, deadline))
            .await
            .map_err(|e| Error::internal(format!("metastore connect task: {e}")))?;
        match conn {
            Ok(c) => ms.conn = Some(c),
            Err(Fail::Timeout) => {
                return Err(Error::infra(format!(
                    "Hive Metastore {uri} unreachable: no connection within {timeout:?}"
                )));
            }
            Err(Fail::Io(e)) => return Err(Error::infra(format!("Hive Metastore {uri} unreachable: {e}"))),
            Err(other) => return Err(ms.failure("connect", "", other)),
        }
        Ok(ms)
    }

    /// The URI this client was connected with.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The table `db.table`: location, columns, partition keys, formats.
    ///
    /// An unknown database or table is a configuration error naming it.
    /// Whether the table can be loaded (Parquet, see [`is_parquet`]) is for
    /// the caller to decide.
    pub async fn table(&mut self, db: &str, table: &str) -> Result<HiveTable> {
        use thrift::Value as V;
        let what = format!("{db}.{table}");
        let req = V::Struct(vec![(1, V::string(db)), (2, V::string(table))]);
        // Hive 4 removed get_table; get_table_req exists since Hive 2.3.
        let reply = match self.call("get_table_req", vec![(1, req)], &what).await {
            Err(Fail::App { kind: UNKNOWN_METHOD, .. }) => {
                let args = vec![(1, V::string(db)), (2, V::string(table))];
                let r = self.call("get_table", args, &what).await.map_err(|f| self.failure("get_table", &what, f))?;
                match r {
                    Reply::Ok(t) => Reply::Ok(V::Struct(vec![(1, t)])),
                    e => e,
                }
            }
            other => other.map_err(|f| self.failure("get_table_req", &what, f))?,
        };
        match reply {
            // Both calls declare o1: MetaException, o2: NoSuchObjectException.
            Reply::Ok(result) => {
                let t = result.field(1).ok_or_else(|| {
                    Error::infra(format!("Hive Metastore {}: get_table_req({what}) returned no table", self.uri))
                })?;
                Ok(to_table(t, db, table))
            }
            Reply::Exception(2, _) => Err(self.not_found(db, table).await),
            // Hive 3 refuses transactional tables to clients without the
            // ACID capabilities ("Your client does not appear to support
            // insert-only tables"): not a fault that a retry mends.
            Reply::Exception(_, msg) if msg.contains("does not appear to support") => Err(Error::config(format!(
                "Hive table {what} is transactional (ACID) (the metastore says: {msg}); its base and delta \
                 directories are merged only by Hive's reader: load from a non-transactional copy"
            ))),
            Reply::Exception(_, msg) => {
                Err(Error::infra(format!("Hive Metastore {}: cannot read table {what}: {msg}", self.uri)))
            }
        }
    }

    /// The partitions of `db.table`: all of them, or those matching a
    /// metastore filter (`get_partitions_by_filter` syntax, e.g.
    /// `dt >= "2024-01-01" and region = "eu"`; see [`partition_filter`]).
    ///
    /// Sorted by their values. A filter the metastore refuses to evaluate
    /// (a syntax error, or a column type an older Hive cannot filter) falls
    /// back to listing every partition, with a warning: the result may be
    /// wider than the filter, never narrower, so the predicate the filter came
    /// from must still be applied to the rows. An unpartitioned table has
    /// none. An unknown table is a configuration error, except that Hive 4
    /// lists no partitions for it when there is no filter: look the table up
    /// with [`Metastore::table`] first.
    pub async fn partitions(&mut self, db: &str, table: &str, filter: Option<&str>) -> Result<Vec<HivePartition>> {
        use thrift::Value as V;
        let what = format!("{db}.{table}");
        let all = vec![(1, V::string(db)), (2, V::string(table)), (3, V::I16(-1))];
        let reply = match filter.map(str::trim).filter(|f| !f.is_empty()) {
            Some(f) => {
                let args = vec![(1, V::string(db)), (2, V::string(table)), (3, V::string(f)), (4, V::I16(-1))];
                let w = format!("{what}, {f:?}");
                match self.call("get_partitions_by_filter", args, &w).await {
                    // get_partitions_by_filter: o1 MetaException, o2 NoSuchObjectException.
                    Ok(Reply::Exception(1, msg)) => {
                        tracing::warn!(
                            metastore = %self.uri,
                            table = %what,
                            "the metastore cannot evaluate the partition filter {f:?} ({msg}); listing every partition"
                        );
                        self.call("get_partitions", all, &what)
                            .await
                            .map_err(|e| self.failure("get_partitions", &what, e))?
                    }
                    Ok(Reply::Exception(2, _)) => return Err(self.not_found(db, table).await),
                    other => other.map_err(|e| self.failure("get_partitions_by_filter", &w, e))?,
                }
            }
            None => {
                self.call("get_partitions", all, &what).await.map_err(|e| self.failure("get_partitions", &what, e))?
            }
        };
        let list = match reply {
            Reply::Ok(list) => list,
            // get_partitions: o1 NoSuchObjectException, o2 MetaException.
            Reply::Exception(1, _) => return Err(self.not_found(db, table).await),
            Reply::Exception(_, msg) => {
                return Err(Error::infra(format!(
                    "Hive Metastore {}: cannot list the partitions of {what}: {msg}",
                    self.uri
                )));
            }
        };
        let mut parts: Vec<HivePartition> = list.items().iter().map(to_partition).collect();
        parts.sort_by(|a, b| a.values.cmp(&b.values));
        Ok(parts)
    }

    /// The error for a table the metastore does not know: names the database
    /// when that is what is missing.
    async fn not_found(&mut self, db: &str, table: &str) -> Error {
        use thrift::Value as V;
        // get_database: o1 NoSuchObjectException, o2 MetaException.
        let db_missing =
            matches!(self.call("get_database", vec![(1, V::string(db))], db).await, Ok(Reply::Exception(1, _)));
        if db_missing {
            Error::config(format!("Hive database `{db}` not found in the metastore at {}", self.uri))
        } else {
            Error::config(format!("Hive table `{db}.{table}` not found in the metastore at {}", self.uri))
        }
    }

    /// The error for a call that produced no reply.
    fn failure(&self, method: &str, what: &str, f: Fail) -> Error {
        let uri = &self.uri;
        match f {
            Fail::Timeout => {
                Error::infra(format!("Hive Metastore {uri}: no answer to {method}({what}) within {:?}", self.timeout))
            }
            Fail::Io(e) => Error::infra(format!("Hive Metastore {uri}: {method}({what}) failed: {e}")),
            Fail::App { message, .. } => Error::infra(format!("Hive Metastore {uri}: {method}({what}): {message}")),
            Fail::Protocol(why) => Error::infra(format!(
                "Hive Metastore {uri}: {method}({what}): not a Thrift binary-protocol answer ({why}); \
                 is this an unframed Hive Metastore without SASL?"
            )),
        }
    }

    /// Sends one call and reads its reply within the timeout. When a reused
    /// connection fails (the metastore may have closed it), the call is sent
    /// once more on a new one: the calls only read, so repeating one is safe.
    async fn call(&mut self, method: &'static str, args: Vec<(i16, thrift::Value)>, what: &str) -> Result<Reply, Fail> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let msg = thrift::encode_call(method, seq, args);
        let deadline = Instant::now() + self.timeout;
        let addrs = self.addrs.clone();
        let reused = self.conn.take();
        let task = tokio::task::spawn_blocking(move || {
            let was_reused = reused.is_some();
            let mut conn = match reused {
                Some(c) => c,
                None => open(&addrs, deadline)?,
            };
            let mut r = exchange(&mut conn, method, seq, &msg, deadline);
            if was_reused
                && matches!(r, Err(Fail::Io(_)))
                && let Ok(fresh) = open(&addrs, deadline)
            {
                conn = fresh;
                r = exchange(&mut conn, method, seq, &msg, deadline);
            }
            // After a transport failure the stream's state is unknown.
            let keep = matches!(r, Ok(_) | Err(Fail::App { .. }));
            Ok::<_, Fail>((keep.then_some(conn), r))
        });
        let (conn, r) = match tokio::time::timeout(self.timeout + Duration::from_secs(5), task).await {
            Ok(Ok(Ok(done))) => done,
            Ok(Ok(Err(f))) => return Err(f),
            Ok(Err(e)) => return Err(Fail::Io(io::Error::other(format!("metastore call task: {e}")))),
            Err(_) => return Err(Fail::Timeout),
        };
        self.conn = conn;
        tracing::debug!(metastore = %self.uri, method, what, ok = r.is_ok(), "metastore call");
        r
    }
}

/// Opens a socket to the first address that accepts before the deadline.
fn open(addrs: &[SocketAddr], deadline: Instant) -> Result<TcpStream, Fail> {
    let mut last = None;
    for addr in addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Fail::Timeout);
        }
        match TcpStream::connect_timeout(addr, left) {
            Ok(s) => {
                s.set_nodelay(true).map_err(Fail::Io)?;
                return Ok(s);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.map(Fail::from).unwrap_or(Fail::Timeout))
}

/// Writes one call and reads its reply, all before the deadline.
fn exchange(conn: &mut TcpStream, method: &str, seq: i32, msg: &[u8], deadline: Instant) -> Result<Reply, Fail> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(Fail::Timeout);
    }
    conn.set_write_timeout(Some(left))?;
    conn.write_all(msg)?;
    conn.flush()?;
    let mut r = BufReader::with_capacity(1 << 16, DeadlineReader { s: conn, deadline });
    let m = thrift::read_message(&mut r)?;
    match m.kind {
        thrift::EXCEPTION => {
            let message = m.body.field(1).and_then(thrift::Value::str).unwrap_or_default();
            let kind = m.body.field(2).and_then(thrift::Value::i32).unwrap_or(0);
            return Err(Fail::App { kind, message });
        }
        thrift::REPLY => {}
        k => return Err(Fail::Protocol(format!("message type {k} in reply to {method}"))),
    }
    if m.name != method || m.seq != seq {
        return Err(Fail::Protocol(format!("reply {}#{} to call {method}#{seq}", m.name, m.seq)));
    }
    let thrift::Value::Struct(fields) = m.body else {
        return Err(Fail::Protocol("reply is not a struct".into()));
    };
    if let Some((_, v)) = fields.iter().find(|(id, _)| *id == 0) {
        return Ok(Reply::Ok(v.clone()));
    }
    match fields.into_iter().find(|(id, _)| *id > 0) {
        Some((id, ex)) => Ok(Reply::Exception(
            id,
            ex.field(1).and_then(thrift::Value::str).unwrap_or_else(|| format!("exception {id}")),
        )),
        None => Err(Fail::Protocol(format!("empty reply to {method}"))),
    }
}

/// A reader that fails with `TimedOut` once a deadline has passed.
struct DeadlineReader<'a> {
    s: &'a TcpStream,
    deadline: Instant,
}

impl Read for DeadlineReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "deadline passed"));
        }
        self.s.set_read_timeout(Some(left))?;
        self.s.read(buf)
    }
}

/// `thrift://host[:port]` (comma-separated list) → host and port pairs.
fn parse_uris(uri: &str) -> Result<Vec<(String, u16)>> {
    let bad = |why: &str| {
        Error::config(format!("metastore URI `{uri}`: {why} (expected thrift://HOST:PORT, e.g. thrift://hms:9083)"))
    };
    let mut out = Vec::new();
    for one in uri.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let u = url::Url::parse(one).map_err(|e| bad(&e.to_string()))?;
        if u.scheme() != "thrift" {
            return Err(bad(&format!("scheme `{}` is not thrift", u.scheme())));
        }
        let host = match u.host() {
            Some(url::Host::Ipv6(a)) => a.to_string(),
            Some(h) => h.to_string(),
            None => return Err(bad("no host")),
        };
        if !(u.path().is_empty() || u.path() == "/") || u.query().is_some() {
            return Err(bad("unexpected path or query"));
        }
        out.push((host, u.port().unwrap_or(DEFAULT_PORT)));
    }
    if out.is_empty() {
        return Err(bad("empty"));
    }
    Ok(out)
}

/// A Thrift `Table` → [`HiveTable`].
fn to_table(t: &thrift::Value, db: &str, name: &str) -> HiveTable {
    use thrift::Value as V;
    let text = |v: Option<&V>| v.and_then(V::str).unwrap_or_default();
    let sd = t.field(7);
    let sd_field = |id| sd.and_then(|s| s.field(id));
    let parameters = match t.field(9) {
        Some(V::Map(_, _, kv)) => kv.iter().filter_map(|(k, v)| Some((k.str()?, v.str()?))).collect(),
        _ => BTreeMap::new(),
    };
    HiveTable {
        db: t.field(2).and_then(V::str).unwrap_or_else(|| db.to_string()),
        name: t.field(1).and_then(V::str).unwrap_or_else(|| name.to_string()),
        location: text(sd_field(2)),
        columns: columns(sd_field(1)),
        partition_keys: columns(t.field(8)),
        input_format: text(sd_field(3)),
        serde_lib: text(sd_field(7).and_then(|s| s.field(2))),
        table_type: text(t.field(12)),
        parameters,
    }
}

/// A Thrift `list<FieldSchema>` → columns.
fn columns(list: Option<&thrift::Value>) -> Vec<HiveColumn> {
    let Some(list) = list else { return vec![] };
    list.items()
        .iter()
        .map(|c| HiveColumn {
            name: c.field(1).and_then(thrift::Value::str).unwrap_or_default(),
            hive_type: c.field(2).and_then(thrift::Value::str).unwrap_or_default(),
        })
        .collect()
}

/// A Thrift `Partition` → [`HivePartition`].
fn to_partition(p: &thrift::Value) -> HivePartition {
    HivePartition {
        values: p.field(1).map(|l| l.items().iter().filter_map(thrift::Value::str).collect()).unwrap_or_default(),
        location: p.field(6).and_then(|sd| sd.field(2)).and_then(thrift::Value::str).unwrap_or_default(),
        input_format: p.field(6).and_then(|sd| sd.field(3)).and_then(thrift::Value::str).unwrap_or_default(),
    }
}

// ---------------------------------------------------------------------------
// Partition filter: a SQL predicate → the metastore's filter grammar
// ---------------------------------------------------------------------------

/// Translates a SQL predicate (the transform's `where`, over the table
/// `source`) into a metastore partition filter for
/// [`Metastore::partitions`], where possible.
///
/// The top-level `AND` conjuncts that compare partition columns with literals
/// (`=`, `<>`/`!=`, `<`, `<=`, `>`, `>=`, `IN`/`NOT IN` lists, `[NOT]
/// BETWEEN`, and `OR`s of such) are translated; the others are dropped, so the
/// filter selects a superset of the partitions the predicate can match (wider,
/// never narrower: the predicate is still applied to the rows). `None` when
/// nothing translates.
///
/// Translated, by the partition column's Hive type (others are never pushed):
/// - `string`: string literals, double-quoted (single-quoted when the value
///   holds a `"`; values holding both quotes or a backslash are not pushed).
///   Ordering comparisons need an ASCII literal, so that the metastore's
///   ordering (Java strings, a binary collation in its database) and Rust's
///   byte order agree.
/// - `tinyint`, `smallint`, `int`, `bigint`: integer literals (also integer
///   strings such as `'7'`), unquoted.
/// - `date`: `'YYYY-MM-DD'` strings and `DATE 'YYYY-MM-DD'` literals, quoted.
///
/// Equality on integer and date columns is written as the range
/// `k >= v and k <= v` (and `<>` as `(k < v or k > v)`): Hive 4 compares
/// `k = v` as text, which misses non-canonical values such as `007`, while its
/// range comparisons are typed, like Hive 3's.
///
/// The predicate is assumed to see partition columns typed by their Hive type
/// (strings as text, integers as integers, dates as dates).
pub fn partition_filter(sql_where: &str, partition_keys: &[HiveColumn]) -> Option<String> {
    use datafusion::sql::sqlparser::ast::{SetExpr, Statement};
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    if sql_where.trim().is_empty() || partition_keys.is_empty() {
        return None;
    }
    // Parsed as the transform embeds it (see `scan::Transform::sql`).
    let sql = format!("SELECT * FROM source WHERE {sql_where}");
    let mut stmts = Parser::parse_sql(&GenericDialect {}, &sql).ok()?;
    if stmts.len() != 1 {
        return None;
    }
    let Statement::Query(q) = stmts.remove(0) else { return None };
    let SetExpr::Select(select) = *q.body else { return None };
    let term = Translator { keys: partition_keys }.implied(select.selection.as_ref()?)?;
    // The metastore parses a filter recursively: one long `IN` list (600
    // values, ~10 KB) overflows its stack and drops the connection. Long
    // filters are left to the pruner (all partitions are listed).
    Some(term.render(false)).filter(|f| f.len() <= MAX_FILTER_LEN)
}

/// The longest filter sent to the metastore.
const MAX_FILTER_LEN: usize = 4096;

/// A metastore filter expression.
#[derive(Debug, Clone, PartialEq)]
enum Term {
    Atom(String),
    And(Vec<Term>),
    Or(Vec<Term>),
}

impl Term {
    fn and(mut parts: Vec<Term>) -> Option<Term> {
        match parts.len() {
            0 => None,
            1 => parts.pop(),
            _ => Some(Term::And(parts)),
        }
    }

    fn or(mut parts: Vec<Term>) -> Option<Term> {
        match parts.len() {
            0 => None,
            1 => parts.pop(),
            _ => Some(Term::Or(parts)),
        }
    }

    /// The filter text; `nested` parenthesises compound terms.
    fn render(&self, nested: bool) -> String {
        let (parts, sep) = match self {
            Term::Atom(a) => return a.clone(),
            Term::And(p) => (p, " and "),
            Term::Or(p) => (p, " or "),
        };
        let inner = parts.iter().map(|t| t.render(true)).collect::<Vec<_>>().join(sep);
        if nested { format!("({inner})") } else { inner }
    }
}

/// How a partition column's values compare in the metastore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Str,
    Int,
    Date,
}

impl KeyKind {
    fn of(hive_type: &str) -> Option<KeyKind> {
        match hive_type.trim().to_ascii_lowercase().as_str() {
            "string" => Some(KeyKind::Str),
            "tinyint" | "smallint" | "int" | "integer" | "bigint" => Some(KeyKind::Int),
            "date" => Some(KeyKind::Date),
            // varchar/char (Hive 3 refuses to filter them), timestamps,
            // decimals, booleans, ...: not pushed.
            _ => None,
        }
    }
}

/// A literal of the predicate.
#[derive(Debug, Clone, PartialEq)]
enum Lit {
    /// A number literal (integers only; others are not pushed).
    Int(i128),
    /// A string literal.
    Str(String),
    /// `DATE '...'`.
    Date(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    fn from_sql(op: &datafusion::sql::sqlparser::ast::BinaryOperator) -> Option<Cmp> {
        use datafusion::sql::sqlparser::ast::BinaryOperator as B;
        Some(match op {
            B::Eq => Cmp::Eq,
            B::NotEq => Cmp::Ne,
            B::Lt => Cmp::Lt,
            B::LtEq => Cmp::Le,
            B::Gt => Cmp::Gt,
            B::GtEq => Cmp::Ge,
            _ => return None,
        })
    }

    /// The operator with its operands swapped (`1 < x` is `x > 1`).
    fn flip(self) -> Cmp {
        match self {
            Cmp::Lt => Cmp::Gt,
            Cmp::Le => Cmp::Ge,
            Cmp::Gt => Cmp::Lt,
            Cmp::Ge => Cmp::Le,
            c => c,
        }
    }

    fn text(self) -> &'static str {
        match self {
            Cmp::Eq => "=",
            Cmp::Ne => "<>",
            Cmp::Lt => "<",
            Cmp::Le => "<=",
            Cmp::Gt => ">",
            Cmp::Ge => ">=",
        }
    }
}

/// Words of the metastore filter grammars (Hive 2–4) that cannot name a column.
const FILTER_KEYWORDS: &[&str] =
    &["and", "or", "not", "like", "in", "between", "date", "timestamp", "struct", "const", "true", "false", "null"];

struct Translator<'a> {
    keys: &'a [HiveColumn],
}

impl Translator<'_> {
    /// A filter implied by `e` (every partition `e` can match passes it), or
    /// `None` when nothing about the partition columns can be said.
    fn implied(&self, e: &Expr) -> Option<Term> {
        use datafusion::sql::sqlparser::ast::BinaryOperator as B;
        match e {
            Expr::Nested(inner) => self.implied(inner),
            Expr::BinaryOp { left, op: B::And, right } => {
                // Dropping an untranslatable side only widens the filter.
                let mut parts = Vec::new();
                for side in [left, right] {
                    match self.implied(side) {
                        Some(Term::And(p)) => parts.extend(p),
                        Some(t) => parts.push(t),
                        None => {}
                    }
                }
                Term::and(parts)
            }
            Expr::BinaryOp { left, op: B::Or, right } => {
                // Both sides must translate: dropping one would narrow it.
                let mut parts = Vec::new();
                for side in [left, right] {
                    match self.implied(side)? {
                        Term::Or(p) => parts.extend(p),
                        t => parts.push(t),
                    }
                }
                Term::or(parts)
            }
            Expr::BinaryOp { left, op, right } => {
                let cmp = Cmp::from_sql(op)?;
                if let (Some(key), Some(lit)) = (self.column(left), literal(right)) {
                    compare(key, cmp, &lit)
                } else if let (Some(lit), Some(key)) = (literal(left), self.column(right)) {
                    compare(key, cmp.flip(), &lit)
                } else {
                    None
                }
            }
            Expr::InList { expr, list, negated } => {
                let key = self.column(expr)?;
                if *negated {
                    // x NOT IN (a, b) ⇔ x <> a AND x <> b: any subset is wider.
                    let parts = list.iter().filter_map(|v| compare(key, Cmp::Ne, &literal(v)?)).collect();
                    Term::and(parts)
                } else {
                    // x IN (a, b) ⇔ x = a OR x = b: every item must translate.
                    let parts = list.iter().map(|v| compare(key, Cmp::Eq, &literal(v)?)).collect::<Option<_>>()?;
                    Term::or(parts)
                }
            }
            Expr::Between { expr, negated, low, high } => {
                let key = self.column(expr)?;
                let lo = literal(low).and_then(|l| compare(key, if *negated { Cmp::Lt } else { Cmp::Ge }, &l));
                let hi = literal(high).and_then(|h| compare(key, if *negated { Cmp::Gt } else { Cmp::Le }, &h));
                if *negated { Term::or(vec![lo?, hi?]) } else { Term::and(lo.into_iter().chain(hi).collect()) }
            }
            _ => None,
        }
    }

    /// The partition column `e` names (`dt`, `"dt"`, `source.dt`).
    fn column(&self, e: &Expr) -> Option<&HiveColumn> {
        let ident = match e {
            Expr::Nested(inner) => return self.column(inner),
            Expr::Identifier(id) => id,
            Expr::CompoundIdentifier(parts) if parts.len() == 2 => {
                let q = &parts[0];
                let is_source =
                    if q.quote_style.is_none() { q.value.eq_ignore_ascii_case("source") } else { q.value == "source" };
                if !is_source {
                    return None;
                }
                &parts[1]
            }
            _ => return None,
        };
        // DataFusion folds unquoted identifiers to lower case; Hive stores
        // partition keys in lower case.
        let name = if ident.quote_style.is_none() { ident.value.to_lowercase() } else { ident.value.clone() };
        let key = self.keys.iter().find(|k| k.name == name)?;
        let lexes = key.name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && key.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !FILTER_KEYWORDS.contains(&key.name.to_ascii_lowercase().as_str());
        lexes.then_some(key)
    }
}

/// The literal `e` is, if it is one the translation understands.
fn literal(e: &Expr) -> Option<Lit> {
    use datafusion::sql::sqlparser::ast::{DataType, UnaryOperator, Value};
    match e {
        Expr::Nested(inner) => literal(inner),
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => n.to_string().parse().ok().map(Lit::Int),
            Value::SingleQuotedString(s) => Some(Lit::Str(s.clone())),
            _ => None,
        },
        Expr::UnaryOp { op: UnaryOperator::Minus, expr } => match literal(expr)? {
            Lit::Int(i) => Some(Lit::Int(-i)),
            _ => None,
        },
        Expr::UnaryOp { op: UnaryOperator::Plus, expr } => match literal(expr)? {
            Lit::Int(i) => Some(Lit::Int(i)),
            _ => None,
        },
        Expr::TypedString(t) if matches!(t.data_type, DataType::Date) => match &t.value.value {
            Value::SingleQuotedString(s) => Some(Lit::Date(s.clone())),
            _ => None,
        },
        _ => None,
    }
}

/// `key cmp lit` in the metastore grammar, if it can be said exactly.
fn compare(key: &HiveColumn, cmp: Cmp, lit: &Lit) -> Option<Term> {
    let k = &key.name;
    let value = match (KeyKind::of(&key.hive_type)?, lit) {
        (KeyKind::Str, Lit::Str(s)) => {
            // Only `=`: the metastore's database may compare strings with
            // its collation (Derby and MySQL pad with spaces, so `'a '` =
            // `'a'`; MySQL ignores case), under which values equal byte for
            // byte stay equal, but `<>` and the orderings can exclude a
            // partition the where clause keeps.
            if cmp != Cmp::Eq {
                return None;
            }
            return Some(Term::Atom(format!("{k} = {}", quote(s)?)));
        }
        (KeyKind::Int, Lit::Int(i)) => i64::try_from(*i).ok()?.to_string(),
        (KeyKind::Int, Lit::Str(s)) => canonical_int(s)?.to_string(),
        (KeyKind::Date, Lit::Str(s) | Lit::Date(s)) => format!("\"{}\"", canonical_date(s)?),
        _ => return None,
    };
    let atom = |c: Cmp| Term::Atom(format!("{k} {} {value}", c.text()));
    Some(match cmp {
        Cmp::Eq => Term::And(vec![atom(Cmp::Ge), atom(Cmp::Le)]),
        Cmp::Ne => Term::Or(vec![atom(Cmp::Lt), atom(Cmp::Gt)]),
        c => atom(c),
    })
}

/// A string literal of the filter grammar (which has no escapes).
fn quote(s: &str) -> Option<String> {
    if s.contains('\\') {
        None
    } else if !s.contains('"') {
        Some(format!("\"{s}\""))
    } else if !s.contains('\'') {
        Some(format!("'{s}'"))
    } else {
        None
    }
}

/// `-?[0-9]+` as an integer (a string literal compared with an integer column).
fn canonical_int(s: &str) -> Option<i64> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `YYYY-MM-DD` naming a real date, as written.
fn canonical_date(s: &str) -> Option<&str> {
    let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    (d.format("%Y-%m-%d").to_string() == s).then_some(s)
}

/// The Thrift binary protocol (TBinaryProtocol), as much as the client needs:
/// encoding a call and decoding any message into a generic tree.
mod thrift {
    use std::io::{self, Read};

    pub const T_STOP: u8 = 0;
    pub const T_BOOL: u8 = 2;
    pub const T_BYTE: u8 = 3;
    pub const T_DOUBLE: u8 = 4;
    pub const T_I16: u8 = 6;
    pub const T_I32: u8 = 8;
    pub const T_I64: u8 = 10;
    pub const T_STRING: u8 = 11;
    pub const T_STRUCT: u8 = 12;
    pub const T_MAP: u8 = 13;
    pub const T_SET: u8 = 14;
    pub const T_LIST: u8 = 15;

    pub const CALL: u8 = 1;
    pub const REPLY: u8 = 2;
    pub const EXCEPTION: u8 = 3;

    const VERSION_1: u32 = 0x8001_0000;
    const VERSION_MASK: u32 = 0xffff_0000;

    /// Nesting deeper than this is refused (Hive's structs nest a few levels).
    const MAX_DEPTH: usize = 64;
    /// A single string or binary longer than this is refused.
    const MAX_STRING: usize = 256 << 20;
    /// Capacity reserved up front for a container, whatever its header says.
    const MAX_PREALLOC: usize = 1024;

    /// A decoded Thrift value. Sets decode as lists.
    #[derive(Debug, Clone, PartialEq)]
    pub enum Value {
        Bool(bool),
        Byte(i8),
        Double(f64),
        I16(i16),
        I32(i32),
        I64(i64),
        /// A string or binary.
        Bin(Vec<u8>),
        /// Fields by id, in wire order.
        Struct(Vec<(i16, Value)>),
        /// Key type, value type, entries.
        Map(u8, u8, Vec<(Value, Value)>),
        /// Element type, elements (a list or a set).
        List(u8, Vec<Value>),
    }

    impl Value {
        pub fn string(s: &str) -> Value {
            Value::Bin(s.as_bytes().to_vec())
        }

        /// The field `id` of a struct.
        pub fn field(&self, id: i16) -> Option<&Value> {
            match self {
                Value::Struct(f) => f.iter().find(|(i, _)| *i == id).map(|(_, v)| v),
                _ => None,
            }
        }

        /// A string's text (invalid UTF-8 replaced).
        pub fn str(&self) -> Option<String> {
            match self {
                Value::Bin(b) => Some(String::from_utf8_lossy(b).into_owned()),
                _ => None,
            }
        }

        pub fn i32(&self) -> Option<i32> {
            match self {
                Value::I32(i) => Some(*i),
                _ => None,
            }
        }

        /// A list's (or set's) elements; empty for anything else.
        pub fn items(&self) -> &[Value] {
            match self {
                Value::List(_, v) => v,
                _ => &[],
            }
        }

        fn ttype(&self) -> u8 {
            match self {
                Value::Bool(_) => T_BOOL,
                Value::Byte(_) => T_BYTE,
                Value::Double(_) => T_DOUBLE,
                Value::I16(_) => T_I16,
                Value::I32(_) => T_I32,
                Value::I64(_) => T_I64,
                Value::Bin(_) => T_STRING,
                Value::Struct(_) => T_STRUCT,
                Value::Map(..) => T_MAP,
                Value::List(..) => T_LIST,
            }
        }
    }

    /// A strict (versioned) CALL message: `method(args)`.
    pub fn encode_call(method: &str, seq: i32, args: Vec<(i16, Value)>) -> Vec<u8> {
        encode_message(method, CALL, seq, &Value::Struct(args))
    }

    /// A strict message with the given type and body (a struct).
    pub fn encode_message(name: &str, kind: u8, seq: i32, body: &Value) -> Vec<u8> {
        let mut b = Vec::with_capacity(64 + name.len());
        b.extend_from_slice(&(VERSION_1 | u32::from(kind)).to_be_bytes());
        write_bin(&mut b, name.as_bytes());
        b.extend_from_slice(&seq.to_be_bytes());
        write_value(&mut b, body);
        b
    }

    fn write_bin(b: &mut Vec<u8>, s: &[u8]) {
        b.extend_from_slice(&(s.len() as i32).to_be_bytes());
        b.extend_from_slice(s);
    }

    fn write_value(b: &mut Vec<u8>, v: &Value) {
        match v {
            Value::Bool(x) => b.push(u8::from(*x)),
            Value::Byte(x) => b.extend_from_slice(&x.to_be_bytes()),
            Value::Double(x) => b.extend_from_slice(&x.to_be_bytes()),
            Value::I16(x) => b.extend_from_slice(&x.to_be_bytes()),
            Value::I32(x) => b.extend_from_slice(&x.to_be_bytes()),
            Value::I64(x) => b.extend_from_slice(&x.to_be_bytes()),
            Value::Bin(s) => write_bin(b, s),
            Value::Struct(fields) => {
                for (id, f) in fields {
                    b.push(f.ttype());
                    b.extend_from_slice(&id.to_be_bytes());
                    write_value(b, f);
                }
                b.push(T_STOP);
            }
            Value::Map(kt, vt, kv) => {
                b.push(*kt);
                b.push(*vt);
                b.extend_from_slice(&(kv.len() as i32).to_be_bytes());
                for (k, v) in kv {
                    write_value(b, k);
                    write_value(b, v);
                }
            }
            Value::List(et, items) => {
                b.push(*et);
                b.extend_from_slice(&(items.len() as i32).to_be_bytes());
                for i in items {
                    write_value(b, i);
                }
            }
        }
    }

    /// A decoded message.
    #[derive(Debug)]
    pub struct Message {
        pub name: String,
        pub kind: u8,
        pub seq: i32,
        pub body: Value,
    }

    fn invalid(why: impl Into<String>) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, why.into())
    }

    /// Reads one message (strict or old-style header) and its body.
    pub fn read_message(r: &mut impl Read) -> io::Result<Message> {
        let head = read_i32(r)?;
        let (name, kind, seq) = if head < 0 {
            let h = head as u32;
            if h & VERSION_MASK != VERSION_1 {
                return Err(invalid(format!("bad message header 0x{h:08x}")));
            }
            let name = read_name(r)?;
            (name, (h & 0xff) as u8, read_i32(r)?)
        } else {
            // Old-style header: the name's length comes first.
            let name = read_exact_vec(r, check_len(head, 1 << 16)?)?;
            let kind = read_u8(r)?;
            (String::from_utf8_lossy(&name).into_owned(), kind, read_i32(r)?)
        };
        let body = read_value(r, T_STRUCT, 0)?;
        Ok(Message { name, kind, seq, body })
    }

    fn read_name(r: &mut impl Read) -> io::Result<String> {
        let n = read_i32(r)?;
        let b = read_exact_vec(r, check_len(n, 1 << 16)?)?;
        Ok(String::from_utf8_lossy(&b).into_owned())
    }

    fn check_len(n: i32, max: usize) -> io::Result<usize> {
        usize::try_from(n).ok().filter(|&n| n <= max).ok_or_else(|| invalid(format!("bad length {n}")))
    }

    /// Reads a value of wire type `ty`; unknown struct fields are kept in the
    /// tree (and ignored by whoever reads it).
    pub fn read_value(r: &mut impl Read, ty: u8, depth: usize) -> io::Result<Value> {
        if depth > MAX_DEPTH {
            return Err(invalid("values nested too deeply"));
        }
        Ok(match ty {
            T_BOOL => Value::Bool(read_u8(r)? != 0),
            T_BYTE => Value::Byte(read_u8(r)? as i8),
            T_DOUBLE => Value::Double(f64::from_be_bytes(read_array(r)?)),
            T_I16 => Value::I16(i16::from_be_bytes(read_array(r)?)),
            T_I32 => Value::I32(read_i32(r)?),
            T_I64 => Value::I64(i64::from_be_bytes(read_array(r)?)),
            T_STRING => {
                let n = check_len(read_i32(r)?, MAX_STRING)?;
                Value::Bin(read_exact_vec(r, n)?)
            }
            T_STRUCT => {
                let mut fields = Vec::new();
                loop {
                    let ft = read_u8(r)?;
                    if ft == T_STOP {
                        break;
                    }
                    let id = i16::from_be_bytes(read_array(r)?);
                    fields.push((id, read_value(r, ft, depth + 1)?));
                }
                Value::Struct(fields)
            }
            T_MAP => {
                let (kt, vt) = (read_u8(r)?, read_u8(r)?);
                let n = check_len(read_i32(r)?, i32::MAX as usize)?;
                let mut kv = Vec::with_capacity(n.min(MAX_PREALLOC));
                for _ in 0..n {
                    let k = read_value(r, kt, depth + 1)?;
                    kv.push((k, read_value(r, vt, depth + 1)?));
                }
                Value::Map(kt, vt, kv)
            }
            T_LIST | T_SET => {
                let et = read_u8(r)?;
                let n = check_len(read_i32(r)?, i32::MAX as usize)?;
                let mut items = Vec::with_capacity(n.min(MAX_PREALLOC));
                for _ in 0..n {
                    items.push(read_value(r, et, depth + 1)?);
                }
                Value::List(et, items)
            }
            other => return Err(invalid(format!("unknown field type {other}"))),
        })
    }

    fn read_u8(r: &mut impl Read) -> io::Result<u8> {
        Ok(read_array::<1>(r)?[0])
    }

    fn read_i32(r: &mut impl Read) -> io::Result<i32> {
        Ok(i32::from_be_bytes(read_array(r)?))
    }

    fn read_array<const N: usize>(r: &mut impl Read) -> io::Result<[u8; N]> {
        let mut b = [0; N];
        r.read_exact(&mut b)?;
        Ok(b)
    }

    fn read_exact_vec(r: &mut impl Read, n: usize) -> io::Result<Vec<u8>> {
        let mut b = Vec::with_capacity(n.min(1 << 20));
        let got = r.take(n as u64).read_to_end(&mut b)?;
        if got < n {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the connection was closed mid-message"));
        }
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use super::thrift::{self, Value as V};
    use super::*;

    fn keys() -> Vec<HiveColumn> {
        [("dt", "string"), ("region", "int"), ("day", "date"), ("code", "varchar(8)"), ("big", "BIGINT")]
            .iter()
            .map(|(n, t)| HiveColumn { name: n.to_string(), hive_type: t.to_string() })
            .collect()
    }

    fn pf(sql: &str) -> Option<String> {
        partition_filter(sql, &keys())
    }

    #[test]
    fn filter_string_comparisons() {
        assert_eq!(pf("dt = '2024-01-01'").as_deref(), Some(r#"dt = "2024-01-01""#));
        assert_eq!(pf("'2024-01-01' = dt").as_deref(), Some(r#"dt = "2024-01-01""#));
        // The metastore's collation may hold `'trail '` equal to `'trail'`
        // (or `'A'` to `'a'`): `<>` and orderings would exclude it.
        assert_eq!(pf("dt <> 'trail'"), None);
        assert_eq!(pf("dt != 'x'"), None);
        assert_eq!(pf("dt >= '2024-01-01'"), None);
        assert_eq!(pf("'2024-01-01' < dt"), None);
        assert_eq!(pf("dt NOT IN ('a', 'b')"), None);
        assert_eq!(pf("dt BETWEEN 'a' AND 'b'"), None);
        assert_eq!(pf("dt IN ('a', 'b ')").as_deref(), Some(r#"dt = "a" or dt = "b ""#));
        // Quotes: double unless the value holds one; both or a backslash: dropped.
        assert_eq!(pf(r#"dt = 'say "hi"'"#).as_deref(), Some(r#"dt = 'say "hi"'"#));
        assert_eq!(pf(r#"dt = 'it''s "x"'"#), None);
        assert_eq!(pf(r"dt = 'a\b'"), None);
        // Non-ASCII: equality only.
        assert_eq!(pf("dt = 'zürich'").as_deref(), Some(r#"dt = "zürich""#));
        assert_eq!(pf("dt > 'zürich'"), None);
        // A number against a string column is compared as SQL decides: not pushed.
        assert_eq!(pf("dt = 2024"), None);
        assert_eq!(pf("dt > DATE '2024-01-01'"), None);
    }

    #[test]
    fn filter_integer_columns() {
        assert_eq!(pf("region > 9").as_deref(), Some("region > 9"));
        assert_eq!(pf("region = 7").as_deref(), Some("region >= 7 and region <= 7"));
        assert_eq!(pf("region <> 7").as_deref(), Some("region < 7 or region > 7"));
        assert_eq!(pf("region >= -3").as_deref(), Some("region >= -3"));
        assert_eq!(pf("region < +3").as_deref(), Some("region < 3"));
        assert_eq!(pf("region = '7'").as_deref(), Some("region >= 7 and region <= 7"));
        assert_eq!(pf("BIG <= 9223372036854775807").as_deref(), Some("big <= 9223372036854775807"));
        assert_eq!(pf("big >= -9223372036854775808").as_deref(), Some("big >= -9223372036854775808"));
        assert_eq!(pf("big > 99999999999999999999"), None);
        assert_eq!(pf("region = ' 7'"), None);
        assert_eq!(pf("region = 'x'"), None);
        assert_eq!(pf("region > 1.5"), None);
        assert_eq!(pf("region > 1e3"), None);
    }

    #[test]
    fn filter_date_columns() {
        assert_eq!(pf("day >= '2024-01-02'").as_deref(), Some(r#"day >= "2024-01-02""#));
        assert_eq!(pf("day >= DATE '2024-01-02'").as_deref(), Some(r#"day >= "2024-01-02""#));
        assert_eq!(pf("day = '2024-01-02'").as_deref(), Some(r#"day >= "2024-01-02" and day <= "2024-01-02""#));
        assert_eq!(pf("day > '2024-1-2'"), None);
        assert_eq!(pf("day > '2024-02-30'"), None);
        assert_eq!(pf("day > 20240101"), None);
    }

    #[test]
    fn filter_in_and_between() {
        assert_eq!(pf("dt IN ('a', 'b')").as_deref(), Some(r#"dt = "a" or dt = "b""#));
        assert_eq!(pf("dt IN ('a')").as_deref(), Some(r#"dt = "a""#));
        assert_eq!(
            pf("region IN (1, 2)").as_deref(),
            Some("(region >= 1 and region <= 1) or (region >= 2 and region <= 2)")
        );
        // One item that cannot be said drops the whole list...
        assert_eq!(pf("dt IN ('a', 1)"), None);
        // ...but NOT IN keeps what it can (fewer exclusions: wider).
        assert_eq!(
            pf("region NOT IN (1, 'x', 3)").as_deref(),
            Some("(region < 1 or region > 1) and (region < 3 or region > 3)")
        );
        // Strings: `=` only (see `filter_string_comparisons`).
        assert_eq!(pf("dt NOT IN ('a', 1, 'b')"), None);
        assert_eq!(pf("dt BETWEEN 'a' AND 'c'"), None);
        assert_eq!(pf("day BETWEEN '2024-01-01' AND 3").as_deref(), Some(r#"day >= "2024-01-01""#));
        assert_eq!(pf("region NOT BETWEEN 1 AND 5").as_deref(), Some("region < 1 or region > 5"));
        assert_eq!(pf("region NOT BETWEEN 1 AND 'x'"), None);
        assert_eq!(pf("region IN (SELECT 1)"), None);
        // Too long for the metastore's recursive parser: not pushed.
        let many = (0..600).map(|i| format!("'v{i}'")).collect::<Vec<_>>().join(", ");
        assert_eq!(pf(&format!("dt IN ({many})")), None);
        let some = (0..100).map(|i| format!("'v{i}'")).collect::<Vec<_>>().join(", ");
        assert!(pf(&format!("dt IN ({some})")).is_some());
    }

    #[test]
    fn filter_conjuncts_and_disjunctions() {
        assert_eq!(
            pf("dt = '2024-01-01' AND amount > 0 AND region = 3").as_deref(),
            Some(r#"dt = "2024-01-01" and region >= 3 and region <= 3"#)
        );
        assert_eq!(
            pf("(day >= '2024-01-01' AND (region > 1 AND name LIKE 'x%'))").as_deref(),
            Some(r#"day >= "2024-01-01" and region > 1"#)
        );
        assert_eq!(pf("dt = 'a' OR dt = 'b'").as_deref(), Some(r#"dt = "a" or dt = "b""#));
        assert_eq!(
            pf("(dt = 'a' AND amount > 1) OR region > 2").as_deref(),
            Some(r#"dt = "a" or region > 2"#),
            "a branch may widen"
        );
        assert_eq!(pf("dt = 'a' OR amount > 1"), None, "an untranslatable branch makes the OR unknown");
        assert_eq!(pf("(dt = 'a' OR amount > 1) AND region > 2").as_deref(), Some("region > 2"));
        assert_eq!(
            pf("(dt = 'a' OR dt = 'b') AND (region < 1 OR region > 5)").as_deref(),
            Some(r#"(dt = "a" or dt = "b") and (region < 1 or region > 5)"#)
        );
        assert_eq!(pf("dt = 'a' OR (dt = 'b' OR dt = 'c')").as_deref(), Some(r#"dt = "a" or dt = "b" or dt = "c""#));
    }

    #[test]
    fn filter_drops_what_it_cannot_say() {
        assert_eq!(pf(""), None);
        assert_eq!(pf("amount > 0"), None);
        assert_eq!(pf("NOT dt = 'a'"), None);
        assert_eq!(pf("dt IS NULL"), None);
        assert_eq!(pf("dt IS NOT NULL"), None);
        assert_eq!(pf("upper(dt) = 'A'"), None);
        assert_eq!(pf("CAST(region AS VARCHAR) = '1'"), None);
        assert_eq!(pf("dt = region"), None);
        assert_eq!(pf("dt LIKE '2024%'"), None);
        assert_eq!(pf("code = 'x'"), None, "varchar partitions cannot be filtered by Hive 3");
        assert_eq!(pf("other.dt = 'a'"), None, "only `source` qualifies a column");
        assert_eq!(pf("s.dt.x = 'a'"), None);
        assert_eq!(pf("\"DT\" = 'a'"), None, "a quoted identifier is case-sensitive");
        assert_eq!(pf("dt = 'a'; DROP TABLE x"), None);
        assert_eq!(pf("dt = "), None, "not SQL");
        assert_eq!(partition_filter("dt = 'a'", &[]), None);
    }

    #[test]
    fn filter_identifiers() {
        assert_eq!(pf("DT = 'a'").as_deref(), Some(r#"dt = "a""#));
        assert_eq!(pf("\"dt\" = 'a'").as_deref(), Some(r#"dt = "a""#));
        assert_eq!(pf("source.dt = 'a'").as_deref(), Some(r#"dt = "a""#));
        assert_eq!(pf("SOURCE.region > 1").as_deref(), Some("region > 1"));
        assert_eq!(pf("(dt) = ('a')").as_deref(), Some(r#"dt = "a""#));
        // Names the filter grammar cannot lex are not pushed.
        let odd: Vec<HiveColumn> = ["_x", "date", "a-b", "in"]
            .iter()
            .map(|n| HiveColumn { name: n.to_string(), hive_type: "string".into() })
            .collect();
        for sql in ["_x = 'a'", "\"date\" = 'a'", "\"a-b\" = 'a'", "\"in\" = 'a'"] {
            assert_eq!(partition_filter(sql, &odd), None, "{sql}");
        }
    }

    #[test]
    fn only_plain_parquet_tables_are_read() {
        let mut t = to_table(&V::Struct(vec![]), "d", "t");
        assert!(check_plain_parquet(&t).is_err());
        t.input_format = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat".into();
        t.serde_lib = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe".into();
        check_plain_parquet(&t).unwrap();
        // Spark's Hive-compatible Parquet tables.
        t.parameters.insert("spark.sql.sources.provider".into(), "parquet".into());
        check_plain_parquet(&t).unwrap();
        let refused = |t: &HiveTable, what: &str| {
            let e = check_plain_parquet(t).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::Config);
            assert!(e.to_string().contains(what), "{e}");
        };
        let mut text = t.clone();
        text.input_format = "org.apache.hadoop.mapred.TextInputFormat".into();
        text.serde_lib = "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe".into();
        refused(&text, "not stored as plain Parquet");
        let mut orc = t.clone();
        orc.input_format = "org.apache.hadoop.hive.ql.io.orc.OrcInputFormat".into();
        refused(&orc, "not stored as plain Parquet");
        // Hudi names Parquet, but its files are versions of file groups.
        let mut hudi = t.clone();
        hudi.input_format = "org.apache.hudi.hadoop.HoodieParquetInputFormat".into();
        refused(&hudi, "not stored as plain Parquet");
        hudi.input_format = "org.apache.hudi.hadoop.realtime.HoodieParquetRealtimeInputFormat".into();
        refused(&hudi, "not stored as plain Parquet");
        let mut acid = t.clone();
        acid.parameters.insert("transactional".into(), "TRUE".into());
        refused(&acid, "transactional");
        let mut iceberg = t.clone();
        iceberg.parameters.insert("table_type".into(), "ICEBERG".into());
        refused(&iceberg, "`ICEBERG` table");
        let mut delta = t.clone();
        delta.parameters.insert("spark.sql.sources.provider".into(), "delta".into());
        refused(&delta, "`delta` table");
    }

    #[test]
    fn uris() {
        assert_eq!(parse_uris("thrift://hms:9083").unwrap(), vec![("hms".to_string(), 9083)]);
        assert_eq!(parse_uris("thrift://hms").unwrap(), vec![("hms".to_string(), DEFAULT_PORT)]);
        assert_eq!(
            parse_uris("thrift://a:1, thrift://[::1]:2").unwrap(),
            vec![("a".to_string(), 1), ("::1".to_string(), 2)]
        );
        for bad in ["", "hms:9083", "http://hms:9083", "thrift://", "thrift://h:99999", "thrift://h:1/db"] {
            let e = parse_uris(bad).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::Config, "{bad}: {e}");
            assert!(e.to_string().contains("thrift://HOST:PORT"), "{e}");
        }
    }

    fn field_schema(name: &str, ty: &str) -> V {
        V::Struct(vec![(1, V::string(name)), (2, V::string(ty)), (3, V::string(""))])
    }

    /// A `Table` as a newer Hive could send it, with fields this client does
    /// not know (ids 30 and 31, and an unknown field inside the sd).
    fn table_value() -> V {
        let sd = V::Struct(vec![
            (1, V::List(thrift::T_STRUCT, vec![field_schema("id", "bigint"), field_schema("amount", "decimal(10,2)")])),
            (2, V::string("hdfs://nn:8020/warehouse/orders")),
            (3, V::string("org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat")),
            (5, V::Bool(false)),
            (6, V::I32(-1)),
            (
                7,
                V::Struct(vec![
                    (1, V::string("orders")),
                    (2, V::string("org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe")),
                    (3, V::Map(thrift::T_STRING, thrift::T_STRING, vec![])),
                ]),
            ),
            (42, V::Double(1.5)),
        ]);
        V::Struct(vec![
            (1, V::string("orders")),
            (2, V::string("sales")),
            (4, V::I32(1)),
            (7, sd),
            (8, V::List(thrift::T_STRUCT, vec![field_schema("dt", "string")])),
            (9, V::Map(thrift::T_STRING, thrift::T_STRING, vec![(V::string("EXTERNAL"), V::string("TRUE"))])),
            (12, V::string("EXTERNAL_TABLE")),
            (30, V::I64(99)),
            (
                31,
                V::Map(
                    thrift::T_STRING,
                    thrift::T_LIST,
                    vec![(V::string("k"), V::List(thrift::T_I32, vec![V::I32(1)]))],
                ),
            ),
        ])
    }

    fn partition_value(values: &[&str], location: &str) -> V {
        V::Struct(vec![
            (1, V::List(thrift::T_STRING, values.iter().map(|v| V::string(v)).collect())),
            (6, V::Struct(vec![(2, V::string(location)), (99, V::Byte(1))])),
            (10, V::List(thrift::T_I64, vec![])),
        ])
    }

    #[test]
    fn thrift_round_trip_and_unknown_fields() {
        let body = V::Struct(vec![(0, V::Struct(vec![(1, table_value()), (2, V::Bool(true))]))]);
        let bytes = thrift::encode_message("get_table_req", thrift::REPLY, 7, &body);
        let m = thrift::read_message(&mut &bytes[..]).unwrap();
        assert_eq!((m.name.as_str(), m.kind, m.seq), ("get_table_req", thrift::REPLY, 7));
        assert_eq!(m.body, body);
        let t = to_table(m.body.field(0).unwrap().field(1).unwrap(), "x", "y");
        assert_eq!(t.db, "sales");
        assert_eq!(t.name, "orders");
        assert_eq!(t.location, "hdfs://nn:8020/warehouse/orders");
        assert_eq!(t.columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["id", "amount"]);
        assert_eq!(t.columns[1].hive_type, "decimal(10,2)");
        assert_eq!(t.partition_keys, vec![HiveColumn { name: "dt".into(), hive_type: "string".into() }]);
        assert_eq!(t.table_type, "EXTERNAL_TABLE");
        assert_eq!(t.parameters.get("EXTERNAL").map(String::as_str), Some("TRUE"));
        check_plain_parquet(&t).unwrap();
        let p = to_partition(&partition_value(&["2024-01-01"], "s3a://b/p"));
        assert_eq!(
            p,
            HivePartition {
                values: vec!["2024-01-01".into()],
                location: "s3a://b/p".into(),
                input_format: String::new()
            }
        );
    }

    #[test]
    fn partitions_without_a_location_or_of_another_format_and_views() {
        let t = to_table(&table_value(), "x", "y");
        let keys = vec!["dt".to_string(), "k".to_string()];
        let p = HivePartition {
            values: vec!["2024-01-01 10:00".into(), "a/b=c%".into()],
            location: String::new(),
            input_format: String::new(),
        };
        let name = "dt=2024-01-01 10%3A00/k=a%2Fb%3Dc%25";
        assert_eq!(p.location_in(&t, &keys).unwrap(), format!("hdfs://nn:8020/warehouse/orders/{name}"));
        p.check_plain_parquet(&t, &keys).unwrap();
        let orc = HivePartition {
            location: "hdfs://nn:8020/p".into(),
            input_format: "org.apache.hadoop.hive.ql.io.orc.OrcInputFormat".into(),
            ..p.clone()
        };
        assert_eq!(orc.location_in(&t, &keys).unwrap(), "hdfs://nn:8020/p");
        let e = orc.check_plain_parquet(&t, &keys).unwrap_err().to_string();
        assert!(e.contains("OrcInputFormat") && e.contains(name), "{e}");
        let view = HiveTable { table_type: "VIRTUAL_VIEW".into(), location: String::new(), ..t.clone() };
        let e = check_plain_parquet(&view).unwrap_err().to_string();
        assert!(e.contains("is a Hive view"), "{e}");
        assert!(p.location_in(&view, &keys).unwrap_err().to_string().contains("has no location"));
    }

    #[test]
    fn thrift_rejects_garbage() {
        // An HTTP server's answer, a truncated message, a bad type, a huge length.
        let cases: Vec<Vec<u8>> = vec![
            b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec(),
            thrift::encode_message("m", thrift::REPLY, 1, &V::Struct(vec![(0, V::string("abc"))]))[..20].to_vec(),
            [&(0x8001_0002u32).to_be_bytes()[..], &1i32.to_be_bytes(), b"m", &1i32.to_be_bytes(), &[99, 0, 1]].concat(),
            [
                &(0x8001_0002u32).to_be_bytes()[..],
                &1i32.to_be_bytes(),
                b"m",
                &1i32.to_be_bytes(),
                &[11, 0, 0],
                &[0x7f, 0xff, 0xff, 0xff],
            ]
            .concat(),
        ];
        for c in cases {
            assert!(thrift::read_message(&mut &c[..]).is_err());
        }
        // Deep nesting is refused, not a stack overflow.
        let mut deep = vec![];
        deep.extend_from_slice(&(0x8001_0002u32).to_be_bytes());
        deep.extend_from_slice(&1i32.to_be_bytes());
        deep.push(b'm');
        deep.extend_from_slice(&1i32.to_be_bytes());
        for _ in 0..10_000 {
            deep.extend_from_slice(&[thrift::T_STRUCT, 0, 1]);
        }
        let e = thrift::read_message(&mut &deep[..]).unwrap_err();
        assert!(e.to_string().contains("nested"), "{e}");
    }

    #[test]
    fn thrift_old_style_header() {
        let mut b = vec![];
        b.extend_from_slice(&3i32.to_be_bytes());
        b.extend_from_slice(b"abc");
        b.push(thrift::REPLY);
        b.extend_from_slice(&5i32.to_be_bytes());
        b.push(thrift::T_STOP);
        let m = thrift::read_message(&mut &b[..]).unwrap();
        assert_eq!((m.name.as_str(), m.kind, m.seq, m.body), ("abc", thrift::REPLY, 5, V::Struct(vec![])));
    }

    /// A fake metastore: answers each call with `respond(method, args)`
    /// (`None`: stay silent), on one connection at a time.
    fn fake_metastore(
        respond: impl Fn(&str, &V) -> Option<(u8, V)> + Send + 'static,
    ) -> (String, std::thread::JoinHandle<Vec<String>>) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let uri = format!("thrift://{}", l.local_addr().unwrap());
        let h = std::thread::spawn(move || {
            let mut calls = Vec::new();
            // Serve until a connection arrives that sends nothing (the test's end).
            for conn in l.incoming() {
                let mut conn = conn.unwrap();
                let mut served = 0;
                loop {
                    let mut r = BufReader::new(&conn);
                    let Ok(m) = thrift::read_message(&mut r) else { break };
                    served += 1;
                    calls.push(m.name.clone());
                    match respond(&m.name, &m.body) {
                        Some((kind, body)) => {
                            conn.write_all(&thrift::encode_message(&m.name, kind, m.seq, &body)).unwrap();
                        }
                        None => std::thread::sleep(Duration::from_secs(3)),
                    }
                }
                if served == 0 {
                    break;
                }
            }
            calls
        });
        (uri, h)
    }

    fn stop_fake(uri: &str, h: std::thread::JoinHandle<Vec<String>>) -> Vec<String> {
        drop(TcpStream::connect(uri.trim_start_matches("thrift://")).unwrap());
        h.join().unwrap()
    }

    fn nso(msg: &str) -> V {
        V::Struct(vec![(1, V::string(msg))])
    }

    #[tokio::test]
    async fn client_against_a_fake_metastore() {
        let (uri, h) = fake_metastore(|method, args| {
            let s = |id| args.field(id).and_then(V::str).unwrap_or_default();
            Some(match method {
                // Like Hive 2.1: no get_table_req.
                "get_table_req" => (
                    thrift::EXCEPTION,
                    V::Struct(vec![(1, V::string("Invalid method name: 'get_table_req'")), (2, V::I32(1))]),
                ),
                "get_table" if s(2) == "orders" => (thrift::REPLY, V::Struct(vec![(0, table_value())])),
                // Hive 3 on an insert-only table, to a client without ACID capabilities.
                "get_table" if s(2) == "acid" => (
                    thrift::REPLY,
                    V::Struct(vec![(1, nso("Your client does not appear to support insert-only tables. To skip ..."))]),
                ),
                "get_table" => (thrift::REPLY, V::Struct(vec![(2, nso("no such table"))])),
                "get_database" if s(1) == "sales" => (thrift::REPLY, V::Struct(vec![(0, V::Struct(vec![]))])),
                "get_database" => (thrift::REPLY, V::Struct(vec![(1, nso("no such db"))])),
                "get_partitions" => (
                    thrift::REPLY,
                    V::Struct(vec![(
                        0,
                        V::List(
                            thrift::T_STRUCT,
                            vec![partition_value(&["b"], "file:/x/b"), partition_value(&["a"], "file:/elsewhere")],
                        ),
                    )]),
                ),
                "get_partitions_by_filter" if s(3).contains("bad") => {
                    (thrift::REPLY, V::Struct(vec![(1, nso("Error parsing partition filter"))]))
                }
                "get_partitions_by_filter" => (
                    thrift::REPLY,
                    V::Struct(vec![(0, V::List(thrift::T_STRUCT, vec![partition_value(&["a"], "file:/elsewhere")]))]),
                ),
                _ => (thrift::EXCEPTION, V::Struct(vec![(1, V::string("Invalid method name")), (2, V::I32(1))])),
            })
        });
        let mut ms = Metastore::connect(&uri, Duration::from_secs(5)).await.unwrap();
        let t = ms.table("sales", "orders").await.unwrap();
        assert_eq!(t.location, "hdfs://nn:8020/warehouse/orders");
        let e = ms.table("sales", "acid").await.unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Config, "{e}");
        assert!(e.to_string().contains("transactional"), "{e}");
        let e = ms.table("sales", "nope").await.unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Config);
        assert!(e.to_string().contains("table `sales.nope` not found"), "{e}");
        assert!(e.to_string().contains(&uri), "{e}");
        let e = ms.table("nodb", "nope").await.unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Config);
        assert!(e.to_string().contains("database `nodb` not found"), "{e}");
        let all = ms.partitions("sales", "orders", None).await.unwrap();
        assert_eq!(all.iter().map(|p| p.values[0].as_str()).collect::<Vec<_>>(), ["a", "b"], "sorted");
        let some = ms.partitions("sales", "orders", Some(r#"dt = "a""#)).await.unwrap();
        assert_eq!(
            some,
            vec![HivePartition {
                values: vec!["a".into()],
                location: "file:/elsewhere".into(),
                input_format: String::new()
            }]
        );
        // A filter the metastore refuses: every partition.
        assert_eq!(ms.partitions("sales", "orders", Some("bad")).await.unwrap(), all);
        assert_eq!(ms.partitions("sales", "orders", Some("  ")).await.unwrap(), all);
        drop(ms);
        let calls = stop_fake(&uri, h);
        assert_eq!(calls.iter().filter(|c| *c == "get_table_req").count(), 4);
    }

    #[tokio::test]
    async fn silent_metastore_times_out() {
        let (uri, h) = fake_metastore(|_, _| None);
        let mut ms = Metastore::connect(&uri, Duration::from_millis(500)).await.unwrap();
        let t0 = Instant::now();
        let e = ms.table("sales", "orders").await.unwrap_err();
        assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
        assert_eq!(e.kind(), crate::ErrorKind::Infra);
        assert!(e.to_string().contains(&uri) && e.to_string().contains("no answer"), "{e}");
        drop(ms);
        stop_fake(&uri, h);
    }

    #[tokio::test]
    async fn not_a_metastore() {
        // A server that answers something else entirely.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let uri = format!("thrift://{}", l.local_addr().unwrap());
        let h = std::thread::spawn(move || {
            let (mut c, _) = l.accept().unwrap();
            let mut buf = [0; 64];
            let _ = c.read(&mut buf);
            c.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n").unwrap();
        });
        let mut ms = Metastore::connect(&uri, Duration::from_secs(5)).await.unwrap();
        let e = ms.table("sales", "orders").await.unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Infra);
        assert!(e.to_string().contains("not a Thrift binary-protocol answer"), "{e}");
        h.join().unwrap();
    }

    #[tokio::test]
    async fn unreachable_metastore() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let uri = format!("thrift://127.0.0.1:{port}");
        let e = Metastore::connect(&uri, Duration::from_secs(5)).await.unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Infra);
        assert!(e.to_string().contains(&uri) && e.to_string().contains("unreachable"), "{e}");
    }
}
