//! Partition pruning: the conjuncts of the `where` clause that read only
//! Hive partition columns are evaluated on each partition's values while
//! listing, so pruned directories are never listed and their files never
//! opened. Pruning is only an optimisation: the whole clause still filters
//! rows during the scan, and a conjunct that cannot be evaluated here prunes
//! nothing.

use std::collections::HashSet;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, new_null_array};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{BinaryOperator, Expr as SqlExpr};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;

use crate::error::{Error, Result};

/// Words of SQL that are not column names.
const KEYWORDS: &[&str] = &[
    "and",
    "or",
    "not",
    "in",
    "between",
    "is",
    "null",
    "like",
    "ilike",
    "true",
    "false",
    "date",
    "timestamp",
    "cast",
    "as",
    "varchar",
    "int",
    "integer",
    "bigint",
    "string",
    "case",
    "when",
    "then",
    "else",
    "end",
    "interval",
    "escape",
];

/// A conjunct and the columns it reads.
#[derive(Debug, Clone)]
struct Conjunct {
    sql: String,
    columns: HashSet<String>,
}

/// Evaluates the partition-only conjuncts of a where clause.
#[derive(Debug, Clone)]
pub struct Pruner {
    conjuncts: Vec<Conjunct>,
    types: Vec<(String, DataType)>,
}

fn conjuncts(e: SqlExpr, out: &mut Vec<SqlExpr>) {
    match e {
        SqlExpr::BinaryOp { left, op: BinaryOperator::And, right } => {
            conjuncts(*left, out);
            conjuncts(*right, out);
        }
        SqlExpr::Nested(inner) if matches!(*inner, SqlExpr::BinaryOp { op: BinaryOperator::And, .. }) => {
            conjuncts(*inner, out)
        }
        other => out.push(other),
    }
}

/// Lower-cased words of a SQL text outside quotes that are not keywords or
/// numbers: a superset of the columns it reads (function names included, which
/// only makes a conjunct look less evaluable, never wrongly evaluable).
fn words(sql: &str) -> HashSet<String> {
    let mut out = HashSet::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    for c in sql.chars().chain(std::iter::once(' ')) {
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            continue;
        }
        if c == '\'' {
            quote = Some(c);
            continue;
        }
        if c.is_alphanumeric() || c == '_' || c == '"' || c == '`' {
            if c != '"' && c != '`' {
                cur.push(c);
            }
        } else {
            if !cur.is_empty() && !cur.chars().next().is_some_and(|c| c.is_ascii_digit()) {
                let w = cur.to_ascii_lowercase();
                if !KEYWORDS.contains(&w.as_str()) {
                    out.insert(w);
                }
            }
            cur.clear();
        }
    }
    out
}

impl Pruner {
    /// A pruner for `where_sql`; partition columns get `types` (strings by
    /// default). `None` when there is no clause.
    pub fn new(where_sql: Option<&str>, types: &[(String, DataType)]) -> Result<Option<Pruner>> {
        let Some(w) = where_sql.map(str::trim).filter(|w| !w.is_empty()) else { return Ok(None) };
        let expr = Parser::new(&GenericDialect {})
            .try_with_sql(w)
            .and_then(|mut p| p.parse_expr())
            .map_err(|e| Error::config(format!("the where clause `{w}` does not parse: {e}")))?;
        let mut parts = Vec::new();
        conjuncts(expr, &mut parts);
        let conjuncts = parts
            .into_iter()
            .map(|e| {
                let sql = e.to_string();
                Conjunct { columns: words(&sql), sql }
            })
            .collect();
        Ok(Some(Pruner { conjuncts, types: types.iter().map(|(k, t)| (k.to_ascii_lowercase(), t.clone())).collect() }))
    }

    /// Whether a conjunct that can prune reads one of `keys`.
    pub fn reads_any(&self, keys: &[String]) -> bool {
        self.conjuncts.iter().any(|c| keys.iter().any(|k| c.columns.contains(&k.to_ascii_lowercase())))
    }

    /// This pruner without the conjuncts that read one of `keys`.
    pub fn without(mut self, keys: &[String]) -> Pruner {
        self.conjuncts.retain(|c| !keys.iter().any(|k| c.columns.contains(&k.to_ascii_lowercase())));
        self
    }

    /// Whether a partition with these values (a prefix of the keys, outermost
    /// first) can hold matching rows. Conjuncts over columns not known yet, or
    /// that fail to evaluate, do not prune.
    pub fn matches(&self, parts: &[(String, Option<String>)]) -> bool {
        let known: HashSet<String> = parts.iter().map(|(k, _)| k.to_ascii_lowercase()).collect();
        for c in &self.conjuncts {
            if c.columns.is_empty() || !c.columns.is_subset(&known) {
                continue;
            }
            if let Ok(false) = self.eval(&c.sql, parts) {
                return false;
            }
        }
        true
    }

    fn eval(&self, sql: &str, parts: &[(String, Option<String>)]) -> Result<bool> {
        let mut fields = Vec::new();
        let mut cols: Vec<ArrayRef> = Vec::new();
        for (k, v) in parts {
            let lk = k.to_ascii_lowercase();
            let dt = self.types.iter().find(|(n, _)| *n == lk).map(|(_, t)| t.clone()).unwrap_or(DataType::Utf8);
            let arr = match v {
                None => new_null_array(&dt, 1),
                Some(s) => ScalarValue::try_from_string(s.clone(), &dt)?.to_array()?,
            };
            fields.push(Field::new(lk, dt, true));
            cols.push(arr);
        }
        let schema = Arc::new(Schema::new(fields));
        let batch = RecordBatch::try_new(schema.clone(), cols)?;
        let ctx = SessionContext::new();
        let df_schema = DFSchema::try_from(schema.as_ref().clone())?;
        let expr = ctx.parse_sql_expr(sql, &df_schema)?;
        // Arithmetic here would be unchecked (and folded with wrapping): such
        // a conjunct does not prune; the checked row filter decides.
        if crate::scan::checked::has_arithmetic(&expr) {
            return Err(Error::config("arithmetic is not evaluated for pruning"));
        }
        let phys = ctx.create_physical_expr(expr, &df_schema)?;
        let out = phys.evaluate(&batch)?.into_array(1)?;
        let b =
            out.as_any().downcast_ref::<BooleanArray>().ok_or_else(|| Error::internal("predicate is not boolean"))?;
        // NULL (unknown) keeps the partition.
        Ok(b.is_null(0) || b.value(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(k: &str, v: &str) -> (String, Option<String>) {
        (k.into(), Some(v.into()))
    }

    #[test]
    fn prunes_on_partition_only_conjuncts() {
        let types = vec![("n".to_string(), DataType::Int32)];
        let pr = Pruner::new(Some("dt >= '2024-02-29' AND region <> 'eu' AND c_i32 > 0 AND n IN (1, 2)"), &types)
            .unwrap()
            .unwrap();
        assert!(pr.matches(&[p("dt", "2024-02-29")]));
        assert!(!pr.matches(&[p("dt", "2024-02-28")]));
        assert!(pr.matches(&[p("dt", "2024-03-01"), p("region", "us")]));
        assert!(!pr.matches(&[p("dt", "2024-03-01"), p("region", "eu")]));
        // n is typed: 10 is not in (1, 2) numerically.
        assert!(!pr.matches(&[p("dt", "2024-03-01"), p("region", "us"), p("n", "10")]));
        assert!(pr.matches(&[p("dt", "2024-03-01"), p("region", "us"), p("n", "2")]));
        // A disjunction across a data column cannot prune.
        let pr = Pruner::new(Some("dt = '2024-01-01' OR c_i32 > 0"), &[]).unwrap().unwrap();
        assert!(pr.matches(&[p("dt", "1999-01-01")]));
        // Functions make a conjunct opaque: no pruning, never a wrong one.
        let pr = Pruner::new(Some("upper(region) = 'EU'"), &[]).unwrap().unwrap();
        assert!(pr.matches(&[p("region", "us")]));
        assert!(Pruner::new(Some("dt = "), &[]).is_err());
        // NULL partitions are kept unless the predicate is false.
        let pr = Pruner::new(Some("region = 'eu'"), &[]).unwrap().unwrap();
        assert!(pr.matches(&[("region".into(), None)]));
    }
}
