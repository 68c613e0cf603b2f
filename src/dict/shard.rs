//! One shard of a build's set of distinct values: the values back to back
//! in a record arena (a `u32` header — the length, and a bit for "already in
//! the current version" — then the bytes) and an open-addressing table of
//! `(record offset, low 32 hash bits)` slots with linear probing.
//!
//! The arena starts at 256 KiB and then grows 32 MiB at a time, never by
//! doubling: a request that large is at glibc's mmap threshold ceiling, so
//! the arena is then mapped on its own, grows in place (mremap, no copy),
//! its untouched tail takes no memory, and freeing it returns the memory at
//! once (the small start keeps a small build's address space small: 64 MiB
//! for 256 shards, not 8 GiB). Doubling from small
//! sizes left every outgrown copy in the heap (50 M values: 3.2 GB held for
//! 2.0 GB of data after the dedupe, a 4.1–4.3 GB peak in the sort, whose
//! ranges could not reuse what the shards freed).
//!
//! Why not hashbrown: probing a set of millions of values is two cache
//! misses per row (the slot, then the stored bytes to compare with), and
//! the CPU only overlaps misses it can see coming. hashbrown does not say
//! where a hash's slot is, so it cannot be read ahead. Here [`warm`] reads
//! the first slot of every row of a batch, then the record each slot points
//! at, as loads that do not depend on one another (the misses overlap); the
//! probes that follow hit the cache. The record keeps its length beside its
//! bytes, so a compare is one miss, not two (offset array, then bytes).

use crate::error::{Error, Result};

/// A free slot. No record starts at offset `u32::MAX` (a record takes at
/// least its 4-byte header and the arena ends before 4 GiB).
pub(crate) const EMPTY: u64 = u64::MAX;
/// Header bit: the value is in the current version.
const MARK: u32 = 1 << 31;
/// First arena size.
const START: usize = 256 << 10;
/// Arena growth step.
const GROW: usize = 32 << 20;
/// Rows read ahead together by [`warm`].
pub(crate) const BATCH: usize = 32;

/// One shard of a [`Distinct`](super::Distinct) set.
#[derive(Debug, Default)]
pub(crate) struct SetShard {
    recs: Vec<u8>,
    /// A power of two long (or empty); at most 70% used.
    slots: Vec<u64>,
    count: usize,
    marked: usize,
}

impl SetShard {
    /// Distinct values held.
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// Values not marked: the new ones.
    pub(crate) fn unmarked(&self) -> usize {
        self.count - self.marked
    }

    /// Bytes in use: the arena's values and the table (not the arena's
    /// reserve, up to 32 MiB of address space that is not resident until
    /// written).
    pub(crate) fn memory(&self) -> usize {
        self.recs.len() + self.slots.capacity() * 8
    }

    /// Frees the table and keeps only the new (unmarked) values, in their
    /// order, moved to the front of the arena, whose rest is released: the
    /// sort then walks the new values only, not every value of the input
    /// (an incremental build of l_comment walked 700 MB three times to find
    /// its 100 MB of new values).
    pub(crate) fn keep_new_values(&mut self) {
        self.slots = Vec::new();
        if self.marked == 0 {
            return;
        }
        let (mut r, mut w) = (0, 0);
        while r < self.recs.len() {
            let hdr = self.header(r);
            let n = 4 + (hdr & !MARK) as usize;
            if hdr & MARK == 0 {
                if w != r {
                    self.recs.copy_within(r..r + n, w);
                }
                w += n;
            }
            r += n;
        }
        self.recs.truncate(w);
        self.recs.shrink_to_fit();
        self.count -= self.marked;
        self.marked = 0;
    }

    #[inline]
    fn mask(&self) -> usize {
        self.slots.len().wrapping_sub(1)
    }

    /// The slot a hash's probe starts at.
    #[inline]
    fn home(&self, h32: u32) -> usize {
        h32 as usize & self.mask()
    }

    #[inline]
    fn header(&self, off: usize) -> u32 {
        let mut b = [0u8; 4];
        b.copy_from_slice(&self.recs[off..off + 4]);
        u32::from_le_bytes(b)
    }

    #[inline]
    fn value_at(&self, off: usize) -> &[u8] {
        let len = (self.header(off) & !MARK) as usize;
        &self.recs[off + 4..off + 4 + len]
    }

    /// The slot holding `v`, or the free slot where it would go.
    #[inline]
    fn probe(&self, v: &[u8], h32: u32) -> (usize, bool) {
        let mask = self.mask();
        let mut p = self.home(h32);
        loop {
            let e = self.slots[p];
            if e == EMPTY {
                return (p, false);
            }
            if e as u32 == h32 && self.value_at((e >> 32) as usize) == v {
                return (p, true);
            }
            p = (p + 1) & mask;
        }
    }

    fn grow(&mut self) {
        self.slots = grown(&self.slots, 64);
    }

    /// Adds `v` (hash `h`) unless it is there.
    #[inline]
    pub(crate) fn insert(&mut self, v: &[u8], h: u64) -> Result<()> {
        if self.count * 10 >= self.slots.len() * 7 {
            self.grow();
        }
        let h32 = h as u32;
        let (p, found) = self.probe(v, h32);
        if found {
            return Ok(());
        }
        let off = self.recs.len();
        if v.len() >= MARK as usize {
            return Err(Error::data(format!("a dictionary value of {} bytes is too long (at most 2 GiB)", v.len())));
        }
        if off + 4 + v.len() > u32::MAX as usize {
            return Err(Error::data(
                "a dictionary build holds more than 4 GiB of values in one of its 256 shards (about 1 TiB in \
                 all); split the dictionary",
            ));
        }
        if self.recs.capacity() - off < 4 + v.len() {
            let step = if self.recs.capacity() == 0 { START } else { GROW };
            self.recs.reserve_exact((4 + v.len()).max(step));
        }
        self.recs.extend_from_slice(&(v.len() as u32).to_le_bytes());
        self.recs.extend_from_slice(v);
        self.slots[p] = ((off as u64) << 32) | h32 as u64;
        self.count += 1;
        Ok(())
    }

    /// Marks `v` (hash `h`) as in the current version, if the set holds it.
    #[inline]
    pub(crate) fn mark(&mut self, v: &[u8], h: u64) {
        if self.slots.is_empty() {
            return;
        }
        let (p, found) = self.probe(v, h as u32);
        if found {
            let off = (self.slots[p] >> 32) as usize;
            let hdr = self.header(off);
            if hdr & MARK == 0 {
                self.recs[off..off + 4].copy_from_slice(&(hdr | MARK).to_le_bytes());
                self.marked += 1;
            }
        }
    }

    /// The values not marked, in insertion order.
    pub(crate) fn new_values(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let mut off = 0;
        std::iter::from_fn(move || {
            while off < self.recs.len() {
                let (hdr, v) = (self.header(off), self.value_at(off));
                off += 4 + v.len();
                if hdr & MARK == 0 {
                    return Some(v);
                }
            }
            None
        })
    }
}

/// A table of `(offset << 32 | low 32 hash bits)` slots twice as long (at
/// least `min`), every used slot placed again by linear probing.
pub(crate) fn grown(slots: &[u64], min: usize) -> Vec<u64> {
    let n = (slots.len() * 2).max(min);
    let mut out = vec![EMPTY; n];
    let mask = n - 1;
    for &e in slots {
        if e != EMPTY {
            let mut p = e as u32 as usize & mask;
            while out[p] != EMPTY {
                p = (p + 1) & mask;
            }
            out[p] = e;
        }
    }
    out
}

/// Reads, for every `(shard, value, hash)` of `batch`, the value's bytes and
/// the slot its hash starts at, then the header of the record that slot points at when
/// the hash bits match: loads independent of each other, so their cache
/// misses overlap. The result only keeps the loads from being optimized
/// away.
#[inline]
pub(crate) fn warm(shards: &[SetShard], batch: &[(usize, &[u8], u64)]) -> u64 {
    let mut first = [EMPTY; BATCH];
    let mut acc = 0u64;
    for (f, &(s, v, h)) in first.iter_mut().zip(batch) {
        let sh = &shards[s];
        if let Some(&e) = sh.slots.get(sh.home(h as u32)) {
            *f = e;
        }
        // The row's own bytes, compared or copied next.
        acc = acc.wrapping_add(v.last().copied().unwrap_or(0) as u64);
    }
    for (&e, &(s, _, h)) in first.iter().zip(batch) {
        if e != EMPTY && e as u32 == h as u32 {
            acc = acc.wrapping_add(shards[s].recs[(e >> 32) as usize] as u64);
        }
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserts_finds_marks_and_grows() {
        let mut s = SetShard::default();
        // Every value with the same low hash bits: the probe sequence and
        // the byte compare decide.
        for i in 0..1000u32 {
            s.insert(format!("v{i}").as_bytes(), 7).unwrap();
            s.insert(format!("v{i}").as_bytes(), 7).unwrap();
        }
        s.insert(b"", 7).unwrap();
        s.insert(b"", 7).unwrap();
        assert_eq!(s.len(), 1001);
        // Values past a growth step, one longer than a step, keep their place.
        let big = vec![b'x'; GROW + 10];
        let mid = vec![b'y'; GROW / 2];
        for v in [&big, &mid, &mid, &big] {
            s.insert(v, 9).unwrap();
        }
        for i in 0..20_000u32 {
            s.insert(format!("w{i:0>30}").as_bytes(), u64::from(i)).unwrap();
        }
        assert_eq!(s.len(), 21_003);
        s.mark(&big, 9);
        s.mark(&mid, 9);
        for i in 0..20_000u32 {
            s.mark(format!("w{i:0>30}").as_bytes(), u64::from(i));
        }
        assert_eq!(s.marked, 20_002);
        assert_eq!(s.new_values().count(), 1001);
        s.mark(b"v5", 7);
        s.mark(b"v5", 7);
        s.mark(b"", 7);
        s.mark(b"v5x", 7);
        s.mark(b"v6", 8);
        assert_eq!(s.marked, 20_004);
        let left: Vec<&[u8]> = s.new_values().collect();
        assert_eq!(left.len(), 999);
        assert_eq!(left[0], b"v0");
        assert!(!left.contains(&b"v5".as_slice()) && !left.contains(&b"".as_slice()));
        let batch = [(0usize, b"v1".as_slice(), 7u64), (0, b"none", 123)];
        let _ = warm(std::slice::from_ref(&s), &batch);
        let before: Vec<Vec<u8>> = s.new_values().map(<[u8]>::to_vec).collect();
        s.keep_new_values();
        let after: Vec<Vec<u8>> = s.new_values().map(<[u8]>::to_vec).collect();
        assert_eq!(after, before);
        assert_eq!((s.len(), s.unmarked(), s.marked), (999, 999, 0));
        assert!(s.recs.len() < 999 * 40, "the marked values' bytes are gone ({} bytes kept)", s.recs.len());
    }

    #[test]
    fn empty_shard_marks_nothing() {
        let mut s = SetShard::default();
        s.mark(b"x", 1);
        assert_eq!((s.len(), s.marked, s.new_values().count()), (0, 0, 0));
        // Reading ahead in an empty shard touches no slot.
        let _ = warm(std::slice::from_ref(&s), &[(0, b"x".as_slice(), 1), (0, b"", 2)]);
    }
}
