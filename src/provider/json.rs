//! Strict JSON checking and raw splicing for the rewritten routes
//! (README "Errors", strictness on the rewritten routes).
//!
//! [`check_strict`] rejects what a provider's parser might read differently from
//! ours: anything but one JSON object, invalid UTF-8, duplicate keys at any depth.
//! It allocates no values, only the keys of the objects being checked.
//!
//! [`Members`] reads one object as its ordered `(key, raw value)` pairs borrowed
//! from the input and writes it back with only edited members replaced: the bytes
//! of every untouched value (numbers, escapes, inner whitespace) are copied as
//! they came. Nothing here ever logs or echoes a value; error messages show at
//! most a truncated key.

#![forbid(unsafe_code)]

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer as _, MapAccess, SeqAccess, Visitor};
use serde::Serialize;
use serde_json::value::RawValue;

use crate::http::error::GatewayError;

/// Longest key (in chars) echoed in an error message.
const MAX_ECHOED_KEY_CHARS: usize = 64;

/// Checks that `body` is a single JSON object, valid UTF-8, and that no object at
/// any depth repeats a key (keys compared after unescaping). Nesting deeper than
/// `serde_json`'s recursion limit (128) is a clean 400. Because every value goes
/// through serde's `deserialize_any`, two rare forms that RFC 8259 permits are also
/// refused: numbers beyond `f64` range (`1e400`) and lone surrogate escapes (`"\ud800"`).
///
/// # Errors
/// [`GatewayError::BadRequest`] without `param`, its message naming the problem
/// (with serde's line and column for syntax errors).
pub fn check_strict(body: &[u8]) -> Result<(), GatewayError> {
    let text = body_str(body)?;
    check_strict_str(text)
}

/// [`check_strict`], then the body's top-level members, borrowed from `body`.
///
/// # Errors
/// As [`check_strict`].
pub fn strict_object(body: &[u8]) -> Result<Members<'_>, GatewayError> {
    let text = body_str(body)?;
    check_strict_str(text)?;
    Members::parse_str(text).map_err(|e| invalid_json(&e))
}

fn body_str(body: &[u8]) -> Result<&str, GatewayError> {
    std::str::from_utf8(body).map_err(|e| {
        GatewayError::bad_request(format!(
            "Request body is not valid UTF-8 (invalid byte at offset {}).",
            e.valid_up_to()
        ))
    })
}

fn invalid_json(e: &serde_json::Error) -> GatewayError {
    GatewayError::bad_request(format!("Request body is not valid JSON: {e}"))
}

fn check_strict_str(text: &str) -> Result<(), GatewayError> {
    match text.trim_start_matches([' ', '\t', '\n', '\r']).as_bytes().first() {
        Some(b'{') => {}
        None => return Err(GatewayError::bad_request("Request body is empty; it must be a JSON object.")),
        Some(_) => return Err(GatewayError::bad_request("Request body must be a JSON object.")),
    }
    let duplicate = Cell::new(None);
    let mut de = serde_json::Deserializer::from_str(text);
    let checked = Strict { duplicate: &duplicate }.deserialize(&mut de).and_then(|()| de.end());
    match checked {
        Ok(()) => Ok(()),
        Err(e) => match duplicate.take() {
            Some(key) => Err(GatewayError::bad_request(format!(
                "Duplicate key {key:?} in request body (line {}, column {}).",
                e.line(),
                e.column()
            ))),
            None => Err(invalid_json(&e)),
        },
    }
}

fn truncate_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_owned(),
    }
}

/// A string that stays borrowed from the input when it has no escapes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Str<'a>(pub Cow<'a, str>);

impl<'de> de::Deserialize<'de> for Str<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// Walks any value; objects check their keys for duplicates.
#[derive(Clone, Copy)]
struct Strict<'c> {
    duplicate: &'c Cell<Option<String>>,
}

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut keys: Vec<Cow<'de, str>> = Vec::new();
        while let Some(Str(key)) = map.next_key::<Str<'de>>()? {
            // Small objects: linear scan at insert; large ones: sort once at the end.
            if keys.len() < 16 && keys.contains(&key) {
                return Err(self.duplicate_error(&key));
            }
            keys.push(key);
            map.next_value_seed(self)?;
        }
        if keys.len() > 16 {
            keys.sort_unstable();
            if let Some([first, ..]) = keys.windows(2).find(|w| w[0] == w[1]) {
                return Err(self.duplicate_error(first));
            }
        }
        Ok(())
    }
}

impl Strict<'_> {
    fn duplicate_error<E: de::Error>(self, key: &str) -> E {
        self.duplicate.set(Some(truncate_chars(key, MAX_ECHOED_KEY_CHARS)));
        E::custom("duplicate key")
    }
}

/// A member value: the input's raw slice, or JSON this module wrote.
#[derive(Debug, Clone)]
pub struct Val<'a>(ValInner<'a>);

#[derive(Debug, Clone)]
enum ValInner<'a> {
    Raw(&'a RawValue),
    /// Valid JSON text produced by `serde_json` or by [`Members::to_val`]/[`write_array`].
    Owned(String),
}

impl<'a> Val<'a> {
    #[must_use]
    pub const fn raw(raw: &'a RawValue) -> Self {
        Self(ValInner::Raw(raw))
    }

    /// Serializes `value` (compact).
    ///
    /// # Errors
    /// [`GatewayError::Internal`] if serde refuses the value (not expected for our types).
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<Self, GatewayError> {
        serde_json::to_string(value)
            .map(|s| Self(ValInner::Owned(s)))
            .map_err(|_| GatewayError::Internal { message: "could not serialize a rewritten JSON member".into() })
    }

    /// A value from JSON text this crate wrote (a rewriter's output).
    /// The caller guarantees `text` is one valid JSON value.
    #[must_use]
    pub const fn written(text: String) -> Val<'static> {
        Val(ValInner::Owned(text))
    }

    /// The JSON text.
    #[must_use]
    pub fn get(&self) -> &str {
        match &self.0 {
            ValInner::Raw(r) => r.get(),
            ValInner::Owned(s) => s,
        }
    }

    /// The input slice this value was read from, if it is untouched.
    #[must_use]
    pub const fn as_raw(&self) -> Option<&'a RawValue> {
        match self.0 {
            ValInner::Raw(r) => Some(r),
            ValInner::Owned(_) => None,
        }
    }

    #[must_use]
    pub fn kind(&self) -> Kind {
        Kind::of(self.get())
    }
}

/// The JSON type of a raw value, read from its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Object,
    Array,
    String,
    Number,
    Bool,
    Null,
}

impl Kind {
    /// `text` must be a raw JSON value (no leading whitespace, as `serde_json` captures it).
    #[must_use]
    pub fn of(text: &str) -> Self {
        match text.as_bytes().first() {
            Some(b'{') => Self::Object,
            Some(b'[') => Self::Array,
            Some(b'"') => Self::String,
            Some(b't' | b'f') => Self::Bool,
            Some(b'n') => Self::Null,
            _ => Self::Number,
        }
    }
}

/// Kind of a raw value.
#[must_use]
pub fn kind(raw: &RawValue) -> Kind {
    Kind::of(raw.get())
}

/// One JSON object as ordered `(key, value)` pairs. Keys are unescaped; values
/// stay raw until replaced. Assumes the input passed [`check_strict`], so keys are unique.
#[derive(Debug, Clone, Default)]
pub struct Members<'a> {
    entries: Vec<(Cow<'a, str>, Val<'a>)>,
}

impl<'a> Members<'a> {
    /// Reads the members of a raw value that must be an object.
    ///
    /// # Errors
    /// serde's error if `raw` is not an object.
    pub fn parse(raw: &'a RawValue) -> Result<Self, serde_json::Error> {
        Self::parse_str(raw.get())
    }

    fn parse_str(text: &'a str) -> Result<Self, serde_json::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some(Str(key)) = map.next_key::<Str<'de>>()? {
                    let value: &'de RawValue = map.next_value()?;
                    entries.push((key, Val::raw(value)));
                }
                Ok(Members { entries })
            }
        }
        let mut de = serde_json::Deserializer::from_str(text);
        let members = de.deserialize_map(V)?;
        de.end()?;
        Ok(members)
    }

    /// An empty object.
    #[must_use]
    pub const fn new() -> Self {
        Self { entries: Vec::new() }
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Val<'a>)> {
        self.entries.iter().map(|(k, v)| (k.as_ref(), v))
    }

    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Val<'a>> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The input slice of a member that has not been replaced.
    #[must_use]
    pub fn get_raw(&self, key: &str) -> Option<&'a RawValue> {
        self.get(key).and_then(Val::as_raw)
    }

    /// Like [`Self::get_raw`], but a JSON `null` counts as absent.
    #[must_use]
    pub fn get_raw_non_null(&self, key: &str) -> Option<&'a RawValue> {
        self.get_raw(key).filter(|v| kind(v) != Kind::Null)
    }

    /// Like [`Self::get`], but a JSON `null` counts as absent.
    #[must_use]
    pub fn get_non_null(&self, key: &str) -> Option<&Val<'a>> {
        self.get(key).filter(|v| v.kind() != Kind::Null)
    }

    /// Replaces the value in place, or appends the member.
    pub fn set(&mut self, key: &str, value: Val<'a>) {
        if let Some(slot) = self.entries.iter_mut().find(|(k, _)| k == key) {
            slot.1 = value;
        } else {
            self.entries.push((Cow::Owned(key.to_owned()), value));
        }
    }

    /// Appends a member after removing any earlier one with the same key.
    pub fn push(&mut self, key: &str, value: Val<'a>) {
        self.remove(key);
        self.entries.push((Cow::Owned(key.to_owned()), value));
    }

    pub fn remove(&mut self, key: &str) -> Option<Val<'a>> {
        let at = self.entries.iter().position(|(k, _)| k == key)?;
        Some(self.entries.remove(at).1)
    }

    /// Writes `{"k":<value>,...}`: keys re-escaped by `serde_json`, values as they are.
    ///
    /// # Errors
    /// [`GatewayError::Internal`] if a key cannot be written (not expected).
    pub fn write(&self, out: &mut String) -> Result<(), GatewayError> {
        out.push('{');
        for (i, (key, value)) in self.entries.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let key = serde_json::to_string(key.as_ref())
                .map_err(|_| GatewayError::Internal { message: "could not write a JSON key".into() })?;
            out.push_str(&key);
            out.push(':');
            out.push_str(value.get());
        }
        out.push('}');
        Ok(())
    }

    fn to_string(&self) -> Result<String, GatewayError> {
        let len = self.entries.iter().map(|(k, v)| k.len() + v.get().len() + 4).sum::<usize>() + 2;
        let mut out = String::with_capacity(len);
        self.write(&mut out)?;
        Ok(out)
    }

    /// The object as bytes.
    ///
    /// # Errors
    /// As [`Self::write`].
    pub fn to_vec(&self) -> Result<Vec<u8>, GatewayError> {
        self.to_string().map(String::into_bytes)
    }

    /// The object as a member value of an enclosing object or array.
    ///
    /// # Errors
    /// As [`Self::write`].
    pub fn to_val(&self) -> Result<Val<'static>, GatewayError> {
        self.to_string().map(|s| Val(ValInner::Owned(s)))
    }
}

/// Reads the elements of a raw value that must be an array, borrowed.
///
/// # Errors
/// serde's error if `raw` is not an array.
pub fn parse_array(raw: &RawValue) -> Result<Vec<&RawValue>, serde_json::Error> {
    serde_json::from_str(raw.get())
}

/// Writes `[<v>,...]` from already-valid values.
#[must_use]
pub fn write_array(items: &[Val<'_>]) -> Val<'static> {
    let mut out = String::with_capacity(items.iter().map(|v| v.get().len() + 1).sum::<usize>() + 2);
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(item.get());
    }
    out.push(']');
    Val(ValInner::Owned(out))
}

/// Reads a raw string value, borrowed when it has no escapes. `None` if not a string.
#[must_use]
pub fn as_str(raw: &RawValue) -> Option<Cow<'_, str>> {
    if kind(raw) != Kind::String {
        return None;
    }
    serde_json::from_str::<Str<'_>>(raw.get()).ok().map(|s| s.0)
}

/// Reads a raw bool. `None` if not a bool.
#[must_use]
pub fn as_bool(raw: &RawValue) -> Option<bool> {
    match raw.get() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// Reads a raw array of strings. `None` if it is anything else.
#[must_use]
pub fn as_str_array(raw: &RawValue) -> Option<Vec<Cow<'_, str>>> {
    if kind(raw) != Kind::Array {
        return None;
    }
    serde_json::from_str::<Vec<Str<'_>>>(raw.get()).ok().map(|v| v.into_iter().map(|s| s.0).collect())
}

/// Test helpers shared by the provider modules' golden-fixture and property tests.
#[cfg(test)]
pub(crate) mod test_support {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use serde_json::Value;

    use crate::crypto::Secret;
    use crate::tenant::{Approval, McpAuth, McpMode, McpPolicy, McpServer};

    /// `{"allow_unmanaged"?: bool, "servers": {name: {"url", "bearer"? | "headers"?: {..},
    /// "allowed_tools"?: [..], "require_approval"?: "always"|"never"}}}`
    pub fn policy_from_json(v: &Value) -> McpPolicy {
        let mut servers = BTreeMap::new();
        if let Some(obj) = v.get("servers").and_then(Value::as_object) {
            for (name, s) in obj {
                let auth = if let Some(t) = s.get("bearer").and_then(Value::as_str) {
                    McpAuth::Bearer(Secret::new(t))
                } else if let Some(h) = s.get("headers").and_then(Value::as_object) {
                    McpAuth::Headers(h.iter().map(|(k, v)| (k.clone(), Secret::new(v.as_str().unwrap()))).collect())
                } else {
                    McpAuth::None
                };
                let allowed_tools = s
                    .get("allowed_tools")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().map(|t| t.as_str().unwrap().to_owned()).collect());
                let require_approval = match s.get("require_approval").and_then(Value::as_str) {
                    Some("always") => Approval::Always,
                    _ => Approval::Never,
                };
                servers.insert(
                    name.clone(),
                    McpServer {
                        url: s["url"].as_str().unwrap().to_owned(),
                        auth,
                        allowed_tools,
                        require_approval,
                        mode: McpMode::Direct,
                        service: None,
                    },
                );
            }
        }
        McpPolicy { servers, allow_unmanaged: v.get("allow_unmanaged").and_then(Value::as_bool).unwrap_or(false) }
    }

    /// Raw text of each top-level member, in order.
    pub fn raw_members(body: &[u8]) -> Vec<(String, String)> {
        let m = super::strict_object(body).unwrap();
        m.iter().map(|(k, v)| (k.to_owned(), v.get().to_owned())).collect()
    }

    /// JSON whitespace, possibly none.
    pub fn ws() -> impl Strategy<Value = &'static str> {
        prop_oneof![Just(""), Just(" "), Just("\n  "), Just("\t"), Just(" \r\n")]
    }

    fn arb_leaf() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("null".to_owned()),
            Just("true".to_owned()),
            Just("false".to_owned()),
            Just("1.0000000000000000001".to_owned()),
            Just("-0".to_owned()),
            Just("1E+2".to_owned()),
            Just("-12.5e-3".to_owned()),
            Just("123456789012345678901234567890".to_owned()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| format!("{f:e}")),
            Just(r#""\u00e9""#.to_owned()),
            Just(r#""a\"b\\c\/d\n""#.to_owned()),
            Just(r#""\ud83d\ude00 é""#.to_owned()),
            any::<String>().prop_map(|s| serde_json::to_string(&s).unwrap()),
        ]
    }

    /// Arbitrary JSON text with varied number formats, escapes and whitespace;
    /// object keys are unique.
    pub fn arb_value() -> impl Strategy<Value = String> {
        arb_leaf().prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                (prop::collection::vec(inner.clone(), 0..4), ws())
                    .prop_map(|(items, space)| format!("[{space}{}{space}]", items.join(&format!(",{space}")))),
                (prop::collection::vec(inner, 0..4), ws()).prop_map(|(items, space)| {
                    let members: Vec<String> =
                        items.iter().enumerate().map(|(i, v)| format!("\"k{i}\"{space}:{space}{v}")).collect();
                    format!("{{{space}{}{space}}}", members.join(","))
                }),
            ]
        })
    }

    /// Up to `max` members as (unique key suffix, value text).
    pub fn arb_members(max: usize) -> impl Strategy<Value = Vec<(String, String)>> {
        let suffix = prop_oneof![Just(""), Just("\\u00e9"), Just(" b"), Just("\\\"")];
        prop::collection::vec((suffix, arb_value()), 0..=max)
            .prop_map(|m| m.into_iter().enumerate().map(|(i, (s, v))| (format!("{i}{s}"), v)).collect())
    }

    /// Every top-level member but `tools`, and every `tools` entry the expected
    /// output keeps unchanged, appear in the output with their exact bytes.
    pub fn assert_verbatim(request: &[u8], output: &[u8], expected: &Value, name: &str) {
        let out_members = raw_members(output);
        for (key, raw) in raw_members(request) {
            if key == "tools" || key == "mcp_servers" {
                let entries: Vec<&serde_json::value::RawValue> = serde_json::from_str(&raw).unwrap_or_default();
                let kept = expected[&key].as_array().cloned().unwrap_or_default();
                let out_text = &out_members.iter().find(|(k, _)| *k == key).unwrap().1;
                for entry in entries {
                    let v: Value = serde_json::from_str(entry.get()).unwrap();
                    if kept.contains(&v) {
                        assert!(out_text.contains(entry.get()), "{name}: {key} entry {} not verbatim", entry.get());
                    }
                }
                continue;
            }
            let got = out_members.iter().find(|(k, _)| *k == key).map(|(_, v)| v);
            assert_eq!(got, Some(&raw), "{name}: member {key} not verbatim");
        }
    }

    /// Every fixture file (`*.json`) under `tests/fixtures/<api>/`, sorted.
    pub fn fixture_files(api: &str) -> Vec<std::path::PathBuf> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(api);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        files
    }
}

#[cfg(test)]
mod tests;
