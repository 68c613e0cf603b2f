//! The load modes beyond append: `overwrite` (temporary partitions and
//! `REPLACE PARTITION`, or a shadow table and `SWAP`) and `atomic` (the
//! transaction interface: begin, loads, prepare, commit).

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use reqwest::header::HeaderMap;

use crate::client::{self, Attempt, LabelState, Verdict};
use crate::encode::{Encoded, Part};
use crate::error::{Error, ErrorKind, Result};
use crate::job::RunCtx;
use crate::journal::ModeRecord;
use crate::load::{self, LoadReport};
use crate::meta::{KeysType, Meta};
use crate::plan::Chunk;
use crate::srtype::SrType;
use crate::value::{self, Value};

// ---------------------------------------------------------------------------
// Partition census: which partitions the job touches, and how many rows (or
// distinct keys) each must hold afterwards.

/// A range partition of the target table.
#[derive(Debug, Clone)]
struct RangePartition {
    name: String,
    lo: Value,
    hi: Value,
    lo_text: String,
    hi_text: String,
}

/// Parses `[types: [DATE]; keys: [2024-01-01]; ..types: [DATE]; keys: [2024-02-01]; )`.
fn parse_range(text: &str, ty: &SrType) -> Option<(Value, Value, String, String)> {
    let mut keys = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("keys: [") {
        let after = &rest[i + 7..];
        let end = after.find(']')?;
        keys.push(after[..end].trim().to_string());
        rest = &after[end..];
    }
    if keys.len() != 2 {
        return None;
    }
    let lo = value::parse_csv_field(ty, &keys[0]).ok()?;
    let hi = value::parse_csv_field(ty, &keys[1]).ok()?;
    Some((lo, hi, keys[0].clone(), keys[1].clone()))
}

/// Rows (or distinct keys) per partition value, computed by rendering the
/// partition column (and key columns) exactly as the loader sends them.
async fn census(ctx: &RunCtx, pcol: &str, keyed: bool) -> Result<BTreeMap<Option<String>, u64>> {
    let p = &ctx.prepared;
    let enc = &p.encoder;
    let pi = enc.columns().iter().position(|c| c.target.eq_ignore_ascii_case(pcol)).ok_or_else(|| {
        Error::config(format!("overwrite needs the partition column `{pcol}` among the loaded columns"))
    })?;
    let key_idx: Vec<usize> = if keyed {
        p.target
            .columns
            .iter()
            .filter(|c| c.is_key)
            .map(|c| {
                enc.columns()
                    .iter()
                    .position(|m| m.target == c.name)
                    .ok_or_else(|| Error::config(format!("key column `{}` is not loaded", c.name)))
            })
            .collect::<Result<_>>()?
    } else {
        vec![]
    };
    let mut wanted: Vec<usize> = vec![pi];
    wanted.extend(key_idx.iter().copied());
    // Each source column once (the partition column of a keyed table is
    // usually a key column too); `at[j]` is where wanted column j is.
    let mut names: Vec<&str> = Vec::new();
    let at: Vec<usize> = wanted
        .iter()
        .map(|&i| {
            let n = enc.columns()[i].source_name.as_str();
            names.iter().position(|m| *m == n).unwrap_or_else(|| {
                names.push(n);
                names.len() - 1
            })
        })
        .collect();
    let select: Vec<String> = names.iter().map(|n| format!("\"{}\"", n.replace('"', "\"\""))).collect();
    let batches = p.scanner.query_all(&format!("SELECT {} FROM {{t}}", select.join(", "))).await?;
    // A narrow encoder over the selected columns.
    let cols: Vec<crate::encode::ColumnMapping> = wanted
        .iter()
        .zip(&at)
        .map(|(&i, &j)| crate::encode::ColumnMapping { source: j, ..enc.columns()[i].clone() })
        .collect();
    let narrow = crate::encode::Encoder::new(cols, enc.zone());
    let mut counts: BTreeMap<Option<String>, u64> = BTreeMap::new();
    let mut seen: HashSet<(Option<String>, Vec<Option<String>>)> = HashSet::new();
    for b in batches {
        let texts: Vec<Vec<Option<String>>> = (0..wanted.len())
            .map(|j| narrow.column_texts(&b, j))
            .collect::<std::result::Result<_, _>>()
            .map_err(|crate::encode::EncodeError::Value { column, msg, .. }| {
                Error::data(format!("partition census, column `{}`: {msg}", narrow.columns()[column].display_name()))
            })?;
        for r in 0..b.num_rows() {
            // NULL too: it goes to the partition bounded below by the
            // type's least value, if there is one.
            let pv = texts[0][r].clone();
            if keyed {
                let key: Vec<Option<String>> = texts[1..].iter().map(|t| t[r].clone()).collect();
                if seen.insert((pv.clone(), key)) {
                    *counts.entry(pv).or_default() += 1;
                }
            } else {
                *counts.entry(pv).or_default() += 1;
            }
        }
    }
    Ok(counts)
}

// ---------------------------------------------------------------------------
// Overwrite.

fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// What an overwrite writes into and what it must hold before the swap.
#[derive(Debug, Clone)]
struct Targets {
    /// `(temporary partition, live partition)`, for partitioned tables.
    temps: Vec<(String, String)>,
    /// Bounds of the live partitions.
    ranges: Vec<RangePartition>,
    /// A shadow table, for unpartitioned tables.
    shadow: Option<String>,
    /// Rows (or distinct keys) each live partition (or the shadow) must hold.
    expected: BTreeMap<String, u64>,
}

/// Works out the partitions the job touches and their expected counts, and
/// names the temporary partitions (or shadow table) with `tag`.
async fn targets(ctx: &RunCtx, meta: &mut Meta, tag: &str) -> Result<Targets> {
    let p = &ctx.prepared;
    let (db, table) = (&p.settings.db, &p.settings.table);
    let keyed = p.target.keys != KeysType::Duplicate;
    let fp8 = &p.plan.fingerprint[..8];
    if p.target.partition_key.is_empty() {
        let shadow = format!("{table}__stl_{fp8}_{tag}");
        let rows = census_unpartitioned(ctx, keyed).await?;
        // An upstream job that wrote no rows (or a where clause that keeps
        // none) would swap in an empty table: the nightly reload of a
        // dimension table must not quietly empty it.
        if rows == 0 && !p.settings.allow_empty {
            return Err(Error::config(format!(
                "the source has no rows{}: an overwrite would empty `{db}.{table}`, which is not partitioned; \
                 nothing was changed. If the table is meant to be emptied, run again with --allow-empty",
                if p.settings.transform.filter.is_some() { " the where clause keeps" } else { "" }
            )));
        }
        let mut expected = BTreeMap::new();
        expected.insert(shadow.clone(), rows);
        return Ok(Targets { temps: vec![], ranges: vec![], shadow: Some(shadow), expected });
    }
    if p.target.partition_key.len() != 1 {
        return Err(Error::config("overwrite supports tables partitioned by one column"));
    }
    let pcol = p.target.partition_key[0].clone();
    let pty = p
        .target
        .column(&pcol)
        .map(|c| c.ty.clone())
        .ok_or_else(|| Error::internal(format!("partition column `{pcol}` is not a column")))?;
    let mut ranges = Vec::new();
    for (name, range) in meta.partitions(db, table, false).await? {
        let (lo, hi, lo_text, hi_text) = parse_range(&range, &pty).ok_or_else(|| {
            Error::config(format!(
                "overwrite supports range partitions; partition `{name}` of `{db}.{table}` has bounds `{range}`"
            ))
        })?;
        ranges.push(RangePartition { name, lo, hi, lo_text, hi_text });
    }
    let counts = census(ctx, &pcol, keyed).await?;
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for (v, n) in &counts {
        let val = match v {
            Some(v) => value::parse_csv_field(&pty, v)
                .map_err(|e| Error::data(format!("partition value `{v}` is not a valid {pty}: {e}")))?,
            None => Value::Null,
        };
        let part = ranges.iter().find(|r| value::range_holds(&r.lo, &r.hi, &val, &pty)).ok_or_else(|| {
            Error::config(format!(
                "`{db}.{table}` has no partition for {pcol} = {}; add the partition before loading",
                v.as_deref().unwrap_or("NULL (only a partition from the type's least value holds NULL)")
            ))
        })?;
        *expected.entry(part.name.clone()).or_default() += n;
    }
    let temps = expected.keys().map(|n| (temp_partition_name(fp8, tag, n), n.clone())).collect();
    Ok(Targets { temps, ranges, shadow: None, expected })
}

/// The temporary partition standing in for partition `live`: `stl_<fp8>_<tag>_<live>`,
/// or, when that passes the FE's 64 characters (`FeNameFormat`: a letter,
/// then up to 63 word characters), the live name's hash in its place.
fn temp_partition_name(fp8: &str, tag: &str, live: &str) -> String {
    let name = format!("stl_{fp8}_{tag}_{live}");
    if name.len() <= 64 {
        return name;
    }
    format!("stl_{fp8}_{tag}_h{}", &blake3::hash(live.as_bytes()).to_hex()[..24])
}

/// Creates what is missing of the targets (another shard may be creating
/// them at the same time).
async fn create_targets(ctx: &RunCtx, meta: &mut Meta, t: &Targets) -> Result<()> {
    let s = &ctx.prepared.settings;
    let (db, table) = (&s.db, &s.table);
    if let Some(sh) = &t.shadow {
        return meta.exec(&format!("CREATE TABLE IF NOT EXISTS `{db}`.`{sh}` LIKE `{db}`.`{table}`")).await;
    }
    let existing: HashSet<String> =
        meta.partitions(db, table, true).await?.into_iter().map(|(n, _)| n.to_ascii_lowercase()).collect();
    for (tp, live) in &t.temps {
        if existing.contains(&tp.to_ascii_lowercase()) {
            continue;
        }
        let r = t.ranges.iter().find(|r| &r.name == live).ok_or_else(|| Error::internal("partition vanished"))?;
        let sql = format!(
            "ALTER TABLE `{db}`.`{table}` ADD TEMPORARY PARTITION `{tp}` VALUES [(\"{}\"), (\"{}\"))",
            quote(&r.lo_text),
            quote(&r.hi_text)
        );
        if let Err(e) = meta.exec(&sql).await {
            let now: HashSet<String> =
                meta.partitions(db, table, true).await?.into_iter().map(|(n, _)| n.to_ascii_lowercase()).collect();
            if now.contains(&tp.to_ascii_lowercase()) {
                continue;
            }
            // Temporary partitions of another overwrite (an abandoned sharded
            // run, an earlier job over other input) may not overlap ours.
            let ours: HashSet<String> = t.temps.iter().map(|(tp, _)| tp.to_ascii_lowercase()).collect();
            let mut others: Vec<&String> = now.iter().filter(|n| n.starts_with("stl_") && !ours.contains(*n)).collect();
            if others.is_empty() {
                return Err(e);
            }
            others.sort();
            let drops: Vec<String> = others
                .iter()
                .map(|n| format!("ALTER TABLE `{db}`.`{table}` DROP TEMPORARY PARTITION `{n}`;"))
                .collect();
            return Err(Error::config(format!(
                "cannot add temporary partition `{tp}` ({e}): `{db}`.`{table}` holds temporary partitions of another \
                 overwrite ({}), left by an abandoned run (a sharded overwrite never finalized, or one whose input \
                 changed). If no other overwrite of the table is running, drop them and re-run:\n{}",
                others.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "),
                drops.join("\n")
            )));
        }
    }
    Ok(())
}

/// Records, before the swap of attempt `epoch` is sent, the partition ids
/// it swaps in (`ids` of the shadow table or of the temporary partitions),
/// so that a re-run can tell whether it happened.
fn record_swap(ctx: &RunCtx, epoch: u32, ids: Vec<String>, shadow: Option<String>) -> Result<()> {
    ctx.journal.lock().unwrap().mode(ModeRecord::OverwriteSwapping { epoch, ids, shadow })
}

/// Whether the swap of attempt `epoch`, sent by an earlier run that never
/// recorded its outcome (its reply was lost, or the process was killed),
/// happened: the partitions it swaps in are the live table's. If so, the
/// swap is recorded and the shadow table, which holds the old rows since,
/// is dropped. Without this, the re-run would count the shadow's old rows
/// and, were they as many as the source's, swap them back in.
async fn interrupted_swap(ctx: &RunCtx, meta: &mut Meta, epoch: u32) -> Result<bool> {
    let s = &ctx.prepared.settings;
    let sent = ctx.journal.lock().unwrap().modes().iter().rev().find_map(|m| match m {
        ModeRecord::OverwriteSwapping { epoch: e, ids, shadow } if *e == epoch => Some((ids.clone(), shadow.clone())),
        _ => None,
    });
    let Some((ids, shadow)) = sent else { return Ok(false) };
    let live: HashSet<String> =
        meta.partition_ids(&s.db, &s.table, false).await?.into_iter().map(|(_, id)| id).collect();
    let moved = ids.iter().filter(|id| live.contains(*id)).count();
    if ids.is_empty() {
        return Ok(false);
    }
    if moved == 0 {
        // Not live. For a shadow that still exists, its ids tell more: when
        // they are no longer the recorded ones, the swap happened (the
        // shadow holds the table's old rows) and the live table has been
        // replaced again since; swapping now would put those old rows back.
        let Some(sh) = &shadow else { return Ok(false) };
        if !table_exists(meta, &s.db, sh).await? {
            return Ok(false);
        }
        let now: Vec<String> = meta.partition_ids(&s.db, sh, false).await?.into_iter().map(|(_, id)| id).collect();
        if now.iter().any(|id| ids.contains(id)) {
            return Ok(false);
        }
    } else if moved < ids.len() {
        return Err(Error::verify(format!(
            "an earlier run's swap into `{}`.`{}` was cut off, and only {moved} of the {} partitions it swaps in are \
             live (some were replaced or dropped since); check the table, then start over with --new-job",
            s.db,
            s.table,
            ids.len()
        )));
    }
    if let Some(sh) = shadow {
        meta.exec(&format!("DROP TABLE IF EXISTS `{}`.`{sh}`", s.db)).await?;
    }
    ctx.journal.lock().unwrap().mode(ModeRecord::OverwriteSwapped { epoch })?;
    Ok(true)
}

/// Counts what was loaded against the source, then swaps it in.
async fn verify_and_swap(ctx: &RunCtx, meta: &mut Meta, t: &Targets, epoch: u32) -> Result<Vec<String>> {
    let s = &ctx.prepared.settings;
    let (db, table) = (&s.db, &s.table);
    let keyed = ctx.prepared.target.keys != KeysType::Duplicate;
    let what = if keyed { " distinct keys" } else { "" };
    if let Some(sh) = &t.shadow {
        let got = count(meta, &format!("SELECT COUNT(*) FROM `{db}`.`{sh}`")).await?;
        let want = t.expected.get(sh).copied().unwrap_or(0);
        if got != want {
            return Err(Error::verify(format!(
                "shadow table `{sh}` holds {got} rows, the source has {want}{what}; nothing was replaced"
            )));
        }
        let ids = meta.partition_ids(db, sh, false).await?.into_iter().map(|(_, id)| id).collect();
        record_swap(ctx, epoch, ids, Some(sh.clone()))?;
        meta.exec(&format!("ALTER TABLE `{db}`.`{table}` SWAP WITH `{sh}`")).await?;
        // The shadow now holds the old rows.
        let _ = meta.exec(&format!("DROP TABLE IF EXISTS `{db}`.`{sh}`")).await;
        return Ok(vec![table.clone()]);
    }
    for (tp, live) in &t.temps {
        let got = count(meta, &format!("SELECT COUNT(*) FROM `{db}`.`{table}` TEMPORARY PARTITION (`{tp}`)")).await?;
        let want = t.expected.get(live).copied().unwrap_or(0);
        if got != want {
            return Err(Error::verify(format!(
                "temporary partition `{tp}` for `{live}` holds {got} rows, the source has {want}{what}; nothing was replaced"
            )));
        }
    }
    let temp_ids: BTreeMap<String, String> = meta
        .partition_ids(db, table, true)
        .await?
        .into_iter()
        .map(|(name, id)| (name.to_ascii_lowercase(), id))
        .collect();
    let ids = t
        .temps
        .iter()
        .map(|(tp, _)| {
            temp_ids
                .get(&tp.to_ascii_lowercase())
                .cloned()
                .ok_or_else(|| Error::infra(format!("temporary partition `{tp}` disappeared before the swap")))
        })
        .collect::<Result<Vec<String>>>()?;
    record_swap(ctx, epoch, ids.clone(), None)?;
    let olds: Vec<String> = t.temps.iter().map(|(_, l)| format!("`{l}`")).collect();
    let news: Vec<String> = t.temps.iter().map(|(tp, _)| format!("`{tp}`")).collect();
    let swap = format!(
        "ALTER TABLE `{db}`.`{table}` REPLACE PARTITION ({}) WITH TEMPORARY PARTITION ({})",
        olds.join(", "),
        news.join(", ")
    );
    if let Err(e) = meta.exec(&swap).await {
        // Did it happen anyway? The temporary partitions' ids are live then
        // (temporary partitions that are merely gone, dropped by someone
        // else, do not count).
        let live: HashSet<String> = meta.partition_ids(db, table, false).await?.into_iter().map(|(_, id)| id).collect();
        if !ids.iter().all(|id| live.contains(id)) {
            return Err(e);
        }
    }
    Ok(t.temps.iter().map(|(_, l)| l.clone()).collect())
}

/// Loads into temporary partitions (or a shadow table), verifies the counts,
/// and swaps them in. Any failure drops what was created; the live data
/// never changes before the swap.
pub(crate) async fn overwrite(ctx: &RunCtx) -> Result<LoadReport> {
    let p = &ctx.prepared;
    let s = &p.settings;
    // Already swapped?
    let modes = ctx.journal.lock().unwrap().modes().to_vec();
    if let Some(epoch) =
        modes.iter().find_map(|m| if let ModeRecord::OverwriteSwapped { epoch } = m { Some(*epoch) } else { None })
    {
        let tag = modes.iter().find_map(|m| match m {
            ModeRecord::OverwriteStarted { epoch: e, tag: t, .. } if *e == epoch => {
                Some(t.clone().unwrap_or_else(|| e.to_string()))
            }
            _ => None,
        });
        return Ok(LoadReport {
            chunks: p.plan.chunks.len(),
            chunks_skipped: p.plan.chunks.len(),
            rows_skipped: tag.map_or(0, |t| done_rows(ctx, &relabel(&p.plan.chunks, &format!("o{t}")))),
            ..Default::default()
        });
    }
    // The attempt to continue, or a new one.
    let mut epoch = 0u32;
    let mut resuming = false;
    let mut tag = None;
    for m in &modes {
        match m {
            ModeRecord::OverwriteStarted { epoch: e, tag: t, .. } => {
                epoch = *e;
                resuming = true;
                tag = Some(t.clone().unwrap_or_else(|| e.to_string()));
            }
            ModeRecord::OverwriteAborted { epoch: e, .. } if *e == epoch => {
                resuming = false;
                epoch += 1;
                tag = None;
            }
            _ => {}
        }
    }
    // A new attempt's names are its own even when the journal is new: an
    // earlier run whose journal is gone may have committed labels of the
    // same epoch into temporary partitions (or a shadow) that its cleanup
    // dropped since; under the same labels they would count as loaded.
    let tag = tag.unwrap_or_else(|| format!("{epoch}{}", attempt_suffix()));
    let mut meta = ctx.meta().await?;
    let swapped = if resuming { interrupted_swap(ctx, &mut meta, epoch).await } else { Ok(false) };
    if !matches!(swapped, Ok(false)) {
        meta.close().await;
        swapped?;
        return Ok(LoadReport {
            chunks: p.plan.chunks.len(),
            chunks_skipped: p.plan.chunks.len(),
            rows_skipped: done_rows(ctx, &relabel(&p.plan.chunks, &format!("o{tag}"))),
            ..Default::default()
        });
    }
    let start = Instant::now();
    let result: Result<LoadReport> = async {
        let t = targets(ctx, &mut meta, &tag).await?;
        let chunks = relabel(&p.plan.chunks, &format!("o{tag}"));
        if !resuming {
            drop_abandoned(ctx, &mut meta, &t).await?;
            ctx.journal.lock().unwrap().mode(ModeRecord::OverwriteStarted {
                epoch,
                tag: Some(tag.clone()),
                temps: t.temps.clone(),
                shadow: t.shadow.clone(),
            })?;
        } else {
            let loaded_any = {
                let j = ctx.journal.lock().unwrap();
                chunks.iter().any(|c| j.chunk_done_as(c.index, &c.label).is_some() || j.part(&c.label).is_some())
            };
            let existing: HashSet<String> = meta
                .partitions(&s.db, &s.table, true)
                .await?
                .into_iter()
                .map(|(n, _)| n.to_ascii_lowercase())
                .collect();
            let shadow_gone = match &t.shadow {
                Some(sh) if loaded_any => !table_exists(&mut meta, &s.db, sh).await?,
                _ => false,
            };
            if loaded_any && (shadow_gone || t.temps.iter().any(|(tp, _)| !existing.contains(&tp.to_ascii_lowercase())))
            {
                // Rows already loaded went away with their temporary
                // partitions: this attempt cannot continue.
                return Err(Error::infra(
                    "the temporary partitions (or shadow table) of the interrupted overwrite disappeared; re-run to \
                     start a new attempt",
                ));
            }
        }
        create_targets(ctx, &mut meta, &t).await?;
        let (table, extra) = match &t.shadow {
            Some(sh) => (sh.clone(), vec![]),
            None => {
                let names: Vec<String> = t.temps.iter().map(|(tp, _)| tp.clone()).collect();
                (s.table.clone(), vec![("temporary_partitions".to_string(), names.join(","))])
            }
        };
        let mut report = load::run(ctx.job(&table, chunks, &extra)).await?;
        verify_and_swap(ctx, &mut meta, &t, epoch).await?;
        ctx.journal.lock().unwrap().mode(ModeRecord::OverwriteSwapped { epoch })?;
        report.seconds = start.elapsed().as_secs_f64();
        Ok(report)
    }
    .await;
    if let Err(e) = &result {
        // Crashes leave the attempt to resume; errors clean it up so the live
        // data stays as it was and the next run starts afresh.
        if e.kind() != ErrorKind::Infra || e.message().contains("disappeared") {
            cleanup(ctx, &mut meta, epoch, &e.to_string()).await;
        }
    }
    meta.close().await;
    result
}

/// One shard of a sharded overwrite: creates the temporary partitions (or the
/// shadow table) if no other shard has, and loads its chunks into them.
/// `finalize` verifies and swaps.
pub(crate) async fn overwrite_shard(ctx: &RunCtx) -> Result<LoadReport> {
    let p = &ctx.prepared;
    let s = &p.settings;
    let chunks = crate::job::shard_chunks(&relabel_for_shards(&p.plan.chunks), s.shard);
    // A re-run of a shard that finished (perhaps after finalize swapped)
    // must not create empty temporary partitions (or a shadow) that nothing
    // would remove.
    let all_done = {
        let j = ctx.journal.lock().unwrap();
        chunks.iter().all(|c| j.chunk_done_as(c.index, &c.label).is_some())
    };
    if all_done {
        return Ok(LoadReport {
            chunks: chunks.len(),
            chunks_skipped: chunks.len(),
            rows_skipped: done_rows(ctx, &chunks),
            ..Default::default()
        });
    }
    let mut meta = ctx.meta().await?;
    let t = targets(ctx, &mut meta, "s").await?;
    create_targets(ctx, &mut meta, &t).await?;
    meta.close().await;
    let (table, extra) = match &t.shadow {
        Some(sh) => (sh.clone(), vec![]),
        None => {
            let names: Vec<String> = t.temps.iter().map(|(tp, _)| tp.clone()).collect();
            (s.table.clone(), vec![("temporary_partitions".to_string(), names.join(","))])
        }
    };
    load::run(ctx.job(&table, chunks, &extra)).await
}

/// The chunk labels of a sharded overwrite.
pub(crate) fn relabel_for_shards(chunks: &[Chunk]) -> Vec<Chunk> {
    relabel(chunks, "os")
}

/// The last step of a sharded overwrite: counts and swap.
pub(crate) async fn finalize_overwrite(ctx: &RunCtx) -> Result<Vec<String>> {
    if ctx.journal.lock().unwrap().modes().iter().any(|m| matches!(m, ModeRecord::OverwriteSwapped { .. })) {
        return Ok(vec![]);
    }
    let mut meta = ctx.meta().await?;
    let swapped = interrupted_swap(ctx, &mut meta, 0).await;
    if !matches!(swapped, Ok(false)) {
        meta.close().await;
        swapped?;
        return Ok(vec![]);
    }
    let t = targets(ctx, &mut meta, "s").await?;
    let replaced = verify_and_swap(ctx, &mut meta, &t, 0).await?;
    ctx.journal.lock().unwrap().mode(ModeRecord::OverwriteSwapped { epoch: 0 })?;
    meta.close().await;
    Ok(replaced)
}

async fn census_unpartitioned(ctx: &RunCtx, keyed: bool) -> Result<u64> {
    let p = &ctx.prepared;
    if !keyed {
        let b = p.scanner.query_all("SELECT COUNT(*) FROM {t}").await?;
        return Ok(first_u64(&b));
    }
    // Distinct keys (rendered as the loader sends them), grouped by the
    // first key column, summed.
    let first_key = p
        .target
        .columns
        .iter()
        .find(|c| c.is_key)
        .map(|c| c.name.clone())
        .ok_or_else(|| Error::internal("a keyed table without keys"))?;
    Ok(census(ctx, &first_key, true).await?.values().sum())
}

fn first_u64(b: &[datafusion::arrow::record_batch::RecordBatch]) -> u64 {
    use datafusion::arrow::array::AsArray;
    b.first()
        .and_then(|b| b.column(0).as_primitive_opt::<datafusion::arrow::datatypes::Int64Type>().map(|a| a.value(0)))
        .unwrap_or(0) as u64
}

/// The tables of `db`.
async fn tables(meta: &mut Meta, db: &str) -> Result<Vec<String>> {
    crate::meta::check_ident("database", db)?;
    let rows = meta.query(&format!("SHOW TABLES FROM `{db}`")).await?;
    Ok(rows.into_iter().filter_map(|r| r.into_iter().next().flatten()).collect())
}

/// Whether table `name` exists in `db`.
async fn table_exists(meta: &mut Meta, db: &str, name: &str) -> Result<bool> {
    Ok(tables(meta, db).await?.iter().any(|t| t == name))
}

async fn count(meta: &mut Meta, sql: &str) -> Result<u64> {
    let rows = meta.query(sql).await?;
    rows.first()
        .and_then(|r| r.first().cloned().flatten())
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::infra(format!("`{sql}` returned no count")))
}

/// Drops what a failed overwrite attempt created.
async fn cleanup(ctx: &RunCtx, meta: &mut Meta, epoch: u32, reason: &str) {
    let s = &ctx.prepared.settings;
    let modes = ctx.journal.lock().unwrap().modes().to_vec();
    for m in modes {
        if let ModeRecord::OverwriteStarted { epoch: e, temps, shadow, .. } = m
            && e == epoch
        {
            for (tp, _) in temps {
                let _ = meta
                    .exec(&format!("ALTER TABLE `{}`.`{}` DROP TEMPORARY PARTITION IF EXISTS `{tp}`", s.db, s.table))
                    .await;
            }
            if let Some(sh) = shadow {
                let _ = meta.exec(&format!("DROP TABLE IF EXISTS `{}`.`{sh}`", s.db)).await;
            }
        }
    }
    let _ = ctx.journal.lock().unwrap().mode(ModeRecord::OverwriteAborted { epoch, reason: reason.to_string() });
}

/// Drops what earlier attempts of this job left, before a new attempt
/// starts: temporary partitions `stl_<fp8>_<epoch…>_…` and shadow tables
/// `<table>__stl_<fp8>_<epoch…>` other than this attempt's. A journal that
/// could resume them is gone (or they outlived a cleanup), so nothing can
/// use them; the new attempt's temporary partitions could not be added
/// beside them (ranges may not overlap). A sharded overwrite's (`…_s…`)
/// are left alone.
async fn drop_abandoned(ctx: &RunCtx, meta: &mut Meta, t: &Targets) -> Result<()> {
    let p = &ctx.prepared;
    let (db, table) = (&p.settings.db, &p.settings.table);
    let fp8 = &p.plan.fingerprint[..8];
    let earlier = |rest: &str| rest.starts_with(|c: char| c.is_ascii_digit());
    let ours: HashSet<String> = t.temps.iter().map(|(tp, _)| tp.to_ascii_lowercase()).collect();
    let temp_prefix = format!("stl_{fp8}_");
    for (name, _) in meta.partitions(db, table, true).await? {
        let lower = name.to_ascii_lowercase();
        if lower.strip_prefix(&temp_prefix).is_some_and(earlier) && !ours.contains(&lower) {
            tracing::warn!("dropping temporary partition `{name}` of an abandoned attempt of this overwrite");
            meta.exec(&format!("ALTER TABLE `{db}`.`{table}` DROP TEMPORARY PARTITION IF EXISTS `{name}`")).await?;
        }
    }
    let shadow_prefix = format!("{table}__stl_{fp8}_");
    for name in tables(meta, db).await? {
        if name.strip_prefix(&shadow_prefix).is_some_and(earlier) && Some(&name) != t.shadow.as_ref() {
            tracing::warn!("dropping shadow table `{name}` of an abandoned attempt of this overwrite");
            meta.exec(&format!("DROP TABLE IF EXISTS `{db}`.`{name}`")).await?;
        }
    }
    Ok(())
}

/// Six hex digits that differ from run to run (time and process id,
/// hashed).
fn attempt_suffix() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let seed = format!("{}:{}", now.as_nanos(), std::process::id());
    blake3::hash(seed.as_bytes()).to_hex()[..6].to_string()
}

/// Rows the journal holds as committed for `chunks` (what a finished job's
/// re-run reports as skipped).
fn done_rows(ctx: &RunCtx, chunks: &[Chunk]) -> u64 {
    let j = ctx.journal.lock().unwrap();
    chunks.iter().filter_map(|c| j.chunk_done_as(c.index, &c.label)).map(|d| d.rows).sum()
}

/// Chunks with labels of an attempt (`<label prefix>_<fp>_<tag>_<n>`).
fn relabel(chunks: &[Chunk], tag: &str) -> Vec<Chunk> {
    chunks
        .iter()
        .map(|c| {
            let mut c = c.clone();
            let (head, idx) = c.label.rsplit_once('_').unwrap_or((&c.label, ""));
            c.label = format!("{head}_{tag}_{idx}");
            c
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Atomic.

/// Loads every chunk into one transaction and commits it, or nothing.
pub(crate) async fn atomic(ctx: &RunCtx) -> Result<LoadReport> {
    let p = &ctx.prepared;
    let s = &p.settings;
    let est: u64 = p.plan.chunks.iter().map(|c| c.est_bytes).sum();
    if est > s.max_txn_bytes {
        return Err(Error::config(format!(
            "the job is about {} MiB, more than one transaction takes (max_txn_bytes = {} MiB); use --mode append or overwrite, \
             or raise max_txn_bytes up to the BE's streaming_load_max_mb",
            est >> 20,
            s.max_txn_bytes >> 20
        )));
    }
    let label = format!("{}_{}_txn", s.label_prefix, p.plan.fingerprint);
    let committed = ctx.journal.lock().unwrap().modes().iter().find_map(|m| match m {
        ModeRecord::AtomicCommitted { rows, .. } => Some(*rows),
        _ => None,
    });
    if let Some(rows) = committed {
        // (0 when a run of an earlier version found the label committed
        // without the journal knowing its rows.)
        return Ok(LoadReport {
            chunks: p.plan.chunks.len(),
            chunks_skipped: p.plan.chunks.len(),
            rows_skipped: rows,
            ..Default::default()
        });
    }
    let mut floor = ctx
        .journal
        .lock()
        .unwrap()
        .modes()
        .iter()
        .rev()
        .find_map(|m| if let ModeRecord::AtomicFormat { part } = m { Part::from_name(part) } else { None })
        .unwrap_or(if p.encoder.csv_capable() { Part::Csv } else { Part::Json });
    let start = Instant::now();
    let timeout = (600 + est / (2 << 20)).clamp(600, 259_200);
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        // Settle what an earlier run left: committed means done; a live
        // transaction is rolled back (its loads cannot be trusted).
        match ctx.client.label_state_patiently(&s.db, &label, Duration::from_secs(180)).await? {
            LabelState::Committed => {
                // An earlier run sent the commit and never learned its
                // outcome.
                return found_committed(ctx, &label, start);
            }
            LabelState::Running => {
                rollback(ctx, &label).await?;
            }
            LabelState::Unknown
                if ctx.options.unknown_loads.get(&label) != Some(&load::UnknownLoad::Resend)
                    && commit_sent(&ctx.journal.lock().unwrap(), &label) =>
            {
                if ctx.options.unknown_loads.get(&label) == Some(&load::UnknownLoad::Committed) {
                    return found_committed(ctx, &label, start);
                }
                // The commit was sent; StarRocks forgets a database's oldest
                // finished transactions (label_keep_max_num, 1000 by default;
                // label_keep_max_second), so a label it no longer knows may
                // have committed: a new transaction could load everything
                // twice.
                return Err(Error::verify(format!(
                    "an earlier run sent the commit of transaction `{label}` and never learned its outcome, and \
                     StarRocks no longer knows the label: it may have committed and been forgotten, so loading again \
                     could load every row twice. Check whether `{}.{}` holds the job's rows, and run again with \
                     --unknown-loads {label}=resend if it does not, --unknown-loads {label}=committed if it does",
                    s.db, s.table
                )));
            }
            LabelState::Aborted | LabelState::Unknown => {}
        }
        match run_txn(ctx, &label, floor, timeout).await {
            Ok(TxnOutcome::Committed { rows, bytes }) => {
                ctx.journal.lock().unwrap().mode(ModeRecord::AtomicCommitted { label: label.clone(), rows })?;
                return Ok(LoadReport {
                    chunks: p.plan.chunks.len(),
                    chunks_loaded: p.plan.chunks.len(),
                    rows_sent: rows,
                    rows_loaded: rows,
                    bytes_sent: bytes,
                    retries: (attempts - 1) as u64,
                    chunks_json: if floor == Part::Json { p.plan.chunks.len() } else { 0 },
                    chunks_base64: if floor == Part::Csv64 { p.plan.chunks.len() } else { 0 },
                    seconds: start.elapsed().as_secs_f64(),
                    ..Default::default()
                });
            }
            Ok(TxnOutcome::Empty) => {
                rollback(ctx, &label).await?;
                return Ok(LoadReport {
                    chunks: p.plan.chunks.len(),
                    chunks_empty: p.plan.chunks.len(),
                    seconds: start.elapsed().as_secs_f64(),
                    ..Default::default()
                });
            }
            Ok(TxnOutcome::NeedsFloor(part)) => {
                // Rows that need another body kind: every load of a
                // transaction must carry the same headers, so start over.
                rollback(ctx, &label).await?;
                floor = part;
                ctx.journal.lock().unwrap().mode(ModeRecord::AtomicFormat { part: part.name().into() })?;
                attempts -= 1;
                continue;
            }
            Err(e) => {
                let _ = rollback(ctx, &label).await;
                if e.kind() != ErrorKind::Infra || attempts > s.max_retries {
                    return Err(e);
                }
                tracing::warn!("atomic load attempt {attempts} failed, starting the transaction over: {e}");
                tokio::time::sleep(Duration::from_millis(500 * attempts as u64)).await;
            }
        }
    }
}

/// Records atomic transaction `label`, whose commit an earlier run sent, as
/// committed (StarRocks says so, or the user does) and reports the job as
/// done, with the rows the commit step recorded as prepared (0 in journals
/// of earlier versions).
fn found_committed(ctx: &RunCtx, label: &str, start: Instant) -> Result<LoadReport> {
    let mut j = ctx.journal.lock().unwrap();
    let rows = j
        .modes()
        .iter()
        .rev()
        .find_map(|m| match m {
            ModeRecord::AtomicCommitting { label: l, rows } if l == label => *rows,
            _ => None,
        })
        .unwrap_or(0);
    j.mode(ModeRecord::AtomicCommitted { label: label.to_string(), rows })?;
    let chunks = ctx.prepared.plan.chunks.len();
    Ok(LoadReport {
        chunks,
        chunks_skipped: chunks,
        rows_skipped: rows,
        seconds: start.elapsed().as_secs_f64(),
        ..Default::default()
    })
}

/// Whether the journal's last word on atomic transaction `label` is that
/// its commit was sent (not that it aborted since).
fn commit_sent(j: &crate::journal::Journal, label: &str) -> bool {
    j.modes()
        .iter()
        .rev()
        .find_map(|m| match m {
            ModeRecord::AtomicCommitting { label: l, .. } if l == label => Some(true),
            ModeRecord::AtomicAborted { label: l } if l == label => Some(false),
            _ => None,
        })
        .unwrap_or(false)
}

enum TxnOutcome {
    Committed {
        rows: u64,
        bytes: u64,
    },
    NeedsFloor(Part),
    /// No row to load: the transaction is rolled back.
    Empty,
}

async fn rollback(ctx: &RunCtx, label: &str) -> Result<()> {
    let h = txn_headers(ctx, label, None, 600)?;
    let _ = ctx.client.txn("rollback", &h, None, Duration::from_secs(60)).await;
    // Wait until the label is free (or turned out committed).
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match ctx.client.label_state_patiently(&ctx.prepared.settings.db, label, Duration::from_secs(180)).await? {
            LabelState::Running if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(200)).await,
            LabelState::Running => {
                return Err(Error::infra(format!("transaction `{label}` does not end; re-run later")));
            }
            _ => return Ok(()),
        }
    }
}

fn txn_headers(ctx: &RunCtx, label: &str, part: Option<Part>, timeout: u64) -> Result<HeaderMap> {
    let s = &ctx.prepared.settings;
    let mut h = HeaderMap::new();
    let mut put = |name: &'static str, v: &str| -> Result<()> {
        let (n, v) = client::header(name, v)?;
        h.insert(n, v);
        Ok(())
    };
    put("label", label)?;
    put("db", &s.db)?;
    put("table", &s.table)?;
    put("timeout", &timeout.to_string())?;
    if let Some(part) = part {
        put("format", load::wire_format_name(part.format(), ctx.options.compress))?;
        put("columns", &ctx.prepared.encoder.columns_header(part))?;
        put("strict_mode", "true")?;
        put("max_filter_ratio", "0")?;
        match part.format() {
            crate::encode::WireFormat::Csv => {
                put("column_separator", "\\x01")?;
                put("row_delimiter", "\\x02")?;
            }
            crate::encode::WireFormat::Json => {
                put("strip_outer_array", "true")?;
                put("ignore_json_size", "true")?;
            }
        }
        for (k, v) in &ctx.options.extra_headers {
            let name = reqwest::header::HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| Error::config(format!("bad header name `{k}`")))?;
            let (_, val) = client::header("extra", v)?;
            h.insert(name, val);
        }
    }
    Ok(h)
}

fn txn_verdict(op: &str, a: Attempt) -> Result<client::LoadReply> {
    match a {
        Attempt::Reply(r) if r.status.eq_ignore_ascii_case("ok") => Ok(r),
        Attempt::Reply(r) => match client::classify(&r) {
            Verdict::DataError(m) => Err(Error::data(format!("StarRocks rejected rows at {op}: {m}"))),
            Verdict::Fatal(m) => Err(Error::config(format!("StarRocks refused {op}: {m}"))),
            _ => Err(Error::infra(format!("{op} failed: {} {}", r.status, r.message))),
        },
        Attempt::Lost(m) => Err(Error::infra(format!("{op}: {m}"))),
        Attempt::Refused(v) => match v {
            Verdict::Fatal(m) => Err(Error::config(m)),
            other => Err(Error::infra(format!("{op}: {other:?}"))),
        },
    }
}

async fn run_txn(ctx: &RunCtx, label: &str, floor: Part, timeout: u64) -> Result<TxnOutcome> {
    let p = &ctx.prepared;
    let h = txn_headers(ctx, label, None, timeout)?;
    let begin = ctx.client.txn("begin", &h, None, Duration::from_secs(120)).await;
    if let Attempt::Reply(r) = &begin
        && r.status.eq_ignore_ascii_case("label_already_exists")
    {
        return Err(Error::infra(format!("transaction label `{label}` is still in use")));
    }
    txn_verdict("begin", begin)?;
    let h = txn_headers(ctx, label, Some(floor), timeout)?;
    let (mut rows, mut bytes) = (0u64, 0u64);
    for chunk in &p.plan.chunks {
        // Encode the chunk into one load body; rows that need a stronger body
        // kind restart the transaction.
        let (tx, rx) = tokio::sync::mpsc::channel::<std::result::Result<Bytes, std::io::Error>>(4);
        let mut rx = Some(rx);
        let mut upload: Option<tokio::task::JoinHandle<Attempt>> = None;
        let mut start_upload = || {
            if upload.is_none()
                && let Some(mut rx) = rx.take()
            {
                let body = reqwest::Body::wrap_stream(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)));
                let hh = h.clone();
                let client = ctx.client.clone();
                upload = Some(tokio::spawn(async move {
                    client.txn("load", &hh, Some(body), Duration::from_secs(timeout + 120)).await
                }));
            }
        };
        let produced = produce_floor(ctx, chunk, floor, &tx, &mut start_upload).await;
        match produced {
            Ok((n, b)) => {
                drop(tx);
                rows += n;
                bytes += b;
                if let Some(u) = upload.take() {
                    let a = u.await.map_err(|e| Error::internal(e.to_string()))?;
                    if let Attempt::Reply(r) = &a
                        && r.status.eq_ignore_ascii_case("txn_in_processing")
                    {
                        return Err(Error::infra("transaction busy (TXN_IN_PROCESSING)"));
                    }
                    txn_verdict("load", a)?;
                }
                (ctx.progress)(load::Progress::Committed { index: chunk.index, rows: n, bytes: b, skipped: false });
            }
            Err(e) => {
                if let Some(u) = upload.take() {
                    u.abort();
                    let _ = u.await;
                }
                return match e {
                    FloorErr::Needs(part) => Ok(TxnOutcome::NeedsFloor(part)),
                    FloorErr::Failed(e) => Err(e),
                };
            }
        }
    }
    if rows == 0 {
        // Nothing to commit (a where clause that keeps no row): like an
        // append of no rows, the job succeeds and the table is unchanged.
        return Ok(TxnOutcome::Empty);
    }
    let pre = txn_verdict(
        "prepare",
        ctx.client
            .txn("prepare", &txn_headers(ctx, label, None, timeout)?, None, Duration::from_secs(timeout + 120))
            .await,
    )?;
    if let Some(l) = pre.loaded_rows
        && (l != rows || pre.filtered_rows.unwrap_or(0) != 0)
    {
        return Err(Error::verify(format!(
            "transaction `{label}`: sent {rows} rows, StarRocks prepared {l} (filtered {}); rolled back",
            pre.filtered_rows.unwrap_or(0)
        )));
    }
    ctx.journal.lock().unwrap().mode(ModeRecord::AtomicCommitting { label: label.to_string(), rows: Some(rows) })?;
    let commit = ctx
        .client
        .txn("commit", &txn_headers(ctx, label, None, timeout)?, None, Duration::from_secs(timeout + 120))
        .await;
    match commit {
        Attempt::Reply(r) if r.status.eq_ignore_ascii_case("ok") => Ok(TxnOutcome::Committed { rows, bytes }),
        other => {
            // Unknown: the label's state decides.
            match ctx.client.label_state_patiently(&p.settings.db, label, Duration::from_secs(180)).await? {
                LabelState::Committed => Ok(TxnOutcome::Committed { rows, bytes }),
                state => {
                    if state == LabelState::Aborted {
                        // The commit did not take: a later run that finds
                        // the label forgotten need not wonder.
                        ctx.journal.lock().unwrap().mode(ModeRecord::AtomicAborted { label: label.to_string() })?;
                    }
                    txn_verdict("commit", other).map(|_| TxnOutcome::Committed { rows, bytes })
                }
            }
        }
    }
}

enum FloorErr {
    Needs(Part),
    Failed(Error),
}

/// Encodes a chunk with every row in part `floor` into `tx` (one JSON
/// array for the whole chunk), starting the upload at the first byte.
async fn produce_floor(
    ctx: &RunCtx,
    chunk: &Chunk,
    floor: Part,
    tx: &tokio::sync::mpsc::Sender<std::result::Result<Bytes, std::io::Error>>,
    start_upload: &mut dyn FnMut(),
) -> std::result::Result<(u64, u64), FloorErr> {
    let p = &ctx.prepared;
    let mut stream = p.scanner.scan(&chunk.slices).await.map_err(FloorErr::Failed)?;
    let (mut rows, mut bytes) = (0u64, 0u64);
    let mut lz4 = load::body_compressor(floor.format(), ctx.options.compress);
    let ended = || FloorErr::Failed(Error::infra("the transaction load ended early"));
    // Rows of the chunk read before the batch being encoded.
    let mut dispatched = 0u64;
    while let Some(b) = stream.next().await {
        let batch = b.map_err(|e| FloorErr::Failed(Error::from(e).context(format!("chunk {}", chunk.index))))?;
        let base = dispatched;
        dispatched += batch.num_rows() as u64;
        let enc = p.encoder.clone();
        let out = tokio::task::spawn_blocking(move || {
            let mut out = Encoded::default();
            enc.encode_with_floor(&batch, floor, &mut out).map(|_| out)
        })
        .await
        .map_err(|e| FloorErr::Failed(Error::internal(e.to_string())))?;
        let out = match out {
            Ok(out) => out,
            Err(crate::encode::EncodeError::Value { column, row, msg }) => {
                // Named like an append's: file, row and column.
                let name = p.encoder.columns()[column].display_name();
                let row = base + row as u64;
                let at = match p.scanner.file_row(&chunk.slices, row, name).await {
                    Some(at) => at,
                    None => format!("chunk {}, row {} of the chunk, column `{name}`", chunk.index, row + 1),
                };
                return Err(FloorErr::Failed(Error::data(format!("{at}: {msg}"))));
            }
        };
        for (i, part) in out.parts.into_iter().enumerate() {
            if part.rows == 0 {
                continue;
            }
            let kind = Part::ALL[i];
            if kind != floor {
                return Err(FloorErr::Needs(kind.max(floor)));
            }
            let mut buf = Vec::with_capacity(part.data.len() + 1);
            if kind == Part::Json {
                buf.push(if rows == 0 { b'[' } else { b',' });
            }
            buf.extend_from_slice(&part.data);
            rows += part.rows as u64;
            bytes += buf.len() as u64;
            start_upload();
            let piece = match lz4.as_mut() {
                None => Some(buf),
                Some(z) => z.push(&buf).map_err(FloorErr::Failed)?,
            };
            if let Some(piece) = piece {
                tx.send(Ok(Bytes::from(piece))).await.map_err(|_| ended())?;
            }
        }
    }
    if let Some(z) = lz4
        && rows > 0
    {
        tx.send(Ok(Bytes::from(z.finish().map_err(FloorErr::Failed)?))).await.map_err(|_| ended())?;
    }
    if floor == Part::Json && rows > 0 {
        bytes += 1;
        tx.send(Ok(Bytes::from_static(b"]"))).await.map_err(|_| ended())?;
    }
    Ok((rows, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_partition_names_fit_the_fe() {
        assert_eq!(temp_partition_name("0123abcd", "0", "p20240101"), "stl_0123abcd_0_p20240101");
        let long = format!("p_{}", "x".repeat(60));
        let a = temp_partition_name("0123abcd", "0", &long);
        let b = temp_partition_name("0123abcd", "0", &format!("{long}y"));
        assert!(a.len() <= 64 && b.len() <= 64 && a != b, "{a} {b}");
        assert!(a.starts_with("stl_0123abcd_0_h") && a.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
    }
}
