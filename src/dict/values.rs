//! Source value types and their canonical bytes.
//!
//! A dictionary stores every value as bytes. Strings and binaries are their
//! own bytes; every other supported type is rendered as a canonical text that
//! does not depend on Arrow's formatting code (which is not promised to be
//! stable across versions):
//!
//! | value type | Arrow types | canonical bytes |
//! |---|---|---|
//! | `string` | Utf8, LargeUtf8, Utf8View | the UTF-8 bytes |
//! | `binary` | Binary, LargeBinary, BinaryView, FixedSizeBinary | the bytes |
//! | `integer` | Int8…Int64, UInt8…UInt64 | decimal digits, `-` for negatives (`-42`) |
//! | `boolean` | Boolean | `true` / `false` |
//! | `date` | Date32, Date64 (whole days only) | `YYYY-MM-DD` (proleptic Gregorian) |
//! | `timestamp` | Timestamp(any unit) without a zone | microseconds since the epoch (`1704067200000000`) |
//! | `timestamp_tz` | Timestamp(any unit) with a zone | microseconds since the epoch of the UTC instant |
//! | `decimal(scale=S)` | Decimal32/64/128/256 with scale S | `unscaled@S` (`150@2` for 1.50) |
//!
//! Dictionary-encoded arrays count as their value type. All integer widths are
//! one type (a Hive `int` widened to `bigint` keeps its ids), as are the three
//! string layouts; a timestamp's unit is not part of its type (nanoseconds
//! that are not whole microseconds are refused). Floats and nested types are
//! refused: equal-looking floats can differ, so cast them in the source
//! expression.

use std::fmt::Write as _;

use arrow::array::{Array, AsArray, BinaryViewArray};
use arrow::buffer::{Buffer, NullBuffer, OffsetBuffer};
use arrow::datatypes::{self as adt, DataType, TimeUnit};

use crate::error::{Error, Result};

/// The type of a dictionary's values, as recorded in its manifest. Arrow
/// types that hold the same values with the same canonical bytes are one
/// value type (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueType {
    /// Utf8, LargeUtf8, Utf8View.
    String,
    /// Binary, LargeBinary, BinaryView, FixedSizeBinary.
    Binary,
    /// Any signed or unsigned integer.
    Integer,
    /// Boolean.
    Boolean,
    /// Date32, Date64.
    Date,
    /// A timestamp without a time zone (wall-clock time).
    Timestamp,
    /// A timestamp with a time zone (an instant).
    TimestampTz,
    /// A decimal of the given scale (any precision).
    Decimal {
        /// Digits after the point.
        scale: i8,
    },
}

impl ValueType {
    /// The value type of an Arrow type; an error for types a dictionary
    /// cannot hold.
    pub fn of(dt: &DataType) -> Result<ValueType> {
        use DataType as D;
        Ok(match dt {
            D::Utf8 | D::LargeUtf8 | D::Utf8View => ValueType::String,
            D::Binary | D::LargeBinary | D::BinaryView | D::FixedSizeBinary(_) => ValueType::Binary,
            D::Int8 | D::Int16 | D::Int32 | D::Int64 | D::UInt8 | D::UInt16 | D::UInt32 | D::UInt64 => {
                ValueType::Integer
            }
            D::Boolean => ValueType::Boolean,
            D::Date32 | D::Date64 => ValueType::Date,
            D::Timestamp(_, None) => ValueType::Timestamp,
            D::Timestamp(_, Some(_)) => ValueType::TimestampTz,
            D::Decimal32(_, s) | D::Decimal64(_, s) | D::Decimal128(_, s) | D::Decimal256(_, s) => {
                ValueType::Decimal { scale: *s }
            }
            D::Dictionary(_, v) => ValueType::of(v)?,
            other => {
                return Err(Error::config(format!(
                    "a global dictionary cannot hold {other} values; cast the source expression to a string, \
                     integer, date, timestamp or decimal"
                )));
            }
        })
    }

    /// The name recorded in manifests (`string`, `decimal(scale=2)`, …).
    pub fn name(&self) -> String {
        match self {
            ValueType::String => "string".into(),
            ValueType::Binary => "binary".into(),
            ValueType::Integer => "integer".into(),
            ValueType::Boolean => "boolean".into(),
            ValueType::Date => "date".into(),
            ValueType::Timestamp => "timestamp".into(),
            ValueType::TimestampTz => "timestamp_tz".into(),
            ValueType::Decimal { scale } => format!("decimal(scale={scale})"),
        }
    }

    /// Parses a [`ValueType::name`].
    pub fn parse(s: &str) -> Option<ValueType> {
        Some(match s {
            "string" => ValueType::String,
            "binary" => ValueType::Binary,
            "integer" => ValueType::Integer,
            "boolean" => ValueType::Boolean,
            "date" => ValueType::Date,
            "timestamp" => ValueType::Timestamp,
            "timestamp_tz" => ValueType::TimestampTz,
            _ => {
                let scale = s.strip_prefix("decimal(scale=")?.strip_suffix(')')?.parse().ok()?;
                ValueType::Decimal { scale }
            }
        })
    }

    /// Whether the canonical bytes are always valid UTF-8 (everything but
    /// `binary`).
    pub fn is_text(&self) -> bool {
        !matches!(self, ValueType::Binary)
    }
}

impl std::fmt::Display for ValueType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

impl serde::Serialize for ValueType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

impl<'de> serde::Deserialize<'de> for ValueType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ValueType::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("unknown value type `{s}`")))
    }
}

/// The canonical bytes of one array's values, with cheap random access.
/// Owns (reference-counted) buffers, so it can move between threads.
#[derive(Debug, Clone)]
pub(crate) enum Values {
    O32 {
        offsets: OffsetBuffer<i32>,
        data: Buffer,
        nulls: Option<NullBuffer>,
    },
    O64 {
        offsets: OffsetBuffer<i64>,
        data: Buffer,
        nulls: Option<NullBuffer>,
    },
    View(BinaryViewArray),
    Fixed {
        data: Buffer,
        width: usize,
        len: usize,
        nulls: Option<NullBuffer>,
    },
    /// Rendered canonical text; `offsets` has `len + 1` entries.
    Text {
        data: Vec<u8>,
        offsets: Vec<usize>,
        nulls: Option<NullBuffer>,
    },
}

impl Values {
    /// The canonical bytes of `array`, whose type must be of value type `vt`.
    pub(crate) fn new(array: &dyn Array, vt: ValueType) -> Result<Values> {
        let found = ValueType::of(array.data_type())?;
        if found != vt {
            return Err(Error::config(format!(
                "source values are {} ({}) but the dictionary holds {vt} values",
                found,
                array.data_type()
            )));
        }
        let nulls = || array.logical_nulls();
        use DataType as D;
        Ok(match array.data_type() {
            D::Utf8 => {
                let a = array.as_string::<i32>();
                Values::O32 { offsets: a.offsets().clone(), data: a.values().clone(), nulls: nulls() }
            }
            D::LargeUtf8 => {
                let a = array.as_string::<i64>();
                Values::O64 { offsets: a.offsets().clone(), data: a.values().clone(), nulls: nulls() }
            }
            D::Binary => {
                let a = array.as_binary::<i32>();
                Values::O32 { offsets: a.offsets().clone(), data: a.values().clone(), nulls: nulls() }
            }
            D::LargeBinary => {
                let a = array.as_binary::<i64>();
                Values::O64 { offsets: a.offsets().clone(), data: a.values().clone(), nulls: nulls() }
            }
            D::Utf8View => Values::View(array.as_string_view().clone().to_binary_view()),
            D::BinaryView => Values::View(array.as_binary_view().clone()),
            D::FixedSizeBinary(w) => {
                let a = array.as_fixed_size_binary();
                Values::Fixed { data: a.values().clone(), width: *w as usize, len: a.len(), nulls: nulls() }
            }
            D::Dictionary(_, value_type) => {
                // Only the values the keys use belong to the data.
                let flat = arrow::compute::cast(array, value_type)?;
                Values::new(flat.as_ref(), vt)?
            }
            _ => render(array)?,
        })
    }

    /// Number of rows.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        match self {
            Values::O32 { offsets, .. } => offsets.len() - 1,
            Values::O64 { offsets, .. } => offsets.len() - 1,
            Values::View(a) => a.len(),
            Values::Fixed { len, .. } => *len,
            Values::Text { offsets, .. } => offsets.len() - 1,
        }
    }

    /// Number of NULL rows.
    pub(crate) fn null_count(&self) -> usize {
        match self {
            Values::O32 { nulls, .. }
            | Values::O64 { nulls, .. }
            | Values::Fixed { nulls, .. }
            | Values::Text { nulls, .. } => nulls.as_ref().map_or(0, |n| n.null_count()),
            Values::View(a) => a.null_count(),
        }
    }

    /// The bytes of row `i`, `None` for NULL.
    #[inline]
    pub(crate) fn get(&self, i: usize) -> Option<&[u8]> {
        match self {
            Values::O32 { offsets, data, nulls } => {
                if nulls.as_ref().is_some_and(|n| n.is_null(i)) {
                    return None;
                }
                Some(&data[offsets[i] as usize..offsets[i + 1] as usize])
            }
            Values::O64 { offsets, data, nulls } => {
                if nulls.as_ref().is_some_and(|n| n.is_null(i)) {
                    return None;
                }
                Some(&data[offsets[i] as usize..offsets[i + 1] as usize])
            }
            Values::View(a) => {
                if a.is_null(i) {
                    return None;
                }
                Some(a.value(i))
            }
            Values::Fixed { data, width, nulls, .. } => {
                if nulls.as_ref().is_some_and(|n| n.is_null(i)) {
                    return None;
                }
                Some(&data[i * width..(i + 1) * width])
            }
            Values::Text { data, offsets, nulls } => {
                if nulls.as_ref().is_some_and(|n| n.is_null(i)) {
                    return None;
                }
                Some(&data[offsets[i]..offsets[i + 1]])
            }
        }
    }
}

/// Renders a non-byte array as canonical text.
fn render(array: &dyn Array) -> Result<Values> {
    let len = array.len();
    let nulls = array.logical_nulls();
    let mut data: Vec<u8> = Vec::with_capacity(len * 8);
    let mut offsets: Vec<usize> = Vec::with_capacity(len + 1);
    offsets.push(0);
    let valid = |i: usize| nulls.as_ref().is_none_or(|n| n.is_valid(i));
    macro_rules! ints {
        ($t:ty) => {{
            let a = array.as_primitive::<$t>();
            let mut buf = itoa::Buffer::new();
            for (i, v) in a.values().iter().enumerate() {
                if valid(i) {
                    data.extend_from_slice(buf.format(*v).as_bytes());
                }
                offsets.push(data.len());
            }
        }};
    }
    macro_rules! decimals {
        ($t:ty, $s:expr) => {{
            let a = array.as_primitive::<$t>();
            let mut s = String::new();
            for (i, v) in a.values().iter().enumerate() {
                if valid(i) {
                    s.clear();
                    let _ = write!(s, "{}@{}", v, $s);
                    data.extend_from_slice(s.as_bytes());
                }
                offsets.push(data.len());
            }
        }};
    }
    use DataType as D;
    match array.data_type() {
        D::Int8 => ints!(adt::Int8Type),
        D::Int16 => ints!(adt::Int16Type),
        D::Int32 => ints!(adt::Int32Type),
        D::Int64 => ints!(adt::Int64Type),
        D::UInt8 => ints!(adt::UInt8Type),
        D::UInt16 => ints!(adt::UInt16Type),
        D::UInt32 => ints!(adt::UInt32Type),
        D::UInt64 => ints!(adt::UInt64Type),
        D::Boolean => {
            let a = array.as_boolean();
            for i in 0..len {
                if valid(i) {
                    data.extend_from_slice(if a.value(i) { b"true" } else { b"false" });
                }
                offsets.push(data.len());
            }
        }
        D::Date32 | D::Date64 => {
            let days: Vec<i64> = if let D::Date32 = array.data_type() {
                array.as_primitive::<adt::Date32Type>().values().iter().map(|d| *d as i64).collect()
            } else {
                let a = array.as_primitive::<adt::Date64Type>();
                let mut out = Vec::with_capacity(len);
                for (i, ms) in a.values().iter().enumerate() {
                    if valid(i) && ms.rem_euclid(86_400_000) != 0 {
                        return Err(Error::data(format!(
                            "Date64 value {ms} ms is not a whole day; a dictionary keys dates by day"
                        )));
                    }
                    out.push(ms.div_euclid(86_400_000));
                }
                out
            };
            let mut s = String::new();
            for (i, d) in days.iter().enumerate() {
                if valid(i) {
                    s.clear();
                    write_date(&mut s, *d)?;
                    data.extend_from_slice(s.as_bytes());
                }
                offsets.push(data.len());
            }
        }
        D::Timestamp(unit, _) => {
            let raw: &[i64] = match unit {
                TimeUnit::Second => array.as_primitive::<adt::TimestampSecondType>().values(),
                TimeUnit::Millisecond => array.as_primitive::<adt::TimestampMillisecondType>().values(),
                TimeUnit::Microsecond => array.as_primitive::<adt::TimestampMicrosecondType>().values(),
                TimeUnit::Nanosecond => array.as_primitive::<adt::TimestampNanosecondType>().values(),
            };
            let mut buf = itoa::Buffer::new();
            for (i, v) in raw.iter().enumerate() {
                if valid(i) {
                    let us = match unit {
                        TimeUnit::Second => v.checked_mul(1_000_000),
                        TimeUnit::Millisecond => v.checked_mul(1_000),
                        TimeUnit::Microsecond => Some(*v),
                        TimeUnit::Nanosecond => {
                            if v.rem_euclid(1_000) != 0 {
                                return Err(Error::data(format!(
                                    "timestamp {v} ns has sub-microsecond digits; a dictionary keys timestamps \
                                     by microsecond"
                                )));
                            }
                            Some(v.div_euclid(1_000))
                        }
                    }
                    .ok_or_else(|| Error::data(format!("timestamp {v} ({unit:?}) is out of the microsecond range")))?;
                    data.extend_from_slice(buf.format(us).as_bytes());
                }
                offsets.push(data.len());
            }
        }
        D::Decimal32(_, s) => decimals!(adt::Decimal32Type, s),
        D::Decimal64(_, s) => decimals!(adt::Decimal64Type, s),
        D::Decimal128(_, s) => decimals!(adt::Decimal128Type, s),
        D::Decimal256(_, s) => decimals!(adt::Decimal256Type, s),
        other => return Err(Error::internal(format!("no canonical text for {other}"))),
    }
    Ok(Values::Text { data, offsets, nulls })
}

/// `YYYY-MM-DD` of a day number (days since 1970-01-01).
fn write_date(s: &mut String, days: i64) -> Result<()> {
    let d = i32::try_from(days + 719_163)
        .ok()
        .and_then(chrono::NaiveDate::from_num_days_from_ce_opt)
        .ok_or_else(|| Error::data(format!("date {days} days from 1970-01-01 is out of range")))?;
    let _ = write!(s, "{}", d.format("%Y-%m-%d"));
    Ok(())
}

/// The canonical bytes of every row of `array` (`None` for NULL): what a
/// dictionary stores for these values. For tests, tools and messages; the
/// hot paths never materialize this.
pub fn canonical_values(array: &dyn Array) -> Result<Vec<Option<Vec<u8>>>> {
    let vt = ValueType::of(array.data_type())?;
    let v = Values::new(array, vt)?;
    Ok((0..v.len()).map(|i| v.get(i).map(<[u8]>::to_vec)).collect())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::*;
    use arrow::datatypes::*;

    use super::*;

    fn texts(a: &dyn Array) -> Vec<Option<String>> {
        canonical_values(a).unwrap().into_iter().map(|v| v.map(|b| String::from_utf8(b).unwrap())).collect()
    }

    #[test]
    fn value_types_group_layouts() {
        assert_eq!(ValueType::of(&DataType::Utf8View).unwrap(), ValueType::String);
        assert_eq!(ValueType::of(&DataType::LargeUtf8).unwrap(), ValueType::String);
        assert_eq!(
            ValueType::of(&DataType::Dictionary(Box::new(DataType::Int16), Box::new(DataType::Utf8))).unwrap(),
            ValueType::String
        );
        assert_eq!(ValueType::of(&DataType::UInt8).unwrap(), ValueType::of(&DataType::Int64).unwrap());
        assert_ne!(ValueType::of(&DataType::Binary).unwrap(), ValueType::String);
        assert_eq!(ValueType::of(&DataType::Decimal128(10, 2)).unwrap(), ValueType::Decimal { scale: 2 });
        assert_ne!(ValueType::of(&DataType::Decimal128(10, 3)).unwrap(), ValueType::Decimal { scale: 2 });
        let e = ValueType::of(&DataType::Float64).unwrap_err();
        assert!(e.to_string().contains("cannot hold"), "{e}");
        for vt in [
            ValueType::String,
            ValueType::Binary,
            ValueType::Integer,
            ValueType::Boolean,
            ValueType::Date,
            ValueType::Timestamp,
            ValueType::TimestampTz,
            ValueType::Decimal { scale: -3 },
        ] {
            assert_eq!(ValueType::parse(&vt.name()), Some(vt));
        }
    }

    #[test]
    fn canonical_text() {
        let a = Int64Array::from(vec![Some(-42), None, Some(i64::MAX)]);
        assert_eq!(texts(&a), vec![Some("-42".into()), None, Some("9223372036854775807".into())]);
        let a = UInt64Array::from(vec![u64::MAX]);
        assert_eq!(texts(&a), vec![Some("18446744073709551615".into())]);
        let a = Date32Array::from(vec![0, 19723, -719162]);
        assert_eq!(texts(&a), vec![Some("1970-01-01".into()), Some("2024-01-01".into()), Some("0001-01-01".into())]);
        let a = Date64Array::from(vec![86_400_000]);
        assert_eq!(texts(&a), vec![Some("1970-01-02".into())]);
        assert!(canonical_values(&Date64Array::from(vec![1])).is_err());
        let a = TimestampSecondArray::from(vec![1_704_067_200]);
        assert_eq!(texts(&a), vec![Some("1704067200000000".into())]);
        let a = TimestampNanosecondArray::from(vec![1_000, -2_000]).with_timezone("UTC");
        assert_eq!(texts(&a), vec![Some("1".into()), Some("-2".into())]);
        assert!(canonical_values(&TimestampNanosecondArray::from(vec![1_001])).is_err());
        let a = Decimal128Array::from(vec![150, -5]).with_precision_and_scale(10, 2).unwrap();
        assert_eq!(texts(&a), vec![Some("150@2".into()), Some("-5@2".into())]);
        let a = BooleanArray::from(vec![Some(true), None, Some(false)]);
        assert_eq!(texts(&a), vec![Some("true".into()), None, Some("false".into())]);
        let a = StringViewArray::from(vec![Some(""), None, Some("a long string that is not inlined in the view")]);
        assert_eq!(
            texts(&a),
            vec![Some("".into()), None, Some("a long string that is not inlined in the view".into())]
        );
        let keys = Int8Array::from(vec![Some(1), None, Some(0)]);
        let d = DictionaryArray::try_new(keys, Arc::new(StringArray::from(vec!["x", "unused", "y"]))).unwrap();
        assert_eq!(texts(&d), vec![Some("unused".into()), None, Some("x".into())]);
        let a = FixedSizeBinaryArray::try_from_iter(vec![vec![1u8, 2], vec![3, 4]].into_iter()).unwrap();
        assert_eq!(canonical_values(&a).unwrap(), vec![Some(vec![1, 2]), Some(vec![3, 4])]);
    }

    #[test]
    fn type_mismatch_is_refused() {
        let a = Int32Array::from(vec![1]);
        let e = Values::new(&a, ValueType::String).unwrap_err();
        assert!(e.to_string().contains("dictionary holds string"), "{e}");
    }

    #[test]
    fn sliced_arrays() {
        let a = StringArray::from(vec!["a", "b", "c", "d"]);
        let s = a.slice(1, 2);
        assert_eq!(texts(&s), vec![Some("b".into()), Some("c".into())]);
        let a = Int32Array::from(vec![Some(1), None, Some(3)]);
        let s = a.slice(1, 2);
        assert_eq!(texts(&s), vec![None, Some("3".into())]);
    }
}
