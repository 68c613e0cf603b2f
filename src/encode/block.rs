//! The CSV pass, a block of rows at a time.
//!
//! The row-by-row pass dispatched on the column's writer for every cell and
//! appended each value with a variable-length copy: most of a load's CPU.
//! Here a block whose every cell is an ordinary value of a common type
//! (integers, DATE, DATETIME from naive or UTC timestamps of any unit, same-scale
//! decimals, strings CSV carries as they are, BOOLEAN, DOUBLE from 64-bit
//! floats) is first checked a column at
//! a time, then written a row at a time: each cell at the end of the text so
//! far, digits in place, dates and timestamps as fixed-size copies, strings
//! as one 64-byte copy whatever their length ([`write_rows`]).
//!
//! Other blocks go a column at a time: every column first reports the
//! length of each of its cells, which fixes where every row starts; then
//! each column writes its cells straight to their places. A column of a
//! common type takes the typed loops as long as every cell of the block is
//! ordinary. Any other column — and a common one whose block holds a value
//! that is out of range, too long, or not carriable in CSV — is *staged*:
//! rendered cell by cell through [`Writer::write_csv`], so its text, its
//! checks, its errors and the rows it sends elsewhere are exactly those of
//! the general writer.

use super::*;

/// Rows per block: a block's text (some hundred kilobytes) stays in cache
/// while every column writes into it.
const BLOCK_ROWS: usize = 1024;

/// Days from 1970-01-01 to 0001-01-01: every day from here to
/// [`MAX_DAY`] renders as an ordinary `YYYY-MM-DD`.
const YEAR_1: i64 = -719162;
const DAY_US: i64 = 86_400_000_000;

/// How one column renders.
enum Kind<'a> {
    /// Integers into an integer column; with the column's range when some
    /// source value could fall outside it (typed while every value of the
    /// block is within).
    Int(&'a Ints<'a>, Option<(i128, i128)>),
    Date(&'a [i32]),
    /// Naive or UTC timestamps as DATETIME; `mul` turns a value into µs.
    Ts {
        v: &'a [i64],
        mul: i64,
    },
    /// Naive or UTC nanosecond timestamps (pandas writes them) as DATETIME:
    /// typed while every value of the block is whole microseconds (the
    /// general writer refuses the others). Every `i64` of nanoseconds is a
    /// day of years 1677–2262.
    TsNs(&'a [i64]),
    /// DECIMAL of the column's own scale, `|v| < max`. The column pass
    /// takes values below 2^64 only; the row pass any.
    Dec {
        v: &'a [i128],
        scale: u32,
        max: u128,
    },
    Str {
        s: Strings<'a>,
        max: usize,
    },
    /// BOOLEAN (or an integer column) from booleans: `1` or `0`.
    Bool(&'a arrow::buffer::BooleanBuffer),
    /// DOUBLE from 64-bit floats: the shortest text that reads back as the
    /// same double. Typed in the row pass only; the column pass stages it.
    F64(&'a [f64]),
    /// Rendered through the general writer.
    Staged,
}

/// String values by their raw layout.
enum Strings<'a> {
    Offsets32 { offs: &'a [i32], data: &'a [u8] },
    Offsets64 { offs: &'a [i64], data: &'a [u8] },
    View { views: &'a [u128], bufs: &'a [arrow::buffer::Buffer] },
}

impl Strings<'_> {
    #[inline(always)]
    fn len(&self, i: usize) -> usize {
        match self {
            Strings::Offsets32 { offs, .. } => (offs[i + 1] - offs[i]) as usize,
            Strings::Offsets64 { offs, .. } => (offs[i + 1] - offs[i]) as usize,
            Strings::View { views, .. } => views[i] as u32 as usize,
        }
    }

    /// The bytes of values `lo..hi` in one slice, for the offset layouts.
    fn contiguous(&self, lo: usize, hi: usize) -> Option<&[u8]> {
        match self {
            Strings::Offsets32 { offs, data } => Some(&data[offs[lo] as usize..offs[hi] as usize]),
            Strings::Offsets64 { offs, data } => Some(&data[offs[lo] as usize..offs[hi] as usize]),
            Strings::View { .. } => None,
        }
    }

    /// Copies value `i` (`len` bytes) to the start of `room`, maybe writing
    /// past it (see [`copy_wide`]).
    #[inline(always)]
    fn copy_to(&self, i: usize, len: usize, room: &mut [u8]) {
        match self {
            Strings::Offsets32 { offs, data } => copy_wide(data, offs[i] as usize, len, room),
            Strings::Offsets64 { offs, data } => copy_wide(data, offs[i] as usize, len, room),
            Strings::View { views, bufs } => copy_view(views[i], bufs, len, room),
        }
    }

    /// The bytes of value `i`, through `f` (an inline view lives on the stack).
    #[inline(always)]
    fn with<R>(&self, i: usize, f: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            Strings::Offsets32 { offs, data } => f(&data[offs[i] as usize..offs[i + 1] as usize]),
            Strings::Offsets64 { offs, data } => f(&data[offs[i] as usize..offs[i + 1] as usize]),
            Strings::View { views, bufs } => {
                let v = views[i];
                let len = v as u32 as usize;
                if len <= 12 {
                    let b = v.to_le_bytes();
                    f(&b[4..4 + len])
                } else {
                    let buf = (v >> 64) as u32 as usize;
                    let off = (v >> 96) as u32 as usize;
                    f(&bufs[buf][off..off + len])
                }
            }
        }
    }
}

/// A column prepared for the block pass.
pub(super) struct Col<'w, 'a> {
    w: &'w Writer<'a>,
    kind: Kind<'w>,
    /// How the row pass writes its cells (from `kind`, once per batch).
    cell: Cell<'w>,
    /// The column's nulls when it has any.
    nulls: Option<&'w arrow::buffer::NullBuffer>,
}

/// Prepares the columns of a batch.
pub(super) fn columns<'w, 'a>(writers: &'w [Writer<'a>]) -> Vec<Col<'w, 'a>> {
    writers.iter().map(column).collect()
}

fn column<'w, 'a>(w: &'w Writer<'a>) -> Col<'w, 'a> {
    let kind = match &w.w {
        W::Int { v, to: IntTo::Int { lo, hi, check } } => Kind::Int(v, check.then_some((*lo, *hi))),
        W::Date32 { v, datetime: false } => Kind::Date(v),
        W::Ts { v, unit, zone: None | Some(Zone::Utc) } => match unit {
            TimeUnit::Second => Kind::Ts { v, mul: 1_000_000 },
            TimeUnit::Millisecond => Kind::Ts { v, mul: 1000 },
            TimeUnit::Microsecond => Kind::Ts { v, mul: 1 },
            TimeUnit::Nanosecond => Kind::TsNs(v),
        },
        W::Dec { v: Decs::D128(v), scale, to_scale, max, doc: false } if scale == to_scale && *scale <= 19 => {
            Kind::Dec { v, scale: *scale as u32, max: *max as u128 }
        }
        W::Str { a, to: StrTo::Str { max } } => {
            let s = match a {
                Strs::Utf8(a) => Strings::Offsets32 { offs: a.value_offsets(), data: a.value_data() },
                Strs::Large(a) => Strings::Offsets64 { offs: a.value_offsets(), data: a.value_data() },
                Strs::View(a) => Strings::View { views: a.views(), bufs: a.data_buffers() },
            };
            // Longer fields (serialized bitmaps) go through the general
            // writer, which sends them elsewhere.
            Kind::Str { s, max: (*max).min(crate::srtype::MAX_VARCHAR as usize) }
        }
        // Both targets write `1` or `0` in CSV.
        W::Bool { a, .. } => Kind::Bool(a.values()),
        W::Float { v: Floats::F64(v), to: FloatTo::Double } => Kind::F64(v),
        _ => Kind::Staged,
    };
    let nulls = w.nulls.as_ref().filter(|n| n.null_count() > 0);
    let cell = cell_of(&kind, nulls);
    Col { w, kind, cell, nulls }
}

/// Buffers reused from block to block.
#[derive(Default)]
struct Scratch {
    /// Cell lengths, column after column.
    lens: Vec<u32>,
    /// Per row: 0 to keep it, else 1 + the part it goes to instead.
    skip: Vec<u8>,
    /// Per row: where its next cell goes.
    pos: Vec<usize>,
    /// Per row: where it ends (past its delimiter).
    ends: Vec<usize>,
    /// Per column: staged (its cells in `staged`) or typed.
    is_staged: Vec<bool>,
    staged: Vec<Cells>,
}

/// Renders rows `range` block after block.
pub(super) fn render_range(
    cols: &[Col<'_, '_>],
    range: std::ops::Range<usize>,
    row_bytes: usize,
) -> std::result::Result<Rendered, EncodeError> {
    // A reused buffer keeps its old length: every byte up to `used` is
    // written below, so only growth past the old length is zero-filled
    // first (the fill was a pass over every byte sent).
    let mut data = crate::bufpool::take(range.len() * row_bytes);
    let mut used = 0;
    let (mut csv_rows, mut rerouted) = (0usize, Vec::new());
    let mut scratch = Scratch::default();
    let mut lo = range.start;
    while lo < range.end {
        let hi = (lo + BLOCK_ROWS).min(range.end);
        csv_rows += render(cols, lo, hi, &mut scratch, &mut data, &mut used, &mut rerouted)?;
        lo = hi;
    }
    data.truncate(used);
    Ok(Rendered { data, csv_rows, rerouted })
}

/// Writes the CSV text of rows `lo..hi` into `out` from `*used` on (`out`
/// grows when shorter; bytes past `*used` are not read) and advances `used`;
/// rows CSV cannot carry are left out and listed in `rerouted`. Returns the
/// number of rows written.
fn render(
    cols: &[Col<'_, '_>],
    lo: usize,
    hi: usize,
    scratch: &mut Scratch,
    out: &mut Vec<u8>,
    used: &mut usize,
    rerouted: &mut Vec<(usize, Part)>,
) -> std::result::Result<usize, EncodeError> {
    let n = hi - lo;
    let ncols = cols.len();
    // Blocks whose every cell is ordinary: a row at a time, no bookkeeping.
    // (One column is not: a row of one empty field is an empty line, which
    // the BE skips, and goes elsewhere.)
    if ncols > 1
        && let Some(bound) = ordinary(cols, lo, hi)
    {
        return write_rows(cols, lo, hi, bound, out, used).map(|()| n);
    }
    let Scratch { lens, skip, pos, ends, is_staged, staged } = scratch;
    // Every length is written by pass 1 before it is read (a failing cell
    // returns early): only growth is filled.
    if lens.len() < n * ncols {
        lens.resize(n * ncols, 0);
    }
    skip.clear();
    skip.resize(n, 0);
    is_staged.clear();
    is_staged.resize(ncols, false);
    if staged.len() < ncols {
        staged.resize_with(ncols, || Cells::with_capacity(0));
    }
    // Pass 1: every cell's length; staging where needed.
    let mut error: Option<(usize, usize, String)> = None;
    for (c, col) in cols.iter().enumerate() {
        let l = &mut lens[c * n..(c + 1) * n];
        if lengths(col, lo, l) {
            continue;
        }
        is_staged[c] = true;
        let cells = &mut staged[c];
        cells.data.clear();
        cells.ends.clear();
        for (k, len) in l.iter_mut().enumerate() {
            let r = lo + k;
            let start = cells.data.len();
            match col.w.write_csv(r, &mut cells.data) {
                Ok(()) => {
                    *len = u32::try_from(cells.data.len() - start).map_err(|_| EncodeError::Value {
                        column: c,
                        row: r,
                        msg: "a value of 4 GiB or more".into(),
                    })?
                }
                Err(CellError::NotCsv { top_string, .. }) => {
                    cells.data.truncate(start);
                    let p = if top_string { Part::Csv64 } else { Part::Json };
                    skip[k] = skip[k].max(p as u8 + 1);
                }
                Err(CellError::Bad(msg)) => {
                    // The first bad cell in row order (then column order).
                    if error.as_ref().is_none_or(|e| r < e.0) {
                        error = Some((r, c, msg));
                    }
                    break;
                }
            }
            cells.ends.push(cells.data.len());
        }
    }
    if let Some((row, column, msg)) = error {
        return Err(EncodeError::Value { column, row, msg });
    }
    // A row of one empty field is an empty line, which the BE skips: JSON.
    if ncols == 1 {
        for (s, &len) in skip.iter_mut().zip(lens.iter()) {
            if *s == 0 && len == 0 {
                *s = Part::Json as u8 + 1;
            }
        }
    }
    // Where each row starts.
    pos.clear();
    pos.resize(n, ncols);
    for c in 0..ncols {
        for (p, &len) in pos.iter_mut().zip(&lens[c * n..(c + 1) * n]) {
            *p += len as usize;
        }
    }
    let mut at = 0usize;
    let mut written = 0;
    // Read only for kept rows, each written below.
    if ends.len() < n {
        ends.resize(n, 0);
    }
    for (k, ((p, e), &s)) in pos.iter_mut().zip(ends.iter_mut()).zip(skip.iter()).enumerate() {
        if s != 0 {
            rerouted.push((lo + k, part_of(s)));
            *p = 0;
            continue;
        }
        let len = *p;
        *p = at;
        at += len;
        *e = at;
        written += 1;
    }
    let base = *used;
    if out.len() < base + at {
        out.resize(base + at, 0);
    }
    let dst = &mut out[base..base + at];
    *used = base + at;
    // Pass 2: every column writes its cells in place.
    for (c, col) in cols.iter().enumerate() {
        let term = if c + 1 == ncols { ROW_DELIMITER } else { COLUMN_SEPARATOR };
        let l = &lens[c * n..(c + 1) * n];
        if is_staged[c] {
            let cells = &staged[c];
            for k in 0..n {
                if skip[k] != 0 {
                    continue;
                }
                let o = pos[k];
                let len = l[k] as usize;
                dst[o..o + len].copy_from_slice(cells.get(k));
                dst[o + len] = term;
                pos[k] = o + len + 1;
            }
        } else {
            write(col, Cursor { lo, l, skip, pos, ends, term, nulls: col.nulls }, dst)?;
        }
    }
    Ok(written)
}

fn part_of(s: u8) -> Part {
    match s - 1 {
        x if x == Part::Csv64 as u8 => Part::Csv64,
        x if x == Part::Json as u8 => Part::Json,
        _ => Part::Csv,
    }
}

/// Fills `l` with the length of each cell of rows `lo..lo + l.len()`; false
/// when some cell needs the general writer (the column is then staged).
fn lengths(col: &Col<'_, '_>, lo: usize, l: &mut [u32]) -> bool {
    let n = l.len();
    let ok = match &col.kind {
        // A double's length is its text: the general writer's job here.
        Kind::Staged | Kind::F64(_) => false,
        Kind::Bool(_) => {
            l.fill(1);
            true
        }
        Kind::Int(v, range) if !range.is_none_or(|r| ints_within(v, lo, lo + n, r)) => false,
        Kind::Int(v, _) => match v {
            Ints::I8(v) => int_lengths(&v[lo..lo + n], l, |x| x as i64),
            Ints::I16(v) => int_lengths(&v[lo..lo + n], l, |x| x as i64),
            Ints::I32(v) => int_lengths(&v[lo..lo + n], l, |x| x as i64),
            Ints::I64(v) => int_lengths(&v[lo..lo + n], l, |x| x),
            Ints::U8(v) => int_lengths(&v[lo..lo + n], l, |x| x as i64),
            Ints::U16(v) => int_lengths(&v[lo..lo + n], l, |x| x as i64),
            Ints::U32(v) => int_lengths(&v[lo..lo + n], l, |x| x as i64),
            Ints::U64(v) => {
                for (len, &x) in l.iter_mut().zip(&v[lo..lo + n]) {
                    *len = digits(x);
                }
                true
            }
        },
        Kind::Date(v) => {
            let mut ok = true;
            for (len, &d) in l.iter_mut().zip(&v[lo..lo + n]) {
                ok &= (YEAR_1..=MAX_DAY).contains(&(d as i64));
                *len = 10;
            }
            ok
        }
        Kind::Ts { v, mul } => {
            let mut ok = true;
            for (len, &x) in l.iter_mut().zip(&v[lo..lo + n]) {
                match x.checked_mul(*mul) {
                    Some(us) => {
                        ok &= (YEAR_1..=MAX_DAY).contains(&us.div_euclid(DAY_US));
                        *len = if us % 1_000_000 == 0 { 19 } else { 26 };
                    }
                    None => ok = false,
                }
            }
            ok
        }
        Kind::TsNs(v) => {
            let mut ok = true;
            for (len, &x) in l.iter_mut().zip(&v[lo..lo + n]) {
                ok &= x % 1000 == 0;
                *len = if x % 1_000_000_000 == 0 { 19 } else { 26 };
            }
            ok
        }
        Kind::Dec { v, scale, max } => {
            let mut ok = true;
            for (len, &x) in l.iter_mut().zip(&v[lo..lo + n]) {
                let a = x.unsigned_abs();
                ok &= a < *max && a <= u64::MAX as u128;
                *len = dec_len(x < 0, a as u64, *scale);
            }
            ok
        }
        Kind::Str { s: Strings::View { views, bufs }, max } => view_lengths(&views[lo..lo + n], bufs, *max, l),
        Kind::Str { s, max } => {
            let mut ok = true;
            for (k, len) in l.iter_mut().enumerate() {
                let i = lo + k;
                let m = s.len(i);
                *len = m as u32;
                ok &= m <= *max;
            }
            ok && carried_as_is(s, lo, lo + n)
        }
    };
    if !ok {
        return false;
    }
    if let Some(nulls) = col.nulls {
        for (k, len) in l.iter_mut().enumerate() {
            if nulls.is_null(lo + k) {
                *len = 2;
            }
        }
    }
    true
}

/// [`lengths`] of string views: each view's length, and whether every
/// value fits `max`, holds no separator byte and is not the NULL marker, in
/// one pass.
fn view_lengths(views: &[u128], bufs: &[arrow::buffer::Buffer], max: usize, l: &mut [u32]) -> bool {
    let mut bad = false;
    for (len, &v) in l.iter_mut().zip(views) {
        *len = v as u32;
        bad |= view_bad(v, bufs, max);
    }
    !bad
}

/// [`view_lengths`]' check alone, and the bytes of the values.
fn view_check(views: &[u128], bufs: &[arrow::buffer::Buffer], max: usize) -> (bool, usize) {
    let (mut bad, mut bytes) = (false, 0usize);
    // Views found good, by a hash of the view: a column of few distinct
    // values (flags, modes, a Parquet dictionary's values) checks each once
    // per block. A zeroed slot is the empty string's view, good too.
    let mut good = [0u128; 64];
    for &v in views {
        bytes += v as u32 as usize;
        let h = ((v >> 32) as u64 ^ (v >> 64) as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 58;
        let slot = &mut good[h as usize];
        if *slot == v {
            continue;
        }
        if view_bad(v, bufs, max) {
            bad = true;
        } else {
            *slot = v;
        }
    }
    (!bad, bytes)
}

/// Whether the value of view `v` is longer than `max`, holds a separator
/// byte or is the NULL marker (an inline value is checked as one 128-bit
/// word).
#[inline(always)]
fn view_bad(v: u128, bufs: &[arrow::buffer::Buffer], max: usize) -> bool {
    const ONES: u128 = u128::MAX / 255;
    const _: () = assert!(COLUMN_SEPARATOR == 1 && ROW_DELIMITER == 2);
    let marker = u16::from_le_bytes(*b"\\N") as u128;
    let m = v as u32;
    let long = m as usize > max;
    if m <= 12 {
        // The value's bytes, zero past its end.
        let d = v >> 32;
        let zero = |y: u128| y.wrapping_sub(ONES) & !y & (ONES << 7) != 0;
        long | zero(d ^ ONES) | zero(d ^ (ONES * 2)) | ((m == 2) & (d == marker))
    } else {
        let (buf, off) = ((v >> 64) as u32 as usize, (v >> 96) as u32 as usize);
        long | !plain_short(&bufs[buf][off..off + m as usize])
    }
}

/// Whether the values `lo..hi` of an offsets layout hold no byte the
/// dialect cannot carry and no NULL marker (the general writer sends such
/// rows elsewhere). Views take [`view_bad`]; were one here, `false` (staging)
/// is correct.
fn carried_as_is(s: &Strings<'_>, lo: usize, hi: usize) -> bool {
    match s.contiguous(lo, hi) {
        Some(bytes) => plain(bytes) && !(lo..hi).any(|i| is_null_marker(s, i, s.len(i) as u32)),
        None => false,
    }
}

#[inline(always)]
fn is_null_marker(s: &Strings<'_>, i: usize, len: u32) -> bool {
    len == 2 && s.with(i, |b| b == b"\\N")
}

/// No byte the CSV dialect uses as a separator.
fn plain(b: &[u8]) -> bool {
    memchr::memchr2(COLUMN_SEPARATOR, ROW_DELIMITER, b).is_none()
}

/// [`plain`] for short values: eight bytes at a time (the last word
/// overlaps the one before it), bytes one by one below eight.
#[inline(always)]
fn plain_short(b: &[u8]) -> bool {
    const _: () = assert!(COLUMN_SEPARATOR == 1 && ROW_DELIMITER == 2);
    if b.len() < 8 {
        return !b.iter().fold(false, |acc, &c| acc | (c.wrapping_sub(1) < 2));
    }
    const ONES: u64 = u64::MAX / 255;
    // A byte of `w` equal to 1 or 2 (exact: no false positives overall).
    let has = |w: u64| {
        let zero = |y: u64| y.wrapping_sub(ONES) & !y & (ONES << 7);
        zero(w ^ ONES) | zero(w ^ (ONES * 2))
    };
    let word = |c: &[u8]| u64::from_le_bytes(c.try_into().expect("8 bytes"));
    let mut acc = has(word(&b[b.len() - 8..]));
    for c in b.chunks_exact(8) {
        acc |= has(word(c));
    }
    acc == 0
}

#[inline(always)]
fn int_lengths<T: Copy>(v: &[T], l: &mut [u32], f: impl Fn(T) -> i64) -> bool {
    for (len, &x) in l.iter_mut().zip(v) {
        let x = f(x);
        *len = (x < 0) as u32 + digits(x.unsigned_abs());
    }
    true
}

/// `10^i` for every power a `u64` holds.
const POW10: [u64; 20] = {
    let mut t = [0u64; 20];
    let mut i = 1;
    t[0] = 1;
    while i < 20 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

/// Decimal digits of `v`, without branches: the bit length gives the count
/// or one more, and one comparison settles it.
#[inline(always)]
fn digits(v: u64) -> u32 {
    // `v | 1` has the digits of `v` (and makes 0 one digit);
    // floor(bits * log10(2)) for bits = 1..=64 is at most 19.
    let v = v | 1;
    let bits = 64 - v.leading_zeros();
    let t = (bits * 1233) >> 12;
    t + (v >= POW10[t as usize]) as u32
}

/// Length of a decimal's text: sign, integer digits (at least `0`), point
/// and `scale` fraction digits.
#[inline(always)]
fn dec_len(neg: bool, a: u64, scale: u32) -> u32 {
    if scale == 0 { neg as u32 + digits(a) } else { neg as u32 + digits(a).max(scale + 1) + 1 }
}

/// Where the cells of one column of a block go.
struct Cursor<'s> {
    lo: usize,
    l: &'s [u32],
    skip: &'s [u8],
    pos: &'s mut [usize],
    /// Per row: where it ends. Columns are written left to right, so the
    /// bytes from a cell to its row's end are not written yet: a copy may
    /// run past its cell up to there (it is overwritten later).
    ends: &'s [usize],
    term: u8,
    nulls: Option<&'s arrow::buffer::NullBuffer>,
}

impl Cursor<'_> {
    /// Calls `f(row in block, cell)` for each kept non-NULL cell, writes
    /// `\N` for NULLs and the terminator after every cell.
    #[inline(always)]
    fn each(
        &mut self,
        dst: &mut [u8],
        mut f: impl FnMut(usize, &mut [u8]) -> std::result::Result<(), EncodeError>,
    ) -> std::result::Result<(), EncodeError> {
        for k in 0..self.l.len() {
            if self.skip[k] != 0 {
                continue;
            }
            let o = self.pos[k];
            let len = self.l[k] as usize;
            let cell = &mut dst[o..o + len + 1];
            cell[len] = self.term;
            if self.nulls.is_some_and(|nl| nl.is_null(self.lo + k)) {
                cell[..2].copy_from_slice(b"\\N");
            } else {
                f(k, &mut cell[..len])?;
            }
            self.pos[k] = o + len + 1;
        }
        Ok(())
    }

    /// Calls `f(row in block, room, len)` for each kept non-NULL cell, which
    /// writes the cell's `len` bytes at the start of `room` (the rest of the
    /// row) and may write past them; writes `\N` for NULLs and the
    /// terminator after every cell.
    #[inline(always)]
    fn fill_wide(&mut self, dst: &mut [u8], mut f: impl FnMut(usize, &mut [u8], usize)) {
        for k in 0..self.l.len() {
            if self.skip[k] != 0 {
                continue;
            }
            let o = self.pos[k];
            let len = self.l[k] as usize;
            let room = &mut dst[o..self.ends[k]];
            if self.nulls.is_some_and(|nl| nl.is_null(self.lo + k)) {
                room[..2].copy_from_slice(b"\\N");
            } else {
                f(k, room, len);
            }
            room[len] = self.term;
            self.pos[k] = o + len + 1;
        }
    }
}

/// Copies the `len` bytes of view `v` to the start of `room`, maybe writing
/// past them (see [`copy_wide`]).
#[inline(always)]
fn copy_view(v: u128, bufs: &[arrow::buffer::Buffer], len: usize, room: &mut [u8]) {
    if len <= 12 {
        let b = v.to_le_bytes();
        if room.len() >= 12 {
            room[..12].copy_from_slice(&b[4..16]);
        } else {
            room[..len].copy_from_slice(&b[4..4 + len]);
        }
    } else {
        let buf = (v >> 64) as u32 as usize;
        let off = (v >> 96) as u32 as usize;
        copy_wide(&bufs[buf], off, len, room);
    }
}

/// Copies `data[a..a + len]` to the start of `room`, as a fixed-size copy of
/// 16, 32 or 64 bytes when both sides have that many (short values are most
/// values; a call to `memcpy` per value cost more than the copy).
#[inline(always)]
fn copy_wide(data: &[u8], a: usize, len: usize, room: &mut [u8]) {
    #[inline(always)]
    fn fixed<const N: usize>(data: &[u8], a: usize, len: usize, room: &mut [u8]) -> bool {
        if len <= N && room.len() >= N && data.len() - a >= N {
            room[..N].copy_from_slice(&data[a..a + N]);
            true
        } else {
            false
        }
    }
    if !(fixed::<16>(data, a, len, room) || fixed::<32>(data, a, len, room) || fixed::<64>(data, a, len, room)) {
        room[..len].copy_from_slice(&data[a..a + len]);
    }
}

/// Writes the cells of a typed column whose lengths pass 1 found.
fn write(col: &Col<'_, '_>, mut at: Cursor<'_>, dst: &mut [u8]) -> std::result::Result<(), EncodeError> {
    let lo = at.lo;
    match &col.kind {
        Kind::Staged | Kind::F64(_) => unreachable_staged(),
        Kind::Bool(b) => at.each(dst, |k, c| {
            c[0] = b'0' + b.value(lo + k) as u8;
            Ok(())
        }),
        Kind::Int(v, _) => {
            match v {
                Ints::I8(v) => at.fill_wide(dst, |k, room, len| put_int_wide(room, v[lo + k] as i64, len)),
                Ints::I16(v) => at.fill_wide(dst, |k, room, len| put_int_wide(room, v[lo + k] as i64, len)),
                Ints::I32(v) => at.fill_wide(dst, |k, room, len| put_int_wide(room, v[lo + k] as i64, len)),
                Ints::I64(v) => at.fill_wide(dst, |k, room, len| put_int_wide(room, v[lo + k], len)),
                Ints::U8(v) => at.fill_wide(dst, |k, room, len| put_digits_wide(room, v[lo + k] as u64, len)),
                Ints::U16(v) => at.fill_wide(dst, |k, room, len| put_digits_wide(room, v[lo + k] as u64, len)),
                Ints::U32(v) => at.fill_wide(dst, |k, room, len| put_digits_wide(room, v[lo + k] as u64, len)),
                Ints::U64(v) => at.fill_wide(dst, |k, room, len| put_digits_wide(room, v[lo + k], len)),
            };
            Ok(())
        }
        Kind::Date(v) => with_days(|days| {
            at.each(dst, |k, c| {
                let t = days.text(v[lo + k] as i64).map_err(|e| cell_error(e, lo + k))?;
                // A fixed-size copy (`c` is 10 bytes; a slice copy calls memcpy).
                c[..10].copy_from_slice(&t);
                Ok(())
            })
        }),
        Kind::Ts { v, mul } => write_datetimes(at, dst, |i| v[i] * mul),
        Kind::TsNs(v) => write_datetimes(at, dst, |i| v[i] / 1000),
        Kind::Dec { v, scale, .. } => {
            match *scale {
                2 => at.fill_wide(dst, |k, room, len| put_dec_wide(room, v[lo + k], 2, len)),
                scale => at.fill_wide(dst, |k, room, len| put_dec_wide(room, v[lo + k], scale, len)),
            }
            Ok(())
        }
        Kind::Str { s, .. } => {
            at.fill_wide(dst, |k, room, len| s.copy_to(lo + k, len, room));
            Ok(())
        }
    }
}

/// Writes the DATETIME cells whose lengths pass 1 found, row `i` being
/// `us(i)` microseconds since the epoch.
#[inline(always)]
fn write_datetimes(
    mut at: Cursor<'_>,
    dst: &mut [u8],
    us: impl Fn(usize) -> i64,
) -> std::result::Result<(), EncodeError> {
    let lo = at.lo;
    with_days(|days| {
        at.each(dst, |k, c| {
            let (t, len) = datetime_text_with(us(lo + k), days).map_err(|e| cell_error(e, lo + k))?;
            // Fixed-size copies (`c` is 19 or 26 bytes; a slice copy calls memcpy).
            if len == 19 {
                c[..19].copy_from_slice(&t[..19]);
            } else {
                c[..26].copy_from_slice(&t);
            }
            Ok(())
        })
    })
}

/// Staged columns are written from their cells, never here.
fn unreachable_staged() -> std::result::Result<(), EncodeError> {
    Err(EncodeError::Value { column: 0, row: 0, msg: "internal error: a staged column in the typed pass".into() })
}

/// Pass 1 checked every value a typed loop writes; an error here is a bug,
/// reported rather than written.
fn cell_error(e: CellError, row: usize) -> EncodeError {
    let msg = match e {
        CellError::Bad(m) | CellError::NotCsv { why: m, .. } => m,
    };
    EncodeError::Value { column: 0, row, msg: format!("internal error: {msg}") }
}

const DIGITS2: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// Writes `v` in exactly `c.len()` digits (leading zeros when `c` is longer).
#[inline(always)]
fn put_digits(c: &mut [u8], mut v: u64) {
    let mut i = c.len();
    // Four digits per division, then two, then one.
    while i >= 4 {
        let r = (v % 10_000) as usize;
        v /= 10_000;
        let (hi, lo) = (r / 100 * 2, r % 100 * 2);
        c[i - 4..i - 2].copy_from_slice(&DIGITS2[hi..hi + 2]);
        c[i - 2..i].copy_from_slice(&DIGITS2[lo..lo + 2]);
        i -= 4;
    }
    if i >= 2 {
        let d = (v % 100) as usize * 2;
        v /= 100;
        c[i - 2..i].copy_from_slice(&DIGITS2[d..d + 2]);
        i -= 2;
    }
    if i == 1 {
        c[0] = b'0' + (v % 10) as u8;
    }
}

/// The division loop for signed values (the tests' reference).
#[cfg(test)]
fn put_int(c: &mut [u8], x: i64) {
    if x < 0 {
        c[0] = b'-';
        put_digits(&mut c[1..], x.unsigned_abs());
    } else {
        put_digits(c, x as u64);
    }
}

/// Writes a decimal of `scale` fraction digits in exactly `c.len()` bytes.
#[inline(always)]
fn put_dec(c: &mut [u8], x: i128, scale: u32) {
    let (c, mut a) = if x < 0 {
        c[0] = b'-';
        (&mut c[1..], x.unsigned_abs() as u64)
    } else {
        (c, x as u64)
    };
    if scale == 0 {
        put_digits(c, a);
        return;
    }
    // The fraction digits from the right (two at a time), then the point,
    // then the rest.
    let mut i = c.len();
    let mut left = scale;
    while left >= 2 {
        let d = (a % 100) as usize * 2;
        a /= 100;
        c[i - 2..i].copy_from_slice(&DIGITS2[d..d + 2]);
        i -= 2;
        left -= 2;
    }
    if left == 1 {
        i -= 1;
        c[i] = b'0' + (a % 10) as u8;
        a /= 10;
    }
    c[i - 1] = b'.';
    put_digits(&mut c[..i - 1], a);
}

/// The two digits of `v < 100` as ASCII, the tens in the low byte.
#[inline(always)]
fn pair(v: usize) -> u16 {
    u16::from_le_bytes([DIGITS2[2 * v], DIGITS2[2 * v + 1]])
}

/// The 8 decimal digits of `x < 10^8` as ASCII, the most significant in
/// the lowest byte (text order in memory), computed in one word: split
/// into 4-digit halves, then 2-digit quarters, then digits, every lane at
/// once (no divisions, no branches).
#[inline(always)]
fn digits8(x: u32) -> u64 {
    debug_assert!(x < 100_000_000);
    let (hi, lo) = (x / 10_000, x % 10_000);
    // 32-bit lanes of 4 digits; then 16-bit lanes of 2 (n / 100 is
    // (n * 10486) >> 20 for n < 10^4); then 8-bit lanes of 1 (n / 10 is
    // (n * 103) >> 10 for n < 100).
    let v = ((lo as u64) << 32) | hi as u64;
    let q = ((v * 10486) >> 20) & 0x0000_007F_0000_007F;
    let v = ((v - q * 100) << 16) | q;
    let t = ((v * 103) >> 10) & 0x000F_000F_000F_000F;
    let v = ((v - t * 10) << 8) | t;
    v | 0x3030_3030_3030_3030
}

/// Writes the `len` digits of `v` at the start of `room`, possibly writing
/// up to 16 bytes past them (see [`Cursor::fill_wide`]): words of eight
/// digits rather than a division loop whose length varies from value to
/// value.
#[inline(always)]
fn put_digits_wide(room: &mut [u8], v: u64, len: usize) {
    debug_assert!(len >= 20 || v < 10u64.pow(len as u32));
    if (1..=2).contains(&len) && room.len() >= 2 {
        // One or two digits (line numbers, small counts, a decimal's
        // integer part): a pair from the table, its leading zero shifted
        // out for one digit.
        let t = pair(v as usize) >> (8 * (2 - len));
        room[..2].copy_from_slice(&t.to_le_bytes());
    } else if (1..=8).contains(&len) && room.len() >= 8 {
        // The word's first 8 - len bytes are leading zeros.
        let t = digits8(v as u32) >> (8 * (8 - len));
        room[..8].copy_from_slice(&t.to_le_bytes());
    } else if (9..=16).contains(&len) && room.len() >= 16 {
        let (hi, lo) = (v / 100_000_000, v % 100_000_000);
        let h = len - 8;
        let t = digits8(hi as u32) >> (8 * (8 - h));
        room[..8].copy_from_slice(&t.to_le_bytes());
        room[h..h + 8].copy_from_slice(&digits8(lo as u32).to_le_bytes());
    } else {
        put_digits(&mut room[..len], v);
    }
}

/// [`put_int`] through [`put_digits_wide`].
#[inline(always)]
fn put_int_wide(room: &mut [u8], x: i64, len: usize) {
    if x < 0 {
        room[0] = b'-';
        put_digits_wide(&mut room[1..], x.unsigned_abs(), len - 1);
    } else {
        put_digits_wide(room, x as u64, len);
    }
}

/// [`put_dec`] through [`put_digits_wide`] (`|x| <= u64::MAX`, as pass 1
/// checked).
#[inline(always)]
fn put_dec_wide(room: &mut [u8], x: i128, scale: u32, len: usize) {
    let (room, a, len) = if x < 0 {
        room[0] = b'-';
        (&mut room[1..], x.unsigned_abs() as u64, len - 1)
    } else {
        (room, x as u64, len)
    };
    if scale == 0 {
        put_digits_wide(room, a, len);
        return;
    }
    // The integer part, the point, then the fraction as one word.
    let int_len = len - scale as usize - 1;
    if scale == 2 {
        // Cents, the most common scale: the fraction is one pair.
        put_digits_wide(room, a / 100, int_len);
        room[int_len] = b'.';
        room[int_len + 1..int_len + 3].copy_from_slice(&pair((a % 100) as usize).to_le_bytes());
    } else if scale <= 8 && room.len() >= len + 8 {
        let p = POW10[scale as usize];
        let (int, frac) = (a / p, a % p);
        put_digits_wide(room, int, int_len);
        room[int_len] = b'.';
        let f = digits8(frac as u32) >> (8 * (8 - scale));
        room[int_len + 1..int_len + 9].copy_from_slice(&f.to_le_bytes());
    } else {
        put_dec(&mut room[..len], a as i128, scale);
    }
}

/// The most bytes an ordinary block of rows `lo..hi` can take (separators
/// included) when every cell of every column takes its column's typed loop
/// (no column is staged, no row goes elsewhere); `None` otherwise.
fn ordinary(cols: &[Col<'_, '_>], lo: usize, hi: usize) -> Option<usize> {
    let n = hi - lo;
    let mut bound = 0usize;
    for col in cols {
        // Each cell's widest text, and its terminator.
        let widest = match &col.kind {
            Kind::Staged => return None,
            // The block's widest text rather than the type's: growing the
            // buffer zero-fills it first.
            // (A NULL's `\N` takes two.)
            Kind::Int(v, range) => {
                if !range.is_none_or(|r| ints_within(v, lo, hi, r)) {
                    return None;
                }
                n * 2.max(match v {
                    Ints::I8(v) => int_width(&v[lo..hi], |x| x as i64),
                    Ints::I16(v) => int_width(&v[lo..hi], |x| x as i64),
                    Ints::I32(v) => int_width(&v[lo..hi], |x| x as i64),
                    Ints::I64(v) => int_width(&v[lo..hi], |x| x),
                    Ints::U8(v) => int_width(&v[lo..hi], |x| x as i64),
                    Ints::U16(v) => int_width(&v[lo..hi], |x| x as i64),
                    Ints::U32(v) => int_width(&v[lo..hi], |x| x as i64),
                    Ints::U64(v) => digits(v[lo..hi].iter().fold(0, |m, &x| m | x)) as usize,
                })
            }
            Kind::Date(v) => {
                if !v[lo..hi].iter().all(|&d| (YEAR_1..=MAX_DAY).contains(&(d as i64))) {
                    return None;
                }
                n * 10
            }
            Kind::Ts { v, mul } => {
                let fine =
                    |x: i64| x.checked_mul(*mul).is_some_and(|us| (YEAR_1..=MAX_DAY).contains(&us.div_euclid(DAY_US)));
                if !v[lo..hi].iter().all(|&x| fine(x)) {
                    return None;
                }
                n * 26
            }
            Kind::TsNs(v) => {
                if !v[lo..hi].iter().all(|&x| x % 1000 == 0) {
                    return None;
                }
                n * 26
            }
            Kind::Dec { v, scale, max } => {
                let mut widest = 0u128;
                for &x in &v[lo..hi] {
                    widest = widest.max(x.unsigned_abs());
                }
                if widest >= *max {
                    return None;
                }
                n * dec_len_wide(widest, *scale)
            }
            Kind::Str { s: Strings::View { views, bufs }, max } => {
                let (fine, bytes) = view_check(&views[lo..hi], bufs, *max);
                if !fine {
                    return None;
                }
                bytes + 2 * nulls_in(col, lo, n)
            }
            Kind::Str { s, max } => {
                if !((lo..hi).all(|i| s.len(i) <= *max) && carried_as_is(s, lo, hi)) {
                    return None;
                }
                s.contiguous(lo, hi)?.len() + 2 * nulls_in(col, lo, n)
            }
            Kind::Bool(_) => n * 2,
            Kind::F64(_) => n * DOUBLE_TEXT_MAX,
        };
        bound += widest + n;
    }
    Some(bound)
}

/// The NULLs among `n` rows from `lo` (a NULL string writes `\N` in place
/// of its value, whatever its length).
fn nulls_in(col: &Col<'_, '_>, lo: usize, n: usize) -> usize {
    col.nulls.map_or(0, |nl| nl.slice(lo, n).null_count())
}

/// At least the longest text among integers `v` (two bytes more at most:
/// a digit, and a sign another value has), by ORs that vectorize: every
/// `|x|` is at most `mag + 1`.
#[inline(always)]
fn int_width<T: Copy>(v: &[T], f: impl Fn(T) -> i64) -> usize {
    let (mut mag, mut neg) = (0u64, 0i64);
    for &x in v {
        let x = f(x);
        // `|x| - 1` for a negative `x`.
        mag |= (x ^ (x >> 63)) as u64;
        neg |= x;
    }
    (neg < 0) as usize + digits(mag.saturating_add(1)) as usize
}

/// The longest text of a decimal of `scale` whose magnitude is at most
/// `widest` (with a sign).
fn dec_len_wide(widest: u128, scale: u32) -> usize {
    const E20: u128 = 10u128.pow(20);
    let digits = match u64::try_from(widest) {
        Ok(a) => digits(a) as usize,
        // u128::MAX / 10^20 is below 2^64.
        Err(_) if widest >= E20 => 20 + digits((widest / E20) as u64) as usize,
        Err(_) => 20,
    };
    let scale = scale as usize;
    if scale == 0 { 1 + digits } else { 1 + digits.max(scale + 1) + 1 }
}

/// Whether integers `lo..hi` of `v` all lie in `[min, max]` (by the
/// smallest and the largest, which vectorizes).
fn ints_within(v: &Ints<'_>, lo: usize, hi: usize, (min, max): (i128, i128)) -> bool {
    fn span<T: Copy + Ord>(v: &[T]) -> Option<(T, T)> {
        let first = *v.first()?;
        Some(v.iter().fold((first, first), |(a, b), &x| (a.min(x), b.max(x))))
    }
    let within = |s: Option<(i128, i128)>| s.is_none_or(|(a, b)| min <= a && b <= max);
    match v {
        Ints::I8(v) => within(span(&v[lo..hi]).map(|(a, b)| (a.into(), b.into()))),
        Ints::I16(v) => within(span(&v[lo..hi]).map(|(a, b)| (a.into(), b.into()))),
        Ints::I32(v) => within(span(&v[lo..hi]).map(|(a, b)| (a.into(), b.into()))),
        Ints::I64(v) => within(span(&v[lo..hi]).map(|(a, b)| (a.into(), b.into()))),
        Ints::U8(v) => within(span(&v[lo..hi]).map(|(a, b)| (a.into(), b.into()))),
        Ints::U16(v) => within(span(&v[lo..hi]).map(|(a, b)| (a.into(), b.into()))),
        Ints::U32(v) => within(span(&v[lo..hi]).map(|(a, b)| (a.into(), b.into()))),
        Ints::U64(v) => within(span(&v[lo..hi]).map(|(a, b)| (a.into(), b.into()))),
    }
}

/// How [`write_rows`] writes a column's cells: one level of dispatch per cell.
#[derive(Clone, Copy)]
enum Cell<'a> {
    I8(&'a [i8]),
    I16(&'a [i16]),
    I32(&'a [i32]),
    I64(&'a [i64]),
    U8(&'a [u8]),
    U16(&'a [u16]),
    U32(&'a [u32]),
    U64(&'a [u64]),
    Date(&'a [i32]),
    Ts(&'a [i64], i64),
    TsNs(&'a [i64]),
    Cents(&'a [i128]),
    Dec(&'a [i128], u32),
    Off32(&'a [i32], &'a [u8]),
    Off64(&'a [i64], &'a [u8]),
    View(&'a [u128], &'a [arrow::buffer::Buffer]),
    Bool(&'a arrow::buffer::BooleanBuffer),
    /// Doubles; whether to try [`put_cents`] first.
    F64(&'a [f64], bool),
    /// A staged column: never in an ordinary block.
    Staged,
}

fn cell_of<'a>(kind: &Kind<'a>, nulls: Option<&arrow::buffer::NullBuffer>) -> Cell<'a> {
    match *kind {
        Kind::Staged => Cell::Staged,
        Kind::Int(v, _) => match *v {
            Ints::I8(v) => Cell::I8(v),
            Ints::I16(v) => Cell::I16(v),
            Ints::I32(v) => Cell::I32(v),
            Ints::I64(v) => Cell::I64(v),
            Ints::U8(v) => Cell::U8(v),
            Ints::U16(v) => Cell::U16(v),
            Ints::U32(v) => Cell::U32(v),
            Ints::U64(v) => Cell::U64(v),
        },
        Kind::Date(v) => Cell::Date(v),
        Kind::Ts { v, mul } => Cell::Ts(v, mul),
        Kind::TsNs(v) => Cell::TsNs(v),
        Kind::Dec { v, scale: 2, .. } => Cell::Cents(v),
        Kind::Dec { v, scale, .. } => Cell::Dec(v, scale),
        Kind::Str { s: Strings::Offsets32 { offs, data }, .. } => Cell::Off32(offs, data),
        Kind::Str { s: Strings::Offsets64 { offs, data }, .. } => Cell::Off64(offs, data),
        Kind::Str { s: Strings::View { views, bufs }, .. } => Cell::View(views, bufs),
        Kind::Bool(b) => Cell::Bool(b),
        Kind::F64(v) => Cell::F64(v, cents_column(v, nulls)),
    }
}

/// Writes the ordinary block of rows `lo..hi` ([`ordinary`] found it so and
/// its `bound`) a row at a time: each cell at the end of the text so far,
/// its length found as it is written. A cell may write past itself into
/// room the next one overwrites (the buffer keeps slack past `bound`).
fn write_rows(
    cols: &[Col<'_, '_>],
    lo: usize,
    hi: usize,
    bound: usize,
    out: &mut Vec<u8>,
    used: &mut usize,
) -> std::result::Result<(), EncodeError> {
    /// Room past the bound for the widest fixed-size write (64 bytes).
    const SLACK: usize = 64;
    let base = *used;
    if out.len() < base + bound + SLACK {
        out.resize(base + bound + SLACK, 0);
    }
    let mut at = base;
    with_days(|days| {
        for i in lo..hi {
            for col in cols {
                let room = &mut out[at..];
                let len = if col.nulls.is_some_and(|nl| nl.is_null(i)) {
                    room[..2].copy_from_slice(b"\\N");
                    2
                } else {
                    put_cell(col.cell, i, room, days).map_err(|e| cell_error(e, i))?
                };
                room[len] = COLUMN_SEPARATOR;
                at += len + 1;
            }
            out[at - 1] = ROW_DELIMITER;
        }
        Ok(())
    })?;
    debug_assert!(at - base <= bound);
    *used = at;
    Ok(())
}

/// Copies `data[a..a + len]` to the start of `room` as one 64-byte copy
/// when both sides have 64 bytes (one path for every short length: a mix of
/// lengths mispredicted the choice between 16, 32 and 64).
#[inline(always)]
fn copy_64(data: &[u8], a: usize, len: usize, room: &mut [u8]) {
    match data.get(a..a + 64) {
        Some(src) if len <= 64 && room.len() >= 64 => room[..64].copy_from_slice(src),
        _ => room[..len].copy_from_slice(&data[a..a + len]),
    }
}

/// [`copy_view`] without a branch on whether the value is inline: 64 bytes
/// from where a long value would be (buffer 0 for an inline one), then the
/// first 16 bytes chosen arithmetically (a random mix of inline and long
/// values mispredicted that branch on every other value).
#[inline(always)]
fn put_view(v: u128, bufs: &[arrow::buffer::Buffer], len: usize, room: &mut [u8]) {
    let long = len > 12;
    let mask = (long as usize).wrapping_neg();
    let (b, off) = (((v >> 64) as u32 as usize) & mask, ((v >> 96) as u32 as usize) & mask);
    if len <= 64
        && room.len() >= 64
        && let Some(src) = bufs.get(b).and_then(|buf| buf.get(off..off + 64))
    {
        room[..64].copy_from_slice(src);
        let from_buf = u128::from_le_bytes(src[..16].try_into().expect("16 bytes"));
        let pick = (long as u128).wrapping_neg();
        let head = (from_buf & pick) | ((v >> 32) & !pick);
        room[..16].copy_from_slice(&head.to_le_bytes());
    } else {
        copy_view(v, bufs, len, room);
    }
}

/// ryu's text of a double that is the nearest double to a whole number of
/// cents `n` with `|n| < 10^15` (prices, amounts), written without ryu (a
/// third of its time) at the start of `room` (maybe past it); `None` for
/// any other double. Exact: a decimal of at most 15 significant digits is
/// the only one of its length or shorter that reads back as its nearest
/// double (DBL_DIG), so it is the shortest text ryu finds, and for values
/// below 10^13 ryu writes it as `int.frac` with at least one fraction digit.
#[inline(always)]
fn put_cents(room: &mut [u8], v: f64) -> Option<usize> {
    let n = cents_of(v)?;
    let a = n.unsigned_abs();
    let len = dec_len(n < 0, a, 2) as usize;
    put_dec_wide(room, n as i128, 2, len);
    // `12.30` is `12.3`, `12.00` is `12.0`.
    Some(len - (a % 10 == 0) as usize)
}

/// The `n` of [`put_cents`], if `v` is such a double.
#[inline(always)]
fn cents_of(v: f64) -> Option<i64> {
    let c = (v * 100.0).round();
    // NaN and infinities fail the first test; zero keeps its sign (`-0.0`)
    // through ryu.
    let small = c.abs() < 1e15;
    if !small || v == 0.0 || c / 100.0 != v {
        return None;
    }
    Some(c as i64)
}

/// Whether a column of doubles looks like amounts: half of its first 16
/// values (not NULLs, whose slots hold anything) whole cents. (The check
/// costs a column of other doubles 5%; either way the text is ryu's.)
fn cents_column(v: &[f64], nulls: Option<&arrow::buffer::NullBuffer>) -> bool {
    let valid = (0..v.len()).filter(|&i| nulls.is_none_or(|n| n.is_valid(i))).take(16);
    valid.filter(|&i| cents_of(v[i]).is_some()).count() >= 8
}

/// Writes value `i` of `cell` at the start of `room` (maybe past it) and
/// returns its length.
#[inline(always)]
fn put_cell(cell: Cell<'_>, i: usize, room: &mut [u8], days: &mut DayCache) -> std::result::Result<usize, CellError> {
    #[inline(always)]
    fn int(room: &mut [u8], x: i64) -> usize {
        let len = (x < 0) as usize + digits(x.unsigned_abs()) as usize;
        put_int_wide(room, x, len);
        len
    }
    #[inline(always)]
    fn uint(room: &mut [u8], x: u64) -> usize {
        let len = digits(x) as usize;
        put_digits_wide(room, x, len);
        len
    }
    #[inline(always)]
    fn dec(room: &mut [u8], x: i128, scale: u32) -> usize {
        let a = x.unsigned_abs();
        if a > u64::MAX as u128 {
            // Beyond 64 bits (Spark's DECIMAL(38,18) from 18.45 on): the
            // general writer's text.
            let mut t = [0u8; DECIMAL_TEXT_MAX];
            let len = decimal_text(x, scale as u8, &mut t);
            room[..len].copy_from_slice(&t[..len]);
            return len;
        }
        let len = dec_len(x < 0, a as u64, scale) as usize;
        put_dec_wide(room, x, scale, len);
        len
    }
    Ok(match cell {
        Cell::I8(v) => int(room, v[i] as i64),
        Cell::I16(v) => int(room, v[i] as i64),
        Cell::I32(v) => int(room, v[i] as i64),
        Cell::I64(v) => int(room, v[i]),
        Cell::U8(v) => uint(room, v[i] as u64),
        Cell::U16(v) => uint(room, v[i] as u64),
        Cell::U32(v) => uint(room, v[i] as u64),
        Cell::U64(v) => uint(room, v[i]),
        Cell::Date(v) => {
            room[..10].copy_from_slice(&days.text(v[i] as i64)?);
            10
        }
        Cell::Ts(v, mul) => {
            let (t, len) = datetime_text_with(v[i] * mul, days)?;
            room[..26].copy_from_slice(&t);
            len
        }
        Cell::TsNs(v) => {
            let (t, len) = datetime_text_with(v[i] / 1000, days)?;
            room[..26].copy_from_slice(&t);
            len
        }
        Cell::Cents(v) => dec(room, v[i], 2),
        Cell::Dec(v, scale) => dec(room, v[i], scale),
        Cell::Off32(offs, data) => {
            let (a, len) = (offs[i] as usize, (offs[i + 1] - offs[i]) as usize);
            copy_64(data, a, len, room);
            len
        }
        Cell::Off64(offs, data) => {
            let (a, len) = (offs[i] as usize, (offs[i + 1] - offs[i]) as usize);
            copy_64(data, a, len, room);
            len
        }
        Cell::View(views, bufs) => {
            let v = views[i];
            let len = v as u32 as usize;
            put_view(v, bufs, len, room);
            len
        }
        Cell::Bool(b) => {
            room[0] = b'0' + b.value(i) as u8;
            1
        }
        Cell::F64(v, cents) => {
            let x = v[i];
            if cents && let Some(len) = put_cents(room, x) {
                return Ok(len);
            }
            let mut b = ryu::Buffer::new();
            let t = double_text(x, &mut b);
            room[..t.len()].copy_from_slice(t);
            t.len()
        }
        Cell::Staged => return Err(CellError::Bad("a staged column in the row pass".into())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng::Rng;

    #[test]
    fn digits_in_place() {
        for p in 0..20 {
            let t = 10u64.pow(p);
            for v in [t - 1, t, t + 1] {
                assert_eq!(digits(v), v.to_string().len() as u32, "{v}");
            }
        }
        for v in [0u64, 1, 9, 10, 99, 100, 12345, u32::MAX as u64, u64::MAX, 10u64.pow(19)] {
            let mut c = vec![0u8; digits(v) as usize];
            put_digits(&mut c, v);
            assert_eq!(c, v.to_string().as_bytes());
        }
        for x in [0i64, -1, 7, -10, 1234567, i64::MIN, i64::MAX] {
            let mut c = vec![0u8; (x < 0) as usize + digits(x.unsigned_abs()) as usize];
            put_int(&mut c, x);
            assert_eq!(c, x.to_string().as_bytes());
        }
        for (x, scale) in [
            (0i128, 2u32),
            (5, 2),
            (-5, 2),
            (123456, 2),
            (-100, 2),
            (7, 0),
            (-7, 0),
            (1, 19),
            (u64::MAX as i128, 19),
            (42, 5),
        ] {
            let a = x.unsigned_abs() as u64;
            let mut c = vec![0u8; dec_len(x < 0, a, scale) as usize];
            put_dec(&mut c, x, scale);
            let mut want = Vec::new();
            push_decimal(&mut want, x, scale as u8);
            assert_eq!(String::from_utf8(c).unwrap(), String::from_utf8(want).unwrap(), "{x} scale {scale}");
        }
    }

    /// A column of random values (and its target type), with the edge values
    /// of its kind: extremes, out-of-range values, bytes CSV cannot carry,
    /// NULLs; `bad` adds values the load must refuse; `clean` strings hold
    /// only values CSV carries as they are.
    fn random_column(r: &mut Rng, kind: u64, n: usize, bad: bool, clean: bool) -> (ArrayRef, &'static str) {
        let null = |r: &mut Rng| r.below(10) == 0;
        match kind {
            0 => (
                Arc::new(Int64Array::from_iter((0..n).map(|_| {
                    (!null(r))
                        .then(|| r.pick(&[0, -1, i64::MIN, i64::MAX, 9, 10, -10], |r| r.next() as i64 >> r.below(60)))
                }))),
                "BIGINT",
            ),
            1 => (
                Arc::new(Int32Array::from_iter(
                    (0..n).map(|_| Some(r.pick(&[i32::MIN, i32::MAX, 0], |r| r.next() as i32))),
                )),
                "INT",
            ),
            2 => (Arc::new(Int8Array::from_iter((0..n).map(|_| (!null(r)).then(|| r.next() as i8)))), "TINYINT"),
            3 => (
                Arc::new(UInt64Array::from_iter(
                    (0..n).map(|_| Some(r.pick(&[0, u64::MAX], |r| r.next() >> r.below(64)))),
                )),
                "LARGEINT",
            ),
            // Checked against INT's range: typed while a block's values are
            // within, else staged (and refused).
            4 => {
                let (lo, hi) = (i32::MIN as i64, i32::MAX as i64);
                let edges: &[i64] = if bad { &[lo - 1, hi + 1, lo, hi] } else { &[lo, hi, 0, -1] };
                let a = Int64Array::from_iter(
                    (0..n).map(|_| (!null(r)).then(|| r.pick(edges, |r| r.below(1 << 20) as i64 - (1 << 19)))),
                );
                (Arc::new(a), "INT")
            }
            5 => {
                let top = if bad { 10i128.pow(15) + 1 } else { 10i128.pow(15) };
                let a = Decimal128Array::from_iter((0..n).map(|_| {
                    (!null(r)).then(|| {
                        r.pick(&[0, 1, -1, 99, -100, top - 1, 1 - top], |r| {
                            (r.next() % top as u64) as i128 * if r.below(2) == 0 { 1 } else { -1 }
                        })
                    })
                }));
                let a = a.with_precision_and_scale(15, 2).unwrap();
                (Arc::new(a), "DECIMAL(15,2)")
            }
            6 => {
                // Beyond 64 bits now and then: staged.
                let a = Decimal128Array::from_iter((0..n).map(|_| {
                    Some(r.pick(
                        &[
                            i128::from(u64::MAX) * 1000,
                            i128::from(u64::MAX),
                            i128::from(i64::MAX) + 1,
                            i128::from(i64::MIN),
                            i128::from(i64::MIN) - 1,
                            -7,
                        ],
                        |r| (r.next() >> 3) as i128,
                    ))
                }));
                (Arc::new(a.with_precision_and_scale(38, 10).unwrap()), "DECIMAL(38,10)")
            }
            7 => {
                let a = Decimal128Array::from_iter((0..n).map(|_| Some((r.next() % 100_000) as i128 - 50_000)));
                (Arc::new(a.with_precision_and_scale(9, 0).unwrap()), "DECIMAL(9,0)")
            }
            8 => {
                // One kind of bad day per column, so one cannot hide the other.
                let edges: &[i32] = match (bad, r.below(2)) {
                    (true, 0) => &[-719_529, 0],
                    (true, _) => &[2_932_897, 0],
                    _ => &[-719_528, -719_162, 2_932_896, 0, -1],
                };
                (
                    Arc::new(Date32Array::from_iter(
                        (0..n).map(|_| (!null(r)).then(|| r.pick(edges, |r| r.below(40_000) as i32 - 10_000))),
                    )),
                    "DATE",
                )
            }
            9 => {
                let a = TimestampMicrosecondArray::from_iter((0..n).map(|_| {
                    (!null(r)).then(|| {
                        r.pick(&[0, -1, 86_400_000_000, -62_135_596_800_000_000, 253_402_300_799_999_999], |r| {
                            (r.next() % 4_000_000_000_000_000) as i64 - 1_000_000_000_000_000
                        })
                    })
                }));
                (Arc::new(a), "DATETIME")
            }
            10 => (
                Arc::new(TimestampSecondArray::from_iter((0..n).map(|_| Some(r.below(4_000_000_000) as i64)))),
                "DATETIME",
            ),
            11 => (
                Arc::new(
                    TimestampMillisecondArray::from_iter((0..n).map(|_| Some(r.below(1 << 45) as i64)))
                        .with_timezone("UTC"),
                ),
                "DATETIME",
            ),
            12 => {
                // Whole microseconds, but for a bad column's sub-microsecond
                // values now and then.
                let edges = [-9_223_372_036_854_775_000, 9_223_372_036_854_775_000, 0, -1000, 86_400_000_000_000];
                let a = TimestampNanosecondArray::from_iter((0..n).map(|_| {
                    (!null(r)).then(|| {
                        let x = r.pick(&edges, |r| (r.next() >> 2) as i64 / 1000 * 1000 - 1_000_000_000_000_000_000);
                        if bad && r.below(500) == 0 { x + 1 } else { x }
                    })
                }));
                (Arc::new(a), "DATETIME")
            }
            13..=15 => {
                // Values CSV carries as they are first.
                let words = [
                    "",
                    "a",
                    "N",
                    "héllo wörld",
                    "tab\tand\nnewline",
                    "a long value of more than twelve bytes",
                    "quote\"d",
                    "\\N",
                    "x\u{1}y",
                    "\u{2}",
                ];
                let words: &[&str] = if clean { &words[..7] } else { &words };
                let long = if bad { 40 } else { 100 };
                let vals: Vec<Option<String>> = (0..n)
                    .map(|_| {
                        (!null(r)).then(|| {
                            let w = words[r.below(words.len() as u64) as usize];
                            if r.below(4) == 0 {
                                w.chars().cycle().take(r.below(long) as usize).collect()
                            } else {
                                w.to_string()
                            }
                        })
                    })
                    .collect();
                let a: ArrayRef = match kind {
                    13 => Arc::new(StringArray::from(vals)),
                    14 => Arc::new(LargeStringArray::from(vals)),
                    _ => Arc::new(StringViewArray::from(vals)),
                };
                (a, if bad { "VARCHAR(30)" } else { "VARCHAR(200)" })
            }
            16 => {
                let edges = [
                    f64::NAN,
                    f64::INFINITY,
                    f64::NEG_INFINITY,
                    -0.0,
                    0.0,
                    f64::MAX,
                    f64::MIN,
                    f64::MIN_POSITIVE,
                    -2.2250738585072014e-308,
                    5e-324,
                    0.1,
                    1e21,
                    1e-7,
                    -1.5,
                ];
                let a = Float64Array::from_iter(
                    (0..n).map(|_| (!null(r)).then(|| r.pick(&edges, |r| f64::from_bits(r.next())))),
                );
                (Arc::new(a), "DOUBLE")
            }
            // Digits 0..=7, mostly NULL (`\N` is wider than each).
            18 => {
                (Arc::new(Int32Array::from_iter((0..n).map(|_| (r.below(8) == 0).then(|| r.below(8) as i32)))), "INT")
            }
            // Amounts: whole cents (written without ryu), now and then another double.
            20 => {
                let edges = [-0.0, 0.0, f64::NAN, 0.1 + 0.2, 1e15, 9_999_999_999_999.99, -0.01, 1e300];
                let a = Float64Array::from_iter((0..n).map(|_| {
                    (!null(r))
                        .then(|| r.pick(&edges, |r| ((r.next() % 1_000_000_000) as i64 - 500_000_000) as f64 / 100.0))
                }));
                (Arc::new(a), "DOUBLE")
            }
            // Always staged.
            19 => (Arc::new(Float32Array::from_iter((0..n).map(|_| Some(r.next() as u32 as f32)))), "FLOAT"),
            _ => (
                Arc::new(BooleanArray::from_iter((0..n).map(|_| (!null(r)).then(|| r.below(2) == 0)))),
                if r.below(2) == 0 { "BOOLEAN" } else { "TINYINT" },
            ),
        }
    }

    /// A column of amounts takes the cents path whatever NULLs lead it; other
    /// doubles do not.
    #[test]
    fn amounts_are_found_past_nulls() {
        let mut r = Rng(0xa_11_0c);
        let amounts: ArrayRef = Arc::new(Float64Array::from_iter(
            (0..300).map(|i| (i >= 100).then(|| (r.below(1_000_000) as i64 - 500_000) as f64 / 100.0)),
        ));
        let other: ArrayRef = Arc::new(Float64Array::from_iter((0..300).map(|_| Some(f64::from_bits(r.next() >> 2)))));
        let ty = SrType::parse("DOUBLE").unwrap();
        for (a, want) in [(amounts.slice(50, 250), true), (other, false)] {
            let writers = [build(&a, &ty, Zone::Utc, false).unwrap()];
            let cols = columns(&writers);
            assert!(matches!(cols[0].cell, Cell::F64(_, c) if c == want), "{want}");
        }
    }

    /// A decimal's bound is the longest text of its magnitude, with a sign.
    #[test]
    fn wide_decimal_bound_is_the_longest_text() {
        let mut widths: Vec<u128> = vec![0, 1, u64::MAX as u128, u64::MAX as u128 + 1, 10u128.pow(38) - 1];
        for p in 1..=38 {
            widths.extend([10u128.pow(p) - 1, 10u128.pow(p), 10u128.pow(p) + 1]);
        }
        for &w in &widths {
            for scale in [0u32, 1, 2, 8, 18, 19] {
                let len = |x: i128| decimal_text(x, scale as u8, &mut [0u8; DECIMAL_TEXT_MAX]);
                let x = w.min(i128::MAX as u128) as i128;
                assert_eq!(dec_len_wide(w, scale), len(-x).max(1 + len(x)), "{w} scale {scale}");
            }
        }
    }

    /// Doubles of whole cents get ryu's text without ryu, and no other does.
    #[test]
    fn cents_are_ryus_text() {
        let mut r = Rng(0xcea75);
        let mut room = [0u8; 64];
        let mut check = |v: f64| -> bool {
            let want = ryu::Buffer::new().format(v).to_string();
            match put_cents(&mut room, v) {
                Some(len) => {
                    assert_eq!(std::str::from_utf8(&room[..len]).unwrap(), want, "{v:e}");
                    true
                }
                None => false,
            }
        };
        let mut hits = 0;
        for n in -300_000i64..300_000 {
            hits += check(n as f64 / 100.0) as usize;
        }
        assert_eq!(hits, 600_000 - 1, "every cent but zero");
        for _ in 0..1_000_000 {
            let n = (r.next() % 1_000_000_000_000_000) as i64 * if r.below(2) == 0 { 1 } else { -1 };
            assert!(check(n as f64 / 100.0) || n == 0, "{n}");
            // The neighbours of a cent, and any double.
            let v = n as f64 / 100.0;
            check(f64::from_bits(v.to_bits() + 1));
            check(f64::from_bits(v.to_bits().wrapping_sub(1)));
            check(f64::from_bits(r.next()));
            check(r.below(1 << 40) as f64 / 1000.0);
        }
        for v in [0.0, -0.0, 1e15, -1e15, 9_999_999_999_999.99, 1e13, 0.01, -0.01, f64::NAN, f64::INFINITY, 5e-324] {
            check(v);
        }
    }

    /// The block pass writes exactly what the row-by-row pass writes, routes
    /// the same rows elsewhere and fails on the same cell, for every column
    /// kind, NULLs, sliced arrays, rows across block boundaries.
    #[test]
    fn blocks_write_what_rows_write() {
        let mut r = Rng(0x5eed_1234_abcd_0001);
        let (mut errors, mut ordinary_blocks, mut typed_strings) = (0, 0, 0);
        let (mut row_pass_floats, mut row_pass_bools, mut row_pass_cents, mut row_pass_wide) = (0, 0, 0, 0);
        for case in 0..1500 {
            let bad = case % 5 == 4;
            // Every third case, strings CSV carries as they are, and mostly
            // typed columns: whole blocks take the typed loops, most of them
            // a row at a time (a block of the other cases holds some value
            // that stages its column). Half of those have a staged first
            // column, so their other columns take the typed loops a column
            // at a time.
            let clean = !bad && case % 3 == 1;
            let staged_first = clean && case % 2 == 0;
            let ncols = if staged_first { 2 + r.below(4) } else { 1 + r.below(5) } as usize;
            let n = 1 + r.below(3 * BLOCK_ROWS as u64) as usize;
            let skip = r.below(50) as usize;
            let mut arrays = Vec::new();
            let mut types = Vec::new();
            // A bad case has one column with values the load must refuse.
            let bad_col = bad.then(|| r.below(ncols as u64) as usize);
            for ci in 0..ncols {
                let col_bad = bad_col == Some(ci);
                let kind = if col_bad {
                    [4, 5, 8, 8, 12, 13, 14, 15][r.below(8) as usize]
                } else if staged_first && ci == 0 {
                    19
                } else if clean {
                    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 20][r.below(20) as usize]
                } else {
                    r.below(21)
                };
                let (a, t) = random_column(&mut r, kind, n + skip, col_bad, clean);
                // Sliced: values, offsets and nulls start past zero.
                arrays.push(a.slice(skip, n));
                types.push(SrType::parse(t).unwrap());
            }
            let writers: Vec<Writer<'_>> =
                arrays.iter().zip(&types).map(|(a, t)| build(a, t, Zone::Utc, false).unwrap()).collect();
            let cols = columns(&writers);
            // Reused buffers hold old bytes: every byte sent must be written.
            crate::bufpool::give(vec![0xAA; 1 << 16]);
            let lo = r.below(n as u64) as usize;
            for b in (lo..n).step_by(BLOCK_ROWS) {
                let hi = (b + BLOCK_ROWS).min(n);
                if ncols > 1 && ordinary(&cols, b, hi).is_some() {
                    ordinary_blocks += 1;
                    row_pass_floats += cols.iter().any(|c| matches!(c.kind, Kind::F64(_))) as usize;
                    row_pass_bools += cols.iter().any(|c| matches!(c.kind, Kind::Bool(_))) as usize;
                    row_pass_cents += cols.iter().any(|c| matches!(c.cell, Cell::F64(_, true))) as usize;
                    let wide = |v: &[i128]| v[b..hi].iter().any(|x| x.unsigned_abs() > u64::MAX as u128);
                    row_pass_wide += cols.iter().any(|c| matches!(c.kind, Kind::Dec { v, .. } if wide(v))) as usize;
                    continue;
                }
                // Typed string columns in blocks a column at a time.
                for col in cols.iter().filter(|c| matches!(c.kind, Kind::Str { .. })) {
                    typed_strings += lengths(col, b, &mut vec![0; hi - b]) as usize;
                }
            }
            let want = render_rows(&writers, lo..n, 0);
            let got = render_range(&cols, lo..n, 0);
            match (want, got) {
                (Ok(w), Ok(g)) => {
                    if let Some(at) = (0..w.data.len().max(g.data.len())).find(|&i| w.data.get(i) != g.data.get(i)) {
                        let show = |d: &[u8]| {
                            String::from_utf8_lossy(&d[at.saturating_sub(40)..(at + 40).min(d.len())]).into_owned()
                        };
                        panic!(
                            "case {case} {types:?}: byte {at} differs:\nrows   {:?}\nblocks {:?}",
                            show(&w.data),
                            show(&g.data)
                        );
                    }
                    assert_eq!((g.csv_rows, &g.rerouted), (w.csv_rows, &w.rerouted), "case {case}");
                }
                (Err(w), Err(g)) => {
                    assert_eq!(g, w, "case {case}");
                    assert!(bad, "case {case} {types:?}: only a bad case fails: {g:?}");
                    errors += 1;
                }
                (w, g) => panic!("case {case} {types:?}: rows {:?} blocks {:?}", w.err(), g.err()),
            }
        }
        assert!(errors > 100, "the bad cases must fail ({errors})");
        assert!(ordinary_blocks > 200, "blocks a row at a time: {ordinary_blocks}");
        assert!(typed_strings > 100, "string blocks through the typed loops: {typed_strings}");
        assert!(row_pass_floats > 50, "blocks with doubles a row at a time: {row_pass_floats}");
        assert!(row_pass_bools > 50, "blocks with booleans a row at a time: {row_pass_bools}");
        assert!(row_pass_cents > 20, "blocks with amounts a row at a time: {row_pass_cents}");
        assert!(row_pass_wide > 20, "blocks with decimals beyond 64 bits a row at a time: {row_pass_wide}");
    }

    /// A block's integer width bound holds every value's text, two bytes
    /// more at most.
    #[test]
    fn integer_width_bounds_the_texts() {
        let mut r = Rng(0x1d7_a1d7);
        let mut blocks: Vec<Vec<i64>> = vec![vec![0], vec![-1], vec![i64::MIN], vec![i64::MAX], vec![9, -9], vec![-10]];
        for p in 0..19 {
            let t = 10i64.pow(p);
            blocks.extend([vec![t - 1], vec![t], vec![-t], vec![1 - t, t / 2]]);
        }
        blocks.extend((0..2000).map(|_| (0..1 + r.below(8)).map(|_| (r.next() as i64) >> r.below(64)).collect()));
        for b in &blocks {
            let longest = b.iter().map(|x| x.to_string().len()).max().unwrap();
            let w = int_width(b, |x| x);
            assert!(w >= longest && w <= longest + 2, "{b:?}: {w} for {longest}");
        }
    }

    /// The word-at-a-time check of inline views agrees with the byte scan.
    #[test]
    fn inline_view_check_is_the_byte_scan() {
        let mut vals: Vec<String> = vec!["\\N".into(), "\\NN".into(), "N\\".into(), "\\".into(), String::new()];
        for len in 1..=14usize {
            for at in 0..len {
                for b in [0u8, 1, 2, 3, 0x7f, b'\\', b'N', b'a'] {
                    let mut v = vec![b'x'; len];
                    v[at] = b;
                    vals.push(String::from_utf8(v).unwrap());
                }
            }
        }
        let a = StringViewArray::from_iter_values(&vals);
        for (i, v) in vals.iter().enumerate() {
            let want = v.as_bytes() != b"\\N" && plain_short(v.as_bytes());
            assert_eq!(view_lengths(&a.views()[i..i + 1], a.data_buffers(), usize::MAX, &mut [0]), want, "{v:?}");
        }
        // The lengths, and the longest value allowed.
        let mut l = vec![0; vals.len()];
        assert!(!view_lengths(a.views(), a.data_buffers(), usize::MAX, &mut l));
        assert_eq!(l, vals.iter().map(|v| v.len() as u32).collect::<Vec<_>>());
        let ok = StringViewArray::from_iter_values(["abc", "", "abcdefghijklmn"]);
        for (max, want) in [(14, true), (13, false), (3, false)] {
            assert_eq!(view_lengths(ok.views(), ok.data_buffers(), max, &mut [0; 3]), want, "max {max}");
        }
        let short = StringViewArray::from_iter_values(["abc", "abcd"]);
        assert!(!view_lengths(short.views(), short.data_buffers(), 3, &mut [0; 2]));
        // The row pass's check, which skips views it found good before: the
        // same verdicts, also for a bad value after many good repeats (of
        // short and long values of the same array).
        let good: Vec<u128> = (0..vals.len())
            .filter(|&i| vals[i].as_bytes() != b"\\N" && plain_short(vals[i].as_bytes()))
            .map(|i| a.views()[i])
            .step_by(7)
            .collect();
        assert!(good.iter().any(|&v| v as u32 > 12) && good.iter().any(|&v| v as u32 <= 12));
        for (i, v) in vals.iter().enumerate() {
            let want = v.as_bytes() != b"\\N" && plain_short(v.as_bytes());
            let views = [a.views()[i]; 3];
            assert_eq!(view_check(&views, a.data_buffers(), usize::MAX), (want, 3 * v.len()), "{v:?}");
            let mut mixed: Vec<u128> = good.iter().cycle().take(200).copied().collect();
            mixed.push(a.views()[i]);
            let ok_bytes: usize = mixed[..200].iter().map(|&v| v as u32 as usize).sum();
            let (fine, bytes) = view_check(&mixed, a.data_buffers(), usize::MAX);
            assert_eq!((fine, bytes), (want, ok_bytes + v.len()), "{v:?} after good repeats");
        }
        let repeats: Vec<u128> = ok.views().iter().cycle().take(100).copied().collect();
        assert!(!view_check(&repeats, ok.data_buffers(), 13).0, "too long, however often");
    }

    /// The word-at-a-time digits are the division loop's, at every length
    /// and across the word boundaries, with and without room to spare.
    #[test]
    fn wide_digits_are_the_loops() {
        let mut r = Rng(0x0d16_175e);
        let mut vals: Vec<u64> = vec![0, 1, 9, 10, 99, 100, u64::MAX, u64::MAX - 1];
        for p in 1..20 {
            let t = 10u64.pow(p);
            vals.extend([t - 1, t, t + 1, t / 2 + 7]);
        }
        vals.extend((0..20_000).map(|_| r.next() >> r.below(64)));
        for &v in &vals {
            let len = digits(v) as usize;
            for extra in [0usize, 3, 8, 40] {
                let mut want = vec![b'#'; len + extra];
                let mut got = want.clone();
                put_digits(&mut want[..len], v);
                put_digits_wide(&mut got, v, len);
                assert_eq!(&got[..len], &want[..len], "{v} room {}", len + extra);
                let x = v as i64;
                let l = (x < 0) as usize + digits(x.unsigned_abs()) as usize;
                let (mut want, mut got) = (vec![b'#'; l + extra], vec![b'#'; l + extra]);
                put_int(&mut want[..l], x);
                put_int_wide(&mut got, x, l);
                assert_eq!(&got[..l], &want[..l], "{x}");
                for scale in [0u32, 1, 2, 3, 8, 9, 12, 19] {
                    for x in [v as i128, -(v as i128)] {
                        let a = x.unsigned_abs() as u64;
                        let l = dec_len(x < 0, a, scale) as usize;
                        let (mut want, mut got) = (vec![b'#'; l + extra], vec![b'#'; l + extra]);
                        put_dec(&mut want[..l], x, scale);
                        put_dec_wide(&mut got, x, scale, l);
                        assert_eq!(&got[..l], &want[..l], "{x} scale {scale} room {}", l + extra);
                        let mut text = Vec::new();
                        push_decimal(&mut text, x, scale as u8);
                        assert_eq!(&got[..l], &text[..], "{x} scale {scale}");
                    }
                }
            }
        }
    }

    /// The word-at-a-time separator scan is the byte scan, at every length
    /// and position.
    #[test]
    fn short_scan_words_are_the_byte_scan() {
        for len in 0..40usize {
            for at in 0..len {
                for b in [0u8, 1, 2, 3, 0x7f, 0x80, 0x81, 0x82, 0xff, 0x01 ^ 0x80] {
                    let mut v = vec![b'x'; len];
                    v[at] = b;
                    let want = !v.iter().any(|&c| c == 1 || c == 2);
                    assert_eq!(plain_short(&v), want, "{v:?}");
                }
            }
        }
    }

    #[test]
    fn short_scan_finds_separators() {
        assert!(plain_short(b"abc\\N xyz \x00 \x03 \xff"));
        assert!(!plain_short(b"a\x01"));
        assert!(!plain_short(b"\x02"));
        assert!(plain_short(b""));
    }
}
