//! One shard of a build's set of distinct values: the values back to back
//! as records (a `u32` header — the length, and a bit for "already in the
//! current version" — then the bytes) in 32 MiB chunks that never move, and
//! an open-addressing table of `(record offset, low 32 hash bits)` slots
//! with linear probing. (A single growing buffer left every outgrown copy
//! behind in the heap: 0.9 GB over the live data for 50 M values.) A chunk
//! is as large as glibc's largest heap request, so it is always mapped on
//! its own: its untouched tail takes no memory, and it goes back to the
//! system when the sort frees it (smaller chunks stayed in the heap and the
//! sort's ranges came on top: l_comment's peak went 1.1 -> 1.6 GB).
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

/// A free slot. No record starts at offset `u32::MAX` (the last 4 bytes
/// of a chunk cannot hold a record's header and bytes).
const EMPTY: u64 = u64::MAX;
/// log2 of the chunk size: an offset is `chunk << CHUNK_BITS | position`.
const CHUNK_BITS: u32 = 25;
const CHUNK: usize = 1 << CHUNK_BITS;
/// Chunks a shard can have (4 GiB of small values).
const MAX_CHUNKS: usize = 1 << (32 - CHUNK_BITS);
/// Header bit: the value is in the current version.
const MARK: u32 = 1 << 31;
/// Rows read ahead together by [`warm`].
pub(crate) const BATCH: usize = 32;

/// One shard of a [`Distinct`](super::Distinct) set.
#[derive(Debug, Default)]
pub(crate) struct SetShard {
    /// Full but for the last; a value longer than a chunk has one of its own.
    chunks: Vec<Vec<u8>>,
    /// At most 75% used; grows by half (a power-of-two table doubles and,
    /// just past a power of two, is three quarters empty: 1 GiB of slots
    /// instead of 650 MiB for 50 M values).
    slots: Vec<u64>,
    count: usize,
    marked: usize,
}

impl SetShard {
    /// Distinct values held.
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// Values marked as in the current version.
    pub(crate) fn marked(&self) -> usize {
        self.marked
    }

    /// Bytes held.
    pub(crate) fn memory(&self) -> usize {
        self.chunks.iter().map(Vec::capacity).sum::<usize>() + self.slots.capacity() * 8
    }

    /// Frees the table (the values stay).
    pub(crate) fn drop_table(&mut self) {
        self.slots = Vec::new();
    }

    /// The slot a hash starts at (multiply-shift: any table length).
    #[inline]
    fn home(&self, h32: u32) -> usize {
        ((h32 as u64 * self.slots.len() as u64) >> 32) as usize
    }

    /// The chunk and position of an offset.
    #[inline]
    fn record(&self, off: usize) -> (&[u8], usize) {
        (&self.chunks[off >> CHUNK_BITS], off & (CHUNK - 1))
    }

    #[inline]
    fn header(&self, off: usize) -> u32 {
        let (c, p) = self.record(off);
        header_at(c, p)
    }

    #[inline]
    fn value_at(&self, off: usize) -> &[u8] {
        let (c, p) = self.record(off);
        let len = (header_at(c, p) & !MARK) as usize;
        &c[p + 4..p + 4 + len]
    }

    /// The slot holding `v`, or the free slot where it would go.
    #[inline]
    fn probe(&self, v: &[u8], h32: u32) -> (usize, bool) {
        let n = self.slots.len();
        let mut p = self.home(h32);
        loop {
            let e = self.slots[p];
            if e == EMPTY {
                return (p, false);
            }
            if e as u32 == h32 && self.value_at((e >> 32) as usize) == v {
                return (p, true);
            }
            p += 1;
            if p == n {
                p = 0;
            }
        }
    }

    fn grow(&mut self) {
        let n = self.slots.len();
        let old = std::mem::replace(&mut self.slots, vec![EMPTY; (n + n / 2).max(64)]);
        let n = self.slots.len();
        for e in old {
            if e != EMPTY {
                let mut p = self.home(e as u32);
                while self.slots[p] != EMPTY {
                    p += 1;
                    if p == n {
                        p = 0;
                    }
                }
                self.slots[p] = e;
            }
        }
    }

    /// Adds `v` (hash `h`) unless it is there.
    #[inline]
    pub(crate) fn insert(&mut self, v: &[u8], h: u64) -> Result<()> {
        if self.count * 4 >= self.slots.len() * 3 {
            self.grow();
        }
        let h32 = h as u32;
        let (p, found) = self.probe(v, h32);
        if found {
            return Ok(());
        }
        if v.len() >= MARK as usize {
            return Err(Error::data(format!("a dictionary value of {} bytes is too long (at most 2 GiB)", v.len())));
        }
        let need = 4 + v.len();
        if self.chunks.last().is_none_or(|c| c.len() + need > CHUNK) {
            if self.chunks.len() == MAX_CHUNKS {
                return Err(Error::data(
                    "a dictionary build holds more than 4 GiB of values in one of its 256 shards (about 1 TiB in \
                     all); split the dictionary",
                ));
            }
            self.chunks.push(Vec::with_capacity(need.max(CHUNK)));
        }
        let ci = self.chunks.len() - 1;
        let c = &mut self.chunks[ci];
        let off = (ci << CHUNK_BITS) | c.len();
        c.extend_from_slice(&(v.len() as u32).to_le_bytes());
        c.extend_from_slice(v);
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
                let p = off & (CHUNK - 1);
                self.chunks[off >> CHUNK_BITS][p..p + 4].copy_from_slice(&(hdr | MARK).to_le_bytes());
                self.marked += 1;
            }
        }
    }

    /// The values not marked, in insertion order.
    pub(crate) fn new_values(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.chunks.iter().flat_map(|c| {
            let mut p = 0;
            std::iter::from_fn(move || {
                while p < c.len() {
                    let hdr = header_at(c, p);
                    let len = (hdr & !MARK) as usize;
                    let v = &c[p + 4..p + 4 + len];
                    p += 4 + len;
                    if hdr & MARK == 0 {
                        return Some(v);
                    }
                }
                None
            })
        })
    }
}

#[inline]
fn header_at(c: &[u8], p: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&c[p..p + 4]);
    u32::from_le_bytes(b)
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
            acc = acc.wrapping_add(shards[s].header((e >> 32) as usize) as u64);
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
        // Values past a chunk, and one longer than a chunk, keep their place.
        let big = vec![b'x'; CHUNK + 10];
        let mid = vec![b'y'; CHUNK / 2];
        let mid2 = vec![b'z'; CHUNK / 2];
        for v in [&big, &mid, &mid, &big, &mid2] {
            s.insert(v, 9).unwrap();
        }
        for i in 0..20_000u32 {
            s.insert(format!("w{i:0>30}").as_bytes(), u64::from(i)).unwrap();
        }
        assert_eq!(s.len(), 21_004);
        // Small values; the big one alone; `mid`; `mid2` (which did not fit
        // beside it) and the rest.
        assert_eq!(s.chunks.len(), 4);
        s.mark(&big, 9);
        s.mark(&mid, 9);
        s.mark(&mid2, 9);
        for i in 0..20_000u32 {
            s.mark(format!("w{i:0>30}").as_bytes(), u64::from(i));
        }
        assert_eq!(s.marked(), 20_003);
        assert_eq!(s.new_values().count(), 1001);
        s.mark(b"v5", 7);
        s.mark(b"v5", 7);
        s.mark(b"", 7);
        s.mark(b"v5x", 7);
        s.mark(b"v6", 8);
        assert_eq!(s.marked(), 20_005);
        let left: Vec<&[u8]> = s.new_values().collect();
        assert_eq!(left.len(), 999);
        assert_eq!(left[0], b"v0");
        assert!(!left.contains(&b"v5".as_slice()) && !left.contains(&b"".as_slice()));
        let batch = [(0usize, b"v1".as_slice(), 7u64), (0, b"none", 123)];
        let _ = warm(std::slice::from_ref(&s), &batch);
    }

    #[test]
    fn empty_shard_marks_nothing() {
        let mut s = SetShard::default();
        s.mark(b"x", 1);
        assert_eq!((s.len(), s.marked(), s.new_values().count()), (0, 0, 0));
        // Reading ahead in an empty shard touches no slot.
        let _ = warm(std::slice::from_ref(&s), &[(0, b"x".as_slice(), 1), (0, b"", 2)]);
    }
}
