//! Value → id lookups for encoding: a version loaded into sharded tables.
//!
//! Like the build's set ([`super::shard`]), each shard keeps its values as
//! records back to back — here `[u32 length][u64 id][bytes]` — and an
//! open-addressing table of `(record offset, low 32 hash bits)` slots: a
//! lookup is two cache misses (the slot, then the record holding both the
//! bytes to compare and the id), and [`Lookup::map_array_into`] reads the
//! slots and records of a batch of rows ahead so their misses overlap.

use arrow::array::Array;
use rayon::prelude::*;

use super::delta::Decoded;
use super::set::{SHARDS, group_count, hash_all, shard_of};
use super::shard::{EMPTY, grown};
use super::values::{ValueType, Values};
use super::{DictKey, Version};
use crate::error::{Error, Result};

/// Record header: the length, then the id.
const HEADER: usize = 12;
/// Rows whose slots and records are read ahead together.
const BATCH: usize = 32;

#[derive(Debug, Default)]
struct LookupShard {
    recs: Vec<u8>,
    /// A power of two long (or empty); at most 70% used.
    slots: Vec<u64>,
    count: usize,
}

impl LookupShard {
    fn with_capacity(values: usize) -> LookupShard {
        let n = (values * 10 / 7 + 1).next_power_of_two().max(16);
        LookupShard { recs: Vec::new(), slots: vec![EMPTY; n], count: 0 }
    }

    #[inline]
    fn home(&self, h32: u32) -> usize {
        h32 as usize & (self.slots.len() - 1)
    }

    #[inline]
    fn record(&self, off: usize) -> (&[u8], u64) {
        let mut len = [0u8; 4];
        len.copy_from_slice(&self.recs[off..off + 4]);
        let mut id = [0u8; 8];
        id.copy_from_slice(&self.recs[off + 4..off + HEADER]);
        let start = off + HEADER;
        (&self.recs[start..start + u32::from_le_bytes(len) as usize], u64::from_le_bytes(id))
    }

    /// The slot holding `v` and its id, or the free slot where it would go.
    #[inline]
    fn find(&self, v: &[u8], h32: u32) -> (usize, Option<u64>) {
        let mask = self.slots.len() - 1;
        let mut p = self.home(h32);
        loop {
            let e = self.slots[p];
            if e == EMPTY {
                return (p, None);
            }
            if e as u32 == h32 {
                let (b, id) = self.record((e >> 32) as usize);
                if b == v {
                    return (p, Some(id));
                }
            }
            p = (p + 1) & mask;
        }
    }

    #[inline]
    fn get(&self, v: &[u8], h: u64) -> Option<u64> {
        if self.slots.is_empty() {
            return None;
        }
        self.find(v, h as u32).1
    }

    /// Adds `v` with `id`; the id `v` already has if it is there.
    fn insert(&mut self, v: &[u8], h: u64, id: u64) -> Result<Option<u64>> {
        if self.count * 10 >= self.slots.len() * 7 {
            self.slots = grown(&self.slots, 16);
        }
        let h32 = h as u32;
        let (p, found) = self.find(v, h32);
        if found.is_some() {
            return Ok(found);
        }
        let off = self.recs.len();
        if off + HEADER + v.len() > u32::MAX as usize {
            return Err(Error::data(
                "a dictionary holds more than 4 GiB of values in one of its 256 shards (about 1 TiB in all); split \
                 the dictionary",
            ));
        }
        self.recs.extend_from_slice(&(v.len() as u32).to_le_bytes());
        self.recs.extend_from_slice(&id.to_le_bytes());
        self.recs.extend_from_slice(v);
        self.slots[p] = ((off as u64) << 32) | h32 as u64;
        self.count += 1;
        Ok(None)
    }
}

/// A dictionary version in memory, mapping values to ids. About 25–35
/// bytes per value (its 12-byte record header and its share of the table)
/// plus the values' bytes; safe to share between threads.
#[derive(Debug)]
pub struct Lookup {
    key: DictKey,
    version: u64,
    vt: ValueType,
    max_id: u64,
    shards: Vec<LookupShard>,
}

impl Lookup {
    pub(crate) fn new(key: DictKey, v: &Version) -> Lookup {
        let per_shard = (v.count as usize / SHARDS) + (v.count as usize / SHARDS / 16) + 16;
        let shards = (0..SHARDS).map(|_| LookupShard::with_capacity(per_shard)).collect();
        Lookup { key, version: v.version, vt: v.value_type, max_id: v.max_id, shards }
    }

    /// Adds the decoded row groups of one delta file (`first_id` is its
    /// first id); ids must run on from it, and no value may appear twice.
    pub(crate) fn insert(&mut self, groups: &[Decoded], first_id: u64, what: &str) -> Result<()> {
        for g in groups {
            let ids = g.ids.as_ref().ok_or_else(|| Error::internal("lookup needs ids"))?;
            let base = first_id + g.first_row;
            if ids.null_count() != 0 || ids.values().iter().enumerate().any(|(i, id)| *id != base + i as u64) {
                return Err(Error::data(format!(
                    "{what} is corrupt (its ids do not run on from {first_id}); the dictionary cannot be read"
                )));
            }
        }
        let vals = groups.iter().map(|g| Values::of_stored(g.values.as_ref())).collect::<Result<Vec<_>>>()?;
        let hashes = hash_all(&vals);
        let per = SHARDS / group_count();
        self.shards.par_chunks_mut(per).enumerate().try_for_each(|(gi, shards)| {
            let lo = gi * per;
            for ((v, hs), g) in vals.iter().zip(&hashes).zip(groups) {
                let base = first_id + g.first_row;
                for (i, &h) in hs.iter().enumerate() {
                    let s = shard_of(h).wrapping_sub(lo);
                    if s >= per {
                        continue;
                    }
                    let Some(b) = v.get(i) else { continue };
                    if let Some(other) = shards[s].insert(b, h, base + i as u64)? {
                        return Err(Error::data(format!(
                            "{what} is corrupt: the value {} has ids {other} and {}",
                            show_value(b),
                            base + i as u64
                        )));
                    }
                }
            }
            Ok(())
        })
    }

    /// The id of a value's canonical bytes.
    #[inline]
    pub fn get(&self, value: &[u8]) -> Option<u64> {
        let h = super::set::hash_bytes(value);
        self.shards[shard_of(h)].get(value, h)
    }

    /// The ids of an array's values (`None` for NULL). A value that is not
    /// in the dictionary is an error naming it: the dictionary was not
    /// built over these inputs.
    pub fn map_array(&self, array: &dyn Array) -> Result<Vec<Option<u64>>> {
        let mut out = Vec::with_capacity(array.len());
        self.map_array_into(array, &mut out)?;
        Ok(out)
    }

    /// [`Lookup::map_array`], appending to `out`.
    pub fn map_array_into(&self, array: &dyn Array, out: &mut Vec<Option<u64>>) -> Result<()> {
        let v = Values::new(array, self.vt).map_err(|e| e.context(format!("dictionary {}", self.key)))?;
        out.reserve(v.len());
        let mut rows: Vec<(usize, Option<&[u8]>, u64)> = Vec::with_capacity(BATCH);
        for from in (0..v.len()).step_by(BATCH) {
            rows.clear();
            rows.extend((from..(from + BATCH).min(v.len())).map(|i| {
                let b = v.get(i);
                (i, b, b.map_or(0, super::set::hash_bytes))
            }));
            std::hint::black_box(self.warm(&rows));
            for &(_, b, h) in &rows {
                let Some(b) = b else {
                    out.push(None);
                    continue;
                };
                match self.shards[shard_of(h)].get(b, h) {
                    Some(id) => out.push(Some(id)),
                    None => {
                        return Err(Error::data(format!(
                            "the value {} is not in dictionary {} version {}; build the dictionary over \
                             these inputs first",
                            show_value(b),
                            self.key,
                            self.version
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    /// Reads the first slot of every row of a batch, then the record it
    /// points at when the hash bits match: loads independent of each other,
    /// so their cache misses overlap before the lookups need them. The
    /// result only keeps the loads from being optimized away.
    fn warm(&self, rows: &[(usize, Option<&[u8]>, u64)]) -> u64 {
        let mut first = [EMPTY; BATCH];
        for (f, &(_, b, h)) in first.iter_mut().zip(rows) {
            let sh = &self.shards[shard_of(h)];
            if b.is_some()
                && let Some(&e) = sh.slots.get(sh.home(h as u32))
            {
                *f = e;
            }
        }
        let mut acc = 0u64;
        for (&e, &(_, _, h)) in first.iter().zip(rows) {
            if e != EMPTY && e as u32 == h as u32 {
                acc = acc.wrapping_add(self.shards[shard_of(h)].recs[(e >> 32) as usize] as u64);
            }
        }
        acc
    }

    /// The dictionary.
    pub fn key(&self) -> &DictKey {
        &self.key
    }

    /// The loaded version.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The value type.
    pub fn value_type(&self) -> ValueType {
        self.vt
    }

    /// The highest id.
    pub fn max_id(&self) -> u64 {
        self.max_id
    }

    /// Number of values.
    pub fn len(&self) -> u64 {
        self.shards.iter().map(|s| s.count as u64).sum()
    }

    /// Whether the dictionary is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held.
    pub fn memory(&self) -> usize {
        self.shards.iter().map(|s| s.recs.capacity() + s.slots.capacity() * 8).sum()
    }
}

/// A value for a message: text if it is UTF-8, else hex; at most 64
/// characters.
pub(crate) fn show_value(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) if s.chars().count() <= 64 => format!("{s:?}"),
        Ok(s) => format!("{:?}…", s.chars().take(64).collect::<String>()),
        Err(_) => {
            let hex: String = b.iter().take(32).map(|x| format!("{x:02x}")).collect();
            format!("0x{hex}{}", if b.len() > 32 { "…" } else { "" })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_finds_ids_through_collisions_and_growth() {
        // Sized for 4 values, then given 5000: the table grows many times.
        let mut s = LookupShard::with_capacity(4);
        for i in 0..5000u64 {
            // Every value with the same low hash bits: probing and the byte
            // compare decide.
            assert_eq!(s.insert(format!("v{i}").as_bytes(), 7, i + 1).unwrap(), None);
        }
        assert_eq!(s.insert(b"", 7, 9999).unwrap(), None);
        for i in 0..5000u64 {
            assert_eq!(s.get(format!("v{i}").as_bytes(), 7), Some(i + 1));
        }
        assert_eq!(s.get(b"", 7), Some(9999));
        assert_eq!(s.get(b"v5000", 7), None);
        assert_eq!(s.get(b"v1", 8), None, "other hash bits, other slot chain");
        // A second id for a value is reported, not stored.
        assert_eq!(s.insert(b"v42", 7, 123).unwrap(), Some(43));
        assert_eq!(s.get(b"v42", 7), Some(43));
        assert_eq!(s.count, 5001);
        assert_eq!(LookupShard::default().get(b"x", 1), None);
    }
}
