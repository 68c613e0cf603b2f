//! The job file (TOML). Every CLI flag has a key here; flags override the
//! file; secrets come from the environment or a file, never from argv.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A job file. Unknown keys are errors.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JobFile {
    /// Source: a local path, `file://`, `s3://`, `hdfs://` or `viewfs://` URL.
    pub source: Option<String>,
    /// Or a Hive table (`db.table`), read through the metastore.
    pub hive_table: Option<String>,
    /// The Hive Metastore (`thrift://host:9083`, or a comma list).
    pub metastore: Option<String>,
    /// Longest wait for one listing, footer read or metastore call, seconds
    /// (default 60).
    pub source_timeout_secs: Option<u64>,
    /// Target `db.table`.
    pub table: Option<String>,
    /// FE HTTP URL (`http://host:8030`).
    pub fe: Option<String>,
    /// FE MySQL address (`host:9030`).
    pub mysql: Option<String>,
    /// StarRocks user.
    pub user: Option<String>,
    /// File holding the password (first line). Otherwise `STARROCKS_PASSWORD`.
    pub password_file: Option<PathBuf>,
    /// State directory (journal, dictionaries).
    pub state_dir: Option<PathBuf>,
    /// Label prefix.
    pub label_prefix: Option<String>,
    /// Target chunk size: bytes, or `256MiB`, `1GiB`…
    pub chunk_bytes: Option<ByteSize>,
    /// Loads in flight.
    pub parallel: Option<usize>,
    /// Loads in flight per BE (default: `parallel`).
    pub per_be_parallel: Option<usize>,
    /// Time zone tz-aware timestamps are converted to (default UTC).
    pub timezone: Option<String>,
    /// Rows per decoded batch.
    pub batch_size: Option<usize>,
    /// Retries per chunk.
    pub max_retries: Option<u32>,
    /// First retry delay in milliseconds (doubles per retry, jittered).
    pub retry_base_ms: Option<u64>,
    /// CA bundle (PEM) for HTTPS FEs/BEs.
    pub ca_file: Option<PathBuf>,
    /// HTTP timeout of one Stream Load in seconds (default: its `timeout`
    /// header plus 120 s, always longer than the server's own).
    pub http_timeout_secs: Option<u64>,
    /// Body compression: `none` (default) or `lz4` (CSV bodies as LZ4
    /// frames, `format: lz4`, for loads the network limits).
    pub compress: Option<String>,
    /// Load mode: `append` (default), `atomic` or `overwrite`.
    pub mode: Option<String>,
    /// Primary Key tables: rows matching this SQL predicate are deleted.
    pub delete_when: Option<String>,
    /// Primary Key tables: update only the loaded columns.
    pub partial_update: Option<bool>,
    /// Primary Key tables: apply an update only if this column's new value is
    /// not smaller.
    pub merge_condition: Option<String>,
    /// Largest job `--mode atomic` accepts (one transaction), e.g. `10GiB`.
    pub max_txn_bytes: Option<ByteSize>,
    /// Start this job although an earlier job with the same source, table and
    /// transform but other inputs exists (its rows may be loaded twice).
    pub new_job: Option<bool>,
    /// `--mode overwrite` of an unpartitioned table whose source has no rows
    /// (after the where clause) empties the table; refused unless true.
    pub allow_empty: Option<bool>,
    /// Loads an earlier run sent without learning their outcome, whose
    /// labels StarRocks no longer knows and nothing shows never committed
    /// (a run stops on them and names them): label → `resend` (the table
    /// lacks the load's rows) or `committed` (it holds them).
    #[serde(default)]
    pub unknown_loads: BTreeMap<String, String>,
    /// Load only shard `i` of `n` of the chunk plan (`"0/4"`); `finalize`
    /// completes the job.
    pub shard: Option<String>,
    /// Write Prometheus metrics of each run here (node_exporter textfile).
    pub metrics_file: Option<PathBuf>,
    /// Push Prometheus metrics of each run to this Pushgateway URL.
    pub metrics_pushgateway: Option<String>,
    /// `text` (default) or `json` logs on stderr.
    pub log_format: Option<String>,
    /// BITMAP columns loaded through a global dictionary: target column →
    /// source SQL expression.
    #[serde(default)]
    pub bitmap_dict: BTreeMap<String, String>,
    /// Where dictionaries live (default `<state_dir>/dicts`).
    pub dict_store: Option<String>,
    /// Merge rows with equal keys into one bitmap per chunk
    /// (`base64_to_bitmap`) for AGGREGATE tables with BITMAP_UNION columns.
    pub bitmap_preaggregate: Option<bool>,
    /// The SQL transform.
    #[serde(default)]
    pub transform: TransformFile,
    /// Types of Hive partition columns (`dt = "date"`); default string.
    #[serde(default)]
    pub partition_types: BTreeMap<String, String>,
    /// S3 options (`endpoint`, `region`, `access_key_id`, `profile`, …).
    #[serde(default)]
    pub s3: BTreeMap<String, String>,
    /// Hadoop options for HDFS (on top of `HADOOP_CONF_DIR`).
    #[serde(default)]
    pub hdfs: BTreeMap<String, String>,
    /// Extra Stream Load headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// `[transform]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TransformFile {
    /// Select list over `source`.
    pub select: Option<String>,
    /// Where clause.
    #[serde(rename = "where")]
    pub filter: Option<String>,
    /// The instant `now()` and `current_date()` read (RFC 3339); default:
    /// when the job starts, kept by its journal for a resumed run.
    pub clock: Option<String>,
}

/// A byte size: an integer or a string with a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ByteSize(pub u64);

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(ByteSize(n)),
            Raw::S(s) => parse_bytes(&s).map(ByteSize).map_err(serde::de::Error::custom),
        }
    }
}

/// Parses `123`, `64KiB`, `256MiB`, `1GiB`, `1.5GiB`, `10MB` (a fraction
/// rounds down to whole bytes).
pub fn parse_bytes(s: &str) -> std::result::Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let (whole, frac) = num.split_once('.').unwrap_or((num, ""));
    if whole.is_empty() && frac.is_empty() || frac.contains('.') || frac.len() > 9 {
        return Err(format!("bad size `{s}`"));
    }
    let n: u64 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| format!("bad size `{s}`"))? };
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        _ => return Err(format!("bad size unit in `{s}` (use B, KiB, MiB, GiB, KB, MB, GB)")),
    };
    let frac_bytes = if frac.is_empty() {
        0
    } else {
        let digits: u64 = frac.parse().map_err(|_| format!("bad size `{s}`"))?;
        // digits / 10^len of `mult`, in u128 so no product overflows.
        (u128::from(digits) * u128::from(mult) / 10u128.pow(frac.len() as u32)) as u64
    };
    n.checked_mul(mult).and_then(|b| b.checked_add(frac_bytes)).ok_or_else(|| format!("size `{s}` is too large"))
}

/// A job file's parse error: where (line, key) and what, without the value
/// the key holds (it may be a secret written as a number).
fn toml_error(text: &str, e: &toml::de::Error) -> String {
    let at = e.span().map(|sp| {
        let line = text[..sp.start.min(text.len())].matches('\n').count() + 1;
        let key = text.lines().nth(line - 1).and_then(|l| l.split_once('=')).map(|(k, _)| k.trim().to_string());
        match key {
            Some(k) if !k.is_empty() => format!(", line {line} (`{k}`)"),
            _ => format!(", line {line}"),
        }
    });
    let mut msg = e.message().replace('\n', " ");
    if msg.starts_with("invalid type") || msg.starts_with("invalid value") {
        // `invalid type: integer `98765`, expected a string`: the value out.
        let mut out = String::new();
        for (i, piece) in msg.split('`').enumerate() {
            out.push_str(if i % 2 == 1 { "`…`" } else { piece });
        }
        msg = out;
    }
    format!("{}: {msg}", at.unwrap_or_default())
}

impl JobFile {
    /// Reads a job file.
    pub fn load(path: &Path) -> Result<JobFile> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::config(format!("cannot read job file `{}`: {e}", path.display())))?;
        toml::from_str(&text)
            .map_err(|e| Error::config(format!("job file `{}`{}", path.display(), toml_error(&text, &e))))
    }

    /// Fills every key of `self` that is unset from `other`.
    pub fn or(self, other: JobFile) -> JobFile {
        JobFile {
            source: self.source.or(other.source),
            hive_table: self.hive_table.or(other.hive_table),
            metastore: self.metastore.or(other.metastore),
            source_timeout_secs: self.source_timeout_secs.or(other.source_timeout_secs),
            table: self.table.or(other.table),
            fe: self.fe.or(other.fe),
            mysql: self.mysql.or(other.mysql),
            user: self.user.or(other.user),
            password_file: self.password_file.or(other.password_file),
            state_dir: self.state_dir.or(other.state_dir),
            label_prefix: self.label_prefix.or(other.label_prefix),
            chunk_bytes: self.chunk_bytes.or(other.chunk_bytes),
            parallel: self.parallel.or(other.parallel),
            per_be_parallel: self.per_be_parallel.or(other.per_be_parallel),
            timezone: self.timezone.or(other.timezone),
            batch_size: self.batch_size.or(other.batch_size),
            max_retries: self.max_retries.or(other.max_retries),
            retry_base_ms: self.retry_base_ms.or(other.retry_base_ms),
            ca_file: self.ca_file.or(other.ca_file),
            http_timeout_secs: self.http_timeout_secs.or(other.http_timeout_secs),
            compress: self.compress.or(other.compress),
            mode: self.mode.or(other.mode),
            delete_when: self.delete_when.or(other.delete_when),
            partial_update: self.partial_update.or(other.partial_update),
            merge_condition: self.merge_condition.or(other.merge_condition),
            max_txn_bytes: self.max_txn_bytes.or(other.max_txn_bytes),
            new_job: self.new_job.or(other.new_job),
            allow_empty: self.allow_empty.or(other.allow_empty),
            unknown_loads: if self.unknown_loads.is_empty() { other.unknown_loads } else { self.unknown_loads },
            shard: self.shard.or(other.shard),
            metrics_file: self.metrics_file.or(other.metrics_file),
            metrics_pushgateway: self.metrics_pushgateway.or(other.metrics_pushgateway),
            log_format: self.log_format.or(other.log_format),
            bitmap_dict: if self.bitmap_dict.is_empty() { other.bitmap_dict } else { self.bitmap_dict },
            dict_store: self.dict_store.or(other.dict_store),
            bitmap_preaggregate: self.bitmap_preaggregate.or(other.bitmap_preaggregate),
            transform: TransformFile {
                select: self.transform.select.or(other.transform.select),
                filter: self.transform.filter.or(other.transform.filter),
                clock: self.transform.clock.or(other.transform.clock),
            },
            partition_types: if self.partition_types.is_empty() { other.partition_types } else { self.partition_types },
            s3: if self.s3.is_empty() { other.s3 } else { self.s3 },
            hdfs: if self.hdfs.is_empty() { other.hdfs } else { self.hdfs },
            headers: if self.headers.is_empty() { other.headers } else { self.headers },
        }
    }
}

/// `text` with the credentials of a URL (`scheme://user:pass@host`) or an
/// address (`user:pass@host:port`) replaced by `***`, for messages; each
/// of a comma list (`thrift://a:9083,thrift://u:p@b:9083`) alike.
pub fn redact_url(text: &str) -> String {
    text.split(',')
        .map(|part| match userinfo_at(part) {
            Some((start, at)) => format!("{}***@{}", &part[..start], &part[at + 1..]),
            None => part.to_string(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Where a URL's userinfo starts and its `@` is: before the first `/`, `?`
/// or `#` as RFC 3986 has it; or, since a password may hold those as
/// written (AWS secret keys hold `/`), up to the last `@` when the text
/// before the first of them reads `user:password` rather than `host:port`.
fn userinfo_at(url: &str) -> Option<(usize, usize)> {
    let start = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[start..];
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    if let Some(at) = rest[..end].rfind('@') {
        return Some((start, start + at));
    }
    let (_, after) = rest[..end].split_once(':')?;
    if !after.is_empty() && after.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    rest.rfind('@').map(|at| (start, start + at))
}

/// Refuses a URL holding a password: every message naming it (the stores'
/// own errors too) would echo it. Credentials go in [s3], [hdfs] or the
/// environment.
pub fn check_no_password(key: &str, url: &str) -> Result<()> {
    if url_password(url) {
        return Err(Error::config(format!(
            "`{key}` `{}` holds credentials; give them in [s3] or [hdfs] or the environment (AWS_ACCESS_KEY_ID, \
             AWS_SECRET_ACCESS_KEY, HADOOP_USER_NAME), never in a URL",
            redact_url(url)
        )));
    }
    Ok(())
}

/// Refuses a MySQL address holding credentials (`user:pass@host:port`).
pub fn check_mysql_address(addr: &str) -> Result<()> {
    if addr.contains('@') {
        return Err(Error::config(format!(
            "MySQL address `{}` must be host:port, without credentials",
            redact_url(addr)
        )));
    }
    Ok(())
}

/// Whether a URL (or any of a comma list of them) holds a password.
pub fn url_password(text: &str) -> bool {
    text.split(',').any(|part| userinfo_at(part).is_some_and(|(start, at)| part[start..at].contains(':')))
}

impl JobFile {
    /// The settings as TOML, with secret values redacted.
    pub fn redacted_toml(&self) -> String {
        let mut c = self.clone();
        for v in
            [&mut c.fe, &mut c.mysql, &mut c.metrics_pushgateway, &mut c.source, &mut c.metastore, &mut c.dict_store]
                .into_iter()
                .flatten()
        {
            *v = redact_url(v);
        }
        // Keys naming a secret: AWS and Azure keys and tokens, SSE-C keys,
        // Hadoop credentials, authorization headers and cookies.
        let secret = |k: &str| {
            let k = k.to_ascii_lowercase();
            ["secret", "token", "password", "key", "credential", "auth", "cookie", "sas", "signature"]
                .iter()
                .any(|w| k.contains(w))
        };
        for (k, v) in c.s3.iter_mut().chain(c.hdfs.iter_mut()).chain(c.headers.iter_mut()) {
            *v = if secret(k) { "***".into() } else { redact_url(v) };
        }
        toml::to_string(&c).unwrap_or_default()
    }
}

/// Reads the password: `STARROCKS_PASSWORD` when set and not empty (the
/// environment overrides the job file, as a scheduler that injects the
/// password expects), else the first line of `password_file`, else empty.
pub fn read_password(file: Option<&Path>) -> Result<crate::client::Secret> {
    if let Some(env) = std::env::var_os("STARROCKS_PASSWORD").filter(|v| !v.is_empty()) {
        return env
            .into_string()
            .map(crate::client::Secret::new)
            .map_err(|_| Error::config("STARROCKS_PASSWORD is not valid UTF-8"));
    }
    if let Some(p) = file {
        let text = std::fs::read_to_string(p)
            .map_err(|e| Error::config(format!("cannot read password file `{}`: {e}", p.display())))?;
        return Ok(crate::client::Secret::new(text.lines().next().unwrap_or("").to_string()));
    }
    Ok(crate::client::Secret::new(String::new()))
}

/// Parses a partition column type name into Arrow (Hive's names:
/// `decimal` alone is `decimal(10,0)`).
pub fn partition_type(name: &str) -> Result<arrow::datatypes::DataType> {
    use arrow::datatypes::DataType as D;
    let name = name.trim().to_ascii_lowercase();
    let unsupported = || Error::config(format!("unsupported partition column type `{name}`"));
    Ok(match name.as_str() {
        "string" | "varchar" | "utf8" => D::Utf8,
        "int" | "integer" | "int32" => D::Int32,
        "bigint" | "int64" | "long" => D::Int64,
        "smallint" => D::Int16,
        "tinyint" => D::Int8,
        "date" => D::Date32,
        "boolean" | "bool" => D::Boolean,
        "float" | "real" | "float32" => D::Float32,
        "double" | "double precision" | "float64" => D::Float64,
        "timestamp" => D::Timestamp(arrow::datatypes::TimeUnit::Microsecond, None),
        other => {
            let args =
                other.strip_prefix("decimal").or_else(|| other.strip_prefix("numeric")).ok_or_else(unsupported)?;
            let args = args.trim();
            let (p, s) = if args.is_empty() {
                (10, 0)
            } else {
                let inner = args.strip_prefix('(').and_then(|a| a.strip_suffix(')')).ok_or_else(unsupported)?;
                let mut it = inner.split(',').map(|n| n.trim().parse::<u8>());
                match (it.next(), it.next(), it.next()) {
                    (Some(Ok(p)), None, None) => (p, 0),
                    (Some(Ok(p)), Some(Ok(s)), None) => (p, s),
                    _ => return Err(unsupported()),
                }
            };
            if !(1..=38).contains(&p) || s > p {
                return Err(unsupported());
            }
            D::Decimal128(p, s as i8)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_redacted_from_urls() {
        assert_eq!(redact_url("http://u:p@fe:8030/x"), "http://***@fe:8030/x");
        assert_eq!(redact_url("u:p@fe:9030"), "***@fe:9030");
        assert!(url_password("s3://AKID:SECRET@bucket/x"));
        assert!(url_password("thrift://u:p@hms:9083"));
        assert!(!url_password("hdfs://user@nn:8020/warehouse"));
        assert!(!url_password("s3://bucket/dt=a:b@c/x"));
        assert!(!url_password("/warehouse/a:b@c"));
        assert_eq!(redact_url("http://fe:8030/a@b"), "http://fe:8030/a@b");
        assert_eq!(redact_url("s3://bucket/p"), "s3://bucket/p");
        // A password holding `/`, `?` or `#` (AWS secret keys hold `/`).
        for (url, shown) in [
            ("http://u:LEAKp/w@h:8030", "http://***@h:8030"),
            ("http://u:LEAK?x@h:8030/p", "http://***@h:8030/p"),
            ("http://u:LEAK#x@h", "http://***@h"),
            ("s3://AKID:sec/ret@bucket/x", "s3://***@bucket/x"),
            ("u:pa/ss@h:9030", "***@h:9030"),
            ("hdfs://u:/LEAK@nn:8020/w", "hdfs://***@nn:8020/w"),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
            assert!(url_password(url), "{url}");
        }
        // Each of a comma list of metastores.
        let list = "thrift://h1:9083,thrift://u:LEAK@h2:9083";
        assert_eq!(redact_url(list), "thrift://h1:9083,thrift://***@h2:9083");
        assert!(url_password(list));
        assert!(!url_password("thrift://h1:9083,thrift://h2:9083"));
    }

    #[test]
    fn job_file_errors_name_the_line_and_key_but_not_the_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("job.toml");
        std::fs::write(&path, "source = \"x\"\n[s3]\nsecret_access_key = 98765432101\n").unwrap();
        let e = JobFile::load(&path).unwrap_err().to_string();
        assert!(e.contains("line 3 (`secret_access_key`)") && !e.contains("98765432101"), "{e}");
        std::fs::write(&path, "source = \"x\"\nsource = \"y\"\n").unwrap();
        let e = JobFile::load(&path).unwrap_err().to_string();
        assert!(e.contains("line 2 (`source`)"), "{e}");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("256MiB"), Ok(256 << 20));
        assert_eq!(parse_bytes("1GiB"), Ok(1 << 30));
        assert_eq!(parse_bytes("10MB"), Ok(10_000_000));
        assert_eq!(parse_bytes("123"), Ok(123));
        assert!(parse_bytes("1XB").is_err());
        assert_eq!(parse_bytes("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_bytes("0.25 MiB"), Ok(1 << 18));
        assert_eq!(parse_bytes(".5KB"), Ok(500));
        assert_eq!(parse_bytes("2.0009KB"), Ok(2000));
        for bad in ["", ".", "1.2.3MiB", "1.5.GiB", "MiB", "-1MiB", "1.0000000001GiB", "18446744073709551615.5KB"] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unknown_keys_are_errors() {
        let e = toml::from_str::<JobFile>("source = \"x\"\nbogus = 1\n").unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
        let f: JobFile = toml::from_str("chunk_bytes = \"64MiB\"\n[transform]\nwhere = \"x > 1\"\n").unwrap();
        assert_eq!(f.chunk_bytes, Some(ByteSize(64 << 20)));
        assert_eq!(f.transform.filter.as_deref(), Some("x > 1"));
    }
}
