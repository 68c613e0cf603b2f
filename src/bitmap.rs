//! StarRocks' `BitmapValue` serialization (protocol §7.2), for
//! `base64_to_bitmap`: EMPTY, SINGLE32, BITMAP32, SINGLE64, BITMAP64 (with a
//! varint count — not roaring's own treemap format), plus the SET and V2
//! forms on the reading side.

use std::io::Cursor;

use roaring::{RoaringBitmap, RoaringTreemap};

const EMPTY: u8 = 0;
const SINGLE32: u8 = 1;
const BITMAP32: u8 = 2;
const SINGLE64: u8 = 3;
const BITMAP64: u8 = 4;
const SET: u8 = 10;
const BITMAP32_SERIV2: u8 = 12;
const BITMAP64_SERIV2: u8 = 13;

/// Serializes a bitmap in the canonical form a BE writes: EMPTY, SINGLE32 /
/// SINGLE64 for one value, BITMAP32 when every value fits in 32 bits,
/// BITMAP64 otherwise.
pub fn serialize(b: &RoaringTreemap) -> Vec<u8> {
    let len = b.len();
    let mut out = Vec::new();
    if len == 0 {
        out.push(EMPTY);
    } else if len == 1 {
        let v = b.min().unwrap_or(0);
        if v <= u32::MAX as u64 {
            out.push(SINGLE32);
            out.extend_from_slice(&(v as u32).to_le_bytes());
        } else {
            out.push(SINGLE64);
            out.extend_from_slice(&v.to_le_bytes());
        }
    } else if b.max().unwrap_or(0) <= u32::MAX as u64 {
        out.push(BITMAP32);
        for (_, bm) in b.bitmaps() {
            // Only the high-word-0 bitmap exists.
            bm.serialize_into(&mut out).expect("writing to a Vec cannot fail");
        }
    } else {
        out.push(BITMAP64);
        let maps: Vec<(u32, &RoaringBitmap)> = b.bitmaps().filter(|(_, bm)| !bm.is_empty()).collect();
        put_varint(&mut out, maps.len() as u64);
        for (hi, bm) in maps {
            out.extend_from_slice(&hi.to_le_bytes());
            bm.serialize_into(&mut out).expect("writing to a Vec cannot fail");
        }
    }
    out
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(b: &[u8], pos: &mut usize) -> Result<u64, String> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let c = *b.get(*pos).ok_or("truncated varint")?;
        *pos += 1;
        v |= ((c & 0x7f) as u64) << shift;
        if c & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err("varint longer than 64 bits".into())
}

fn take<'a>(b: &'a [u8], pos: &mut usize, n: usize) -> Result<&'a [u8], String> {
    let s = b.get(*pos..*pos + n).ok_or("truncated bitmap")?;
    *pos += n;
    Ok(s)
}

/// Reads one portable 32-bit roaring bitmap starting at `pos`.
fn read_portable(b: &[u8], pos: &mut usize) -> Result<RoaringBitmap, String> {
    let mut cur = Cursor::new(&b[*pos..]);
    let bm = RoaringBitmap::deserialize_from(&mut cur).map_err(|e| format!("malformed roaring bitmap: {e}"))?;
    *pos += cur.position() as usize;
    Ok(bm)
}

/// Reads a CRoaring "native" 32-bit bitmap (V2 forms).
fn read_native(b: &[u8], pos: &mut usize) -> Result<RoaringBitmap, String> {
    match take(b, pos, 1)?[0] {
        1 => {
            let card = u32::from_le_bytes(take(b, pos, 4)?.try_into().map_err(|_| "truncated")?) as usize;
            let mut bm = RoaringBitmap::new();
            let mut prev: Option<u32> = None;
            for _ in 0..card {
                let v = u32::from_le_bytes(take(b, pos, 4)?.try_into().map_err(|_| "truncated")?);
                if prev.is_some_and(|p| p >= v) {
                    return Err("array bitmap values not ascending".into());
                }
                prev = Some(v);
                bm.insert(v);
            }
            Ok(bm)
        }
        2 => read_portable(b, pos),
        t => Err(format!("unknown native roaring type {t}")),
    }
}

/// Deserializes a `BitmapValue`, strictly: unknown type codes, truncated or
/// trailing bytes, and malformed roaring data are errors.
pub fn deserialize(b: &[u8]) -> Result<RoaringTreemap, String> {
    let mut pos = 0usize;
    let code = *b.first().ok_or("empty bitmap bytes")?;
    pos += 1;
    let mut out = RoaringTreemap::new();
    match code {
        EMPTY => {}
        SINGLE32 => {
            let v = u32::from_le_bytes(take(b, &mut pos, 4)?.try_into().map_err(|_| "truncated")?);
            out.insert(v as u64);
        }
        SINGLE64 => {
            let v = u64::from_le_bytes(take(b, &mut pos, 8)?.try_into().map_err(|_| "truncated")?);
            out.insert(v);
        }
        BITMAP32 | BITMAP32_SERIV2 => {
            let bm = if code == BITMAP32 { read_portable(b, &mut pos)? } else { read_native(b, &mut pos)? };
            out = RoaringTreemap::from_bitmaps([(0u32, bm)]);
        }
        BITMAP64 | BITMAP64_SERIV2 => {
            let n = get_varint(b, &mut pos)?;
            let mut maps = Vec::new();
            let mut prev: Option<u32> = None;
            for _ in 0..n {
                let hi = u32::from_le_bytes(take(b, &mut pos, 4)?.try_into().map_err(|_| "truncated")?);
                if prev.is_some_and(|p| p >= hi) {
                    return Err("BITMAP64 keys not ascending".into());
                }
                prev = Some(hi);
                let bm = if code == BITMAP64 { read_portable(b, &mut pos)? } else { read_native(b, &mut pos)? };
                maps.push((hi, bm));
            }
            out = RoaringTreemap::from_bitmaps(maps);
        }
        SET => {
            let n = u32::from_le_bytes(take(b, &mut pos, 4)?.try_into().map_err(|_| "truncated")?);
            for _ in 0..n {
                out.insert(u64::from_le_bytes(take(b, &mut pos, 8)?.try_into().map_err(|_| "truncated")?));
            }
        }
        t => return Err(format!("unknown bitmap type code {t}")),
    }
    if pos != b.len() {
        return Err(format!("{} trailing bytes after the bitmap", b.len() - pos));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn b64(v: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(v)
    }

    fn tm(vals: &[u64]) -> RoaringTreemap {
        vals.iter().copied().collect()
    }

    /// The byte vectors of protocol §7.2.
    #[test]
    fn matches_protocol_vectors() {
        assert_eq!(b64(&serialize(&tm(&[]))), "AA==");
        assert_eq!(b64(&serialize(&tm(&[5]))), "AQUAAAA=");
        assert_eq!(b64(&serialize(&tm(&[(1 << 32) + 7]))), "AwcAAAABAAAA");
        assert_eq!(b64(&serialize(&tm(&[1, 2, 3]))), "AjowAAABAAAAAAACABAAAAABAAIAAwA=");
        assert_eq!(
            b64(&serialize(&tm(&[1, (1 << 32) + 1]))),
            "BAIAAAAAOjAAAAEAAAAAAAAAEAAAAAEAAQAAADowAAABAAAAAAAAABAAAAABAA=="
        );
    }

    #[test]
    fn round_trips_and_rejects_garbage() {
        for vals in [vec![], vec![0], vec![u64::MAX], vec![1, 2, 3], vec![7, 1 << 40, (1 << 40) + 1, 1 << 63]] {
            let b = tm(&vals);
            assert_eq!(deserialize(&serialize(&b)).unwrap(), b);
        }
        let mut big = serialize(&tm(&[1, 2, 3]));
        big.push(0);
        assert!(deserialize(&big).is_err());
        assert!(deserialize(&[]).is_err());
        assert!(deserialize(&[1, 0, 0]).is_err());
        assert!(deserialize(&[99]).is_err());
        assert!(deserialize(&[4, 2, 0, 0, 0, 0]).is_err());
        // SET form.
        let mut set = vec![10, 2, 0, 0, 0];
        set.extend_from_slice(&9u64.to_le_bytes());
        set.extend_from_slice(&3u64.to_le_bytes());
        assert_eq!(deserialize(&set).unwrap(), tm(&[3, 9]));
    }
}
