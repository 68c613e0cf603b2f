//! The DDL the loader's load modes use: temporary partitions, REPLACE
//! PARTITION, CREATE TABLE … LIKE, SWAP WITH, DROP TABLE, TRUNCATE, and
//! `SELECT COUNT(*) FROM t [TEMPORARY] PARTITION (…)`.

use super::State;
use super::store::{Part, Table};
use super::tables::{PartitionBound, PartitionDef};
use crate::value::{self, Value};

/// A token.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Punct(char),
}

fn tokenize(sql: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let c: Vec<char> = sql.chars().collect();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch.is_whitespace() {
            i += 1;
        } else if ch == '`' {
            let start = i + 1;
            i += 1;
            while i < c.len() && c[i] != '`' {
                i += 1;
            }
            out.push(Tok::Word(c[start..i].iter().collect()));
            i += 1;
        } else if ch == '\'' || ch == '"' {
            let q = ch;
            let mut s = String::new();
            i += 1;
            while i < c.len() && c[i] != q {
                s.push(c[i]);
                i += 1;
            }
            if i >= c.len() {
                return Err("unterminated string".into());
            }
            i += 1;
            out.push(Tok::Str(s));
        } else if ch.is_alphanumeric() || ch == '_' || ch == '-' || ch == '$' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_' || c[i] == '-' || c[i] == '$' || c[i] == '*') {
                i += 1;
            }
            out.push(Tok::Word(c[start..i].iter().collect()));
        } else {
            out.push(Tok::Punct(ch));
            i += 1;
        }
    }
    Ok(out)
}

struct P {
    t: Vec<Tok>,
    i: usize,
}

impl P {
    fn kw(&mut self, w: &str) -> bool {
        if let Some(Tok::Word(x)) = self.t.get(self.i)
            && x.eq_ignore_ascii_case(w)
        {
            self.i += 1;
            return true;
        }
        false
    }
    fn expect_kw(&mut self, w: &str) -> Result<(), String> {
        if self.kw(w) { Ok(()) } else { Err(format!("expected {w}")) }
    }
    fn punct(&mut self, c: char) -> bool {
        if self.t.get(self.i) == Some(&Tok::Punct(c)) {
            self.i += 1;
            return true;
        }
        false
    }
    fn expect(&mut self, c: char) -> Result<(), String> {
        if self.punct(c) { Ok(()) } else { Err(format!("expected `{c}`")) }
    }
    fn word(&mut self) -> Result<String, String> {
        match self.t.get(self.i) {
            Some(Tok::Word(w)) => {
                self.i += 1;
                Ok(w.clone())
            }
            _ => Err("expected a name".into()),
        }
    }
    fn string(&mut self) -> Result<String, String> {
        match self.t.get(self.i) {
            Some(Tok::Str(s)) => {
                self.i += 1;
                Ok(s.clone())
            }
            Some(Tok::Word(w)) => {
                self.i += 1;
                Ok(w.clone())
            }
            _ => Err("expected a value".into()),
        }
    }
    /// `db.table` or `table` (in `default_db`).
    fn table(&mut self, default_db: Option<&str>) -> Result<(String, String), String> {
        let a = self.word()?;
        if self.punct('.') {
            let b = self.word()?;
            Ok((a, b))
        } else {
            Ok((default_db.ok_or("No database selected")?.to_string(), a))
        }
    }
    fn names(&mut self) -> Result<Vec<String>, String> {
        self.expect('(')?;
        let mut v = vec![self.word()?];
        while self.punct(',') {
            v.push(self.word()?);
        }
        self.expect(')')?;
        Ok(v)
    }
    fn done(&self) -> bool {
        self.i >= self.t.len() || (self.t.get(self.i) == Some(&Tok::Punct(';')) && self.i + 1 == self.t.len())
    }
}

/// The outcome of a statement this module handles.
pub(crate) enum Outcome {
    /// Not a statement of this module.
    NotMine,
    /// Done, no rows.
    Ok,
    /// A single-row, single-column count.
    Count(u64),
}

fn with_table<T>(
    state: &State,
    db: &str,
    t: &str,
    f: impl FnOnce(&mut Table) -> Result<T, String>,
) -> Result<T, String> {
    let mut dbs = state.dbs.lock().unwrap();
    let d = dbs.get_mut(db).ok_or_else(|| format!("Unknown database '{db}'"))?;
    let t = d.tables.get_mut(t).ok_or_else(|| format!("Unknown table '{db}.{t}'"))?;
    f(t)
}

/// Handles a statement if it is one of this module's.
pub(crate) fn run(state: &State, sql: &str) -> Result<Outcome, String> {
    let toks = tokenize(sql)?;
    let mut p = P { t: toks, i: 0 };
    if p.kw("ALTER") {
        p.expect_kw("TABLE")?;
        let (db, t) = p.table(None)?;
        if p.kw("ADD") {
            p.expect_kw("TEMPORARY")?;
            p.expect_kw("PARTITION")?;
            let name = p.word()?;
            p.expect_kw("VALUES")?;
            let spec = if p.kw("LESS") {
                p.expect_kw("THAN")?;
                p.expect('(')?;
                let hi = if p.kw("MAXVALUE") { None } else { Some(p.string()?) };
                p.expect(')')?;
                BoundSpec::LessThan(hi)
            } else if p.kw("IN") {
                p.expect('(')?;
                let mut vals = vec![p.string()?];
                while p.punct(',') {
                    vals.push(p.string()?);
                }
                p.expect(')')?;
                BoundSpec::In(vals)
            } else {
                p.expect('[')?;
                p.expect('(')?;
                let lo = p.string()?;
                p.expect(')')?;
                p.expect(',')?;
                p.expect('(')?;
                let hi = p.string()?;
                p.expect(')')?;
                p.expect(')')?;
                BoundSpec::Range(lo, hi)
            };
            with_table(state, &db, &t, |tb| add_temp(tb, &name, spec))?;
            return Ok(Outcome::Ok);
        }
        if p.kw("DROP") {
            p.expect_kw("TEMPORARY")?;
            p.expect_kw("PARTITION")?;
            let if_exists = p.kw("IF") && p.kw("EXISTS");
            let name = p.word()?;
            with_table(state, &db, &t, |tb| {
                let before = tb.temp.len();
                tb.temp.retain(|(d, _)| !d.name.eq_ignore_ascii_case(&name));
                if tb.temp.len() == before && !if_exists {
                    return Err(format!("Temporary partition {name} does not exist"));
                }
                Ok(())
            })?;
            return Ok(Outcome::Ok);
        }
        if p.kw("REPLACE") {
            p.expect_kw("PARTITION")?;
            let olds = p.names()?;
            p.expect_kw("WITH")?;
            p.expect_kw("TEMPORARY")?;
            p.expect_kw("PARTITION")?;
            let news = p.names()?;
            with_table(state, &db, &t, |tb| replace(tb, &olds, &news))?;
            return Ok(Outcome::Ok);
        }
        if p.kw("SWAP") {
            p.expect_kw("WITH")?;
            let other = p.word()?;
            let mut dbs = state.dbs.lock().unwrap();
            let d = dbs.get_mut(&db).ok_or_else(|| format!("Unknown database '{db}'"))?;
            let a = d.tables.remove(&t).ok_or_else(|| format!("Unknown table '{db}.{t}'"))?;
            let Some(b) = d.tables.remove(&other) else {
                d.tables.insert(t.clone(), a);
                return Err(format!("Unknown table '{db}.{other}'"));
            };
            if a.def.columns.iter().map(|c| (&c.name, &c.ty)).ne(b.def.columns.iter().map(|c| (&c.name, &c.ty))) {
                d.tables.insert(t.clone(), a);
                d.tables.insert(other.clone(), b);
                return Err("the tables to swap have different schemas".into());
            }
            let (mut a, mut b) = (a, b);
            a.def.name = other.clone();
            b.def.name = t.clone();
            d.tables.insert(t, b);
            d.tables.insert(other, a);
            return Ok(Outcome::Ok);
        }
        return Err(format!("ALTER TABLE form not supported by the simulator: {sql}"));
    }
    if p.kw("CREATE") {
        p.expect_kw("TABLE")?;
        let if_not = p.kw("IF") && p.kw("NOT") && p.kw("EXISTS");
        let (db, t) = p.table(None)?;
        p.expect_kw("LIKE")?;
        let (sdb, st) = p.table(Some(&db))?;
        let mut dbs = state.dbs.lock().unwrap();
        let src = dbs
            .get(&sdb)
            .and_then(|d| d.tables.get(&st))
            .map(|t| t.def.clone())
            .ok_or_else(|| format!("Unknown table '{sdb}.{st}'"))?;
        let d = dbs.get_mut(&db).ok_or_else(|| format!("Unknown database '{db}'"))?;
        if d.tables.contains_key(&t) {
            if if_not {
                return Ok(Outcome::Ok);
            }
            return Err(format!("Table '{t}' already exists"));
        }
        let mut def = src;
        def.db = db.clone();
        def.name = t.clone();
        d.tables.insert(t, Table::new(def));
        return Ok(Outcome::Ok);
    }
    if p.kw("DROP") {
        p.expect_kw("TABLE")?;
        let if_exists = p.kw("IF") && p.kw("EXISTS");
        let (db, t) = p.table(None)?;
        let mut dbs = state.dbs.lock().unwrap();
        let d = dbs.get_mut(&db).ok_or_else(|| format!("Unknown database '{db}'"))?;
        if d.tables.remove(&t).is_none() && !if_exists {
            return Err(format!("Unknown table '{db}.{t}'"));
        }
        return Ok(Outcome::Ok);
    }
    if p.kw("TRUNCATE") {
        p.expect_kw("TABLE")?;
        let (db, t) = p.table(None)?;
        with_table(state, &db, &t, |tb| {
            for part in tb.parts.iter_mut() {
                *part = Part::default();
            }
            tb.temp.clear();
            Ok(())
        })?;
        return Ok(Outcome::Ok);
    }
    // SELECT COUNT(*) FROM t [TEMPORARY] PARTITION[S] (…)
    let save = p.i;
    if p.kw("SELECT") && p.kw("COUNT") && p.punct('(') && (p.punct('*') || p.kw("*")) && p.punct(')') && p.kw("FROM") {
        let (db, t) = p.table(None)?;
        let temp = p.kw("TEMPORARY");
        if p.kw("PARTITION") || p.kw("PARTITIONS") {
            let names = p.names()?;
            if !p.done() {
                return Err("only COUNT(*) over whole partitions is supported by the simulator".into());
            }
            let n = with_table(state, &db, &t, |tb| {
                let mut n = 0u64;
                for name in &names {
                    let part = if temp {
                        tb.temp.iter().find(|(d, _)| d.name.eq_ignore_ascii_case(name)).map(|(_, p)| p)
                    } else {
                        tb.def.partitions.iter().position(|d| d.name.eq_ignore_ascii_case(name)).map(|i| &tb.parts[i])
                    };
                    n += part.ok_or_else(|| format!("Unknown partition '{name}' in table '{t}'"))?.len() as u64;
                }
                Ok(n)
            })?;
            return Ok(Outcome::Count(n));
        }
        if temp {
            return Err("expected PARTITION".into());
        }
    }
    p.i = save;
    Ok(Outcome::NotMine)
}

enum BoundSpec {
    Range(String, String),
    LessThan(Option<String>),
    In(Vec<String>),
}

fn add_temp(tb: &mut Table, name: &str, spec: BoundSpec) -> Result<(), String> {
    // FeNameFormat.checkPartitionName: a letter, then up to 63 word characters.
    let ok = name.len() <= 64
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ok {
        return Err(format!(
            "Incorrect partition name '{name}': a letter, then up to 63 letters, digits or underscores"
        ));
    }
    if tb.temp.iter().any(|(d, _)| d.name.eq_ignore_ascii_case(name))
        || tb.def.partitions.iter().any(|d| d.name.eq_ignore_ascii_case(name))
    {
        return Err(format!("Duplicate partition name {name}"));
    }
    let pc = tb.def.partition_col.ok_or("the table is not partitioned")?;
    let ty = tb.def.columns[pc].ty.clone();
    let parse = |s: &str| value::parse_csv_field(&ty, s).map_err(|e| format!("bad partition value `{s}`: {e}"));
    let bound = match spec {
        BoundSpec::Range(lo, hi) => PartitionBound::Range(parse(&lo)?, parse(&hi)?),
        BoundSpec::LessThan(hi) => {
            // The lower bound is the previous partition's upper bound; for a
            // temporary partition the simulator takes the smallest value.
            let lo = match &ty {
                crate::srtype::SrType::Date => Value::Date(value::days_from_civil(0, 1, 1)),
                crate::srtype::SrType::Datetime => Value::Datetime(value::days_from_civil(0, 1, 1) * 86_400_000_000),
                _ => Value::Int(i128::MIN),
            };
            let hi = match hi {
                Some(h) => parse(&h)?,
                None => return Err("MAXVALUE temporary partitions are not supported by the simulator".into()),
            };
            PartitionBound::Range(lo, hi)
        }
        BoundSpec::In(vals) => PartitionBound::List(vals.iter().map(|v| parse(v)).collect::<Result<_, _>>()?),
    };
    // Temporary partitions may overlap the formal ones they stand in for, not
    // each other (RangePartitionInfo.checkAndCreateRange with isTemp;
    // CatalogUtils.checkPartitionValuesExistForAddListPartition).
    use std::cmp::Ordering::Less;
    for (d, _) in &tb.temp {
        match (&d.bound, &bound) {
            (PartitionBound::Range(alo, ahi), PartitionBound::Range(blo, bhi))
                if value::cmp_values(alo, bhi) == Some(Less) && value::cmp_values(blo, ahi) == Some(Less) =>
            {
                return Err(format!(
                    "Range [{}, {}) is intersected with range: [{}, {}) of temporary partition {}",
                    blo.display().unwrap_or_default(),
                    bhi.display().unwrap_or_default(),
                    alo.display().unwrap_or_default(),
                    ahi.display().unwrap_or_default(),
                    d.name
                ));
            }
            (PartitionBound::List(a), PartitionBound::List(b)) => {
                if let Some(v) =
                    b.iter().find(|v| a.iter().any(|x| value::cmp_values(x, v) == Some(std::cmp::Ordering::Equal)))
                {
                    return Err(format!("Duplicate partition value {}", v.display().unwrap_or_default()));
                }
            }
            _ => {}
        }
    }
    tb.temp.push((PartitionDef { name: name.to_string(), bound }, Part::default()));
    Ok(())
}

/// `REPLACE PARTITION (olds) WITH TEMPORARY PARTITION (news)` with
/// `strict_range`: the new partitions cover exactly the old ones.
fn replace(tb: &mut Table, olds: &[String], news: &[String]) -> Result<(), String> {
    let mut old_idx = Vec::new();
    for o in olds {
        old_idx.push(
            tb.def
                .partitions
                .iter()
                .position(|d| d.name.eq_ignore_ascii_case(o))
                .ok_or_else(|| format!("Partition {o} does not exist"))?,
        );
    }
    let mut new_idx = Vec::new();
    for n in news {
        new_idx.push(
            tb.temp
                .iter()
                .position(|(d, _)| d.name.eq_ignore_ascii_case(n))
                .ok_or_else(|| format!("Temporary partition {n} does not exist"))?,
        );
    }
    let same = |a: &PartitionBound, b: &PartitionBound| format!("{a:?}") == format!("{b:?}");
    if olds.len() == news.len() {
        for (o, n) in old_idx.iter().zip(&new_idx) {
            if !same(&tb.def.partitions[*o].bound, &tb.temp[*n].0.bound) {
                return Err(format!(
                    "The temporary partitions' range does not match the partitions being replaced ({} vs {})",
                    tb.def.partitions[*o].name, tb.temp[*n].0.name
                ));
            }
        }
    } else {
        return Err("the simulator supports replacing partitions one for one".into());
    }
    // Temporary partitions take the replaced partitions' names.
    let mut moved: Vec<(usize, Part)> = Vec::new();
    for (o, n) in old_idx.iter().zip(&new_idx) {
        moved.push((*o, std::mem::take(&mut tb.temp[*n].1)));
    }
    for (o, part) in moved {
        tb.parts[o] = part;
    }
    let mut drop: Vec<usize> = new_idx;
    drop.sort_unstable();
    for i in drop.into_iter().rev() {
        tb.temp.remove(i);
    }
    Ok(())
}
