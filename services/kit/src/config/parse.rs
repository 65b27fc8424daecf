//! Typed parsers of setting values. Each one says what it accepts ([`Parse::expected`]), so a
//! refused value is reported with what would have worked; none repeats the value it refuses
//! (the [`Reader`](super::Reader) shows it, redacted when secret).
//!
//! | parser | accepts | output |
//! |---|---|---|
//! | [`text`] | anything | `String` |
//! | [`path`] | anything | `PathBuf` |
//! | [`number`] | `42` (range of the type) | the integer type |
//! | [`duration`] | `250ms`, `5s`, `2m`, `1h`, `7d`; a bare number is seconds | `Duration` |
//! | [`millis`], [`seconds`] | a whole number in that unit | `Duration` |
//! | [`size`] | `512`, `512B`, `64KiB`, `16MiB`, `1GiB`, `2TiB`, `10kB`, `5MB`, `1GB`, `1TB` | bytes, `u64` |
//! | [`flag`] | `true`/`false`, `yes`/`no`, `1`/`0`, any case | `bool` |
//! | [`http_url`] | `http://…` or `https://…` with a host | `String` |
//! | [`one_of`] | one of the given names, exactly | the value paired with it |
//! | [`list`] | comma-separated items of an inner parser; blank items skipped | `Vec` |
//! | [`pairs`] | comma-separated `name=value`, values of an inner parser | `Vec<(String, _)>` |
//! | [`from_str`] | what `FromStr` accepts | the type |
//! | [`custom`] | what a function accepts | its output |
//!
//! [`Parse::at_least`], [`Parse::at_most`] and [`Parse::within`] bound any parser whose output is
//! ordered, and the bound becomes part of what is expected.

use std::fmt;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// A parser of one setting's value.
pub trait Parse {
    /// The typed value.
    type Output;

    /// What a valid value looks like, completing "expected …" (`a whole number, from 1 to 64`).
    fn expected(&self) -> String;

    /// The value of `text` (trimmed, never empty). `Err` says why it is refused, phrased to follow
    /// "is invalid: " — `expected …` unless a more precise reason exists. It never contains
    /// `text`, which may be a secret.
    fn parse(&self, text: &str) -> Result<Self::Output, String>;

    /// Refuses values below `min`.
    fn at_least(self, min: Self::Output) -> Bounded<Self>
    where
        Self: Sized,
        Self::Output: Bound,
    {
        Bounded { inner: self, min: Some(min), max: None }
    }

    /// Refuses values above `max`.
    fn at_most(self, max: Self::Output) -> Bounded<Self>
    where
        Self: Sized,
        Self::Output: Bound,
    {
        Bounded { inner: self, min: None, max: Some(max) }
    }

    /// Refuses values outside `min..=max`.
    fn within(self, min: Self::Output, max: Self::Output) -> Bounded<Self>
    where
        Self: Sized,
        Self::Output: Bound,
    {
        Bounded { inner: self, min: Some(min), max: Some(max) }
    }
}

fn expected(parser: &impl Parse) -> String {
    format!("expected {}", parser.expected())
}

/// An ordered value that can be shown as a bound in a message.
pub trait Bound: PartialOrd {
    /// The value as an operator would write it (`1s`, `100`).
    fn show(&self) -> String;
}

macro_rules! integer_bounds {
    ($($t:ty),*) => {$(
        impl Bound for $t {
            fn show(&self) -> String {
                self.to_string()
            }
        }
    )*};
}
integer_bounds!(u8, u16, u32, u64, usize, i32, i64);

impl Bound for Duration {
    fn show(&self) -> String {
        show_duration(*self)
    }
}

/// `d` in the largest unit of [`duration`] that writes it exactly (`90s`, `2m`, `7d`).
pub fn show_duration(d: Duration) -> String {
    if !d.subsec_nanos().is_multiple_of(1_000_000) {
        return format!("{d:?}");
    }
    let ms = d.as_millis();
    let units: [(u128, &str); 4] = [(86_400_000, "d"), (3_600_000, "h"), (60_000, "m"), (1_000, "s")];
    for (size, unit) in units {
        if ms != 0 && ms.is_multiple_of(size) {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

/// A parser with bounds (see [`Parse::within`]).
#[derive(Debug, Clone)]
pub struct Bounded<P: Parse> {
    inner: P,
    min: Option<P::Output>,
    max: Option<P::Output>,
}

impl<P: Parse> Parse for Bounded<P>
where
    P::Output: Bound,
{
    type Output = P::Output;

    fn expected(&self) -> String {
        let what = self.inner.expected();
        match (&self.min, &self.max) {
            (Some(min), Some(max)) => format!("{what}, from {} to {}", min.show(), max.show()),
            (Some(min), None) => format!("{what}, at least {}", min.show()),
            (None, Some(max)) => format!("{what}, at most {}", max.show()),
            (None, None) => what,
        }
    }

    fn parse(&self, text: &str) -> Result<P::Output, String> {
        let value = self.inner.parse(text).map_err(|_| expected(self))?;
        let low = self.min.as_ref().is_some_and(|min| value < *min);
        let high = self.max.as_ref().is_some_and(|max| value > *max);
        if low || high { Err(expected(self)) } else { Ok(value) }
    }
}

/// Any text, as given (trimmed).
pub fn text() -> Text {
    Text
}

/// See [`text`].
#[derive(Debug, Clone, Copy)]
pub struct Text;

impl Parse for Text {
    type Output = String;

    fn expected(&self) -> String {
        "text".to_owned()
    }

    fn parse(&self, text: &str) -> Result<String, String> {
        Ok(text.to_owned())
    }
}

/// A file or directory path (not checked to exist: the component using it says what is missing).
pub fn path() -> PathParser {
    PathParser
}

/// See [`path`].
#[derive(Debug, Clone, Copy)]
pub struct PathParser;

impl Parse for PathParser {
    type Output = PathBuf;

    fn expected(&self) -> String {
        "a path".to_owned()
    }

    fn parse(&self, text: &str) -> Result<PathBuf, String> {
        Ok(PathBuf::from(text))
    }
}

/// An integer type [`number`] parses.
pub trait Integer: FromStr + Bound + Copy {
    /// The smallest and largest value, shown when a value overflows the type.
    fn limits() -> (String, String);
}

macro_rules! integers {
    ($($t:ty),*) => {$(
        impl Integer for $t {
            fn limits() -> (String, String) {
                (<$t>::MIN.to_string(), <$t>::MAX.to_string())
            }
        }
    )*};
}
integers!(u8, u16, u32, u64, usize, i32, i64);

/// A whole number of type `T` (Rust's `FromStr`: optional sign, decimal digits).
pub fn number<T: Integer>() -> Number<T> {
    Number(PhantomData)
}

/// See [`number`].
#[derive(Debug)]
pub struct Number<T>(PhantomData<T>);

impl<T> Clone for Number<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Number<T> {}

impl<T: Integer> Parse for Number<T> {
    type Output = T;

    fn expected(&self) -> String {
        "a whole number".to_owned()
    }

    fn parse(&self, text: &str) -> Result<T, String> {
        text.parse::<T>().map_err(|_| {
            let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
            if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                let (min, max) = T::limits();
                format!("expected a whole number from {min} to {max}")
            } else {
                expected(self)
            }
        })
    }
}

/// A whole number of milliseconds (variables named `…_MS`).
pub fn millis() -> InUnit {
    InUnit { unit_ms: 1, name: "milliseconds" }
}

/// A whole number of seconds (variables named `…_SECS`).
pub fn seconds() -> InUnit {
    InUnit { unit_ms: 1_000, name: "seconds" }
}

/// See [`millis`] and [`seconds`].
#[derive(Debug, Clone, Copy)]
pub struct InUnit {
    unit_ms: u64,
    name: &'static str,
}

impl Parse for InUnit {
    type Output = Duration;

    fn expected(&self) -> String {
        format!("a whole number of {}", self.name)
    }

    fn parse(&self, text: &str) -> Result<Duration, String> {
        text.parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(self.unit_ms))
            .map(Duration::from_millis)
            .ok_or_else(|| expected(self))
    }
}

/// A duration: a whole number with a unit — `ms`, `s`, `m`, `h` or `d` (`250ms`, `5s`, `2m`) —
/// or a bare number of seconds. Space between number and unit is allowed; fractions and signs
/// are not.
pub fn duration() -> DurationParser {
    DurationParser
}

/// See [`duration`].
#[derive(Debug, Clone, Copy)]
pub struct DurationParser;

impl Parse for DurationParser {
    type Output = Duration;

    fn expected(&self) -> String {
        "a whole number with a unit: 500ms, 30s, 5m, 1h or 7d (a bare number is seconds)".to_owned()
    }

    fn parse(&self, text: &str) -> Result<Duration, String> {
        let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
        let (number, unit) = text.split_at(digits);
        let n: u64 = number.parse().map_err(|_| expected(self))?;
        let unit_ms: u64 = match unit.trim() {
            "ms" => 1,
            "" | "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(expected(self)),
        };
        n.checked_mul(unit_ms).map(Duration::from_millis).ok_or_else(|| expected(self))
    }
}

/// A size in bytes: a whole number with an optional unit, binary (`KiB`, `MiB`, `GiB`, `TiB`) or
/// decimal (`kB`, `MB`, `GB`, `TB`), or `B`. Units are case-sensitive, as written here, so `mb`
/// (millibits?) is refused rather than guessed.
pub fn size() -> Size {
    Size
}

/// See [`size`].
#[derive(Debug, Clone, Copy)]
pub struct Size;

impl Parse for Size {
    type Output = u64;

    fn expected(&self) -> String {
        "a size in bytes, optionally with a unit: B, KiB, MiB, GiB, TiB, kB, MB, GB or TB (e.g. 64KiB)".to_owned()
    }

    fn parse(&self, text: &str) -> Result<u64, String> {
        let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
        let (number, unit) = text.split_at(digits);
        let n: u64 = number.parse().map_err(|_| expected(self))?;
        let multiplier: u64 = match unit.trim() {
            "" | "B" => 1,
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            "TiB" => 1 << 40,
            "kB" => 1_000,
            "MB" => 1_000_000,
            "GB" => 1_000_000_000,
            "TB" => 1_000_000_000_000,
            _ => return Err(expected(self)),
        };
        n.checked_mul(multiplier).ok_or_else(|| expected(self))
    }
}

/// `true`/`false`, `yes`/`no` or `1`/`0`, in any case.
pub fn flag() -> Flag {
    Flag
}

/// See [`flag`].
#[derive(Debug, Clone, Copy)]
pub struct Flag;

impl Parse for Flag {
    type Output = bool;

    fn expected(&self) -> String {
        "true or false".to_owned()
    }

    fn parse(&self, text: &str) -> Result<bool, String> {
        match text.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(true),
            "false" | "0" | "no" => Ok(false),
            _ => Err(expected(self)),
        }
    }
}

/// An `http://` or `https://` URL with a host. It is kept as written unless
/// [`without_trailing_slash`](HttpUrl::without_trailing_slash) is asked for.
pub fn http_url() -> HttpUrl {
    HttpUrl { example: None, trim_slash: false }
}

/// See [`http_url`].
#[derive(Debug, Clone, Copy)]
pub struct HttpUrl {
    example: Option<&'static str>,
    trim_slash: bool,
}

impl HttpUrl {
    /// Names a valid URL in the message of a refused one.
    pub fn example(self, example: &'static str) -> HttpUrl {
        HttpUrl { example: Some(example), ..self }
    }

    /// Drops trailing `/`s, for base URLs request paths are appended to.
    pub fn without_trailing_slash(self) -> HttpUrl {
        HttpUrl { trim_slash: true, ..self }
    }
}

impl Parse for HttpUrl {
    type Output = String;

    fn expected(&self) -> String {
        match self.example {
            Some(example) => format!("an http(s) URL such as {example}"),
            None => "an http(s) URL".to_owned(),
        }
    }

    fn parse(&self, text: &str) -> Result<String, String> {
        let rest = text.strip_prefix("https://").or_else(|| text.strip_prefix("http://"));
        // A host must follow the scheme: `http://` alone or `http:///x` names no server.
        if rest.is_none_or(|rest| rest.is_empty() || rest.starts_with('/')) {
            return Err(expected(self));
        }
        Ok(if self.trim_slash { text.trim_end_matches('/').to_owned() } else { text.to_owned() })
    }
}

/// One of `choices` by its exact name.
pub fn one_of<T: Clone>(choices: impl IntoIterator<Item = (&'static str, T)>) -> OneOf<T> {
    OneOf { choices: choices.into_iter().collect() }
}

/// See [`one_of`].
#[derive(Debug, Clone)]
pub struct OneOf<T> {
    choices: Vec<(&'static str, T)>,
}

impl<T: Clone> Parse for OneOf<T> {
    type Output = T;

    fn expected(&self) -> String {
        let names: Vec<&str> = self.choices.iter().map(|(name, _)| *name).collect();
        format!("one of {}", names.join(", "))
    }

    fn parse(&self, text: &str) -> Result<T, String> {
        self.choices
            .iter()
            .find(|(name, _)| *name == text)
            .map(|(_, value)| value.clone())
            .ok_or_else(|| expected(self))
    }
}

/// Comma-separated items, each trimmed and parsed by `item`; blank items are skipped. A refused
/// item is named by its position, never by its text.
pub fn list<P: Parse>(item: P) -> List<P> {
    List { item }
}

/// See [`list`].
#[derive(Debug, Clone)]
pub struct List<P> {
    item: P,
}

impl<P: Parse> Parse for List<P> {
    type Output = Vec<P::Output>;

    fn expected(&self) -> String {
        format!("a comma-separated list of items, each {}", self.item.expected())
    }

    fn parse(&self, text: &str) -> Result<Self::Output, String> {
        let items = text.split(',').map(str::trim).filter(|item| !item.is_empty());
        items
            .enumerate()
            .map(|(i, item)| self.item.parse(item).map_err(|reason| format!("item {}: {reason}", i + 1)))
            .collect()
    }
}

/// Comma-separated `name=value` pairs, names and values trimmed, values parsed by `value`; blank
/// items are skipped. Order is kept; a refused value is named by its name, never by its text.
pub fn pairs<P: Parse>(value: P) -> Pairs<P> {
    Pairs { value }
}

/// See [`pairs`].
#[derive(Debug, Clone)]
pub struct Pairs<P> {
    value: P,
}

impl<P: Parse> Parse for Pairs<P> {
    type Output = Vec<(String, P::Output)>;

    fn expected(&self) -> String {
        format!("comma-separated name=value pairs, each value {}", self.value.expected())
    }

    fn parse(&self, text: &str) -> Result<Self::Output, String> {
        let items = text.split(',').map(str::trim).filter(|item| !item.is_empty());
        items
            .enumerate()
            .map(|(i, item)| {
                let Some((name, value)) = item.split_once('=').filter(|(name, _)| !name.trim().is_empty()) else {
                    return Err(format!("item {} is not name=value", i + 1));
                };
                let name = name.trim();
                let value = self.value.parse(value.trim()).map_err(|reason| format!("{name}: {reason}"))?;
                Ok((name.to_owned(), value))
            })
            .collect()
    }
}

/// What `T::from_str` accepts; `expected` completes "expected …" in messages.
pub fn from_str<T: FromStr>(expected: &'static str) -> FromStrParser<T> {
    FromStrParser { expected, output: PhantomData }
}

/// See [`from_str`].
pub struct FromStrParser<T> {
    expected: &'static str,
    output: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for FromStrParser<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FromStrParser").field("expected", &self.expected).finish()
    }
}

impl<T: FromStr> Parse for FromStrParser<T> {
    type Output = T;

    fn expected(&self) -> String {
        self.expected.to_owned()
    }

    fn parse(&self, text: &str) -> Result<T, String> {
        text.parse().map_err(|_| expected(self))
    }
}

/// What `parse` accepts, for values only one component understands. `parse` returns the reason
/// of a refusal (following "is invalid: ") and must not repeat the value; `expected` describes a
/// valid value for lists and bounds.
pub fn custom<T, F: Fn(&str) -> Result<T, String>>(expected: &'static str, parse: F) -> Custom<F> {
    Custom { expected, parse }
}

/// See [`custom`].
pub struct Custom<F> {
    expected: &'static str,
    parse: F,
}

impl<F> fmt::Debug for Custom<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Custom").field("expected", &self.expected).finish()
    }
}

impl<T, F: Fn(&str) -> Result<T, String>> Parse for Custom<F> {
    type Output = T;

    fn expected(&self) -> String {
        self.expected.to_owned()
    }

    fn parse(&self, text: &str) -> Result<T, String> {
        (self.parse)(text)
    }
}
