//! StarRocks column types and the text forms the BE accepts for them.
//!
//! Shared by the loader (which renders values the way the BE parses them and
//! checks the target schema) and the simulator (which parses every field the
//! way a BE would). See `streamload-protocol.md` §6.

use std::fmt;

/// A StarRocks column type, as `DESC` or `information_schema.columns` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SrType {
    Boolean,
    TinyInt,
    SmallInt,
    Int,
    BigInt,
    LargeInt,
    Float,
    Double,
    /// DECIMAL(p, s), p in 1..=38.
    Decimal {
        precision: u8,
        scale: u8,
    },
    /// CHAR(n): n bytes at most.
    Char(u32),
    /// VARCHAR(n) (STRING is VARCHAR(65533)): n bytes at most.
    Varchar(u32),
    Date,
    Datetime,
    Json,
    /// VARBINARY[(n)].
    Varbinary(Option<u32>),
    Array(Box<SrType>),
    Map(Box<SrType>, Box<SrType>),
    Struct(Vec<(String, SrType)>),
    Bitmap,
    Hll,
    Percentile,
}

/// Longest VARCHAR StarRocks accepts (bytes).
pub const MAX_VARCHAR: u32 = 1_048_576;
/// Length of STRING (an alias of VARCHAR).
pub const STRING_LEN: u32 = 65_533;

/// Error from parsing a type name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot parse StarRocks type `{text}`: {reason}")]
pub struct TypeParseError {
    text: String,
    reason: String,
}

impl SrType {
    /// Parses a type as StarRocks prints it (`bigint(20)`, `DECIMAL64(18, 6)`,
    /// `array<varchar(100)>`, `struct<a int(11), b varchar(10)>`, …).
    pub fn parse(text: &str) -> Result<SrType, TypeParseError> {
        let mut p = TypeParser { s: text.as_bytes(), pos: 0, text };
        let t = p.ty()?;
        p.ws();
        if p.pos != p.s.len() {
            return Err(p.err("trailing characters"));
        }
        Ok(t)
    }

    /// True for types that have no CSV converter and need a `columns`
    /// expression (BITMAP, HLL, PERCENTILE).
    pub fn needs_expression(&self) -> bool {
        matches!(self, SrType::Bitmap | SrType::Hll | SrType::Percentile)
    }

    /// True for CHAR/VARCHAR/STRING.
    pub fn is_string(&self) -> bool {
        matches!(self, SrType::Char(_) | SrType::Varchar(_))
    }

    /// Integer range of an integer type (LARGEINT is i128).
    pub fn int_range(&self) -> Option<(i128, i128)> {
        Some(match self {
            SrType::TinyInt => (i8::MIN as i128, i8::MAX as i128),
            SrType::SmallInt => (i16::MIN as i128, i16::MAX as i128),
            SrType::Int => (i32::MIN as i128, i32::MAX as i128),
            SrType::BigInt => (i64::MIN as i128, i64::MAX as i128),
            SrType::LargeInt => (i128::MIN, i128::MAX),
            _ => return None,
        })
    }

    /// True for VARBINARY, at any depth of ARRAY, MAP and STRUCT.
    pub fn holds_varbinary(&self) -> bool {
        match self {
            SrType::Varbinary(_) => true,
            SrType::Array(t) => t.holds_varbinary(),
            SrType::Map(k, v) => k.holds_varbinary() || v.holds_varbinary(),
            SrType::Struct(fs) => fs.iter().any(|(_, t)| t.holds_varbinary()),
            _ => false,
        }
    }

    /// True if a CSV field of this type can be sent as-is in a CSV body
    /// (STRUCT has no CSV converter in Stream Load).
    pub fn csv_capable(&self) -> bool {
        match self {
            SrType::Struct(_) => false,
            SrType::Array(t) => t.csv_capable(),
            SrType::Map(k, v) => k.csv_capable() && v.csv_capable(),
            _ => true,
        }
    }
}

impl fmt::Display for SrType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SrType::Boolean => f.write_str("BOOLEAN"),
            SrType::TinyInt => f.write_str("TINYINT"),
            SrType::SmallInt => f.write_str("SMALLINT"),
            SrType::Int => f.write_str("INT"),
            SrType::BigInt => f.write_str("BIGINT"),
            SrType::LargeInt => f.write_str("LARGEINT"),
            SrType::Float => f.write_str("FLOAT"),
            SrType::Double => f.write_str("DOUBLE"),
            SrType::Decimal { precision, scale } => write!(f, "DECIMAL({precision},{scale})"),
            SrType::Char(n) => write!(f, "CHAR({n})"),
            SrType::Varchar(n) => write!(f, "VARCHAR({n})"),
            SrType::Date => f.write_str("DATE"),
            SrType::Datetime => f.write_str("DATETIME"),
            SrType::Json => f.write_str("JSON"),
            SrType::Varbinary(None) => f.write_str("VARBINARY"),
            SrType::Varbinary(Some(n)) => write!(f, "VARBINARY({n})"),
            SrType::Array(t) => write!(f, "ARRAY<{t}>"),
            SrType::Map(k, v) => write!(f, "MAP<{k},{v}>"),
            SrType::Struct(fields) => {
                f.write_str("STRUCT<")?;
                for (i, (n, t)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{n} {t}")?;
                }
                f.write_str(">")
            }
            SrType::Bitmap => f.write_str("BITMAP"),
            SrType::Hll => f.write_str("HLL"),
            SrType::Percentile => f.write_str("PERCENTILE"),
        }
    }
}

struct TypeParser<'a> {
    s: &'a [u8],
    pos: usize,
    text: &'a str,
}

impl TypeParser<'_> {
    fn err(&self, reason: &str) -> TypeParseError {
        TypeParseError { text: self.text.to_string(), reason: format!("{reason} at offset {}", self.pos) }
    }
    fn ws(&mut self) {
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }
    fn word(&mut self) -> String {
        self.ws();
        let start = self.pos;
        while self.pos < self.s.len() && (self.s[self.pos].is_ascii_alphanumeric() || self.s[self.pos] == b'_') {
            self.pos += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.pos]).into_owned()
    }
    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.pos < self.s.len() && self.s[self.pos] == c {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, c: u8) -> Result<(), TypeParseError> {
        if self.eat(c) { Ok(()) } else { Err(self.err(&format!("expected `{}`", c as char))) }
    }
    fn number(&mut self) -> Result<u32, TypeParseError> {
        self.ws();
        let start = self.pos;
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_digit() {
            self.pos += 1;
        }
        std::str::from_utf8(&self.s[start..self.pos])
            .ok()
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| self.err("expected a number"))
    }
    /// Optional `(n[, m])` suffix.
    fn params(&mut self) -> Result<Vec<u32>, TypeParseError> {
        let mut out = Vec::new();
        if self.eat(b'(') {
            loop {
                out.push(self.number()?);
                if self.eat(b')') {
                    break;
                }
                self.expect(b',')?;
            }
        }
        Ok(out)
    }
    fn ty(&mut self) -> Result<SrType, TypeParseError> {
        let name = self.word().to_ascii_lowercase();
        if name.is_empty() {
            return Err(self.err("expected a type name"));
        }
        let t = match name.as_str() {
            "boolean" | "bool" => {
                self.params()?;
                SrType::Boolean
            }
            "tinyint" => {
                self.params()?;
                SrType::TinyInt
            }
            "smallint" => {
                self.params()?;
                SrType::SmallInt
            }
            "int" | "integer" => {
                self.params()?;
                SrType::Int
            }
            "bigint" => {
                self.params()?;
                SrType::BigInt
            }
            "largeint" => {
                self.params()?;
                SrType::LargeInt
            }
            "float" => SrType::Float,
            "double" => SrType::Double,
            "decimal" | "decimalv2" | "decimal32" | "decimal64" | "decimal128" | "decimalv3" | "numeric" => {
                let p = self.params()?;
                let (precision, scale) = match p.as_slice() {
                    [] => (10, 0),
                    [p] => (*p, 0),
                    [p, s] => (*p, *s),
                    _ => return Err(self.err("DECIMAL takes (precision, scale)")),
                };
                if !(1..=38).contains(&precision) || scale > precision {
                    return Err(self.err("DECIMAL precision must be 1..=38 and scale <= precision"));
                }
                SrType::Decimal { precision: precision as u8, scale: scale as u8 }
            }
            "char" => {
                let p = self.params()?;
                let n = p.first().copied().unwrap_or(1);
                if !(1..=255).contains(&n) {
                    return Err(self.err("CHAR length must be 1..=255"));
                }
                SrType::Char(n)
            }
            "varchar" => {
                let p = self.params()?;
                let n = p.first().copied().unwrap_or(1);
                if !(1..=MAX_VARCHAR).contains(&n) {
                    return Err(self.err("VARCHAR length must be 1..=1048576"));
                }
                SrType::Varchar(n)
            }
            "string" | "text" => SrType::Varchar(STRING_LEN),
            "date" | "datev2" => SrType::Date,
            "datetime" | "datetimev2" | "timestamp" => {
                self.params()?;
                SrType::Datetime
            }
            "json" | "jsonb" => SrType::Json,
            "varbinary" | "binary" | "blob" => {
                let p = self.params()?;
                SrType::Varbinary(p.first().copied())
            }
            "bitmap" => SrType::Bitmap,
            "hll" => SrType::Hll,
            "percentile" => SrType::Percentile,
            "array" => {
                self.expect(b'<')?;
                let t = self.ty()?;
                self.expect(b'>')?;
                SrType::Array(Box::new(t))
            }
            "map" => {
                self.expect(b'<')?;
                let k = self.ty()?;
                self.expect(b',')?;
                let v = self.ty()?;
                self.expect(b'>')?;
                SrType::Map(Box::new(k), Box::new(v))
            }
            "struct" => {
                self.expect(b'<')?;
                let mut fields = Vec::new();
                loop {
                    self.ws();
                    let fname = if self.eat(b'`') {
                        let start = self.pos;
                        while self.pos < self.s.len() && self.s[self.pos] != b'`' {
                            self.pos += 1;
                        }
                        let n = String::from_utf8_lossy(&self.s[start..self.pos]).into_owned();
                        self.expect(b'`')?;
                        n
                    } else {
                        self.word()
                    };
                    if fname.is_empty() {
                        return Err(self.err("expected a field name"));
                    }
                    self.eat(b':');
                    let t = self.ty()?;
                    fields.push((fname, t));
                    if self.eat(b'>') {
                        break;
                    }
                    self.expect(b',')?;
                }
                SrType::Struct(fields)
            }
            other => return Err(self.err(&format!("unknown type `{other}`"))),
        };
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_starrocks_type_names() {
        let cases = [
            ("bigint(20)", SrType::BigInt),
            ("DECIMAL64(18, 6)", SrType::Decimal { precision: 18, scale: 6 }),
            ("decimal128(38,10)", SrType::Decimal { precision: 38, scale: 10 }),
            ("varchar(65533)", SrType::Varchar(65533)),
            ("STRING", SrType::Varchar(65533)),
            ("largeint(40)", SrType::LargeInt),
            ("array<int(11)>", SrType::Array(Box::new(SrType::Int))),
            ("ARRAY<ARRAY<BIGINT>>", SrType::Array(Box::new(SrType::Array(Box::new(SrType::BigInt))))),
            ("map<varchar(50),int(11)>", SrType::Map(Box::new(SrType::Varchar(50)), Box::new(SrType::Int))),
            (
                "struct<a int(11), b varchar(10)>",
                SrType::Struct(vec![("a".into(), SrType::Int), ("b".into(), SrType::Varchar(10))]),
            ),
            ("bitmap", SrType::Bitmap),
            ("datetime", SrType::Datetime),
            ("varbinary", SrType::Varbinary(None)),
        ];
        for (text, want) in cases {
            assert_eq!(SrType::parse(text).unwrap(), want, "{text}");
            // Display output parses back to the same type.
            assert_eq!(SrType::parse(&want.to_string()).unwrap(), want, "{text}");
        }
        assert!(SrType::parse("decimal(39,2)").is_err());
        assert!(SrType::parse("varchar(10) x").is_err());
        assert!(SrType::parse("nosuchtype").is_err());
    }
}
