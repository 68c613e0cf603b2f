//! An existing dictionary taken over as version 1: the `(value, id)` pairs
//! of a Spark Load global dictionary (its Hive table's `dict_key`,
//! `dict_value`), so that loads go on giving every value the id the table's
//! bitmaps already hold, and new values the next ids.
//!
//! Spark Load gives ids 1, 2, … without gaps (each build's new values get the
//! next ids), which is what a starload dictionary is too: the pairs must run
//! from 1 to their count with no id twice and no value twice. They are
//! written in id order, so the delta file keeps its rule that row `r` holds
//! id `1 + r`; its values are not sorted, which no reader needs.

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Int64Type, UInt64Type};

use super::lookup::show_value;
use super::set::{Arena, Range, Sorted, hash_bytes};
use super::values::{ValueType, Values};
use crate::error::{Error, Result};

/// Most value bytes in one range (its offsets are `u32`).
const RANGE_BYTES: usize = 1 << 30;

/// The pairs of a dictionary being imported.
#[derive(Debug)]
pub struct Pairs {
    value_type: ValueType,
    source_type: String,
    bytes: Vec<u8>,
    /// `(id, start in bytes, length)` per pair.
    rows: Vec<(u64, usize, u32)>,
}

impl Pairs {
    /// Pairs whose values have Arrow type `value_type` (strings or bytes).
    pub fn new(value_type: &DataType) -> Result<Pairs> {
        let vt = ValueType::of(value_type)?;
        if !matches!(vt, ValueType::String | ValueType::Binary) {
            return Err(Error::config(format!(
                "an imported dictionary's values are strings (Spark Load's dict_key) or bytes, not {value_type}"
            )));
        }
        Ok(Pairs { value_type: vt, source_type: value_type.to_string(), bytes: Vec::new(), rows: Vec::new() })
    }

    /// The values' type.
    pub fn value_type(&self) -> ValueType {
        self.value_type
    }

    /// The Arrow type of the values (information).
    pub fn source_type(&self) -> &str {
        &self.source_type
    }

    /// Number of pairs so far.
    pub fn len(&self) -> u64 {
        self.rows.len() as u64
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Adds the pairs of two parallel arrays: values, and integer ids.
    pub fn push(&mut self, values: &dyn Array, ids: &dyn Array) -> Result<()> {
        let vals = Values::new(values, self.value_type)?;
        let ids: Vec<Option<u64>> = match ids.data_type() {
            t if t.is_signed_integer() => {
                let a = arrow::compute::cast(ids, &DataType::Int64)?;
                let a = a.as_primitive::<Int64Type>();
                let mut out = Vec::with_capacity(a.len());
                for (i, id) in a.iter().enumerate() {
                    out.push(match id {
                        Some(id) if id < 1 => {
                            return Err(Error::data(format!(
                                "the value {} has id {id}; a dictionary's ids start at 1",
                                vals.get(i).map_or("NULL".to_string(), show_value)
                            )));
                        }
                        id => id.map(|id| id as u64),
                    });
                }
                out
            }
            t if t.is_unsigned_integer() => {
                let a = arrow::compute::cast(ids, &DataType::UInt64)?;
                a.as_primitive::<UInt64Type>().iter().collect()
            }
            t => return Err(Error::config(format!("an imported dictionary's ids are integers, not {t}"))),
        };
        self.rows.reserve(ids.len());
        for (i, id) in ids.into_iter().enumerate() {
            let v = vals.get(i);
            let (Some(v), Some(id)) = (v, id) else {
                return Err(Error::data(match (v, id) {
                    (None, Some(id)) => format!("id {id} has a NULL value; a dictionary holds no NULL"),
                    (Some(v), _) => format!("the value {} has no id", show_value(v)),
                    _ => "a pair with neither value nor id".to_string(),
                }));
            };
            if id == 0 {
                return Err(Error::data(format!(
                    "the value {} has id 0; a dictionary's ids start at 1",
                    show_value(v)
                )));
            }
            let len = u32::try_from(v.len()).ok().filter(|&l| (l as usize) < RANGE_BYTES).ok_or_else(|| {
                Error::data(format!("id {id} has a value of {} bytes, more than a dictionary holds", v.len()))
            })?;
            self.rows.push((id, self.bytes.len(), len));
            self.bytes.extend_from_slice(v);
        }
        Ok(())
    }

    /// Checks the pairs (ids 1..=n, each once; every value once) and lays the
    /// values out in id order.
    pub(crate) fn finish(self) -> Result<Sorted> {
        let Pairs { bytes, mut rows, .. } = self;
        if rows.is_empty() {
            return Err(Error::data("the dictionary to import has no pairs"));
        }
        let value = |r: &(u64, usize, u32)| &bytes[r.1..r.1 + r.2 as usize];
        // By id, and by value within an id: the same pair twice (a table
        // that holds a row twice) is one pair.
        rows.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| value(a).cmp(value(b))));
        rows.dedup_by(|b, a| a.0 == b.0 && value(a) == value(b));
        let n = rows.len() as u64;
        for (k, r) in rows.iter().enumerate() {
            let want = k as u64 + 1;
            if r.0 == want {
                continue;
            }
            if k > 0 && rows[k - 1].0 == r.0 {
                return Err(Error::data(format!(
                    "id {} is given to two values, {} and {}; a dictionary gives each id one value (a Spark Load \
                     dictionary table holds every column's dictionary: pick one with --from-where \
                     \"dict_column = '<column>'\")",
                    r.0,
                    show_value(value(&rows[k - 1])),
                    show_value(value(r))
                )));
            }
            return Err(Error::data(format!(
                "id {want} is missing: the {n} ids of a dictionary run from 1 to {n} without gaps (the next is {})",
                r.0
            )));
        }
        // Every value once.
        let mut seen: std::collections::HashMap<&[u8], u64, foldhash::fast::FixedState> =
            std::collections::HashMap::with_capacity_and_hasher(
                rows.len(),
                foldhash::fast::FixedState::with_seed(0x1d),
            );
        for r in &rows {
            if let Some(other) = seen.insert(value(r), r.0) {
                return Err(Error::data(format!(
                    "the value {} has ids {other} and {}; a dictionary gives each value one id",
                    show_value(value(r)),
                    r.0
                )));
            }
        }
        drop(seen);
        // Ranges in id order, each an arena read in its own order.
        let (mut sum, mut mix) = (0u64, 0u64);
        let mut ranges = Vec::new();
        let mut total = 0u64;
        let mut k = 0;
        while k < rows.len() {
            let mut arena = Arena { bytes: Vec::new(), offsets: vec![0] };
            while k < rows.len() && (arena.bytes.is_empty() || arena.bytes.len() + rows[k].2 as usize <= RANGE_BYTES) {
                let v = value(&rows[k]);
                let h = hash_bytes(v);
                sum = sum.wrapping_add(h);
                mix = mix.wrapping_add((h ^ (h >> 29)).wrapping_mul(0x9E37_79B9_7F4A_7C15));
                arena.bytes.extend_from_slice(v);
                arena.offsets.push(arena.bytes.len() as u32);
                k += 1;
            }
            total += arena.bytes.len() as u64;
            let order = (0..arena.len() as u32).collect();
            ranges.push(Range { arena, order });
        }
        Ok(Sorted { ranges, count: n, bytes: total, set_hash: (sum, mix) })
    }
}
