//! Typed values as a StarRocks BE stores them, and the BE's parsers: CSV
//! fields, collection elements and JSON values, per target type.
//!
//! This is the simulator's model of the BE (streamload-protocol.md §6 and
//! the BE converter rules). The loader also uses it to validate text it
//! passes through (a string source column into a DATE column, say).

use std::fmt::Write as _;

use base64::Engine;
use roaring::RoaringTreemap;
use serde_json::Value as Json;

use crate::srtype::SrType;

/// A stored value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// NULL.
    Null,
    /// BOOLEAN.
    Bool(bool),
    /// Any integer type (LARGEINT included).
    Int(i128),
    /// FLOAT.
    Float(f32),
    /// DOUBLE.
    Double(f64),
    /// DECIMAL: unscaled value at the column's scale.
    Decimal(i128, u8),
    /// DATE: days since 1970-01-01 (proleptic Gregorian).
    Date(i64),
    /// DATETIME: microseconds since 1970-01-01 00:00:00 (wall clock).
    Datetime(i64),
    /// CHAR/VARCHAR.
    Str(String),
    /// VARBINARY.
    Binary(Vec<u8>),
    /// JSON (normalized: keys sorted).
    Json(Json),
    /// ARRAY.
    Array(Vec<Value>),
    /// MAP, in stored order (duplicates removed, last wins).
    Map(Vec<(Value, Value)>),
    /// STRUCT fields, by name.
    Struct(Vec<(String, Value)>),
    /// BITMAP.
    Bitmap(RoaringTreemap),
}

impl Value {
    /// The canonical JSON form used by tests and dumps: integers and
    /// decimals as strings, floats by their bits, timestamps in µs.
    pub fn canonical(&self) -> Json {
        use serde_json::json;
        match self {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Int(i) => Json::String(i.to_string()),
            Value::Float(f) => json!({"f32": format!("{:08x}", f.to_bits())}),
            Value::Double(f) => json!({"f64": format!("{:016x}", f.to_bits())}),
            Value::Decimal(v, s) => json!({"dec": v.to_string(), "scale": s}),
            Value::Date(d) => Json::String(format_date(*d)),
            Value::Datetime(us) => json!({"ts_us": us.to_string()}),
            Value::Str(s) => Json::String(s.clone()),
            Value::Binary(b) => json!({"b64": base64::engine::general_purpose::STANDARD.encode(b)}),
            Value::Json(j) => json!({"json": j}),
            Value::Array(a) => Json::Array(a.iter().map(Value::canonical).collect()),
            Value::Map(m) => {
                json!({"map": m.iter().map(|(k, v)| json!([k.canonical(), v.canonical()])).collect::<Vec<_>>()})
            }
            Value::Struct(fs) => Json::Object(fs.iter().map(|(k, v)| (k.clone(), v.canonical())).collect()),
            Value::Bitmap(b) => json!({"bitmap": b.iter().map(|v| v.to_string()).collect::<Vec<_>>()}),
        }
    }

    /// A human-readable rendering (as a MySQL client would show it).
    pub fn display(&self) -> Option<String> {
        Some(match self {
            Value::Null => return None,
            Value::Bool(b) => (*b as u8).to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => format_float(*f as f64, true),
            Value::Double(f) => format_float(*f, false),
            Value::Decimal(v, s) => format_decimal(*v, *s),
            Value::Date(d) => format_date(*d),
            Value::Datetime(us) => format_datetime(*us),
            Value::Str(s) => s.clone(),
            Value::Binary(b) => base64::engine::general_purpose::STANDARD.encode(b),
            Value::Json(j) => j.to_string(),
            Value::Array(a) => format!("[{}]", a.iter().map(|v| v.display_nested()).collect::<Vec<_>>().join(",")),
            Value::Map(m) => format!(
                "{{{}}}",
                m.iter()
                    .map(|(k, v)| format!("{}:{}", k.display_nested(), v.display_nested()))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            Value::Struct(fs) => format!(
                "{{{}}}",
                fs.iter().map(|(k, v)| format!("\"{k}\":{}", v.display_nested())).collect::<Vec<_>>().join(",")
            ),
            Value::Bitmap(b) => b.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(","),
        })
    }

    fn display_nested(&self) -> String {
        match self {
            Value::Null => "null".into(),
            Value::Str(_) | Value::Date(_) | Value::Datetime(_) | Value::Binary(_) => {
                format!("\"{}\"", self.display().unwrap_or_default())
            }
            _ => self.display().unwrap_or_default(),
        }
    }
}

/// Whether the range partition `[lo, hi)` of a column of type `ty` holds
/// `v`. NULL sorts below every value: the partition whose lower bound is
/// the type's least value (what `VALUES LESS THAN` gives the first
/// partition) holds it (StarRocks' BE: a range starting at the minimum has
/// no lower key, `_part_contains`).
pub fn range_holds(lo: &Value, hi: &Value, v: &Value, ty: &SrType) -> bool {
    if matches!(v, Value::Null) {
        return is_type_min(lo, ty);
    }
    cmp_values(lo, v).is_some_and(|o| o.is_le()) && cmp_values(v, hi).is_some_and(|o| o.is_lt())
}

/// Whether `v` is the least value of `ty` (a partition bound's MIN).
pub fn is_type_min(v: &Value, ty: &SrType) -> bool {
    /// 0000-01-01 in days since 1970-01-01.
    const DAY_0: i64 = -719_528;
    match (v, ty) {
        (Value::Int(i), t) => t.int_range().is_some_and(|(least, _)| *i == least),
        (Value::Date(d), SrType::Date) => *d == DAY_0,
        (Value::Datetime(us), SrType::Datetime) => *us == DAY_0 * 86_400_000_000,
        _ => false,
    }
}

/// Orders two scalar values of the same type (None across types).
pub fn cmp_values(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    use Value::*;
    match (a, b) {
        (Int(x), Int(y)) => Some(x.cmp(y)),
        (Date(x), Date(y)) => Some(x.cmp(y)),
        (Datetime(x), Datetime(y)) => Some(x.cmp(y)),
        (Str(x), Str(y)) => Some(x.cmp(y)),
        (Decimal(x, _), Decimal(y, _)) => Some(x.cmp(y)),
        (Bool(x), Bool(y)) => Some(x.cmp(y)),
        (Float(x), Float(y)) => x.partial_cmp(y),
        (Double(x), Double(y)) => x.partial_cmp(y),
        (Null, Null) => Some(std::cmp::Ordering::Equal),
        _ => None,
    }
}

fn format_float(f: f64, single: bool) -> String {
    if f.is_nan() {
        "nan".into()
    } else if f.is_infinite() {
        if f > 0.0 { "inf".into() } else { "-inf".into() }
    } else if single {
        ryu::Buffer::new().format(f as f32).to_string()
    } else {
        ryu::Buffer::new().format(f).to_string()
    }
}

/// `unscaled / 10^scale` as decimal text with exactly `scale` fraction digits.
pub fn format_decimal(v: i128, scale: u8) -> String {
    let mut s = String::new();
    write_decimal(&mut s, v, scale);
    s
}

/// Appends `unscaled / 10^scale` with exactly `scale` fraction digits.
pub fn write_decimal(out: &mut String, v: i128, scale: u8) {
    let neg = v < 0;
    let digits = v.unsigned_abs().to_string();
    let scale = scale as usize;
    if neg {
        out.push('-');
    }
    if scale == 0 {
        out.push_str(&digits);
    } else if digits.len() > scale {
        out.push_str(&digits[..digits.len() - scale]);
        out.push('.');
        out.push_str(&digits[digits.len() - scale..]);
    } else {
        out.push_str("0.");
        for _ in digits.len()..scale {
            out.push('0');
        }
        out.push_str(&digits);
    }
}

// ---------------------------------------------------------------------------
// Calendar arithmetic (proleptic Gregorian; Howard Hinnant's algorithms).

/// Days since 1970-01-01 of a civil date.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// The civil date of a day number.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// StarRocks' leap-year rule: year 0 is *not* a leap year (`date::is_leap`).
fn sr_is_leap(y: i64) -> bool {
    y != 0 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if sr_is_leap(y) => 29,
        _ => 28,
    }
}

/// Whether StarRocks accepts this calendar date (years 0000–9999).
pub fn valid_date(y: i64, m: u32, d: u32) -> bool {
    (0..=9999).contains(&y) && (1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m)
}

/// `YYYY-MM-DD`.
pub fn format_date(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `YYYY-MM-DD HH:MM:SS[.ffffff]`.
pub fn format_datetime(us: i64) -> String {
    let days = us.div_euclid(86_400_000_000);
    let t = us.rem_euclid(86_400_000_000);
    let (y, m, d) = civil_from_days(days);
    let (h, mi, s, f) = (t / 3_600_000_000, t / 60_000_000 % 60, t / 1_000_000 % 60, t % 1_000_000);
    let mut out = format!("{y:04}-{m:02}-{d:02} {h:02}:{mi:02}:{s:02}");
    if f != 0 {
        let _ = write!(out, ".{f:06}");
    }
    out
}

// ---------------------------------------------------------------------------
// Scalar text parsers (StringParser and friends).

fn trim_ws(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_ascii_whitespace())
}

/// `StringParser::string_to_int` into `[lo, hi]`, with the BE's fallbacks:
/// TINYINT..INT truncate a double; BIGINT/LARGEINT take the integer part of
/// a decimal (within the int64 range).
pub fn parse_int(s: &str, lo: i128, hi: i128, wide: bool) -> Result<i128, String> {
    let t = s.trim_start_matches(|c: char| c.is_ascii_whitespace());
    let t = t.trim_end_matches(|c: char| c.is_ascii_whitespace());
    if t.is_empty() {
        return Err("empty value".into());
    }
    let (neg, digits) = match t.as_bytes()[0] {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.bytes().all(|b| b.is_ascii_digit()) {
        // A lone sign parses as 0 (a BE quirk).
        // Accumulate with the sign so that i128::MIN parses.
        let mut v: i128 = 0;
        for b in digits.bytes() {
            let d = (b - b'0') as i128;
            v = v
                .checked_mul(10)
                .and_then(|v| if neg { v.checked_sub(d) } else { v.checked_add(d) })
                .ok_or("out of range")?;
        }
        if v < lo || v > hi {
            return Err("out of range".into());
        }
        return Ok(v);
    }
    // Fallbacks for text like `1.9` or `1e2`.
    if !wide {
        let f = parse_float_text(t).map_err(|_| "not an integer".to_string())?;
        if !f.is_finite() {
            return Err("not an integer".into());
        }
        let v = f.trunc();
        if v < lo as f64 || v > hi as f64 {
            return Err("out of range".into());
        }
        return Ok(v as i128);
    }
    let (unscaled, scale) = parse_decimal_text(t, 27, 9).map_err(|_| "not an integer".to_string())?;
    let v = unscaled / 10i128.pow(scale as u32);
    if v < i64::MIN as i128 || v > i64::MAX as i128 || v < lo || v > hi {
        return Err("out of range".into());
    }
    Ok(v)
}

/// `string_to_float` into a double: trims, accepts digits, `.`, one
/// exponent, and anything containing `inf` / `nan`.
pub fn parse_float_text(s: &str) -> Result<f64, String> {
    let t = trim_ws(s);
    if t.is_empty() {
        return Err("empty value".into());
    }
    let (neg, body) = match t.as_bytes()[0] {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    let lower = body.to_ascii_lowercase();
    if lower.contains("inf") {
        return Ok(if neg { f64::NEG_INFINITY } else { f64::INFINITY });
    }
    if lower.contains("nan") {
        return Ok(f64::NAN);
    }
    let b = body.as_bytes();
    let mut seen_e = false;
    for (i, &c) in b.iter().enumerate() {
        let ok = c.is_ascii_digit()
            || c == b'.'
            || (matches!(c, b'e' | b'E') && !seen_e)
            || (matches!(c, b'+' | b'-') && i > 0 && matches!(b[i - 1], b'e' | b'E'));
        if !ok {
            return Err("not a number".into());
        }
        if matches!(c, b'e' | b'E') {
            seen_e = true;
        }
    }
    let v: f64 = body.parse().map_err(|_| "not a number".to_string())?;
    Ok(if neg { -v } else { v })
}

/// A DOUBLE field.
pub fn parse_double(s: &str) -> Result<f64, String> {
    let v = parse_float_text(s)?;
    if v.is_infinite() && !s.to_ascii_lowercase().contains("inf") {
        return Err("out of range".into());
    }
    Ok(v)
}

/// A FLOAT field (parsed as double, then rounded to float).
pub fn parse_float32(s: &str) -> Result<f32, String> {
    let v = parse_float_text(s)?;
    Ok(v as f32)
}

/// `string_to_decimal` for DECIMAL(p, s): keeps the first `p` significant
/// digits (dropping the rest), rounds half away from zero to `s`, and fails
/// when the integer part has more than `p - s` digits.
pub fn parse_decimal_text(s: &str, p: u8, scale: u8) -> Result<(i128, u8), String> {
    let t = trim_ws(s);
    if t.is_empty() {
        return Err("empty value".into());
    }
    let (neg, body) = match t.as_bytes()[0] {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    let (mant, exp) = match body.find(['e', 'E']) {
        Some(i) => {
            let e: i32 = body[i + 1..].parse().map_err(|_| "bad exponent".to_string())?;
            if !(-128..=127).contains(&e) {
                return Err("bad exponent".into());
            }
            (&body[..i], e)
        }
        None => (body, 0),
    };
    let (ip, fp) = mant.split_once('.').unwrap_or((mant, ""));
    if !ip.bytes().all(|b| b.is_ascii_digit()) || !fp.bytes().all(|b| b.is_ascii_digit()) {
        return Err("not a decimal".into());
    }
    if ip.is_empty() && fp.is_empty() && !mant.contains('.') {
        return Err("not a decimal".into());
    }
    // All digits, and the position of the decimal point after the exponent.
    let mut digits: Vec<u8> = ip.bytes().chain(fp.bytes()).map(|b| b - b'0').collect();
    let mut point = ip.len() as i64 + exp as i64;
    // Strip leading zeros (adjusting the point).
    let lead = digits.iter().take_while(|&&d| d == 0).count();
    digits.drain(..lead);
    point -= lead as i64;
    if digits.is_empty() {
        return Ok((0, scale));
    }
    // Integer digits beyond p - s overflow.
    if point > (p as i64 - scale as i64) {
        return Err("out of range".into());
    }
    // Keep only the first p significant digits.
    digits.truncate(p as usize);
    // Value = 0.d1d2d3... * 10^point. Unscaled at `scale`: take digits up to
    // position point + scale.
    let keep = point + scale as i64; // number of digits that form the unscaled value
    let mut v: i128 = 0;
    let mut round_up = false;
    if keep > 0 {
        for i in 0..keep as usize {
            let d = digits.get(i).copied().unwrap_or(0);
            v = v * 10 + d as i128;
        }
        if let Some(&next) = digits.get(keep as usize) {
            round_up = next >= 5;
        }
    } else if keep == 0 {
        round_up = digits[0] >= 5;
    }
    if round_up {
        v += 1;
    }
    if v >= 10i128.pow(p as u32) {
        return Err("out of range".into());
    }
    Ok((if neg { -v } else { v }, scale))
}

/// `string_to_bool`, then a number (non-zero is true).
pub fn parse_bool(s: &str) -> Result<bool, String> {
    let t = s.trim_start_matches(|c: char| c.is_ascii_whitespace()).trim_end_matches(' ');
    match t.to_ascii_lowercase().as_str() {
        "true" | "1" => return Ok(true),
        "false" | "0" => return Ok(false),
        _ => {}
    }
    match parse_float_text(t) {
        Ok(f) => Ok(f != 0.0),
        Err(_) => Err("not a boolean".into()),
    }
}

/// DATE / DATETIME text (`DateValue::from_string` / `TimestampValue::from_string`):
/// returns microseconds since the epoch. Fast paths for `YYYY?MM?DD` and
/// `YYYY?MM?DD HH?MM?SS`, then the MySQL-style general parser (trailing
/// junk ignored once a date was read, a 7th fraction digit dropped).
pub fn parse_datetime_text(s: &str) -> Result<i64, String> {
    let t = trim_ws(s);
    let b = t.as_bytes();
    if b.is_empty() || !b[0].is_ascii_digit() {
        return Err("not a date".into());
    }
    // Split into fields: runs of digits, with the separators seen.
    let mut fields: Vec<(u64, usize)> = Vec::new(); // (value, digit count)
    let mut frac: Option<(u64, usize)> = None;
    let mut i = 0;
    // All-digit forms.
    let run = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if run == b.len() || (run >= 8 && b.get(run) == Some(&b'.')) {
        let d = &t[..run];
        let (y, rest, yd) = match run {
            8 | 14.. => (&d[..4], &d[4..], 4),
            6 | 12 => (&d[..2], &d[2..], 2),
            _ => return Err("not a date".into()),
        };
        fields.push((y.parse().unwrap_or(0), yd));
        for k in (0..rest.len()).step_by(2) {
            fields.push((rest[k..(k + 2).min(rest.len())].parse().unwrap_or(0), 2));
        }
        if b.get(run) == Some(&b'.') {
            let f: String = t[run + 1..].chars().take_while(|c| c.is_ascii_digit()).collect();
            frac = Some((f.parse().unwrap_or(0), f.len()));
        }
    } else {
        while i < b.len() && fields.len() < 6 {
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if start == i {
                break;
            }
            let n = &t[start..i];
            fields.push((n.parse().map_err(|_| "not a date".to_string())?, n.len()));
            if fields.len() == 6 {
                if i < b.len() && b[i] == b'.' {
                    let fs = i + 1;
                    let mut j = fs;
                    while j < b.len() && b[j].is_ascii_digit() {
                        j += 1;
                    }
                    let f = &t[fs..j];
                    frac = Some((f.parse().unwrap_or(0), f.len()));
                }
                break;
            }
            // Separator: punctuation; whitespace or `T` only after the day.
            if i >= b.len() {
                break;
            }
            let c = b[i];
            let after_day = fields.len() == 3;
            if c.is_ascii_punctuation() || (after_day && (c == b' ' || c == b'T')) {
                i += 1;
                while after_day && i < b.len() && b[i] == b' ' {
                    i += 1;
                }
            } else {
                break;
            }
        }
    }
    if fields.len() < 3 {
        return Err("not a date".into());
    }
    let (mut y, yd) = (fields[0].0 as i64, fields[0].1);
    if yd <= 2 {
        y += if y < 70 { 2000 } else { 1900 };
    }
    let (m, d) = (fields[1].0 as u32, fields[2].0 as u32);
    if !valid_date(y, m, d) {
        return Err("invalid date".into());
    }
    let get = |k: usize| fields.get(k).map(|f| f.0).unwrap_or(0);
    let (h, mi, sec) = (get(3), get(4), get(5));
    if h > 23 || mi > 59 || sec > 59 {
        return Err("invalid time".into());
    }
    let mut us = 0u64;
    if let Some((f, n)) = frac {
        // Up to 6 digits are scaled; more are dropped.
        let (f, n) = if n > 6 { (f / 10u64.pow((n - 6) as u32), 6) } else { (f, n) };
        us = f * 10u64.pow((6 - n) as u32);
    }
    let days = days_from_civil(y, m, d);
    Ok(days * 86_400_000_000 + (h * 3600 + mi * 60 + sec) as i64 * 1_000_000 + us as i64)
}

/// A DATE field: the date part of [`parse_datetime_text`].
pub fn parse_date_text(s: &str) -> Result<i64, String> {
    Ok(parse_datetime_text(s)?.div_euclid(86_400_000_000))
}

// ---------------------------------------------------------------------------
// CSV fields.

/// Parses one CSV field (already known not to be `\N`) as the BE's
/// converter for `ty` does in strict mode.
pub fn parse_csv_field(ty: &SrType, s: &str) -> Result<Value, String> {
    match ty {
        SrType::Boolean => parse_bool(s).map(Value::Bool),
        SrType::TinyInt | SrType::SmallInt | SrType::Int => {
            let (lo, hi) = ty.int_range().unwrap_or_default();
            parse_int(s, lo, hi, false).map(Value::Int)
        }
        SrType::BigInt | SrType::LargeInt => {
            let (lo, hi) = ty.int_range().unwrap_or_default();
            parse_int(s, lo, hi, true).map(Value::Int)
        }
        SrType::Float => {
            // Read as a double and narrowed; a text above FLT_MAX as a double
            // is refused rather than rounded down (the strict reading).
            let v = parse_float_text(s)?;
            if v.is_finite() && v.abs() > f32::MAX as f64 {
                return Err(format!("`{s}` is out of FLOAT's range"));
            }
            Ok(Value::Float(v as f32))
        }
        SrType::Double => parse_double(s).map(Value::Double),
        SrType::Decimal { precision, scale } => {
            parse_decimal_text(s, *precision, *scale).map(|(v, s)| Value::Decimal(v, s))
        }
        SrType::Char(n) | SrType::Varchar(n) => {
            if s.len() > *n as usize {
                Err(format!("string of {} bytes is longer than {}", s.len(), n))
            } else {
                Ok(Value::Str(s.to_string()))
            }
        }
        SrType::Date => parse_date_text(s).map(Value::Date),
        SrType::Datetime => parse_datetime_text(s).map(Value::Datetime),
        SrType::Json => {
            json_length(s)?;
            let t = s.trim_start();
            if t.starts_with(['{', '[', '"']) {
                json_document(s).map(Value::Json)
            } else {
                Ok(Value::Json(Json::String(s.to_string())))
            }
        }
        SrType::Varbinary(n) => {
            let bytes = if s.trim().is_empty() {
                Vec::new()
            } else {
                base64::engine::general_purpose::STANDARD.decode(s).unwrap_or_else(|_| s.as_bytes().to_vec())
            };
            if let Some(n) = n
                && bytes.len() > *n as usize
            {
                return Err(format!("binary of {} bytes is longer than {}", bytes.len(), n));
            }
            Ok(Value::Binary(bytes))
        }
        SrType::Array(et) => parse_csv_array(et, s),
        SrType::Map(kt, vt) => parse_csv_map(kt, vt, s),
        SrType::Struct(_) => Err("Unsupported CSV type STRUCT".into()),
        SrType::Bitmap | SrType::Hll | SrType::Percentile => Err(format!("{ty} needs a columns expression")),
    }
}

/// Splits the inside of `[...]` / `{...}` at top-level commas. `"` toggles
/// quoting; `open`/`close` track nesting.
fn split_top(s: &str, sep: u8, open: u8, close: u8) -> Result<Vec<&str>, String> {
    let b = s.as_bytes();
    let (mut depth, mut quoted, mut start) = (0i32, false, 0usize);
    let mut out = Vec::new();
    for (i, &c) in b.iter().enumerate() {
        if c == b'"' {
            quoted = !quoted;
        } else if !quoted {
            if c == open {
                depth += 1;
            } else if c == close {
                depth -= 1;
                if depth < 0 {
                    return Err("unbalanced brackets".into());
                }
            } else if c == sep && depth == 0 {
                out.push(&s[start..i]);
                start = i + 1;
            }
        }
    }
    if quoted || depth != 0 {
        return Err("unbalanced quotes or brackets".into());
    }
    out.push(&s[start..]);
    Ok(out)
}

/// An element inside ARRAY/MAP text (`read_quoted_string`). Only `null` is
/// NULL there: older BEs also took `\N`, newer ones fail the field.
fn parse_element(ty: &SrType, s: &str) -> Result<Value, String> {
    if s == "null" {
        return Ok(Value::Null);
    }
    let unquote = |s: &str| -> Result<String, String> {
        if s.len() >= 2 && s.starts_with('"') && s.ends_with('"') {
            Ok(s[1..s.len() - 1].replace("\"\"", "\""))
        } else {
            Err(format!("element `{s}` must be double-quoted"))
        }
    };
    match ty {
        SrType::Char(_) | SrType::Varchar(_) => Ok(Value::Str(unquote(s)?)),
        SrType::Date | SrType::Datetime | SrType::Varbinary(_) => parse_csv_field(ty, &unquote(s)?),
        SrType::Json => {
            if s.len() >= 2 && s.starts_with('"') && s.ends_with('"') {
                parse_csv_field(ty, &s[1..s.len() - 1])
            } else {
                Err(format!("element `{s}` must be double-quoted"))
            }
        }
        SrType::Array(_) | SrType::Map(..) => parse_csv_field(ty, s),
        _ => {
            if s.starts_with('"') {
                return Err(format!("element `{s}` must not be quoted"));
            }
            parse_csv_field(ty, s)
        }
    }
}

fn parse_csv_array(et: &SrType, s: &str) -> Result<Value, String> {
    let inner = s
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .ok_or_else(|| format!("array text `{}` must start with [ and end with ]", short(s)))?;
    if inner.is_empty() {
        return Ok(Value::Array(vec![]));
    }
    let parts = split_top(inner, b',', b'[', b']')?;
    let mut out = Vec::with_capacity(parts.len());
    for p in parts {
        out.push(parse_element(et, p)?);
    }
    Ok(Value::Array(out))
}

fn parse_csv_map(kt: &SrType, vt: &SrType, s: &str) -> Result<Value, String> {
    let inner = s
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .ok_or_else(|| format!("map text `{}` must start with {{ and end with }}", short(s)))?;
    if inner.is_empty() {
        return Ok(Value::Map(vec![]));
    }
    let mut entries: Vec<(String, Value, Value)> = Vec::new();
    for e in split_top(inner, b',', b'{', b'}')? {
        let kv = split_top(e, b':', b'{', b'}')?;
        if kv.len() < 2 || kv[0].is_empty() {
            return Err(format!("map entry `{}` has no key or value", short(e)));
        }
        // Only the first top-level `:` separates key from value.
        let key_text = kv[0];
        let val_text = &e[key_text.len() + 1..];
        if val_text.is_empty() {
            return Err(format!("map entry `{}` has no value", short(e)));
        }
        let k = parse_element(kt, key_text)?;
        let v = parse_element(vt, val_text)?;
        entries.retain(|(kt, _, _)| kt != key_text);
        entries.push((key_text.to_string(), k, v));
    }
    Ok(Value::Map(entries.into_iter().map(|(_, k, v)| (k, v)).collect()))
}

fn short(s: &str) -> String {
    s.chars().take(60).collect()
}

// ---------------------------------------------------------------------------
// JSON values (simple mode). `raw` is the value's JSON text.

/// Converts one JSON value for a column of type `ty`. `Ok(None)` means the
/// value converts to NULL (a failed cast); `Err` is a converter error.
pub fn parse_json_value(ty: &SrType, raw: &str) -> Result<Value, String> {
    let raw = raw.trim();
    if raw == "null" {
        return Ok(Value::Null);
    }
    let as_json = || serde_json::from_str::<Json>(raw).map_err(|e| format!("invalid JSON value: {e}"));
    let is_string = raw.starts_with('"');
    let is_number = raw.starts_with(|c: char| c == '-' || c.is_ascii_digit());
    let string_content = || -> Result<String, String> {
        match as_json()? {
            Json::String(s) => Ok(s),
            _ => Err("expected a string".into()),
        }
    };
    // Text a cast would see: the string's content, the raw number token,
    // "1"/"0" for booleans.
    let cast_text = || -> Result<String, String> {
        if is_string {
            string_content()
        } else if is_number {
            Ok(raw.to_string())
        } else if raw == "true" {
            Ok("1".into())
        } else if raw == "false" {
            Ok("0".into())
        } else {
            Err("cannot cast an object or array".into())
        }
    };
    match ty {
        SrType::TinyInt | SrType::SmallInt | SrType::Int | SrType::BigInt => {
            let (lo, hi) = ty.int_range().unwrap_or_default();
            let text = if is_string {
                string_content()?
            } else if is_number {
                raw.to_string()
            } else {
                return Err("Unsupported value type. Numeric type is required.".into());
            };
            if let Ok(v) = parse_int(&text, lo, hi, false).or_else(|_| {
                let f = parse_float_text(&text)?;
                if !f.is_finite() || f.trunc() < lo as f64 || f.trunc() > hi as f64 {
                    return Err("overflow".to_string());
                }
                Ok(f.trunc() as i128)
            }) {
                Ok(Value::Int(v))
            } else {
                Err(format!("Value is overflow or not a number: {}", short(&text)))
            }
        }
        SrType::LargeInt => {
            let text = cast_text()?;
            let (lo, hi) = ty.int_range().unwrap_or_default();
            let t = trim_ws(&text);
            let (neg, d) = match t.as_bytes().first() {
                Some(b'-') => (true, &t[1..]),
                Some(b'+') => (false, &t[1..]),
                _ => (false, t),
            };
            if d.is_empty() || !d.bytes().all(|b| b.is_ascii_digit()) {
                return Ok(Value::Null);
            }
            match parse_int(&format!("{}{d}", if neg { "-" } else { "" }), lo, hi, true) {
                Ok(v) => Ok(Value::Int(v)),
                Err(_) => Ok(Value::Null),
            }
        }
        SrType::Float | SrType::Double => {
            let f = if is_string {
                parse_float_text(&string_content()?)?
            } else if is_number {
                if raw.contains(['.', 'e', 'E']) {
                    raw.parse::<f64>().map_err(|_| "not a number".to_string())?
                } else {
                    // An integer token: `-0` is the integer 0 and loses its sign.
                    // Past 64 bits it is simdjson's big_integer, which the BE's
                    // numeric columns have no case for.
                    let i: i128 = raw.parse().map_err(|_| "not a number".to_string())?;
                    if !(i64::MIN as i128..=u64::MAX as i128).contains(&i) {
                        return Err(format!("the integer {} is past 64 bits (simdjson big_integer)", short(raw)));
                    }
                    i as f64
                }
            } else {
                return Err("Unsupported value type. Numeric type is required.".into());
            };
            if matches!(ty, SrType::Float) {
                // The BE checks the double against FLT_MAX before narrowing.
                if f.is_finite() && f.abs() > f32::MAX as f64 {
                    return Err("Value is overflow".into());
                }
                Ok(Value::Float(f as f32))
            } else {
                Ok(Value::Double(f))
            }
        }
        SrType::Boolean => {
            if raw == "true" || raw == "false" {
                return Ok(Value::Bool(raw == "true"));
            }
            if is_number {
                return Ok(Value::Bool(parse_float_text(raw).map(|f| f != 0.0).unwrap_or(true)));
            }
            if is_string {
                let s = string_content()?;
                if let Ok(i) = parse_int(&s, i32::MIN as i128, i32::MAX as i128, false) {
                    return Ok(Value::Bool(i != 0));
                }
                return parse_bool(&s).map(Value::Bool).map_err(|_| "Failed to parse string value as boolean".into());
            }
            Err("Unsupported value type to boolean".into())
        }
        SrType::Char(n) | SrType::Varchar(n) => {
            let s = if is_string {
                string_content()?
            } else if is_number {
                raw.to_string()
            } else if raw == "true" || raw == "false" {
                if raw == "true" { "1".into() } else { "0".into() }
            } else {
                as_json()?.to_string()
            };
            if s.len() > *n as usize {
                return Err(format!("Value length is beyond the capacity. capacity={n}"));
            }
            Ok(Value::Str(s))
        }
        SrType::Decimal { precision, scale } => {
            let text = match cast_text() {
                Ok(t) => t,
                Err(_) => return Ok(Value::Null),
            };
            match parse_decimal_text(&text, 38, *scale) {
                Ok((v, s)) => {
                    if v.unsigned_abs() >= 10u128.pow(*precision as u32) {
                        return Err(format!("Decimal '{}' is out of range", short(&text)));
                    }
                    Ok(Value::Decimal(v, s))
                }
                Err(_) => Ok(Value::Null),
            }
        }
        SrType::Date => match cast_text() {
            Ok(t) => Ok(parse_date_text(&t).map(Value::Date).unwrap_or(Value::Null)),
            Err(_) => Ok(Value::Null),
        },
        SrType::Datetime => match cast_text() {
            Ok(t) => Ok(parse_datetime_text(&t).map(Value::Datetime).unwrap_or(Value::Null)),
            Err(_) => Ok(Value::Null),
        },
        SrType::Json => json_document(raw).map(Value::Json),
        SrType::Varbinary(n) => {
            let t = match cast_text() {
                Ok(t) => t,
                Err(_) => return Ok(Value::Null),
            };
            if let Some(n) = n
                && t.len() > *n as usize
            {
                return Err("binary value too long".into());
            }
            Ok(Value::Binary(t.into_bytes()))
        }
        SrType::Array(et) => {
            let items: Vec<&serde_json::value::RawValue> =
                serde_json::from_str(raw).map_err(|_| "Failed to parse value as array".to_string())?;
            // Elements that do not convert become NULL, even in strict mode.
            Ok(Value::Array(items.iter().map(|it| parse_json_value(et, it.get()).unwrap_or(Value::Null)).collect()))
        }
        SrType::Map(kt, vt) => {
            let obj: Vec<(String, &serde_json::value::RawValue)> =
                parse_object_entries(raw).map_err(|_| format!("Expected value type [object], got [{}]", short(raw)))?;
            let mut out: Vec<(Value, Value)> = Vec::new();
            for (k, v) in obj {
                // The key is re-wrapped in quotes without escaping (BE quirk).
                let key = parse_json_value(kt, &format!("\"{k}\"")).unwrap_or(Value::Null);
                let val = parse_json_value(vt, v.get()).unwrap_or(Value::Null);
                out.retain(|(ek, _)| ek != &key);
                out.push((key, val));
            }
            Ok(Value::Map(out))
        }
        SrType::Struct(fields) => {
            let obj: Vec<(String, &serde_json::value::RawValue)> =
                parse_object_entries(raw).map_err(|_| "Expected value type [object]".to_string())?;
            Ok(Value::Struct(
                fields
                    .iter()
                    .map(|(name, t)| {
                        // simdjson's find_field_unordered compares the raw
                        // key text: a name JSON must escape never matches.
                        let raw_differs = name.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20);
                        let v = obj
                            .iter()
                            .find(|(k, _)| k == name && !raw_differs)
                            .map(|(_, v)| parse_json_value(t, v.get()).unwrap_or(Value::Null))
                            .unwrap_or(Value::Null);
                        (name.clone(), v)
                    })
                    .collect(),
            ))
        }
        SrType::Bitmap | SrType::Hll | SrType::Percentile => Err(format!("{ty} needs a columns expression")),
    }
}

/// Parses a JSON object into its entries, in order, duplicates kept.
pub fn parse_object_entries(raw: &str) -> Result<Vec<(String, &serde_json::value::RawValue)>, String> {
    struct Entries<'a>(Vec<(String, &'a serde_json::value::RawValue)>);
    impl<'de: 'a, 'a> serde::Deserialize<'de> for Entries<'a> {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V<'a>(std::marker::PhantomData<&'a ()>);
            impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
                type Value = Entries<'a>;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("a JSON object")
                }
                fn visit_map<M: serde::de::MapAccess<'de>>(self, mut m: M) -> Result<Entries<'a>, M::Error> {
                    let mut out = Vec::new();
                    while let Some((k, v)) = m.next_entry::<String, &'de serde_json::value::RawValue>()? {
                        out.push((k, v));
                    }
                    Ok(Entries(out))
                }
            }
            d.deserialize_map(V(std::marker::PhantomData))
        }
    }
    serde_json::from_str::<Entries>(raw).map(|e| e.0).map_err(|e| e.to_string())
}

/// StarRocks refuses a JSON value over 16 MB (`kJSONLengthLimit`,
/// `JsonValue::parse_json_or_string` in be/src/util/json.cpp).
fn json_length(s: &str) -> Result<(), String> {
    if s.len() > 16 << 20 {
        return Err("JSON string exceed maximum length 16MB".into());
    }
    Ok(())
}

/// A JSON column's document, refused when an object holds a key twice:
/// StarRocks stores both pairs (velocypack does not check uniqueness) and
/// which one `->` finds is unspecified, so no one value would arrive.
pub fn json_document(s: &str) -> Result<Json, String> {
    json_length(s)?;
    serde_json::from_str::<UniqueKeys>(s).map_err(|e| format!("invalid JSON: {e}"))?;
    serde_json::from_str::<Json>(s).map_err(|e| format!("invalid JSON: {e}"))
}

/// Whether `s` is one JSON value whose objects each hold a key once: the
/// error says which key repeats, and is `None` when `s` is not JSON.
pub fn json_keys_unique(s: &str) -> Result<(), Option<String>> {
    match serde_json::from_str::<UniqueKeys>(s) {
        Ok(UniqueKeys) => Ok(()),
        Err(e) if e.classify() == serde_json::error::Category::Data => Err(Some(e.to_string())),
        Err(_) => Err(None),
    }
}

/// Deserializes any JSON value, failing on an object that repeats a key.
struct UniqueKeys;

impl<'de> serde::Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UniqueKeys)
    }
}

impl<'de> serde::de::Visitor<'de> for UniqueKeys {
    type Value = UniqueKeys;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_unit<E>(self) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Self, A::Error> {
        while a.next_element::<UniqueKeys>()?.is_some() {}
        Ok(self)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<Self, A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(k) = m.next_key::<String>()? {
            if seen.contains(&k) {
                return Err(serde::de::Error::custom(format!(
                    "an object holds the key {} twice; StarRocks would keep both and `->` would find either",
                    Json::String(short(&k))
                )));
            }
            m.next_value::<UniqueKeys>()?;
            seen.insert(k);
        }
        Ok(self)
    }
}

/// Checks that every number in a JSON text (already known to be valid
/// JSON) keeps its value in a StarRocks JSON column. StarRocks keeps an
/// integer that fits `i64` or `u64` as it is and parses every other number
/// as a double: `123456789012345678901234567890` would be stored as
/// `1.2345678901234568e+29`, `1e400` is refused by the server. A number is
/// accepted when its decimal value is the one the nearest double prints as
/// (`0.1`, `1.50`, `1e20`), and refused with the number otherwise.
pub fn json_numbers_exact(s: &str) -> Result<(), String> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                // Skip the string, escapes included.
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < b.len() && matches!(b[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') {
                    i += 1;
                }
                check_json_number(&s[start..i])?;
            }
            _ => i += 1,
        }
    }
    Ok(())
}

fn check_json_number(t: &str) -> Result<(), String> {
    let integral = !t.contains(['.', 'e', 'E']);
    if integral && (t.parse::<i64>().is_ok() || t.parse::<u64>().is_ok()) {
        return Ok(());
    }
    let shown = |t: &str| if t.len() > 40 { format!("{}…", &t[..40]) } else { t.to_string() };
    let f: f64 = t.parse().map_err(|_| format!("bad JSON number {}", shown(t)))?;
    if !f.is_finite() {
        return Err(format!("the JSON number {} is beyond what StarRocks can store (a double)", shown(t)));
    }
    // Rust prints a double as the shortest text that reads back as it.
    if decimal_digits(t) != decimal_digits(&format!("{f:e}")) {
        return Err(format!(
            "the JSON number {} would be stored as the double {f:e}: StarRocks keeps integers of up to 64 bits \
             and doubles",
            shown(t)
        ));
    }
    Ok(())
}

/// Whether decimal text means exactly the float (`single`) or double it
/// parses to: its value is the one the float prints as. Signs other than a
/// leading `-`, spaces, hex, NaN and infinities are refused.
pub fn float_text_is_exact(t: &str, single: bool) -> Result<(), String> {
    let plain = !t.is_empty()
        && t.bytes().all(|b| matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
        && t.bytes().next().is_some_and(|b| b == b'-' || b.is_ascii_digit() || b == b'.')
        && t.bytes().any(|b| b.is_ascii_digit());
    if !plain {
        return Err("not a plain decimal number".into());
    }
    let shortest = if single {
        let f: f32 = t.parse().map_err(|_| "not a number".to_string())?;
        if !f.is_finite() {
            return Err("beyond the type's range".into());
        }
        format!("{f:e}")
    } else {
        let f: f64 = t.parse().map_err(|_| "not a number".to_string())?;
        if !f.is_finite() {
            return Err("beyond the type's range".into());
        }
        format!("{f:e}")
    };
    if decimal_digits(t) != decimal_digits(&shortest) {
        return Err(format!("it would be stored as {shortest}"));
    }
    Ok(())
}

/// A decimal number's value as (negative, significant digits, power of ten
/// of the first of them); zero is `(false, "", 0)`.
fn decimal_digits(t: &str) -> (bool, String, i64) {
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t),
    };
    let (mant, exp) = match t.find(['e', 'E']) {
        Some(p) => (&t[..p], t[p + 1..].parse::<i64>().unwrap_or(0)),
        None => (t, 0),
    };
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    let digits: String = int.chars().chain(frac.chars()).collect();
    let lead = digits.len() - digits.trim_start_matches('0').len();
    let sig = digits.trim_start_matches('0').trim_end_matches('0');
    if sig.is_empty() {
        return (false, String::new(), 0);
    }
    // The first significant digit's power of ten.
    let pow = int.len() as i64 - 1 - lead as i64 + exp;
    (neg, sig.to_string(), pow)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_text_must_be_the_floats_own() {
        for ok in ["1.5", "1.50", "0.1", "-0", "1e20", "123456789", "0.30000000000000004", "-2.5E-3"] {
            assert_eq!(float_text_is_exact(ok, false), Ok(()), "{ok}");
        }
        for bad in ["0.30000000000000000001", "1e400", "NaN", "inf", " 1", "+1", "0x10", "", "-", "1.5.2", "e5"] {
            assert!(float_text_is_exact(bad, false).is_err(), "{bad}");
        }
        assert_eq!(float_text_is_exact("0.1", true), Ok(()));
        assert!(float_text_is_exact("0.123456789", true).is_err());
        assert!(float_text_is_exact("16777217", true).is_err());
    }

    #[test]
    fn json_integer_tokens_past_64_bits_are_not_read_as_floats() {
        // simdjson's big_integer has no case in the BE's numeric columns; a
        // quoted number is text, parsed exactly.
        assert!(parse_json_value(&SrType::Double, "18446744073709551616").unwrap_err().contains("past 64 bits"));
        assert!(parse_json_value(&SrType::Double, "-9223372036854775809").is_err());
        assert_eq!(parse_json_value(&SrType::Double, "18446744073709551615"), Ok(Value::Double(u64::MAX as f64)));
        assert_eq!(
            parse_json_value(&SrType::Double, "\"18446744073709551616\""),
            Ok(Value::Double(18446744073709551616.0))
        );
        let big = "-170141183460469231731687303715884105728";
        assert_eq!(parse_json_value(&SrType::LargeInt, big), Ok(Value::Int(i128::MIN)));
        assert_eq!(parse_json_value(&SrType::LargeInt, &format!("\"{big}\"")), Ok(Value::Int(i128::MIN)));
    }

    #[test]
    fn json_documents_hold_each_key_once() {
        assert_eq!(json_keys_unique(r#"{"a":1,"b":{"a":2},"c":[{"a":3},{"a":4}]}"#), Ok(()));
        let e = json_keys_unique(r#"{"a":1,"b":[{"k":1,"k":2}]}"#).unwrap_err().unwrap();
        assert!(e.contains(r#"the key "k" twice"#), "{e}");
        // The same key after an escape is still the same key.
        assert!(json_keys_unique(r#"{"a":1,"\u0061":2}"#).unwrap_err().is_some());
        assert_eq!(json_keys_unique(r#"{"a":1"#), Err(None));
        assert_eq!(json_keys_unique("[1,2] 3"), Err(None));
        assert!(parse_csv_field(&SrType::Json, r#"{"a":1,"a":2}"#).unwrap_err().contains("twice"));
        assert!(parse_json_value(&SrType::Json, r#"{"a":1,"a":2}"#).unwrap_err().contains("twice"));
    }

    #[test]
    fn json_numbers_starrocks_keeps() {
        for ok in [
            r#"{"a":1,"b":-9223372036854775808,"c":18446744073709551615}"#,
            r#"[0.1, 1.50, 1e20, -0, 0.0, 5e-324, 1.7976931348623157e308, 3.141592653589793]"#,
            r#"{"s":"123456789012345678901234567890 1e400","n":null,"t":[true,false]}"#,
            r#""\"123456789012345678901234567890""#,
            "100000000000000000000",
        ] {
            assert_eq!(json_numbers_exact(ok), Ok(()), "{ok}");
        }
        for bad in [
            r#"{"big":123456789012345678901234567890}"#,
            r#"{"u":18446744073709551616}"#,
            "-9223372036854775809",
            "[1e400]",
            "-1e400",
            "3.14159265358979323846",
            "0.30000000000000000001",
        ] {
            let e = json_numbers_exact(bad).unwrap_err();
            assert!(e.contains("JSON number"), "{bad}: {e}");
        }
    }

    #[test]
    fn calendar_round_trips() {
        for d in [-719528i64, -1, 0, 1, 19782, 2932896] {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
        assert_eq!(format_date(0), "1970-01-01");
        assert_eq!(format_date(days_from_civil(1, 1, 1)), "0001-01-01");
        assert_eq!(format_datetime(-1), "1969-12-31 23:59:59.999999");
        assert_eq!(format_datetime(1_500_000), "1970-01-01 00:00:01.500000");
    }

    #[test]
    fn integers_follow_string_parser() {
        assert_eq!(parse_int(" 12 ", -128, 127, false), Ok(12));
        assert_eq!(parse_int("-", -128, 127, false), Ok(0));
        assert!(parse_int("128", -128, 127, false).is_err());
        assert_eq!(parse_int("1.9", -128, 127, false), Ok(1));
        assert!(parse_int("", -128, 127, false).is_err());
        assert_eq!(parse_int("-170141183460469231731687303715884105728", i128::MIN, i128::MAX, true), Ok(i128::MIN));
    }

    #[test]
    fn floats_keep_sign_and_specials() {
        assert!(parse_double("-0").unwrap().is_sign_negative());
        assert!(parse_double("nan").unwrap().is_nan());
        assert_eq!(parse_double("-inf").unwrap(), f64::NEG_INFINITY);
        assert_eq!(parse_double("5e-324").unwrap(), 5e-324);
        assert!(parse_double("1e400").is_err());
        assert!(parse_double("1x").is_err());
        assert_eq!(parse_float32("1e39").unwrap(), f32::INFINITY);
    }

    #[test]
    fn decimals_truncate_then_round() {
        assert_eq!(parse_decimal_text("0.125", 10, 2), Ok((13, 2)));
        assert_eq!(parse_decimal_text("-0.125", 10, 2), Ok((-13, 2)));
        assert_eq!(parse_decimal_text("1.2351", 3, 2), Ok((123, 2)));
        assert_eq!(parse_decimal_text("9.996", 3, 2), Ok((999, 2)));
        assert!(parse_decimal_text("100.0", 4, 2).is_err());
        assert_eq!(parse_decimal_text("99.99", 4, 2), Ok((9999, 2)));
        assert_eq!(parse_decimal_text("1e2", 5, 1), Ok((1000, 1)));
        assert_eq!(parse_decimal_text(".", 5, 1), Ok((0, 1)));
        assert!(parse_decimal_text("", 5, 1).is_err());
        assert!(parse_decimal_text("1a", 5, 1).is_err());
        assert_eq!(format_decimal(-5, 3), "-0.005");
        assert_eq!(format_decimal(123456, 2), "1234.56");
    }

    #[test]
    fn dates_and_datetimes() {
        let d = |s| parse_datetime_text(s).map(format_datetime);
        assert_eq!(d("2024-02-29 10:11:12.5"), Ok("2024-02-29 10:11:12.500000".into()));
        assert_eq!(d("2024-02-29T10:11:12"), Ok("2024-02-29 10:11:12".into()));
        assert_eq!(d("20240229"), Ok("2024-02-29 00:00:00".into()));
        assert_eq!(d("2024-01-01 00:00:00.1234567"), Ok("2024-01-01 00:00:00.123456".into()));
        assert_eq!(d("0000-01-01"), Ok("0000-01-01 00:00:00".into()));
        assert!(d("0000-02-29").is_err());
        assert!(d("2023-02-29").is_err());
        assert!(d("-001-01-01").is_err());
        assert!(d("2024-13-01").is_err());
        assert!(d("abc").is_err());
    }

    #[test]
    fn collections_in_csv() {
        let t = SrType::parse("array<varchar(10)>").unwrap();
        assert_eq!(
            parse_csv_field(&t, r#"["a,b","","I""m",null]"#),
            Ok(Value::Array(vec![
                Value::Str("a,b".into()),
                Value::Str("".into()),
                Value::Str("I\"m".into()),
                Value::Null
            ]))
        );
        assert!(parse_csv_field(&t, "[a]").is_err());
        assert!(parse_csv_field(&t, r#"["x",\N]"#).is_err(), "only `null` is NULL inside");
        assert!(parse_csv_field(&SrType::parse("array<int>").unwrap(), r"[1,\N]").is_err());
        let t = SrType::parse("array<array<int>>").unwrap();
        assert_eq!(
            parse_csv_field(&t, "[[1,2],null,[]]"),
            Ok(Value::Array(vec![Value::Array(vec![Value::Int(1), Value::Int(2)]), Value::Null, Value::Array(vec![])]))
        );
        let t = SrType::parse("map<varchar(10),int>").unwrap();
        assert_eq!(
            parse_csv_field(&t, r#"{"a":1,"b:c":null,"a":3}"#),
            Ok(Value::Map(vec![(Value::Str("b:c".into()), Value::Null), (Value::Str("a".into()), Value::Int(3))]))
        );
    }

    #[test]
    fn json_values() {
        let v = |t: &str, raw: &str| parse_json_value(&SrType::parse(t).unwrap(), raw);
        assert_eq!(v("int", "\"123\""), Ok(Value::Int(123)));
        assert_eq!(v("int", "1.9"), Ok(Value::Int(1)));
        assert!(v("tinyint", "300").is_err());
        assert_eq!(v("largeint", "170141183460469231731687303715884105727"), Ok(Value::Int(i128::MAX)));
        assert_eq!(v("largeint", "1.0"), Ok(Value::Null));
        assert!(matches!(v("double", "\"NaN\""), Ok(Value::Double(f)) if f.is_nan()));
        assert!(matches!(v("double", "-0.0"), Ok(Value::Double(f)) if f == 0.0 && f.is_sign_negative()));
        assert!(matches!(v("double", "-0"), Ok(Value::Double(f)) if f == 0.0 && !f.is_sign_negative()));
        assert_eq!(v("varchar(5)", "true"), Ok(Value::Str("1".into())));
        assert_eq!(v("decimal(5,2)", "\"1.25\""), Ok(Value::Decimal(125, 2)));
        assert!(v("decimal(3,2)", "\"10.00\"").is_err());
        assert_eq!(v("array<int>", "[1,\"x\",null]"), Ok(Value::Array(vec![Value::Int(1), Value::Null, Value::Null])));
        assert_eq!(
            v("struct<a int, b varchar(3)>", r#"{"b":"x","z":1}"#),
            Ok(Value::Struct(vec![("a".into(), Value::Null), ("b".into(), Value::Str("x".into()))]))
        );
    }
}
