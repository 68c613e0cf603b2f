//! The build core: a sharded, arena-based set of distinct values, the
//! anti-join with the current version, and the sort that orders the new
//! values.
//!
//! Values are hashed once (foldhash, fixed seed) and routed by the top 8
//! bits of the hash to one of 256 shards. A shard ([`SetShard`]) keeps its
//! values as records in one byte arena and an open-addressing table of
//! `(record offset, low 32 hash bits)`, so a value costs its bytes plus
//! about 20 bytes and no allocation of its own. Blocks of input rows are
//! processed in parallel on rayon: every worker owns a contiguous group of
//! shards and inserts the rows that hash to them, a batch at a time with
//! the batch's slots and records read ahead.
//!
//! The current version's values are streamed past the set and mark what
//! already exists (the dictionary itself is never materialized for a build).
//!
//! The new values are then ordered with a sample sort: splitters chosen from
//! a deterministic sample cut the value space into ~32K-value ranges; one
//! pass moves every new value into its range's arena (freeing each shard as
//! it goes, so memory does not double), and the ranges are sorted in
//! parallel with a multikey radix/quick sort on 15-byte big-endian key
//! chunks that starts after the range's common prefix. Range `b`'s values
//! all sort before range `b + 1`'s, so ids are a prefix sum away.
//!
//! Input that arrives strictly ascending (identifiers in files sorted by
//! them, such as TPC-H's `c_name`) is already distinct and in order: while
//! it does, its values are only appended to a run ([`Run`]) — no hash, no
//! table, no sort — and cut into ranges at the end. The current version's
//! values mark a run by search, which walks forward as they ascend (a
//! version's values are stored in id order, which is value order). The
//! first block that breaks the order, or existing values that mostly do not
//! ascend, move the run (and its marks) into the shards, and the build goes
//! on as above; the result is the same either way.

use std::hash::{BuildHasher, Hasher};

use arrow::array::{Array, ArrayRef};
use rayon::prelude::*;

use super::shard::{self, SetShard};
use super::values::{ValueType, Values};
use crate::error::{Error, Result};

/// log2 of the number of shards.
pub(crate) const SHARD_BITS: u32 = 8;
/// Number of shards.
pub(crate) const SHARDS: usize = 1 << SHARD_BITS;

/// Rows buffered before a block is processed: enough to keep every thread
/// busy, few enough that a block's arrays and per-group row lists stay small
/// and their memory is reused by the next block (at 1M rows, a 750K-value
/// build touched a third more fresh pages and took ~10% longer).
const BLOCK_ROWS: usize = 1 << 17;
/// Bytes buffered before a block is processed.
const BLOCK_BYTES: usize = 256 << 20;
/// Target values per sort range.
const RANGE_TARGET: usize = 32 << 10;
/// Most sort ranges.
const MAX_RANGES: usize = 1 << 14;
/// Sample values per range.
const OVERSAMPLE: usize = 16;

const HASH_STATE: foldhash::fast::FixedState = foldhash::fast::FixedState::with_seed(0x5354_4152_4c4f_4144);

/// The 64-bit hash of a value's bytes (fixed seed: the same in every
/// process, so the shard of a value never depends on the run).
#[inline]
pub(crate) fn hash_bytes(b: &[u8]) -> u64 {
    let mut h = HASH_STATE.build_hasher();
    h.write(b);
    h.finish()
}

/// The shard of a hash.
#[inline]
pub(crate) fn shard_of(h: u64) -> usize {
    (h >> (64 - SHARD_BITS)) as usize
}

/// How many groups of shards blocks are split into (a few per thread).
pub(crate) fn group_count() -> usize {
    (rayon::current_num_threads() * 4).next_power_of_two().clamp(1, SHARDS)
}

/// Values back to back in one buffer.
#[derive(Debug, Clone)]
pub(crate) struct Arena {
    pub(crate) bytes: Vec<u8>,
    /// `len + 1` offsets; value `i` is `bytes[offsets[i]..offsets[i + 1]]`.
    pub(crate) offsets: Vec<u32>,
}

impl Arena {
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    #[inline]
    pub(crate) fn get(&self, i: usize) -> &[u8] {
        &self.bytes[self.offsets[i] as usize..self.offsets[i + 1] as usize]
    }
}

/// Applies `f` to every non-NULL value of `vals` in the shard its hash
/// picks; groups of shards run in parallel, each taking only its own rows,
/// so no shard is touched by two threads. Rows go in batches whose slots and
/// records are read ahead ([`shard::warm`]), so the cache misses of a
/// batch overlap (with that, walking a group's rows in input order is as
/// fast as bucketing them by shard first, even for marking, where nearly
/// every row compares bytes somewhere in its shard).
fn scatter(
    shards: &mut [SetShard],
    vals: &[Values],
    f: impl Fn(&mut SetShard, &[u8], u64) -> Result<()> + Sync,
) -> Result<()> {
    let per = SHARDS / group_count();
    let pieces = partition(vals, SHARDS / per);
    shards.par_chunks_mut(per).enumerate().try_for_each(|(g, shards)| {
        let lo = g * per;
        let mine = pieces.iter().flat_map(|p| p[g].iter()).map(|&(v, h)| (shard_of(h) - lo, v, h));
        in_batches(shards, mine, &f)
    })
}

/// One piece of a block's rows: per group of shards, its (value, hash)s.
type Piece<'v> = Vec<Vec<(&'v [u8], u64)>>;

/// Rows taken per task by [`partition`].
const PIECE_ROWS: usize = 1 << 16;

/// The non-NULL values of `vals` with their hashes, split among `groups`
/// groups of shards: pieces of rows hashed in parallel, each piece's rows
/// listed per group. The input is read once, in order; each group then walks
/// its own rows only.
fn partition(vals: &[Values], groups: usize) -> Vec<Piece<'_>> {
    let shift = SHARD_BITS - groups.trailing_zeros();
    let pieces: Vec<(&Values, usize)> =
        vals.iter().flat_map(|v| (0..v.len()).step_by(PIECE_ROWS).map(move |i| (v, i))).collect();
    pieces
        .into_par_iter()
        .map(|(v, from)| {
            let to = (from + PIECE_ROWS).min(v.len());
            let mut out: Piece<'_> = (0..groups).map(|_| Vec::with_capacity((to - from) / groups + 64)).collect();
            for i in from..to {
                if let Some(b) = v.get(i) {
                    let h = hash_bytes(b);
                    out[shard_of(h) >> shift].push((b, h));
                }
            }
            out
        })
        .collect()
}

/// Applies `f` to `rows` (shard, value, hash), [`shard::BATCH`] at a time,
/// each batch read ahead first.
fn in_batches<'v>(
    shards: &mut [SetShard],
    rows: impl Iterator<Item = (usize, &'v [u8], u64)>,
    f: &impl Fn(&mut SetShard, &[u8], u64) -> Result<()>,
) -> Result<()> {
    let mut batch: Vec<(usize, &[u8], u64)> = Vec::with_capacity(shard::BATCH);
    let mut run = |batch: &mut Vec<(usize, &[u8], u64)>| -> Result<()> {
        std::hint::black_box(shard::warm(shards, batch));
        for &(s, v, h) in batch.iter() {
            f(&mut shards[s], v, h)?;
        }
        batch.clear();
        Ok(())
    };
    for row in rows {
        batch.push(row);
        if batch.len() == shard::BATCH {
            run(&mut batch)?;
        }
    }
    run(&mut batch)
}

/// Hashes every row of every array, in parallel (NULL rows hash to 0 and
/// are skipped later).
pub(crate) fn hash_all(vals: &[Values]) -> Vec<Vec<u64>> {
    vals.par_iter()
        .map(|v| {
            let mut out = Vec::with_capacity(v.len());
            (0..v.len())
                .into_par_iter()
                .with_min_len(4096)
                .map(|i| v.get(i).map_or(0, hash_bytes))
                .collect_into_vec(&mut out);
            out
        })
        .collect()
}

/// The distinct non-NULL values of a dictionary build's input.
///
/// Feed it arrays with [`Distinct::push`] (blocks of 128K rows
/// are processed at once, in parallel on the rayon pool; call it from a
/// blocking context), then hand it to
/// [`DictStore::build_from`](super::DictStore::build_from). Nothing here
/// depends on the dictionary's current version, so the input can be
/// deduplicated before the build lease is taken.
#[derive(Debug)]
pub struct Distinct {
    vt: ValueType,
    source_type: String,
    /// The values while every one so far was above the one before it;
    /// `None` once one was not (its values then went to `shards`).
    run: Option<Run>,
    shards: Vec<SetShard>,
    pending: Vec<ArrayRef>,
    pending_rows: usize,
    pending_bytes: usize,
    rows: u64,
    nulls: u64,
}

impl Distinct {
    /// An empty set for values of the Arrow type `value_type` (see
    /// [`ValueType::of`] for what is accepted).
    pub fn new(value_type: &arrow::datatypes::DataType) -> Result<Distinct> {
        let mut d = Distinct::of(ValueType::of(value_type)?);
        d.source_type = value_type.to_string();
        Ok(d)
    }

    /// An empty set of `vt` values.
    pub fn of(vt: ValueType) -> Distinct {
        Distinct {
            vt,
            source_type: vt.name(),
            run: Some(Run::default()),
            shards: (0..SHARDS).map(|_| SetShard::default()).collect(),
            pending: Vec::new(),
            pending_rows: 0,
            pending_bytes: 0,
            rows: 0,
            nulls: 0,
        }
    }

    /// The value type.
    pub fn value_type(&self) -> ValueType {
        self.vt
    }

    /// The Arrow type the set was made for (information).
    pub fn source_type(&self) -> &str {
        &self.source_type
    }

    /// Adds an array's values (NULLs are counted and skipped). Its type must
    /// be of the set's value type.
    pub fn push(&mut self, array: ArrayRef) -> Result<()> {
        let found = ValueType::of(array.data_type())?;
        if found != self.vt {
            return Err(Error::config(format!(
                "source values are {found} ({}) but the dictionary holds {} values",
                array.data_type(),
                self.vt
            )));
        }
        self.pending_rows += array.len();
        self.pending_bytes += array.get_array_memory_size();
        self.pending.push(array);
        if self.pending_rows >= BLOCK_ROWS || self.pending_bytes >= BLOCK_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    /// Adds the first (only) column of a record batch.
    pub fn push_batch(&mut self, batch: &arrow::record_batch::RecordBatch) -> Result<()> {
        if batch.num_columns() != 1 {
            return Err(Error::internal(format!(
                "a dictionary build takes batches of one column, got {} columns",
                batch.num_columns()
            )));
        }
        self.push(batch.column(0).clone())
    }

    /// Processes buffered arrays.
    pub fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let arrays = std::mem::take(&mut self.pending);
        self.pending_rows = 0;
        self.pending_bytes = 0;
        let vt = self.vt;
        let vals: Vec<Values> = arrays.par_iter().map(|a| Values::new(a.as_ref(), vt)).collect::<Result<_>>()?;
        drop(arrays);
        for v in &vals {
            self.rows += v.len() as u64;
            self.nulls += v.null_count() as u64;
        }
        if let Some(run) = &mut self.run {
            if run.extend(&vals) {
                return Ok(());
            }
            self.spill_run()?;
        }
        scatter(&mut self.shards, &vals, SetShard::insert)
    }

    /// Moves the run's values into the shards: the input is not (or no
    /// longer known to be) ascending.
    fn spill_run(&mut self) -> Result<()> {
        let Some(run) = self.run.take().filter(|r| r.len() > 0) else { return Ok(()) };
        let (all, marked) = run.into_values();
        scatter(&mut self.shards, &[all], SetShard::insert)?;
        if let Some(m) = marked {
            scatter(&mut self.shards, &[m], |s: &mut SetShard, b: &[u8], h: u64| {
                s.mark(b, h);
                Ok(())
            })?;
        }
        Ok(())
    }

    fn run_len(&self) -> usize {
        self.run.as_ref().map_or(0, Run::len)
    }

    /// Rows pushed so far (NULLs included; buffered rows after a flush).
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// NULL rows pushed so far.
    pub fn nulls(&self) -> u64 {
        self.nulls
    }

    /// Distinct values so far (after a flush).
    pub fn len(&self) -> u64 {
        self.shards.iter().map(|s| s.len() as u64).sum::<u64>() + self.run_len() as u64
    }

    /// Whether no value was added (after a flush).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Values not marked as existing.
    pub(crate) fn new_count(&self) -> u64 {
        self.shards.iter().map(|s| s.unmarked() as u64).sum::<u64>() + self.run.as_ref().map_or(0, Run::unmarked) as u64
    }

    /// Bytes in use (values and tables; not the arenas' unwritten reserve).
    pub fn memory(&self) -> usize {
        self.shards.iter().map(SetShard::memory).sum::<usize>()
            + self
                .run
                .as_ref()
                .map_or(0, |r| r.chunks.iter().map(|c| c.bytes.len() + c.offsets.len() * 4).sum::<usize>())
    }

    /// Marks the values of `existing` (a version's stored values) as
    /// already in the dictionary.
    pub(crate) fn mark_existing(&mut self, existing: &[ArrayRef]) -> Result<()> {
        if existing.iter().all(|a| a.is_empty()) {
            return Ok(());
        }
        let vals = existing.iter().map(|a| Values::of_stored(a.as_ref())).collect::<Result<Vec<_>>>()?;
        if let Some(run) = &mut self.run {
            if run.mark(&vals) {
                return Ok(());
            }
            self.spill_run()?;
        }
        let mark = |s: &mut SetShard, b: &[u8], h: u64| -> Result<()> {
            s.mark(b, h);
            Ok(())
        };
        scatter(&mut self.shards, &vals, mark)
    }

    /// Orders the new (unmarked) values. Consumes the set, freeing it as the
    /// values move into their ranges.
    pub(crate) fn into_sorted(self) -> Result<Sorted> {
        self.into_sorted_with(RANGE_TARGET)
    }

    fn into_sorted_with(mut self, range_target: usize) -> Result<Sorted> {
        if let Some(run) = self.run.take() {
            // (Its ranges are its arenas.)
            return Ok(run.into_sorted());
        }
        let mut shards = self.shards;
        shards.par_iter_mut().for_each(SetShard::keep_new_values);
        let n: usize = shards.iter().map(|s| s.unmarked()).sum();
        if n == 0 {
            return Ok(Sorted { ranges: Vec::new(), count: 0, bytes: 0, set_hash: (0, 0) });
        }

        // A deterministic sample of the new values picks the splitters.
        let ranges = (n / range_target.max(1)).clamp(1, MAX_RANGES);
        let step = (n / (ranges * OVERSAMPLE)).max(1);
        // Every `step`-th new value in shard order, each shard walked in
        // parallel from its first value's position in that order.
        let mut first = Vec::with_capacity(shards.len());
        let mut k = 0usize;
        for s in &shards {
            first.push(k);
            k += s.unmarked();
        }
        let mut sample: Vec<&[u8]> = shards
            .par_iter()
            .zip(first)
            .flat_map_iter(|(s, first)| {
                let skip = (step - first % step) % step;
                s.new_values().skip(skip).step_by(step)
            })
            .collect();
        sample.sort_unstable();
        sample.dedup();
        let r = ranges.min(sample.len());
        let mut raw: Vec<Vec<u8>> = (1..r).map(|j| sample[j * sample.len() / r].to_vec()).collect();
        raw.dedup();
        drop(sample);
        let spl = Splitters::new(raw);
        let nr = spl.raw.len() + 1;

        // Move every new value into its range, one group of shards per task,
        // in two passes: locate and count, then copy each value once into
        // its place in an exactly sized range arena.
        let per = SHARDS / group_count();
        let mut groups: Vec<Vec<SetShard>> = Vec::new();
        let mut it = shards.into_iter();
        loop {
            let g: Vec<SetShard> = it.by_ref().take(per).collect();
            if g.is_empty() {
                break;
            }
            groups.push(g);
        }
        debug_assert!(nr <= u16::MAX as usize + 1);
        struct Located {
            range: Vec<u16>,
            count: Vec<usize>,
            bytes: Vec<usize>,
            sum: u64,
            mix: u64,
        }
        let located: Vec<Located> = groups
            .par_iter()
            .map(|group| {
                let mut l = Located { range: Vec::new(), count: vec![0; nr], bytes: vec![0; nr], sum: 0, mix: 0 };
                for shard in group {
                    for v in shard.new_values() {
                        let r = spl.locate(v);
                        l.range.push(r as u16);
                        l.count[r] += 1;
                        l.bytes[r] += v.len();
                        let (a, b) = set_hash_of(hash_bytes(v));
                        l.sum = l.sum.wrapping_add(a);
                        l.mix = l.mix.wrapping_add(b);
                    }
                }
                l
            })
            .collect();
        let (mut sum, mut mix) = (0u64, 0u64);
        for l in &located {
            sum = sum.wrapping_add(l.sum);
            mix = mix.wrapping_add(l.mix);
        }
        let mut arenas: Vec<Arena> = Vec::with_capacity(nr);
        for r in 0..nr {
            let (count, bytes): (usize, usize) =
                located.iter().fold((0, 0), |(c, b), l| (c + l.count[r], b + l.bytes[r]));
            if u32::try_from(bytes).is_err() {
                return Err(Error::data("one sort range of a dictionary build holds more than 4 GiB of values"));
            }
            arenas.push(Arena { bytes: vec![0; bytes], offsets: vec![0; count + 1] });
        }
        {
            // Each group's region of each range: (bytes, end offsets, base).
            type Region<'a> = (&'a mut [u8], &'a mut [u32], u32);
            let mut regions: Vec<Vec<Region<'_>>> = (0..groups.len()).map(|_| Vec::with_capacity(nr)).collect();
            for (r, arena) in arenas.iter_mut().enumerate() {
                let (mut b, mut o) = (&mut arena.bytes[..], &mut arena.offsets[1..]);
                let mut base = 0u32;
                for (g, l) in located.iter().enumerate() {
                    let (bh, bt) = std::mem::take(&mut b).split_at_mut(l.bytes[r]);
                    let (oh, ot) = std::mem::take(&mut o).split_at_mut(l.count[r]);
                    regions[g].push((bh, oh, base));
                    (b, o) = (bt, ot);
                    base += l.bytes[r] as u32;
                }
            }
            groups.into_par_iter().zip(regions).zip(&located).for_each(|((group, mut regions), l)| {
                let mut at = vec![(0usize, 0usize); nr];
                let mut k = 0;
                for shard in group {
                    for v in shard.new_values() {
                        let r = l.range[k] as usize;
                        k += 1;
                        let (bytes, ends, base) = &mut regions[r];
                        let (pos, idx) = &mut at[r];
                        bytes[*pos..*pos + v.len()].copy_from_slice(v);
                        *pos += v.len();
                        ends[*idx] = *base + *pos as u32;
                        *idx += 1;
                    }
                    // `shard` is dropped here: memory moves rather than doubles.
                }
            });
        }
        drop(located);
        let ranges: Vec<Range> = arenas
            .into_par_iter()
            .enumerate()
            .map(|(b, arena)| {
                let order = sort_arena(&arena, spl.range_prefix(b));
                Range { arena, order }
            })
            .collect();
        let bytes = ranges.iter().map(|r| r.arena.bytes.len() as u64).sum();
        Ok(Sorted { ranges, count: n as u64, bytes, set_hash: (sum, mix) })
    }
}

/// The two order-independent sums of [`Sorted::set_hash`] over a value's
/// hash.
#[inline]
fn set_hash_of(h: u64) -> (u64, u64) {
    (h, (h ^ (h >> 29)).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Values per arena of a [`Run`] (each becomes a sort range as it is).
const RUN_CHUNK: usize = RANGE_TARGET;

/// Distinct values in ascending byte order, as they came: arenas of
/// [`RUN_CHUNK`] values, which become the sort ranges without a copy.
#[derive(Debug, Default)]
struct Run {
    chunks: Vec<Arena>,
    len: usize,
    /// Which values the current version holds (empty: none).
    marked: Vec<bool>,
    marks: usize,
}

impl Run {
    fn len(&self) -> usize {
        self.len
    }

    #[inline]
    fn value(&self, i: usize) -> &[u8] {
        self.chunks[i / RUN_CHUNK].get(i % RUN_CHUNK)
    }

    /// Appends the non-NULL values of `vals` if each is above the one
    /// before it (the run's last value first); otherwise leaves the run as
    /// it was and returns false. (So does an arena past 4 GiB.)
    fn extend(&mut self, vals: &[Values]) -> bool {
        let (chunks, len) = (self.chunks.len(), self.len);
        let last_bytes = self.chunks.last().map_or(0, |c| c.bytes.len());
        let mut ok = true;
        'all: for v in vals {
            for i in 0..v.len() {
                let Some(b) = v.get(i) else { continue };
                if self.len > 0 && self.value(self.len - 1) >= b {
                    ok = false;
                    break 'all;
                }
                if self.len.is_multiple_of(RUN_CHUNK) {
                    self.chunks.push(Arena { bytes: Vec::new(), offsets: vec![0] });
                }
                let c = self.chunks.last_mut().expect("a chunk");
                c.bytes.extend_from_slice(b);
                let Ok(end) = u32::try_from(c.bytes.len()) else {
                    ok = false;
                    break 'all;
                };
                c.offsets.push(end);
                self.len += 1;
            }
        }
        if !ok {
            self.chunks.truncate(chunks);
            if let Some(c) = self.chunks.last_mut() {
                c.bytes.truncate(last_bytes);
                c.offsets.truncate(len - (chunks - 1) * RUN_CHUNK + 1);
            }
            self.len = len;
        }
        ok
    }

    /// The index of `v` in the run, or where it would be (`Err`), given
    /// that every value before `from` is below it: probes `from + 1`,
    /// `+ 3`, `+ 7`, … (cheap when `v` is close after `from`), then halves.
    fn search_from(&self, from: usize, v: &[u8]) -> std::result::Result<usize, usize> {
        let n = self.len();
        let (mut lo, mut hi, mut step) = (from.min(n), n, 1);
        while lo + step <= n {
            let p = lo + step - 1;
            if self.value(p) < v {
                lo = p + 1;
                step *= 2;
            } else {
                hi = p + 1;
                break;
            }
        }
        // The first value not below `v` is in lo..hi (or is hi == n).
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.value(mid) < v {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if lo < n && self.value(lo) == v { Ok(lo) } else { Err(lo) }
    }

    /// Marks the values of `vals` (existing values) found in the run. Each
    /// is searched from the last one's place when it is above it, else from
    /// the start; returns false, having marked some, when too many were not
    /// above the one before them (a search from the start is a binary
    /// search: the shards' hash is cheaper then).
    fn mark(&mut self, vals: &[Values]) -> bool {
        if self.marked.len() != self.len {
            self.marked.resize(self.len, false);
        }
        let total: usize = vals.iter().map(Values::len).sum();
        let mut restarts = 0usize;
        let mut at = 0usize;
        let mut prev: Option<&[u8]> = None;
        for v in vals {
            for i in 0..v.len() {
                let Some(b) = v.get(i) else { continue };
                if prev.is_some_and(|p| p >= b) {
                    at = 0;
                    restarts += 1;
                    if restarts > 64 + total / 64 {
                        return false;
                    }
                }
                prev = Some(b);
                match self.search_from(at, b) {
                    Ok(k) => {
                        if !self.marked[k] {
                            self.marked[k] = true;
                            self.marks += 1;
                        }
                        at = k;
                    }
                    Err(k) => at = k,
                }
            }
        }
        true
    }

    /// Values not marked.
    fn unmarked(&self) -> usize {
        self.len - self.marks
    }

    fn is_new(&self, i: usize) -> bool {
        self.marked.get(i).is_none_or(|m| !m)
    }

    /// The run as one array of values, and one of its marked values (to
    /// move it into the shards).
    fn into_values(self) -> (Values, Option<Values>) {
        let gather = |keep: &dyn Fn(usize) -> bool| {
            let (mut data, mut offsets) = (Vec::new(), vec![0]);
            for i in (0..self.len).filter(|&i| keep(i)) {
                data.extend_from_slice(self.value(i));
                offsets.push(data.len());
            }
            Values::Text { data, offsets, nulls: None }
        };
        let marked = (self.marks > 0).then(|| gather(&|i| !self.is_new(i)));
        (gather(&|_| true), marked)
    }

    /// The run's new (unmarked) values as sort ranges: its arenas, in
    /// order already.
    fn into_sorted(self) -> Sorted {
        let parts: Vec<(Vec<u32>, u64, (u64, u64))> = (0..self.chunks.len())
            .into_par_iter()
            .map(|c| {
                let first = c * RUN_CHUNK;
                let order: Vec<u32> =
                    (0..self.chunks[c].len() as u32).filter(|&k| self.is_new(first + k as usize)).collect();
                let (mut bytes, mut sum, mut mix) = (0u64, 0u64, 0u64);
                for &k in &order {
                    let v = self.chunks[c].get(k as usize);
                    bytes += v.len() as u64;
                    let (a, b) = set_hash_of(hash_bytes(v));
                    sum = sum.wrapping_add(a);
                    mix = mix.wrapping_add(b);
                }
                (order, bytes, (sum, mix))
            })
            .collect();
        let (mut bytes, mut sum, mut mix) = (0u64, 0u64, 0u64);
        let mut ranges = Vec::new();
        for (arena, (order, b, (s, m))) in self.chunks.into_iter().zip(parts) {
            bytes += b;
            sum = sum.wrapping_add(s);
            mix = mix.wrapping_add(m);
            if !order.is_empty() {
                ranges.push(Range { arena, order });
            }
        }
        Sorted { ranges, count: (self.len - self.marks) as u64, bytes, set_hash: (sum, mix) }
    }
}

impl Values {
    /// A stored delta's `value` column (`Binary` or `BinaryView`).
    pub(crate) fn of_stored(a: &dyn Array) -> Result<Values> {
        use arrow::array::AsArray;
        use arrow::datatypes::DataType;
        match a.data_type() {
            DataType::Binary => {
                let a = a.as_binary::<i32>();
                Ok(Values::O32 { offsets: a.offsets().clone(), data: a.values().clone(), nulls: a.nulls().cloned() })
            }
            DataType::BinaryView => Ok(Values::View(a.as_binary_view().clone())),
            t => Err(Error::internal(format!("a dictionary's stored values read as {t}"))),
        }
    }
}

/// Splitters of the sample sort, with two 15-byte keys after their common
/// prefix for fast location (text often shares 15 bytes: "according to
/// the" starts thousands of TPC-H comments).
#[derive(Debug)]
struct Splitters {
    raw: Vec<Vec<u8>>,
    prefix: Vec<u8>,
    keys: Vec<u128>,
    /// The next 15 bytes.
    keys2: Vec<u128>,
}

impl Splitters {
    fn new(raw: Vec<Vec<u8>>) -> Splitters {
        let prefix = match (raw.first(), raw.last()) {
            (Some(a), Some(b)) => a[..lcp(a, b)].to_vec(),
            _ => Vec::new(),
        };
        let keys = raw.iter().map(|s| key_at(s, prefix.len())).collect();
        let keys2 = raw.iter().map(|s| key_at(s, prefix.len() + 15)).collect();
        Splitters { raw, prefix, keys, keys2 }
    }

    /// The range of `v`: the number of splitters `<= v`.
    #[inline]
    fn locate(&self, v: &[u8]) -> usize {
        if self.raw.is_empty() {
            return 0;
        }
        let l = self.prefix.len();
        let m = v.len().min(l);
        match v[..m].cmp(&self.prefix[..m]) {
            std::cmp::Ordering::Less => return 0,
            std::cmp::Ordering::Greater => return self.raw.len(),
            std::cmp::Ordering::Equal if v.len() < l => return 0,
            std::cmp::Ordering::Equal => {}
        }
        let k = key_at(v, l);
        // Branch-free lower bound: splitters with a key < k.
        let keys = &self.keys;
        let mut base = 0usize;
        let mut size = keys.len();
        while size > 1 {
            let half = size / 2;
            let mid = base + half;
            base = if keys[mid] < k { mid } else { base };
            size -= half;
        }
        let lo = base + usize::from(keys[base] < k);
        if lo == keys.len() || keys[lo] != k {
            return lo;
        }
        let hi = lo + keys[lo..].partition_point(|s| *s == k);
        if k as u8 != 15 {
            // A complete key: `v` is that splitter.
            return hi;
        }
        // The same 15 bytes (and more): the next 15 decide, then the rest.
        let k2 = key_at(v, l + 15);
        let a = lo + self.keys2[lo..hi].partition_point(|s| *s < k2);
        let b = a + self.keys2[a..hi].partition_point(|s| *s == k2);
        if a == b || k2 as u8 != 15 {
            return b;
        }
        a + self.raw[a..b].partition_point(|s| s.as_slice() <= v)
    }

    /// Bytes every value of range `b` shares.
    fn range_prefix(&self, b: usize) -> usize {
        if b == 0 || b >= self.raw.len() { 0 } else { lcp(&self.raw[b - 1], &self.raw[b]) }
    }
}

fn lcp(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// 15 bytes of `v` from `d` (zero-padded, big-endian) and, in the low byte,
/// how many of them exist (15 meaning "15 or more"). Keys compare like the
/// values' suffixes from `d`, except that equal keys with a low byte of 15
/// need a look further on.
#[inline]
pub(crate) fn key_at(v: &[u8], d: usize) -> u128 {
    let rest = v.get(d..).unwrap_or(&[]);
    if rest.len() >= 16 {
        let mut b = [0u8; 16];
        b.copy_from_slice(&rest[..16]);
        (u128::from_be_bytes(b) & !0xFF) | 15
    } else {
        let mut b = [0u8; 16];
        let n = rest.len().min(15);
        b[..n].copy_from_slice(&rest[..n]);
        b[15] = n as u8;
        u128::from_be_bytes(b)
    }
}

/// The byte-wise order of an arena's values (all of which share their first
/// `depth` bytes): indices, smallest value first.
pub(crate) fn sort_arena(arena: &Arena, depth: usize) -> Vec<u32> {
    let n = arena.len();
    let mut keys: Vec<(u128, u32)> = (0..n).map(|i| (key_at(arena.get(i), depth), i as u32)).collect();
    let mut scratch = Vec::new();
    sort_keys(&mut keys, &mut scratch);
    let mut stack: Vec<(usize, usize, usize)> = Vec::new();
    push_ties(&keys, 0, n, depth, &mut stack);
    while let Some((s, e, d)) = stack.pop() {
        let nd = d + 15;
        let run = &mut keys[s..e];
        if run.len() <= 8 {
            run.sort_unstable_by(|a, b| tail(arena.get(a.1 as usize), nd).cmp(tail(arena.get(b.1 as usize), nd)));
            continue;
        }
        for k in run.iter_mut() {
            k.0 = key_at(arena.get(k.1 as usize), nd);
        }
        sort_keys(run, &mut scratch);
        push_ties(&keys, s, e, nd, &mut stack);
    }
    keys.into_iter().map(|k| k.1).collect()
}

/// Fewest keys [`sort_keys`] sorts by radix.
const RADIX_MIN: usize = 256;

/// Sorts `keys` by key. When the keys differ in only a few of their bytes
/// (identifiers like `Customer#000123456`: after the common prefix, a few
/// digits and the length), a least-significant-digit radix sort over just
/// those bytes, one counting pass each, beats a comparison sort's
/// `log2(n)` passes; otherwise the comparison sort. `scratch` is reused.
fn sort_keys(keys: &mut [(u128, u32)], scratch: &mut Vec<(u128, u32)>) {
    let n = keys.len();
    if n >= RADIX_MIN {
        let first = keys[0].0;
        let diff = keys.iter().fold(0u128, |acc, k| acc | (k.0 ^ first));
        // The bytes that differ somewhere, least significant first.
        let shifts: Vec<u32> = (0..16).map(|b| 8 * b).filter(|&s| (diff >> s) as u8 != 0).collect();
        if 2 * shifts.len() as u32 <= n.ilog2() {
            radix_sort(keys, scratch, &shifts);
            return;
        }
    }
    keys.sort_unstable_by_key(|k| k.0);
}

/// Stable counting sorts of `keys` by the key byte at each of `shifts`,
/// least significant first: the keys end in key order when every byte not
/// in `shifts` is the same in all of them.
fn radix_sort(keys: &mut [(u128, u32)], scratch: &mut Vec<(u128, u32)>, shifts: &[u32]) {
    let mut counts = vec![[0usize; 256]; shifts.len()];
    for k in keys.iter() {
        for (c, &s) in counts.iter_mut().zip(shifts) {
            c[(k.0 >> s) as u8 as usize] += 1;
        }
    }
    scratch.clear();
    scratch.resize(keys.len(), (0, 0));
    let mut from = keys;
    let mut to = &mut scratch[..];
    let mut in_scratch = false;
    for (c, &s) in counts.iter_mut().zip(shifts) {
        let mut at = 0;
        for slot in c.iter_mut() {
            (*slot, at) = (at, at + *slot);
        }
        for &k in from.iter() {
            let b = (k.0 >> s) as u8 as usize;
            to[c[b]] = k;
            c[b] += 1;
        }
        std::mem::swap(&mut from, &mut to);
        in_scratch = !in_scratch;
    }
    if in_scratch {
        // `from` is the scratch buffer, `to` the keys.
        to.copy_from_slice(from);
    }
}

#[inline]
fn tail(v: &[u8], d: usize) -> &[u8] {
    v.get(d..).unwrap_or(&[])
}

fn push_ties(keys: &[(u128, u32)], s: usize, e: usize, d: usize, stack: &mut Vec<(usize, usize, usize)>) {
    let mut i = s;
    while i < e {
        let k = keys[i].0;
        let mut j = i + 1;
        while j < e && keys[j].0 == k {
            j += 1;
        }
        if j - i > 1 {
            debug_assert_eq!(k as u8, 15, "distinct values cannot have equal complete keys");
            stack.push((i, j, d));
        }
        i = j;
    }
}

/// One sorted range of new values.
#[derive(Debug)]
pub(crate) struct Range {
    pub(crate) arena: Arena,
    /// Arena indices in value order.
    pub(crate) order: Vec<u32>,
}

impl Range {
    #[inline]
    pub(crate) fn value(&self, k: usize) -> &[u8] {
        self.arena.get(self.order[k] as usize)
    }
}

/// The new values of a build, in order: range after range.
#[derive(Debug)]
pub(crate) struct Sorted {
    pub(crate) ranges: Vec<Range>,
    pub(crate) count: u64,
    pub(crate) bytes: u64,
    /// An order-independent fingerprint of the set (sums of mixed hashes).
    pub(crate) set_hash: (u64, u64),
}

impl Sorted {
    /// The values in order.
    #[cfg(test)]
    pub(crate) fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.ranges.iter().flat_map(|r| (0..r.order.len()).map(move |k| r.value(k)))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{BinaryArray, BinaryViewArray, Int64Array, StringArray, StringViewArray};

    use super::*;
    use crate::test_rng::Rng;

    fn sorted_of(values: &[Vec<u8>], range_target: usize) -> Vec<Vec<u8>> {
        let mut d = Distinct::of(ValueType::Binary);
        for chunk in values.chunks(1000) {
            d.push(Arc::new(BinaryArray::from_iter_values(chunk.iter()))).unwrap();
        }
        d.flush().unwrap();
        d.into_sorted_with(range_target).unwrap().iter().map(<[u8]>::to_vec).collect()
    }

    /// Checks that the sample sort of `values` at each range target is
    /// std's sort without duplicates; returns that.
    fn assert_sorts_like_std(values: &[Vec<u8>], targets: &[usize]) -> Vec<Vec<u8>> {
        let mut want = values.to_vec();
        want.sort();
        want.dedup();
        for &target in targets {
            let got = sorted_of(values, target);
            assert_eq!(got.len(), want.len());
            assert!(got == want, "sample sort differs from std sort (range target {target})");
        }
        want
    }

    /// A build of `blocks` (each one pushed and flushed) through the run
    /// when `run`, else through the shards alone: its values, and the
    /// counts and set hash.
    /// Blocks of rows (NULL: `None`).
    type Blocks = Vec<Vec<Option<Vec<u8>>>>;

    fn build_blocks(blocks: &Blocks, run: bool, target: usize) -> (Vec<Vec<u8>>, u64, u64, (u64, u64)) {
        let mut d = Distinct::of(ValueType::Binary);
        if !run {
            d.run = None;
        }
        for b in blocks {
            d.push(Arc::new(BinaryArray::from_iter(b.iter().map(|v| v.as_deref())))).unwrap();
            d.flush().unwrap();
        }
        assert_eq!(d.len(), d.new_count());
        let s = d.into_sorted_with(target).unwrap();
        (s.iter().map(<[u8]>::to_vec).collect(), s.count, s.bytes, s.set_hash)
    }

    #[test]
    fn ascending_input_builds_what_the_shards_build() {
        let mut r = Rng(7);
        let mut all: Vec<Vec<u8>> =
            (0..5000).map(|_| (0..r.below(12)).map(|_| r.below(4) as u8 + b'a').collect()).collect();
        all.sort();
        all.dedup();
        let block = |lo: usize, hi: usize| -> Vec<Option<Vec<u8>>> {
            // NULLs anywhere do not break the order.
            all[lo..hi]
                .iter()
                .enumerate()
                .flat_map(|(i, v)| [(i % 7 == 0).then_some(None), Some(Some(v.clone()))])
                .flatten()
                .collect()
        };
        let n = all.len();
        let cases: Vec<(&str, Blocks)> = vec![
            ("ascending", vec![block(0, n / 3), block(n / 3, n)]),
            ("empty string first", vec![vec![Some(vec![])], block(0, n)]),
            // A block that goes back below the run, one that repeats the
            // run's last value, one that repeats a value inside itself.
            ("a block below the run", vec![block(n / 2, n), block(0, n / 2)]),
            ("the last value again", vec![block(0, n / 2), block(n / 2 - 1, n)]),
            (
                "a repeat inside a block",
                vec![block(0, n / 2), [block(n / 2, n / 2 + 10), block(n / 2 + 9, n)].concat()],
            ),
            ("order broken, then ascending again", vec![block(0, 10), block(5, 20), block(20, n)]),
            ("only NULLs", vec![vec![None, None]]),
        ];
        for (what, blocks) in cases {
            for target in [64, 1000, RANGE_TARGET] {
                let via_run = build_blocks(&blocks, true, target);
                let via_shards = build_blocks(&blocks, false, target);
                assert_eq!(via_run, via_shards, "{what}, range target {target}");
                let mut want: Vec<Vec<u8>> = blocks.iter().flatten().flatten().cloned().collect();
                want.sort();
                want.dedup();
                assert_eq!(via_run.0, want, "{what}");
            }
        }
    }

    #[test]
    fn an_ascending_run_is_marked_against_existing_values() {
        let vals: Vec<Vec<u8>> = (0..3000u32).map(|i| format!("Customer#{i:09}").into_bytes()).collect();
        let mut r = Rng(11);
        // Existing values in id order: ascending within a version, one
        // version after another; in no order (an import); and values the
        // input does not hold, below, between and above its own.
        let mut thirds: Vec<Vec<u8>> = vals.iter().step_by(3).cloned().collect();
        thirds.extend((0..200u32).map(|i| format!("Customer#{:09}x", i * 7).into_bytes()));
        thirds.extend([b"A".to_vec(), b"Customer#".to_vec(), b"zzz".to_vec()]);
        thirds.sort();
        let later: Vec<Vec<u8>> = vals.iter().skip(1).step_by(5).cloned().collect();
        let mut shuffled = thirds.clone();
        for i in (1..shuffled.len()).rev() {
            shuffled.swap(i, r.below(i as u64 + 1) as usize);
        }
        let mostly: Vec<Vec<u8>> = {
            let mut m = thirds.clone();
            m.swap(10, 500);
            m
        };
        type Windows = Vec<Vec<Vec<u8>>>;
        let cases: Vec<(&str, Windows, bool)> = vec![
            ("one version", vec![thirds.clone()], true),
            ("two versions", vec![thirds.clone(), later.clone()], true),
            ("a few out of order", vec![mostly], true),
            ("no order", vec![shuffled], false),
            ("nothing", vec![vec![]], true),
        ];
        for (what, windows, stays) in cases {
            let build = |run: bool| {
                let mut d = Distinct::of(ValueType::Binary);
                if !run {
                    d.run = None;
                }
                d.push(Arc::new(BinaryArray::from_iter_values(vals.iter()))).unwrap();
                d.flush().unwrap();
                assert_eq!(d.run.is_some(), run, "ascending input stays a run");
                for w in &windows {
                    d.mark_existing(&[Arc::new(BinaryArray::from_iter_values(w.iter()))]).unwrap();
                }
                assert_eq!(d.run.is_some(), run && stays, "{what}");
                let counts = (d.len(), d.new_count());
                let s = d.into_sorted_with(256).unwrap();
                (counts, s.count, s.bytes, s.set_hash, s.iter().map(<[u8]>::to_vec).collect::<Vec<_>>())
            };
            let (via_run, via_shards) = (build(true), build(false));
            assert_eq!(via_run, via_shards, "{what}");
            let existing: std::collections::HashSet<&Vec<u8>> = windows.iter().flatten().collect();
            let want: Vec<Vec<u8>> = vals.iter().filter(|v| !existing.contains(v)).cloned().collect();
            assert_eq!(via_run.4, want, "{what}");
            assert_eq!(via_run.0, (3000, want.len() as u64), "{what}");
        }
    }

    #[test]
    fn a_gallop_finds_what_a_binary_search_finds() {
        let mut run = Run::default();
        let vals: Vec<Vec<u8>> = (0..1000u32).map(|i| format!("{:06}", i * 2).into_bytes()).collect();
        assert!(run.extend(&[Values::Text {
            data: vals.concat(),
            offsets: (0..=1000).map(|i| i * 6).collect(),
            nulls: None
        }]));
        for probe in 0..2002u32 {
            let v = format!("{probe:06}").into_bytes();
            let want = vals.binary_search(&v);
            for from in [0usize, 1, 7, 500, 999, 1000] {
                if from <= want.unwrap_or_else(|k| k) {
                    assert_eq!(run.search_from(from, &v), want, "{probe} from {from}");
                }
            }
        }
    }

    #[test]
    fn keys_order_like_bytes() {
        let vals: Vec<&[u8]> = vec![
            b"",
            b"\0",
            b"\0\0",
            b"a",
            b"a\0",
            b"a\0\0",
            b"ab",
            b"abcdefghijklmno",
            b"abcdefghijklmnop",
            b"abcdefghijklmno\0",
            b"\xff",
            b"\xff\xff",
        ];
        for a in &vals {
            for b in &vals {
                let (ka, kb) = (key_at(a, 0), key_at(b, 0));
                if ka != kb {
                    assert_eq!(ka.cmp(&kb), a.cmp(b), "{a:?} {b:?}");
                } else if a != b {
                    assert_eq!(ka as u8, 15, "{a:?} {b:?}");
                }
            }
        }
    }

    #[test]
    fn sorts_like_std_with_hard_inputs() {
        let mut rng = Rng(0x1234_5678);
        let mut vals: Vec<Vec<u8>> = Vec::new();
        // Long shared prefixes, zero bytes, prefixes of each other, empty.
        for i in 0..60_000u64 {
            let r = rng.next();
            let v = match i % 6 {
                0 => format!("Customer#{:09}", r % 1_000_000).into_bytes(),
                1 => {
                    let mut v = b"https://example.com/a/very/long/shared/prefix/".to_vec();
                    v.extend((0..(r % 40)).map(|k| (r >> (k % 60)) as u8 % 3));
                    v
                }
                2 => (0..(r % 5)).map(|k| (r >> (8 * k)) as u8 & 1).collect(),
                3 => r.to_be_bytes()[..(r % 9) as usize].to_vec(),
                4 => format!("{}", r % 5000).into_bytes(),
                _ => {
                    let mut v = vec![b'x'; (r % 70) as usize];
                    v.push((r >> 8) as u8);
                    v
                }
            };
            vals.push(v);
        }
        vals.push(Vec::new());
        assert_sorts_like_std(&vals, &[64, 1000, RANGE_TARGET]);
    }

    #[test]
    fn radix_sorts_like_the_comparison_sort() {
        let mut rng = Rng(0xfeed);
        let mut scratch = Vec::new();
        // Keys that differ in 1..=8 bytes (anywhere in the key), all sizes
        // around the threshold, odd and even pass counts.
        for case in 0..200u64 {
            let nbytes = 1 + case % 8;
            let spots: Vec<u32> = (0..nbytes).map(|_| 8 * (rng.next() % 16) as u32).collect();
            let base = (rng.next() as u128) << 64 | rng.next() as u128;
            let n = [RADIX_MIN, RADIX_MIN + 1, 1000, 5000, 70_000][(case % 5) as usize];
            let mut keys: Vec<(u128, u32)> = (0..n as u32)
                .map(|i| {
                    let mut k = base;
                    for &s in &spots {
                        if !rng.next().is_multiple_of(3) {
                            k = k & !(0xFF << s) | ((rng.next() as u8 as u128) << s);
                        }
                    }
                    (k, i)
                })
                .collect();
            let orig = keys.clone();
            let mut want: Vec<u128> = keys.iter().map(|k| k.0).collect();
            want.sort();
            sort_keys(&mut keys, &mut scratch);
            assert!(keys.iter().map(|k| k.0).eq(want), "case {case}: {nbytes} varying bytes, {n} keys");
            // Every entry once, still with its own key.
            let mut seen = vec![false; n];
            for &(k, i) in &keys {
                assert!(!std::mem::replace(&mut seen[i as usize], true) && orig[i as usize].0 == k);
            }
        }
    }

    #[test]
    fn identifiers_sort_like_std() {
        // Few varying bytes after a long shared prefix (the radix path),
        // lengths that differ, and values equal for 15 bytes past a range's
        // prefix (ties sorted again further on, also by radix).
        let mut rng = Rng(0xabc);
        let mut vals: Vec<Vec<u8>> = Vec::new();
        for i in 0..40_000u64 {
            let r = rng.next();
            vals.push(match i % 4 {
                0 => format!("Customer#{:09}", r % 2_000_000).into_bytes(),
                1 => format!("user-{}", r % 100_000).into_bytes(),
                2 => format!("device/0123456789abcdef/{:04}/{}", r % 3000, r % 7).into_bytes(),
                _ => format!("{}", r % 10_000).into_bytes(),
            });
        }
        let want = assert_sorts_like_std(&vals, &[300, 1000, RANGE_TARGET]);
        // One arena of distinct values in input order.
        let mut seen = std::collections::HashSet::new();
        let vals: Vec<Vec<u8>> = vals.into_iter().filter(|v| seen.insert(v.clone())).collect();
        let arena = Arena {
            bytes: vals.concat(),
            offsets: std::iter::once(0)
                .chain(vals.iter().scan(0u32, |at, v| {
                    *at += v.len() as u32;
                    Some(*at)
                }))
                .collect(),
        };
        let order = sort_arena(&arena, 0);
        let got: Vec<&[u8]> = order.iter().map(|&i| arena.get(i as usize)).collect();
        assert!(got == want.iter().map(|v| v.as_slice()).collect::<Vec<_>>());
    }

    #[test]
    fn distinct_counts_nulls_and_types() {
        let mut d = Distinct::new(&arrow::datatypes::DataType::Utf8).unwrap();
        d.push(Arc::new(StringArray::from(vec![Some("b"), None, Some(""), Some("a"), Some("b")]))).unwrap();
        d.push(Arc::new(StringViewArray::from(vec![Some(""), None]))).unwrap();
        let e = d.push(Arc::new(Int64Array::from(vec![1]))).unwrap_err();
        assert!(e.to_string().contains("holds string"), "{e}");
        d.flush().unwrap();
        assert_eq!((d.rows(), d.nulls(), d.len()), (7, 2, 3));
        let s = d.into_sorted().unwrap();
        let got: Vec<&[u8]> = s.iter().collect();
        assert_eq!(got, vec![b"".as_slice(), b"a", b"b"]);
    }

    #[test]
    fn marks_existing_values() {
        let mut d = Distinct::of(ValueType::String);
        d.push(Arc::new(StringArray::from_iter_values((0..10_000).map(|i| format!("v{i}"))))).unwrap();
        d.flush().unwrap();
        let existing = BinaryArray::from_iter_values((0..10_000).step_by(2).map(|i| format!("v{i}")));
        let other = BinaryArray::from_iter_values(["not there", "v1x"]);
        // NULLs are skipped; a slice marks only its own rows.
        let nulls = BinaryArray::from(vec![None, Some(b"v4".as_slice()), None]);
        let odd = BinaryArray::from_iter_values(["v1", "v3", "v5"]);
        let views: ArrayRef = Arc::new(BinaryViewArray::from_iter_values(["v7", "v9", "nope"]));
        let a = |b: BinaryArray| -> ArrayRef { Arc::new(b) };
        d.mark_existing(&[a(existing.clone()), a(other), a(nulls), a(odd.slice(1, 1)), views]).unwrap();
        d.mark_existing(&[a(existing)]).unwrap();
        assert_eq!(d.new_count(), 4_997);
        let s = d.into_sorted().unwrap();
        let mut want: Vec<String> =
            (1..10_000).step_by(2).filter(|&i| ![3, 7, 9].contains(&i)).map(|i| format!("v{i}")).collect();
        want.sort();
        let got: Vec<String> = s.iter().map(|v| String::from_utf8(v.to_vec()).unwrap()).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn many_ranges_are_globally_ordered() {
        let mut rng = Rng(99);
        let vals: Vec<Vec<u8>> = (0..300_000).map(|_| format!("{:x}", rng.next() % 10_000_000).into_bytes()).collect();
        assert_sorts_like_std(&vals, &[RANGE_TARGET]);
    }
}
