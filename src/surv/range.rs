//! The allowed range of every rules key: each rules table lists its keys with the values they
//! may hold (`KEYS`), and its `validate` checks them first, so that a rules file that passes
//! `tickwatch rules --check` never makes a run panic, overflow or allocate without bound. An
//! error names the key as `table.key` with its allowed range.

use serde::Serialize;
use std::fmt;

use super::RuleError;

/// A day of event time, ns: the longest span a `_ns` key may hold (event times are ns since
/// midnight, so sums of a time and a span stay far from overflow).
pub const DAY_NS: u64 = 86_400_000_000_000;
/// The most messages, trades or shares of one order a count key may ask for.
pub const COUNT: u64 = 1_000_000_000;
/// The most shares a volume key (traded over a window, held in levels) may ask for.
pub const VOLUME: u64 = 1_000_000_000_000;
/// The largest price move in basis points a key may name (a 100-fold move).
pub const BPS: f64 = 1_000_000.0;
/// The largest dollar amount a key may name.
pub const USD: f64 = 1e15;
/// The largest multiple or ratio of two measures a key may name.
pub const MULTIPLE: f64 = 1e12;

/// What a rules key may hold.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Allowed {
    /// `true` or `false`.
    Flag,
    /// A whole number in `min..=max`.
    Int {
        /// Least.
        min: u64,
        /// Most.
        max: u64,
    },
    /// A finite number from `min` (excluded when `above`) to `max` (included).
    Real {
        /// Least.
        min: f64,
        /// Most.
        max: f64,
        /// `min` itself is not allowed.
        above: bool,
    },
}

impl Allowed {
    /// Whether `v` (the key's value as serialised) is allowed.
    fn admits(&self, v: &serde_json::Value) -> bool {
        match *self {
            Allowed::Flag => v.is_boolean(),
            Allowed::Int { min, max } => v.as_u64().is_some_and(|x| (min..=max).contains(&x)),
            Allowed::Real { min, max, above } => v.as_f64().is_some_and(|x| {
                x.is_finite() && x <= max && if above { x > min } else { x >= min }
            }),
        }
    }
}

impl fmt::Display for Allowed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Allowed::Flag => write!(f, "true or false"),
            Allowed::Int { min, max } => write!(f, "{min}..={max}"),
            Allowed::Real { min, max, above } => {
                write!(f, "{}{min}, {max}]", if above { "(" } else { "[" })
            }
        }
    }
}

/// A rules key and the values it may hold.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Key {
    /// Its name in the table.
    pub name: &'static str,
    /// Its range.
    pub allowed: Allowed,
    /// Why the range is what it is, when that is not plain (empty otherwise).
    pub why: &'static str,
}

impl Key {
    /// A `true`/`false` key.
    pub const fn flag(name: &'static str) -> Key {
        Key::of(name, Allowed::Flag)
    }

    /// A whole number in `min..=max`.
    pub const fn int(name: &'static str, min: u64, max: u64) -> Key {
        Key::of(name, Allowed::Int { min, max })
    }

    /// A finite number in `[min, max]`.
    pub const fn real(name: &'static str, min: f64, max: f64) -> Key {
        Key::of(
            name,
            Allowed::Real {
                min,
                max,
                above: false,
            },
        )
    }

    /// A finite number in `(min, max]`.
    pub const fn above(name: &'static str, min: f64, max: f64) -> Key {
        Key::of(
            name,
            Allowed::Real {
                min,
                max,
                above: true,
            },
        )
    }

    /// With the reason for its range.
    pub const fn why(self, why: &'static str) -> Key {
        Key { why, ..self }
    }

    const fn of(name: &'static str, allowed: Allowed) -> Key {
        Key {
            name,
            allowed,
            why: "",
        }
    }
}

/// Checks every key of `rules` (the table `table` of the rules file) against `keys`.
///
/// # Errors
/// The first key out of its range, as `key = value is out of range; allowed …` (the caller
/// knows the table, and names it `table.key`).
///
/// # Panics
/// On a key of the table that `keys` does not list: a bug of the table, not of the rules file
/// (every key has a range), so it shows with any rules, the defaults included.
pub fn check<T: Serialize>(table: &str, rules: &T, keys: &[Key]) -> Result<(), RuleError> {
    let value = serde_json::to_value(rules).expect("a rules table serialises");
    let fields = value
        .as_object()
        .expect("a rules table serialises as a map");
    for k in keys {
        let v = fields.get(k.name).unwrap_or(&serde_json::Value::Null);
        if !k.allowed.admits(v) {
            return Err(out_of_range(k, v));
        }
    }
    if let Some(f) = fields
        .keys()
        .find(|f| !keys.iter().any(|k| k.name == f.as_str()))
    {
        panic!("{table}.{f} has no allowed range");
    }
    Ok(())
}

/// `v`, the value of `k`, is outside its range.
fn out_of_range(k: &Key, v: &serde_json::Value) -> RuleError {
    // NaN and infinities serialise as null.
    let shown = if v.is_null() {
        "not a finite number".to_string()
    } else {
        v.to_string()
    };
    let why = if k.why.is_empty() {
        String::new()
    } else {
        format!(" ({})", k.why)
    };
    RuleError::new(
        k.name,
        format!("= {shown} is out of range; allowed {}{why}", k.allowed),
    )
}

/// `v` brought into `key`'s integer range (for sizes that must never panic or allocate without
/// bound, even when the rules were built in code and never validated).
pub fn clamp(key: &Key, v: usize) -> usize {
    match key.allowed {
        Allowed::Int { min, max } => (v as u64).clamp(min, max) as usize,
        _ => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct T {
        on: bool,
        n: u64,
        share: f64,
    }

    const KEYS: &[Key] = &[
        Key::flag("on"),
        Key::int("n", 1, 10).why("ten at most"),
        Key::above("share", 0.0, 1.0),
    ];

    #[test]
    fn every_key_is_checked_against_its_range_and_named_with_it() {
        let ok = T {
            on: true,
            n: 10,
            share: 1.0,
        };
        assert_eq!(check("t", &ok, KEYS), Ok(()));
        let e = check("t", &T { n: 11, ..ok }, KEYS).unwrap_err();
        assert_eq!(e.key, "n");
        assert_eq!(
            e.to_string(),
            "n = 11 is out of range; allowed 1..=10 (ten at most)"
        );
        let e = check("t", &T { share: 0.0, ..ok }, KEYS).unwrap_err();
        assert_eq!(e.to_string(), "share = 0.0 is out of range; allowed (0, 1]");
        let e = check(
            "t",
            &T {
                share: f64::NAN,
                ..ok
            },
            KEYS,
        )
        .unwrap_err();
        assert!(e.to_string().contains("share = not a finite number"), "{e}");
        assert_eq!(clamp(&KEYS[1], 0), 1);
        assert_eq!(clamp(&KEYS[1], usize::MAX), 10);
    }

    #[test]
    #[should_panic(expected = "t.share has no allowed range")]
    fn a_key_without_a_range_is_a_bug_of_the_table() {
        let ok = T {
            on: true,
            n: 10,
            share: 1.0,
        };
        let _ = check("t", &ok, &KEYS[..2]);
    }
}
