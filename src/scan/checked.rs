//! What the transform may compute, and how: it runs row by row, and its
//! arithmetic fails instead of wrapping around.
//!
//! The transform is one SQL query per chunk. A construct that looks at
//! more than one row (an aggregate, a window, DISTINCT, LIMIT, a subquery, a
//! join) would give an answer per chunk, which depends on `chunk_bytes` and
//! is not what the query means over the whole source: refused at planning.
//!
//! DataFusion's `+`, `-`, `*` and unary minus wrap around on integer
//! overflow (`i16 * i16` of 30000 gives -5888). The physical plan is
//! rewritten to the checked kernels, which fail the chunk with an overflow
//! error, and expressions are kept out of the Parquet scan node (projection
//! pushdown off) so that every expression lives in a node rewritten here.

use std::sync::Arc;

use arrow::datatypes::{DataType, Schema};
use datafusion::common::ScalarValue;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::SessionStateBuilder;
use datafusion::logical_expr::{Expr, LogicalPlan, Operator};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{BinaryExpr, Literal, NegativeExpr};
use datafusion::physical_optimizer::optimizer::PhysicalOptimizer;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::filter::{FilterExec, FilterExecBuilder};
use datafusion::physical_plan::projection::{ProjectionExec, ProjectionExpr};
use datafusion::prelude::{DataFrame, SessionConfig, SessionContext};

use crate::error::{Error, Result};

/// A session whose plans compute every expression where it is checked:
/// no projection or filter copied into the scan node (its file pruner
/// evaluates filters unchecked), and integer `+ - *` and negation turned
/// into [`CheckedArith`] calls right after type coercion, so that constant
/// folding (DataFusion folds `2147483647 + 1` with wrapping arithmetic, also
/// after its simplifier has rewritten `coalesce(9223372036854775807, id) + 1`
/// into a constant) meets the checked function, fails and leaves the
/// expression to fail at run time. [`check_constants`] reports the plain
/// cases at planning.
pub(crate) fn session(config: SessionConfig) -> SessionContext {
    let physical = PhysicalOptimizer::new()
        .rules
        .into_iter()
        .filter(|r| r.name() != "ProjectionPushdown" && !r.name().starts_with("FilterPushdown"))
        .collect();
    let mut analyzer = datafusion::optimizer::Analyzer::new().rules;
    let at = analyzer.iter().position(|r| r.name() == "type_coercion").map_or(analyzer.len(), |i| i + 1);
    analyzer.insert(at, Arc::new(CheckedIntegerArithmetic));
    let state = SessionStateBuilder::new()
        .with_config(config)
        .with_default_features()
        .with_analyzer_rules(analyzer)
        .with_physical_optimizer_rules(physical)
        .build();
    SessionContext::new_with_state(state)
}

/// Whether an expression holds arithmetic (which only checked evaluation
/// may compute): such filters are not used to prune files or row groups.
pub(crate) fn has_arithmetic(e: &Expr) -> bool {
    let mut found = false;
    let _ = e.apply(|x| {
        if let Expr::BinaryExpr(b) = x
            && matches!(
                b.op,
                Operator::Plus
                    | Operator::Minus
                    | Operator::Multiply
                    | Operator::Divide
                    | Operator::Modulo
                    | Operator::BitwiseShiftLeft
                    | Operator::BitwiseShiftRight
            )
        {
            found = true;
        }
        if matches!(x, Expr::Negative(_)) {
            found = true;
        }
        if let Expr::ScalarFunction(f) = x
            && f.func.inner().downcast_ref::<CheckedArith>().is_some()
        {
            found = true;
        }
        Ok(if found { TreeNodeRecursion::Stop } else { TreeNodeRecursion::Continue })
    });
    found
}

/// Runs `df` with checked arithmetic.
pub(crate) async fn execute(ctx: &SessionContext, df: DataFrame) -> Result<SendableRecordBatchStream> {
    let plan = checked_plan(df.create_physical_plan().await?)?;
    Ok(datafusion::physical_plan::execute_stream(plan, ctx.task_ctx())?)
}

/// Runs `df` with checked arithmetic and collects its batches.
pub(crate) async fn collect(ctx: &SessionContext, df: DataFrame) -> Result<Vec<arrow::array::RecordBatch>> {
    let plan = checked_plan(df.create_physical_plan().await?)?;
    Ok(datafusion::physical_plan::collect(plan, ctx.task_ctx()).await?)
}

fn checked_plan(plan: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
    let out = plan.transform_up(|node| {
        if let Some(p) = node.downcast_ref::<ProjectionExec>() {
            let schema = p.input().schema();
            let exprs = p
                .expr()
                .iter()
                .map(|e| Ok(ProjectionExpr { expr: checked_expr(e.expr.clone(), &schema)?, alias: e.alias.clone() }))
                .collect::<datafusion::common::Result<Vec<_>>>()?;
            let new: Arc<dyn ExecutionPlan> = Arc::new(ProjectionExec::try_new(exprs, p.input().clone())?);
            return Ok(Transformed::yes(new));
        }
        if let Some(f) = node.downcast_ref::<FilterExec>() {
            let predicate = checked_expr(f.predicate().clone(), &f.input().schema())?;
            let new: Arc<dyn ExecutionPlan> = Arc::new(FilterExecBuilder::from(f).with_predicate(predicate).build()?);
            return Ok(Transformed::yes(new));
        }
        Ok(Transformed::no(node))
    })?;
    Ok(out.data)
}

fn checked_expr(expr: Arc<dyn PhysicalExpr>, schema: &Schema) -> datafusion::common::Result<Arc<dyn PhysicalExpr>> {
    let out = expr.transform_up(|e| {
        if let Some(b) = e.downcast_ref::<BinaryExpr>()
            && matches!(b.op(), Operator::Plus | Operator::Minus | Operator::Multiply)
        {
            let new = BinaryExpr::new(b.left().clone(), *b.op(), b.right().clone()).with_fail_on_overflow(true);
            return Ok(Transformed::yes(Arc::new(new) as Arc<dyn PhysicalExpr>));
        }
        if let Some(n) = e.downcast_ref::<NegativeExpr>() {
            let dt = n.arg().data_type(schema)?;
            if matches!(dt, DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64) {
                // -x as 0 - x, checked: -(-2^63) fails instead of wrapping.
                let zero: Arc<dyn PhysicalExpr> = Arc::new(Literal::new(ScalarValue::new_zero(&dt)?));
                let new = BinaryExpr::new(zero, Operator::Minus, n.arg().clone()).with_fail_on_overflow(true);
                return Ok(Transformed::yes(Arc::new(new) as Arc<dyn PhysicalExpr>));
            }
        }
        Ok(Transformed::no(e))
    })?;
    Ok(out.data)
}

/// Refuses a transform that is not row by row (see the module docs).
pub(crate) fn check_row_wise(plan: &LogicalPlan, sql: &str) -> Result<()> {
    let mut bad: Option<String> = None;
    let mut bad_shift: Option<String> = None;
    plan.apply(|node| {
        let what = match node {
            LogicalPlan::Projection(_) | LogicalPlan::Filter(_) | LogicalPlan::TableScan(_) => None,
            LogicalPlan::SubqueryAlias(_) => None,
            // Unnesting a struct keeps one row per row; a list does not.
            LogicalPlan::Unnest(u) if u.list_type_columns.is_empty() => None,
            LogicalPlan::Unnest(_) => Some("unnest of a list".to_string()),
            LogicalPlan::Aggregate(_) => Some("an aggregate (GROUP BY, COUNT, SUM…)".to_string()),
            LogicalPlan::Window(_) => Some("a window function".to_string()),
            LogicalPlan::Distinct(_) => Some("DISTINCT".to_string()),
            LogicalPlan::Limit(_) => Some("LIMIT".to_string()),
            LogicalPlan::Sort(_) => Some("ORDER BY".to_string()),
            other => Some(format!("`{}`", other.display())),
        };
        if what.is_none() {
            for e in node.expressions() {
                e.apply(|x| {
                    if matches!(
                        x,
                        Expr::ScalarSubquery(_)
                            | Expr::InSubquery(_)
                            | Expr::Exists(_)
                            | Expr::SetComparison(_)
                            | Expr::AggregateFunction(_)
                            | Expr::WindowFunction(_)
                    ) {
                        bad.get_or_insert_with(|| format!("`{x}`"));
                        return Ok(TreeNodeRecursion::Stop);
                    }
                    // Shifts wrap around (`i64 << 1`, `id << 64` is `id`)
                    // and have no checked kernel.
                    if let Expr::BinaryExpr(b) = x
                        && matches!(b.op, Operator::BitwiseShiftLeft | Operator::BitwiseShiftRight)
                    {
                        bad_shift.get_or_insert_with(|| format!("`{x}`"));
                        return Ok(TreeNodeRecursion::Stop);
                    }
                    Ok(TreeNodeRecursion::Continue)
                })?;
            }
        }
        if let Some(w) = what {
            bad.get_or_insert(w);
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(if bad.is_some() || bad_shift.is_some() { TreeNodeRecursion::Stop } else { TreeNodeRecursion::Continue })
    })?;
    if let Some(w) = bad_shift {
        return Err(Error::config(format!(
            "the transform `{sql}` uses the bit shift {w}, which wraps around silently; use multiplication or \
             division by a power of two (checked)"
        )));
    }
    match bad {
        None => Ok(()),
        Some(w) => Err(Error::config(format!(
            "the transform `{sql}` uses {w}, which looks at more than one row; the transform runs on each chunk \
             separately, so it must work row by row (aggregate in StarRocks, or prepare the source)"
        ))),
    }
}

/// The first function of `plan` that reads the statement's clock (a
/// stable one: `now()`, `current_date()`, `current_time()`), as `name()`.
pub(crate) fn clock_function(plan: &LogicalPlan) -> Option<String> {
    use datafusion::logical_expr::Volatility;
    let mut found = None;
    let _ = plan.apply(|node| {
        for e in node.expressions() {
            let _ = e.apply(|x| {
                if let Expr::ScalarFunction(f) = x
                    && f.func.signature().volatility == Volatility::Stable
                {
                    found = Some(format!("{}()", f.func.name()));
                    return Ok(TreeNodeRecursion::Stop);
                }
                Ok(TreeNodeRecursion::Continue)
            });
            if found.is_some() {
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

/// Refuses what would make a dictionary build and the load disagree on a
/// row's dictionary value. The build computes each source expression over
/// the job's inputs, and the load computes it again and looks the result up:
/// an expression that is not a function of the row alone (`random()`,
/// `uuid()`, `now()`, `current_date()`) gives the load values the build
/// never saw, and a `random()` filter keeps rows the build skipped. Either
/// would fail the load part way with a value missing from the dictionary.
/// So a dictionary expression may call only immutable functions, and the
/// filter of a job with dictionaries no volatile ones (a stable filter such
/// as `dt >= current_date() - 1` is allowed: every statement of a job reads
/// the job's clock, the build's included; a dictionary built by itself
/// before shards reads its own unless given the shards' `--clock`).
pub(crate) fn check_dict_determinism(plan: &LogicalPlan, dict_columns: &[String], sql: &str) -> Result<()> {
    use datafusion::logical_expr::Volatility;
    if dict_columns.is_empty() {
        return Ok(());
    }
    // The first function in `e` at least as changeable as `worst`.
    let first = |e: &Expr, worst: Volatility| -> Option<String> {
        let mut found = None;
        let _ = e.apply(|x| {
            if let Expr::ScalarFunction(f) = x
                && f.func.signature().volatility >= worst
            {
                found = Some(format!("{}()", f.func.name()));
                return Ok(TreeNodeRecursion::Stop);
            }
            Ok(TreeNodeRecursion::Continue)
        });
        found
    };
    let mut bad: Option<String> = None;
    plan.apply(|node| {
        for e in node.expressions() {
            let found = match (node, &e) {
                (LogicalPlan::Filter(_), e) => first(e, Volatility::Volatile).map(|f| format!("the filter calls {f}")),
                (_, Expr::Alias(a)) if dict_columns.contains(&a.name) => first(&a.expr, Volatility::Stable)
                    .map(|f| format!("the dictionary expression `{}` calls {f}", a.expr)),
                _ => None,
            };
            if found.is_some() {
                bad = found;
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    match bad {
        None => Ok(()),
        Some(w) => Err(Error::config(format!(
            "the transform `{sql}`: {w}, whose value is not a function of the row alone; the dictionary build and \
             the load compute it separately and would not agree (compute it into the source instead)"
        ))),
    }
}

/// Refuses, when the job's zone is not UTC, what converts between instants
/// and the transform's wall-clock timestamps: DataFusion reads a timestamp
/// without zone as UTC, where StarRocks' `unix_timestamp` and
/// `from_unixtime` use the session zone, so `to_unixtime(ts)` of a zoned
/// column (which the transform sees as the job zone's wall clock) was off by
/// the zone's offset. Refused: `to_unixtime`, `from_unixtime`,
/// `to_timestamp*` (of a number an instant; of text DataFusion reads it in
/// the session zone and then fails its own type check), `extract(epoch …)` /
/// `date_part('epoch', …)`, and casts between timestamps and numbers.
pub(crate) fn check_zone_conversions(plan: &LogicalPlan, zone: crate::encode::Zone, sql: &str) -> Result<()> {
    use datafusion::logical_expr::ExprSchemable;
    if matches!(zone, crate::encode::Zone::Utc | crate::encode::Zone::Fixed(0)) {
        return Ok(());
    }
    let is_time = |t: &DataType| matches!(t, DataType::Timestamp(..) | DataType::Date32 | DataType::Date64);
    let is_number = |t: &DataType| t.is_numeric();
    let mut bad: Option<String> = None;
    plan.apply(|node| {
        let schema = expression_schema(node);
        for e in node.expressions() {
            e.apply(|x| {
                let ty = |e: &Expr| e.get_type(&schema).ok();
                let refused = match x {
                    Expr::ScalarFunction(f) => {
                        let name = f.func.name().to_ascii_lowercase();
                        match name.as_str() {
                            "to_unixtime" | "from_unixtime" => true,
                            // Of a number: an instant; of text: DataFusion reads
                            // it in the session zone and fails its own type check.
                            n if n.starts_with("to_timestamp") => true,
                            "date_part" | "datepart" | "extract" => matches!(
                                f.args.first(),
                                Some(Expr::Literal(ScalarValue::Utf8(Some(p)) | ScalarValue::Utf8View(Some(p)), _))
                                    if p.eq_ignore_ascii_case("epoch")
                            ),
                            _ => false,
                        }
                    }
                    Expr::Cast(datafusion::logical_expr::Cast { expr, field })
                    | Expr::TryCast(datafusion::logical_expr::TryCast { expr, field }) => {
                        let to = field.data_type();
                        ty(expr)
                            .is_some_and(|from| (is_time(&from) && is_number(to)) || (is_number(&from) && is_time(to)))
                    }
                    _ => false,
                };
                if refused {
                    bad.get_or_insert_with(|| format!("`{x}`"));
                    return Ok(TreeNodeRecursion::Stop);
                }
                Ok(TreeNodeRecursion::Continue)
            })?;
        }
        Ok(if bad.is_some() { TreeNodeRecursion::Stop } else { TreeNodeRecursion::Continue })
    })?;
    match bad {
        None => Ok(()),
        Some(w) => Err(Error::config(format!(
            "the transform `{sql}` uses {w}, which converts between instants and timestamps as DataFusion does \
             (as if they were UTC), while the transform sees timestamps as wall-clock time in the job's zone `{}` \
             (StarRocks' unix_timestamp/from_unixtime use that zone): compute it with timezone = \"UTC\", cast \
             text with CAST(s AS TIMESTAMP), or compute it in StarRocks",
            zone.name()
        ))),
    }
}

/// The schema a node's expressions are typed against: its inputs', or a
/// table scan's own.
fn expression_schema(node: &LogicalPlan) -> datafusion::common::DFSchema {
    let mut schema = datafusion::logical_expr::utils::merge_schema(&node.inputs());
    if let LogicalPlan::TableScan(ts) = node {
        schema.merge(ts.projected_schema.as_ref());
    }
    schema
}

/// Refuses a transform whose constant arithmetic overflows: DataFusion
/// folds constants at planning with wrapping arithmetic, so each constant
/// subexpression with arithmetic is first evaluated here, checked.
pub(crate) fn check_constants(ctx: &SessionContext, plan: &LogicalPlan, sql: &str) -> Result<()> {
    let state = ctx.state();
    let analyzed = state.analyzer().execute_and_check(plan.clone(), state.config_options(), |_, _| {})?;
    let mut bad: Option<String> = None;
    analyzed.apply(|node| {
        for e in node.expressions() {
            e.apply(|x| {
                if bad.is_some() {
                    return Ok(TreeNodeRecursion::Stop);
                }
                if x.column_refs().is_empty() && has_arithmetic(x) {
                    if constant_overflows(x) {
                        // As written (`Display` would show the checked
                        // functions), without the column's alias.
                        let e = if let Expr::Alias(a) = x { a.expr.as_ref() } else { x };
                        bad = Some(e.schema_name().to_string());
                        return Ok(TreeNodeRecursion::Stop);
                    }
                    return Ok(TreeNodeRecursion::Jump);
                }
                Ok(TreeNodeRecursion::Continue)
            })?;
        }
        Ok(if bad.is_some() { TreeNodeRecursion::Stop } else { TreeNodeRecursion::Continue })
    })?;
    match bad {
        None => Ok(()),
        Some(e) => Err(Error::config(format!(
            "the transform `{sql}`: the constant `{e}` overflows its type (arithmetic is checked; widen it first)"
        ))),
    }
}

fn constant_overflows(e: &Expr) -> bool {
    let schema = datafusion::common::DFSchema::empty();
    let props = datafusion::logical_expr::execution_props::ExecutionProps::new();
    let planning = datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext::default();
    let Ok(p) = datafusion::physical_expr::create_physical_expr(e, &schema, &props, &planning) else { return false };
    let Ok(p) = checked_expr(p, &Schema::empty()) else { return false };
    let opts = arrow::array::RecordBatchOptions::new().with_row_count(Some(1));
    let Ok(batch) = arrow::array::RecordBatch::try_new_with_options(Arc::new(Schema::empty()), vec![], &opts) else {
        return false;
    };
    p.evaluate(&batch).is_err_and(|e| e.to_string().to_ascii_lowercase().contains("overflow"))
}

/// `now()` (and `current_timestamp`) as the job zone's wall-clock time
/// without zone, in microseconds: the zoned source timestamps reach the
/// transform that way (see `Scanner::context`), so comparisons such as
/// `ts > now() - INTERVAL '3' HOUR` compare like with like, and the value
/// loads into DATETIME as it reads.
#[derive(Debug, PartialEq, Eq, Hash)]
struct WallClockNow {
    signature: datafusion::logical_expr::Signature,
    aliases: Vec<String>,
    zone: crate::encode::Zone,
}

impl WallClockNow {
    fn at(&self, t: chrono::DateTime<chrono::Utc>) -> ScalarValue {
        let us = t.timestamp_micros();
        ScalarValue::TimestampMicrosecond(Some(us + self.zone.offset_secs(us) * 1_000_000), None)
    }
}

impl datafusion::logical_expr::ScalarUDFImpl for WallClockNow {
    fn name(&self) -> &str {
        "now"
    }

    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn signature(&self) -> &datafusion::logical_expr::Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> datafusion::common::Result<DataType> {
        Ok(DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, None))
    }

    fn invoke_with_args(
        &self,
        _: datafusion::logical_expr::ScalarFunctionArgs,
    ) -> datafusion::common::Result<datafusion::logical_expr::ColumnarValue> {
        // Not the time of day: the constant folder calls this before
        // `simplify` puts in the statement's clock (the job's, which a
        // resumed run keeps), and keeps the call when it fails.
        datafusion::common::internal_err!("now() is replaced by the statement's clock before it runs")
    }

    fn simplify(
        &self,
        args: Vec<Expr>,
        info: &datafusion::logical_expr::simplify::SimplifyContext,
    ) -> datafusion::common::Result<datafusion::logical_expr::simplify::ExprSimplifyResult> {
        use datafusion::logical_expr::simplify::ExprSimplifyResult;
        // One value for the whole statement, like DataFusion's own now().
        Ok(match info.query_execution_start_time() {
            Some(t) => ExprSimplifyResult::Simplified(Expr::Literal(self.at(t), None)),
            None => ExprSimplifyResult::Original(args),
        })
    }
}

/// A zoned timestamp as the wall-clock time of the job's zone, without
/// zone (DataFusion's `to_local_time`, but with the job zone's offsets from
/// [`crate::encode::Zone::offset_secs`], the system zoneinfo's as StarRocks'
/// cctz reads them: chrono-tz, which DataFusion uses, keeps a zone on one
/// offset from 2100 on, where StarRocks goes on with its daylight-saving
/// rule, and before 1970 has a merged zone's neighbour's history). The
/// column's zone is the job's zone (the file schema is read in it).
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct LocalTime {
    signature: datafusion::logical_expr::Signature,
    zone: crate::encode::Zone,
}

impl LocalTime {
    pub(crate) fn expr(zone: crate::encode::Zone, arg: Expr) -> Expr {
        let signature = datafusion::logical_expr::Signature::any(1, datafusion::logical_expr::Volatility::Immutable);
        datafusion::logical_expr::ScalarUDF::from(LocalTime { signature, zone }).call(vec![arg])
    }
}

impl datafusion::logical_expr::ScalarUDFImpl for LocalTime {
    fn name(&self) -> &str {
        "to_local_time"
    }

    fn signature(&self) -> &datafusion::logical_expr::Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> datafusion::common::Result<DataType> {
        match &args[0] {
            DataType::Timestamp(unit, _) => Ok(DataType::Timestamp(*unit, None)),
            other => datafusion::common::plan_err!("to_local_time of {other}, not a timestamp"),
        }
    }

    fn invoke_with_args(
        &self,
        args: datafusion::logical_expr::ScalarFunctionArgs,
    ) -> datafusion::common::Result<datafusion::logical_expr::ColumnarValue> {
        use arrow::array::{Array, PrimitiveArray};
        use arrow::datatypes::{
            ArrowTimestampType, TimeUnit, TimestampMicrosecondType as Us, TimestampMillisecondType as Ms,
            TimestampNanosecondType as Ns, TimestampSecondType as S,
        };
        use datafusion::logical_expr::ColumnarValue;
        fn local<T: ArrowTimestampType>(
            a: &dyn Array,
            zone: crate::encode::Zone,
            per_sec: i64,
        ) -> datafusion::common::Result<arrow::array::ArrayRef> {
            let a: &PrimitiveArray<T> = arrow::array::AsArray::as_primitive(a);
            let out: PrimitiveArray<T> = a.try_unary(|v| {
                // The instant in µs (floored), for the zone's offset.
                let us = (v as i128 * 1_000_000).div_euclid(per_sec as i128);
                let us = i64::try_from(us).unwrap_or(if us < 0 { i64::MIN } else { i64::MAX });
                v.checked_add(zone.offset_secs(us) * per_sec).ok_or_else(|| {
                    arrow::error::ArrowError::ComputeError(format!(
                        "timestamp {v} is out of range as wall-clock time in {}",
                        zone.name()
                    ))
                })
            })?;
            Ok(Arc::new(out.with_timezone_opt(None::<Arc<str>>)))
        }
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let a = arrays[0].as_ref();
        let out = match a.data_type() {
            DataType::Timestamp(TimeUnit::Second, _) => local::<S>(a, self.zone, 1)?,
            DataType::Timestamp(TimeUnit::Millisecond, _) => local::<Ms>(a, self.zone, 1_000)?,
            DataType::Timestamp(TimeUnit::Microsecond, _) => local::<Us>(a, self.zone, 1_000_000)?,
            DataType::Timestamp(TimeUnit::Nanosecond, _) => local::<Ns>(a, self.zone, 1_000_000_000)?,
            other => return datafusion::common::exec_err!("to_local_time of {other}, not a timestamp"),
        };
        Ok(if args.args.iter().all(|v| matches!(v, ColumnarValue::Scalar(_))) {
            ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?)
        } else {
            ColumnarValue::Array(out)
        })
    }
}

/// Registers [`WallClockNow`] for the job zone `zone`.
pub(crate) fn register_wall_clock_now(ctx: &SessionContext, zone: crate::encode::Zone) {
    let f = WallClockNow {
        signature: datafusion::logical_expr::Signature::nullary(datafusion::logical_expr::Volatility::Stable),
        aliases: vec!["current_timestamp".to_string()],
        zone,
    };
    ctx.register_udf(datafusion::logical_expr::ScalarUDF::from(f));
}

/// Integer `+`, `-`, `*` that fail on overflow, as a function: the
/// simplifier folds a constant call by evaluating it, and an evaluation
/// that fails leaves the call in place (where a `BinaryExpr` would have been
/// folded with wrapping arithmetic before [`checked_plan`] could see it).
#[derive(Debug, PartialEq, Eq, Hash)]
struct CheckedArith {
    op: Operator,
    name: &'static str,
    signature: datafusion::logical_expr::Signature,
}

impl CheckedArith {
    fn udf(op: Operator) -> Arc<datafusion::logical_expr::ScalarUDF> {
        let name = match op {
            Operator::Plus => "checked_add",
            Operator::Minus => "checked_sub",
            _ => "checked_mul",
        };
        let signature = datafusion::logical_expr::Signature::any(2, datafusion::logical_expr::Volatility::Immutable);
        Arc::new(datafusion::logical_expr::ScalarUDF::from(CheckedArith { op, name, signature }))
    }
}

impl datafusion::logical_expr::ScalarUDFImpl for CheckedArith {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &datafusion::logical_expr::Signature {
        &self.signature
    }

    /// Named like the operator it replaces (column names; `Display`, in
    /// EXPLAIN output, still shows the function).
    fn schema_name(&self, args: &[Expr]) -> datafusion::common::Result<String> {
        Ok(format!("{} {} {}", args[0].schema_name(), self.op, args[1].schema_name()))
    }

    fn return_type(&self, args: &[DataType]) -> datafusion::common::Result<DataType> {
        Ok(args[0].clone())
    }

    /// Nullable like the operator: only when an operand is (an overflow is
    /// an error, never NULL).
    fn return_field_from_args(
        &self,
        args: datafusion::logical_expr::ReturnFieldArgs,
    ) -> datafusion::common::Result<arrow::datatypes::FieldRef> {
        let nullable = args.arg_fields.iter().any(|f| f.is_nullable());
        Ok(Arc::new(arrow::datatypes::Field::new(self.name, args.arg_fields[0].data_type().clone(), nullable)))
    }

    fn invoke_with_args(
        &self,
        args: datafusion::logical_expr::ScalarFunctionArgs,
    ) -> datafusion::common::Result<datafusion::logical_expr::ColumnarValue> {
        use datafusion::logical_expr::ColumnarValue;
        let datum = |v: &ColumnarValue| -> datafusion::common::Result<Box<dyn arrow::array::Datum>> {
            Ok(match v {
                ColumnarValue::Array(a) => Box::new(a.clone()),
                ColumnarValue::Scalar(s) => Box::new(s.to_scalar()?),
            })
        };
        let (l, r) = (datum(&args.args[0])?, datum(&args.args[1])?);
        let kernel = match self.op {
            Operator::Plus => arrow::compute::kernels::numeric::add,
            Operator::Minus => arrow::compute::kernels::numeric::sub,
            _ => arrow::compute::kernels::numeric::mul,
        };
        let out = kernel(l.as_ref(), r.as_ref())?;
        if args.args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_))) {
            return Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?));
        }
        Ok(ColumnarValue::Array(out))
    }
}

/// A decimal arithmetic result, unchanged when every value fits its type's
/// precision, an error otherwise. (Also the wrapper that keeps a cast out
/// of the simplifier's reach: see [`checked_integer_expr`].) DataFusion caps a result's precision at
/// 38 (76) digits and its kernels check only the 128 (256) bits: the sum of
/// two DECIMAL(38,10) values of 28 integer digits has 39 digits in a type
/// that says 38, which a CAST to text then cuts (StarRocks fails on a
/// decimal overflow).
#[derive(Debug, PartialEq, Eq, Hash)]
struct DecimalFits {
    signature: datafusion::logical_expr::Signature,
}

impl DecimalFits {
    fn udf() -> Arc<datafusion::logical_expr::ScalarUDF> {
        let signature = datafusion::logical_expr::Signature::any(1, datafusion::logical_expr::Volatility::Immutable);
        Arc::new(datafusion::logical_expr::ScalarUDF::from(DecimalFits { signature }))
    }
}

impl datafusion::logical_expr::ScalarUDFImpl for DecimalFits {
    fn name(&self) -> &str {
        "decimal_fits"
    }

    fn signature(&self) -> &datafusion::logical_expr::Signature {
        &self.signature
    }

    /// Named like the expression it checks.
    fn schema_name(&self, args: &[Expr]) -> datafusion::common::Result<String> {
        Ok(args[0].schema_name().to_string())
    }

    fn return_type(&self, args: &[DataType]) -> datafusion::common::Result<DataType> {
        Ok(args[0].clone())
    }

    fn return_field_from_args(
        &self,
        args: datafusion::logical_expr::ReturnFieldArgs,
    ) -> datafusion::common::Result<arrow::datatypes::FieldRef> {
        let f = &args.arg_fields[0];
        Ok(Arc::new(arrow::datatypes::Field::new(self.name(), f.data_type().clone(), f.is_nullable())))
    }

    fn invoke_with_args(
        &self,
        args: datafusion::logical_expr::ScalarFunctionArgs,
    ) -> datafusion::common::Result<datafusion::logical_expr::ColumnarValue> {
        use arrow::array::AsArray;
        use arrow::datatypes::{Decimal32Type, Decimal64Type, Decimal128Type, Decimal256Type};
        let v = args.args.into_iter().next().expect("one argument");
        let a = v.to_array(1)?;
        match a.data_type() {
            DataType::Decimal32(p, _) => a.as_primitive::<Decimal32Type>().validate_decimal_precision(*p)?,
            DataType::Decimal64(p, _) => a.as_primitive::<Decimal64Type>().validate_decimal_precision(*p)?,
            DataType::Decimal128(p, _) => a.as_primitive::<Decimal128Type>().validate_decimal_precision(*p)?,
            DataType::Decimal256(p, _) => a.as_primitive::<Decimal256Type>().validate_decimal_precision(*p)?,
            _ => {}
        }
        Ok(v)
    }
}

/// The analyzer rule that puts [`CheckedArith`] in place of integer `+`,
/// `-`, `*` (both sides of one integer type after coercion) and of integer
/// negation (`0 - x`), and [`DecimalFits`] around decimal arithmetic and
/// around casts that drop a decimal's fraction digits. The
/// decimal kernels' 128-bit overflow is checked in the physical plan by
/// [`checked_plan`].
#[derive(Debug)]
struct CheckedIntegerArithmetic;

impl datafusion::optimizer::AnalyzerRule for CheckedIntegerArithmetic {
    fn name(&self) -> &str {
        "starload_checked_integer_arithmetic"
    }

    fn analyze(
        &self,
        plan: LogicalPlan,
        _: &datafusion::common::config::ConfigOptions,
    ) -> datafusion::common::Result<LogicalPlan> {
        let out = plan.transform_up_with_subqueries(|node| {
            let schema = expression_schema(&node);
            let names = datafusion::logical_expr::expr_rewriter::NamePreserver::new(&node);
            node.map_expressions(|e| {
                let saved = names.save(&e);
                let t = e.transform_up(|x| checked_integer_expr(x, &schema))?;
                Ok(if t.transformed { t.update_data(|e| saved.restore(e)) } else { t })
            })
        })?;
        Ok(out.data)
    }
}

fn checked_integer_expr(
    e: Expr,
    schema: &datafusion::common::DFSchema,
) -> datafusion::common::Result<Transformed<Expr>> {
    use datafusion::logical_expr::ExprSchemable;
    let int = |dt: &DataType| dt.is_integer();
    match e {
        Expr::BinaryExpr(b)
            if matches!(b.op, Operator::Plus | Operator::Minus | Operator::Multiply)
                && int(&b.left.get_type(schema)?)
                && b.left.get_type(schema)? == b.right.get_type(schema)? =>
        {
            let f = CheckedArith::udf(b.op);
            Ok(Transformed::yes(f.call(vec![*b.left, *b.right])))
        }
        Expr::BinaryExpr(b)
            if matches!(
                b.op,
                Operator::Plus | Operator::Minus | Operator::Multiply | Operator::Divide | Operator::Modulo
            ) && matches!(
                Expr::BinaryExpr(b.clone()).get_type(schema)?,
                DataType::Decimal32(..) | DataType::Decimal64(..) | DataType::Decimal128(..) | DataType::Decimal256(..)
            ) =>
        {
            Ok(Transformed::yes(DecimalFits::udf().call(vec![Expr::BinaryExpr(b)])))
        }
        // DataFusion's simplifier rewrites `CAST(d AS INT) = 0` into
        // `d = 0.00` (and `<`, `>` alike), which is only right for a cast
        // that keeps every value: a decimal cast to fewer fraction digits
        // is not, and the filter then disagreed with the value the same
        // cast gives in the select list (0.49 and -0.01 cast to 0, yet
        // `= 0` dropped them). Wrapped, the cast stays as written.
        Expr::Cast(c) if drops_fraction_digits(&c.expr.get_type(schema)?, c.field.data_type()) => {
            Ok(Transformed::yes(DecimalFits::udf().call(vec![Expr::Cast(c)])))
        }
        Expr::TryCast(c) if drops_fraction_digits(&c.expr.get_type(schema)?, c.field.data_type()) => {
            Ok(Transformed::yes(DecimalFits::udf().call(vec![Expr::TryCast(c)])))
        }
        Expr::Negative(x) if int(&x.get_type(schema)?) => {
            let dt = x.get_type(schema)?;
            let zero = Expr::Literal(ScalarValue::new_zero(&dt)?, None);
            Ok(Transformed::yes(CheckedArith::udf(Operator::Minus).call(vec![zero, *x])))
        }
        other => Ok(Transformed::no(other)),
    }
}

/// A cast from a decimal to a type of fewer fraction digits (an integer,
/// a decimal of smaller scale), which maps many values to one.
fn drops_fraction_digits(from: &DataType, to: &DataType) -> bool {
    let scale = |t: &DataType| match t {
        DataType::Decimal32(_, s)
        | DataType::Decimal64(_, s)
        | DataType::Decimal128(_, s)
        | DataType::Decimal256(_, s) => Some(*s),
        _ => None,
    };
    match (scale(from), scale(to)) {
        (Some(s), Some(t)) => t < s,
        (Some(s), None) => s > 0,
        _ => false,
    }
}
