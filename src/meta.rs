//! Table metadata and verification queries over StarRocks' MySQL protocol.

use mysql_async::prelude::Queryable;

use crate::client::Secret;
use crate::error::{Error, Result};
use crate::srtype::SrType;

/// The key model of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum KeysType {
    /// DUPLICATE KEY.
    Duplicate,
    /// AGGREGATE KEY.
    Aggregate,
    /// UNIQUE KEY.
    Unique,
    /// PRIMARY KEY.
    Primary,
}

impl KeysType {
    /// From `TABLE_MODEL` / `IndexKeysType` (`DUP_KEYS`, …).
    pub fn parse(s: &str) -> Option<KeysType> {
        Some(match s.trim().to_ascii_uppercase().as_str() {
            "DUP_KEYS" | "DUPLICATE" | "DUPLICATE_KEYS" => KeysType::Duplicate,
            "AGG_KEYS" | "AGGREGATE" | "AGGREGATE_KEYS" => KeysType::Aggregate,
            "UNQ_KEYS" | "UNIQUE" | "UNIQUE_KEYS" => KeysType::Unique,
            "PRI_KEYS" | "PRIMARY" | "PRIMARY_KEYS" => KeysType::Primary,
            _ => return None,
        })
    }
    /// The `TABLE_MODEL` name.
    pub fn name(&self) -> &'static str {
        match self {
            KeysType::Duplicate => "DUP_KEYS",
            KeysType::Aggregate => "AGG_KEYS",
            KeysType::Unique => "UNQ_KEYS",
            KeysType::Primary => "PRI_KEYS",
        }
    }
}

/// A column of the target table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetColumn {
    /// Column name.
    pub name: String,
    /// Type.
    pub ty: SrType,
    /// NULL allowed.
    pub nullable: bool,
    /// Part of the key.
    pub is_key: bool,
    /// Default value expression, if any (`NULL` means none was declared).
    pub default: Option<String>,
    /// Aggregate function for value columns of AGGREGATE tables (`SUM`,
    /// `BITMAP_UNION`, …).
    pub agg: Option<String>,
}

/// The target table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetTable {
    /// Database.
    pub db: String,
    /// Table.
    pub table: String,
    /// Key model.
    pub keys: KeysType,
    /// Columns in table order.
    pub columns: Vec<TargetColumn>,
    /// Partition columns (empty when unpartitioned).
    pub partition_key: Vec<String>,
}

impl TargetTable {
    /// Finds a column by name (case-insensitive, as StarRocks does).
    pub fn column(&self, name: &str) -> Option<&TargetColumn> {
        self.columns.iter().find(|c| c.name.eq_ignore_ascii_case(name))
    }
}

/// Checks a database, table, partition or column identifier: letters,
/// digits, `_`, `-`, `$`; never a quote, backtick or control character.
pub fn check_ident(kind: &str, s: &str) -> Result<()> {
    if s.is_empty() || s.len() > 256 || !s.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-' || c == '$') {
        return Err(Error::config(format!("{kind} name `{s}` is not a valid identifier")));
    }
    Ok(())
}

/// Splits `db.table`.
pub fn split_table(s: &str) -> Result<(String, String)> {
    let (db, t) = s.split_once('.').ok_or_else(|| Error::config(format!("table `{s}` must be written as db.table")))?;
    check_ident("database", db)?;
    check_ident("table", t)?;
    Ok((db.to_string(), t.to_string()))
}

/// A MySQL-protocol connection to a StarRocks FE.
pub struct Meta {
    conn: mysql_async::Conn,
}

impl std::fmt::Debug for Meta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Meta")
    }
}

impl Meta {
    /// Connects to `host:port`.
    pub async fn connect(addr: &str, user: &str, password: &Secret) -> Result<Meta> {
        let (host, port) = addr
            .rsplit_once(':')
            .and_then(|(h, p)| p.parse::<u16>().ok().map(|p| (h.to_string(), p)))
            .ok_or_else(|| Error::config(format!("MySQL address `{addr}` must be host:port")))?;
        let opts = mysql_async::OptsBuilder::default()
            .ip_or_hostname(host)
            .tcp_port(port)
            .user(Some(user))
            .pass(Some(password.expose()))
            .prefer_socket(false)
            .max_allowed_packet(Some(16 << 20))
            .wait_timeout(Some(28800))
            .stmt_cache_size(0);
        let conn = tokio::time::timeout(std::time::Duration::from_secs(30), mysql_async::Conn::new(opts))
            .await
            .map_err(|_| Error::infra(format!("StarRocks MySQL endpoint {addr} did not answer within 30 s")))?
            .map_err(|e| describe_mysql(addr, user, e))?;
        Ok(Meta { conn })
    }

    /// Runs a query and returns its rows as strings (NULL as `None`).
    pub async fn query(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>> {
        Ok(self.query_with_columns(sql).await?.1)
    }

    /// Runs a query and returns its column names and rows.
    pub async fn query_with_columns(&mut self, sql: &str) -> Result<(Vec<String>, Vec<Vec<Option<String>>>)> {
        self.rows(sql).await.map_err(|e| Error::infra(format!("query `{sql}` failed: {e}")))
    }

    /// Runs a statement a user wrote (`starload sql`): the server refusing
    /// it (syntax, privileges, an unknown table) is a configuration error,
    /// which no retry cures; a lost connection stays an infrastructure one.
    pub async fn user_statement(&mut self, sql: &str) -> Result<(Vec<String>, Vec<Vec<Option<String>>>)> {
        self.rows(sql).await.map_err(|e| {
            let m = format!("statement failed: {e}");
            if matches!(e, mysql_async::Error::Server(_)) { Error::config(m) } else { Error::infra(m) }
        })
    }

    async fn rows(
        &mut self,
        sql: &str,
    ) -> std::result::Result<(Vec<String>, Vec<Vec<Option<String>>>), mysql_async::Error> {
        let mut result = self.conn.query_iter(sql).await?;
        let names: Vec<String> =
            result.columns().map(|cs| cs.iter().map(|c| c.name_str().into_owned()).collect()).unwrap_or_default();
        let rows: Vec<mysql_async::Row> = result.collect().await?;
        Ok((
            names,
            rows.into_iter()
                .map(|r| {
                    r.unwrap()
                        .into_iter()
                        .map(|v| match v {
                            mysql_async::Value::NULL => None,
                            mysql_async::Value::Bytes(b) => Some(String::from_utf8_lossy(&b).into_owned()),
                            mysql_async::Value::Int(i) => Some(i.to_string()),
                            mysql_async::Value::UInt(u) => Some(u.to_string()),
                            mysql_async::Value::Float(f) => Some(f.to_string()),
                            mysql_async::Value::Double(f) => Some(f.to_string()),
                            other => Some(other.as_sql(true)),
                        })
                        .collect()
                })
                .collect(),
        ))
    }

    /// Runs a statement that returns no rows.
    pub async fn exec(&mut self, sql: &str) -> Result<()> {
        self.conn.query_drop(sql).await.map_err(|e| Error::infra(format!("statement `{sql}` failed: {e}")))
    }

    /// Reads the target table's schema: `DESC` for columns, types, keys and
    /// aggregates; `information_schema.tables_config` for the key model.
    pub async fn table(&mut self, db: &str, table: &str) -> Result<TargetTable> {
        check_ident("database", db)?;
        check_ident("table", table)?;
        let rows = self.query(&format!("DESC `{db}`.`{table}`")).await.map_err(|e| {
            if e.message().to_ascii_lowercase().contains("unknown") || e.message().contains("not exist") {
                Error::config(format!("target table `{db}.{table}` does not exist: {}", e.message()))
            } else {
                e
            }
        })?;
        if rows.is_empty() {
            return Err(Error::config(format!("target table `{db}.{table}` does not exist")));
        }
        let mut columns = Vec::new();
        for r in rows {
            let get = |i: usize| r.get(i).cloned().flatten().unwrap_or_default();
            let name = get(0);
            let ty =
                SrType::parse(&get(1)).map_err(|e| Error::config(format!("column `{name}` of `{db}.{table}`: {e}")))?;
            let extra = get(5);
            let agg = extra
                .split_whitespace()
                .find(|w| {
                    matches!(
                        w.to_ascii_uppercase().as_str(),
                        "SUM"
                            | "MIN"
                            | "MAX"
                            | "REPLACE"
                            | "REPLACE_IF_NOT_NULL"
                            | "BITMAP_UNION"
                            | "HLL_UNION"
                            | "PERCENTILE_UNION"
                    )
                })
                .map(|w| w.to_ascii_uppercase());
            columns.push(TargetColumn {
                name,
                ty,
                nullable: get(2).eq_ignore_ascii_case("yes") || get(2).eq_ignore_ascii_case("true"),
                is_key: get(3).eq_ignore_ascii_case("true") || get(3).eq_ignore_ascii_case("yes"),
                default: r.get(4).cloned().flatten(),
                agg,
            });
        }
        let model = self
            .query(&format!(
                "SELECT TABLE_MODEL, PARTITION_KEY FROM information_schema.tables_config WHERE TABLE_SCHEMA = '{db}' AND TABLE_NAME = '{table}'"
            ))
            .await?;
        let keys = model
            .first()
            .and_then(|r| r.first().cloned().flatten())
            .and_then(|m| KeysType::parse(&m))
            .ok_or_else(|| Error::config(format!("cannot read the key model of `{db}.{table}`")))?;
        let partition_key: Vec<String> = model
            .first()
            .and_then(|r| r.get(1).cloned().flatten())
            .map(|p| p.split(',').map(|c| c.trim().trim_matches('`').to_string()).filter(|c| !c.is_empty()).collect())
            .unwrap_or_default();
        Ok(TargetTable { db: db.to_string(), table: table.to_string(), keys, columns, partition_key })
    }

    /// The partitions of a table (or its temporary partitions): name and
    /// the `Range` text of `SHOW PARTITIONS`.
    pub async fn partitions(&mut self, db: &str, table: &str, temporary: bool) -> Result<Vec<(String, String)>> {
        self.partition_column(db, table, temporary, "Range").await
    }

    /// `(PartitionName, PartitionId)` of the table's partitions (or its
    /// temporary partitions). An unpartitioned table has one partition, named
    /// after the table. The id stays with the data: `REPLACE PARTITION` gives
    /// the live partition the temporary one's id, `SWAP WITH` swaps them.
    pub async fn partition_ids(&mut self, db: &str, table: &str, temporary: bool) -> Result<Vec<(String, String)>> {
        self.partition_column(db, table, temporary, "PartitionId").await
    }

    /// `(PartitionName, <column>)` of `SHOW [TEMPORARY] PARTITIONS`.
    async fn partition_column(
        &mut self,
        db: &str,
        table: &str,
        temporary: bool,
        column: &str,
    ) -> Result<Vec<(String, String)>> {
        check_ident("database", db)?;
        check_ident("table", table)?;
        let sql = format!("SHOW {}PARTITIONS FROM `{db}`.`{table}`", if temporary { "TEMPORARY " } else { "" });
        let (names, rows) = self.query_with_columns(&sql).await?;
        let col = |n: &str| names.iter().position(|c| c.eq_ignore_ascii_case(n));
        let (Some(pn), Some(rg)) = (col("PartitionName"), col(column)) else {
            return Err(Error::internal(format!("`{sql}` returned no PartitionName/{column} columns")));
        };
        Ok(rows
            .into_iter()
            .map(|r| {
                (r.get(pn).cloned().flatten().unwrap_or_default(), r.get(rg).cloned().flatten().unwrap_or_default())
            })
            .collect())
    }

    /// The server's StarRocks version (`current_version()`: `3.3.9-1b2c3d4`)
    /// as (major, minor); `None` when it cannot be told.
    pub async fn version(&mut self) -> Option<(u32, u32)> {
        let rows = self.query("SELECT current_version()").await.ok()?;
        let text = rows.first()?.first()?.clone()?;
        let mut parts = text.trim().split(['.', '-']);
        Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
    }

    /// `SELECT COUNT(*)` of a table.
    pub async fn count(&mut self, db: &str, table: &str) -> Result<u64> {
        let rows = self.query(&format!("SELECT COUNT(*) FROM `{db}`.`{table}`")).await?;
        rows.first()
            .and_then(|r| r.first().cloned().flatten())
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| Error::infra("COUNT(*) returned no number"))
    }

    /// Closes the connection.
    pub async fn close(self) {
        let _ = self.conn.disconnect().await;
    }
}

fn describe_mysql(addr: &str, user: &str, e: mysql_async::Error) -> Error {
    let addr = &crate::config::redact_url(addr);
    match &e {
        mysql_async::Error::Server(s)
            if matches!(s.code, 1045 | 1698)
                || s.message.to_ascii_lowercase().contains("access denied")
                || s.message.to_ascii_lowercase().contains("authenticate failed") =>
        {
            Error::config(format!("StarRocks at {addr} rejected the credentials of user `{user}` (access denied)"))
        }
        mysql_async::Error::Io(_) => Error::infra(format!("cannot connect to StarRocks MySQL endpoint {addr}: {e}")),
        _ => Error::infra(format!("StarRocks MySQL endpoint {addr}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_checked() {
        assert!(split_table("db.t_1").is_ok());
        assert!(split_table("db").is_err());
        assert!(split_table("db.t`; DROP TABLE x").is_err());
        assert!(check_ident("column", "a b").is_err());
    }
}
