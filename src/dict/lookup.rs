//! Value → id lookups for encoding: a version loaded into sharded arenas.

use arrow::array::Array;
use hashbrown::HashTable;
use rayon::prelude::*;

use super::delta::Decoded;
use super::set::{Arena, SHARDS, group_count, hash_all, shard_of, table_hash};
use super::values::{ValueType, Values};
use super::{DictKey, Version};
use crate::error::{Error, Result};

#[derive(Debug, Default)]
struct LookupShard {
    arena: Arena,
    ids: Vec<u64>,
    table: HashTable<(u32, u32)>,
}

impl LookupShard {
    #[inline]
    fn get(&self, v: &[u8], h: u64) -> Option<u64> {
        let h32 = h as u32;
        self.table
            .find(table_hash(h32), |&(i, eh)| eh == h32 && self.arena.get(i as usize) == v)
            .map(|&(i, _)| self.ids[i as usize])
    }
}

/// A dictionary version in memory, mapping values to ids. About 22 bytes
/// per value plus the values' bytes; safe to share between threads.
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
        let shards = (0..SHARDS)
            .map(|_| LookupShard {
                arena: Arena::with_capacity(per_shard, 0),
                ids: Vec::with_capacity(per_shard),
                table: HashTable::with_capacity(per_shard),
            })
            .collect();
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
                    let shard = &mut shards[s];
                    if let Some(other) = shard.get(b, h) {
                        return Err(Error::data(format!(
                            "{what} is corrupt: the value {} has ids {other} and {}",
                            show_value(b),
                            base + i as u64
                        )));
                    }
                    let idx = shard.arena.push(b)?;
                    shard.ids.push(base + i as u64);
                    let h32 = h as u32;
                    shard.table.insert_unique(table_hash(h32), (idx, h32), |&(_, eh)| table_hash(eh));
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
        for i in 0..v.len() {
            match v.get(i) {
                None => out.push(None),
                Some(b) => match self.get(b) {
                    Some(id) => out.push(Some(id)),
                    None => {
                        return Err(Error::data(format!(
                            "the value {} (row {i}) is not in dictionary {} version {}; build the dictionary over \
                             these inputs first",
                            show_value(b),
                            self.key,
                            self.version
                        )));
                    }
                },
            }
        }
        Ok(())
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
        self.shards.iter().map(|s| s.ids.len() as u64).sum()
    }

    /// Whether the dictionary is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held.
    pub fn memory(&self) -> usize {
        self.shards.iter().map(|s| s.arena.memory() + s.ids.capacity() * 8 + s.table.allocation_size()).sum()
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
