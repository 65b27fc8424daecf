//! REST/JSON ⇄ protobuf, driven by the descriptors.
//!
//! A request is assembled as one canonical-JSON object — the body (all of it for `body: "*"`, or
//! under the named field), then query parameters, then path variables (which win) — and decoded
//! into a dynamic message in a single pass, so well-known types, enums and 64-bit integers follow
//! the proto3 JSON mapping exactly and every error names the offending field.

pub mod codec;
mod fieldmask;
mod query;

use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, ReflectMessage, SerializeOptions};
use serde_json::{Map, Value};

use kem_kit::validate::{Text, check_text};

use crate::routes::{Captures, Route};

pub use codec::DynamicCodec;

/// A request that cannot be transcoded: the field (JSON path) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {description}")]
pub struct FieldError {
    /// JSON path of the field (`event.budget.amountKrw`), or `body` / a query parameter name.
    pub field: String,
    /// What is wrong.
    pub description: String,
}

impl FieldError {
    pub(crate) fn new(field: impl Into<String>, description: impl Into<String>) -> FieldError {
        FieldError { field: field.into(), description: description.into() }
    }
}

/// Finds a field by JSON name or proto name.
pub(crate) fn field_named(message: &MessageDescriptor, name: &str) -> Option<FieldDescriptor> {
    message.get_field_by_json_name(name).or_else(|| message.get_field_by_name(name))
}

/// Sets `value` at the dotted proto/JSON `path` inside `root`, creating objects on the way.
/// Returns the JSON path actually used (JSON names), for error messages.
fn set_path(
    root: &mut Map<String, Value>,
    message: &MessageDescriptor,
    path: &str,
    value: Value,
) -> Result<(), FieldError> {
    let parts: Vec<&str> = path.split('.').collect();
    let mut current_message = message.clone();
    let mut current = root;
    for (i, part) in parts.iter().enumerate() {
        let field = field_named(&current_message, part)
            .ok_or_else(|| FieldError::new(path, format!("no field `{part}` in {}", current_message.full_name())))?;
        let key = field.json_name().to_owned();
        if i + 1 == parts.len() {
            current.insert(key, value);
            return Ok(());
        }
        let Kind::Message(next) = field.kind() else {
            return Err(FieldError::new(path, format!("`{part}` is not a message field")));
        };
        current_message = next;
        let slot = current.entry(key).or_insert_with(|| Value::Object(Map::new()));
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        current = slot.as_object_mut().ok_or_else(|| FieldError::new(path, "conflicting values"))?;
    }
    Ok(())
}

/// A path variable or query value as canonical JSON for `field`.
pub(crate) fn scalar_json(field: &FieldDescriptor, raw: &str, name: &str) -> Result<Value, FieldError> {
    let bad = |what: &str| FieldError::new(name, format!("{:?} is not {what}", crate::errors::quote(raw, 32)));
    Ok(match field.kind() {
        Kind::Bool => match raw {
            "true" | "1" => Value::Bool(true),
            "false" | "0" => Value::Bool(false),
            _ => return Err(bad("a boolean")),
        },
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            Value::from(raw.parse::<i32>().map_err(|_| bad("a 32-bit integer"))?)
        }
        Kind::Uint32 | Kind::Fixed32 => Value::from(raw.parse::<u32>().map_err(|_| bad("an unsigned 32-bit integer"))?),
        Kind::Float | Kind::Double => {
            let v = raw.parse::<f64>().map_err(|_| bad("a number"))?;
            serde_json::Number::from_f64(v).map(Value::Number).unwrap_or_else(|| Value::String(raw.to_owned()))
        }
        // 64-bit integers, strings, bytes (base64), enums (name or number) and well-known types
        // (Timestamp, Duration, FieldMask, wrappers) all take their JSON string form.
        _ => Value::String(raw.to_owned()),
    })
}

/// Longest path variable accepted, in characters. Every id in kem's API is far shorter; a longer
/// one is refused here, before any service spends work on it (or quotes it back).
pub const MAX_PATH_VARIABLE: usize = 128;

/// Path variables are ids: bounded, and free of control characters (which a percent-encoded
/// path can smuggle in: `/events/%00`). Violations name the field as the services do, by its
/// JSON name (`eventId`).
fn check_captures(captures: &Captures) -> Result<(), FieldError> {
    for (path, value) in captures {
        // The services' own character rules (control, line-break and bidi characters), so the
        // edge refuses exactly what they would, before spending a call.
        let problem = if value.is_empty() {
            Some("must not be empty".to_owned())
        } else {
            check_text(value, Text::line(MAX_PATH_VARIABLE)).err().map(|e| e.to_string())
        };
        if let Some(problem) = problem {
            return Err(FieldError::new(json_path(path), problem));
        }
    }
    Ok(())
}

/// A proto field path (`event.event_id`) in proto3 JSON names (`event.eventId`).
fn json_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut upper = false;
    for c in path.chars() {
        match c {
            '_' => upper = true,
            '.' => {
                upper = false;
                out.push('.');
            }
            c if upper => {
                out.extend(c.to_uppercase());
                upper = false;
            }
            c => out.push(c),
        }
    }
    out
}

/// Builds the request message for `route` from path captures, the query string and the body.
pub fn build_request(
    route: &Route,
    captures: &Captures,
    query: Option<&str>,
    body: &[u8],
) -> Result<DynamicMessage, FieldError> {
    check_captures(captures)?;
    let input = route.rpc.input();
    let no_body = body.iter().all(u8::is_ascii_whitespace);
    if no_body
        && query.is_none_or(str::is_empty)
        && let Some(message) = from_string_captures(&input, captures)
    {
        return Ok(message);
    }
    let mut root = Map::new();

    // 1. Body.
    let body_json: Option<Value> = if no_body {
        None
    } else {
        Some(serde_json::from_slice(body).map_err(|e| FieldError::new("body", format!("malformed JSON: {e}")))?)
    };
    match (route.body.as_str(), body_json) {
        ("", Some(_)) => return Err(FieldError::new("body", "this route takes no request body")),
        ("", None) | (_, None) => {}
        ("*", Some(Value::Object(map))) => root = map,
        ("*", Some(_)) => return Err(FieldError::new("body", "the request body must be a JSON object")),
        (field, Some(value)) => {
            let fd = field_named(&input, field)
                .ok_or_else(|| FieldError::new(field, "the route's body field is missing from the request message"))?;
            if route.rpc.input().get_field_by_name("update_mask").is_some() && value.is_object() {
                fieldmask::derive_if_absent(&mut root, &fd, &value, query);
            }
            root.insert(fd.json_name().to_owned(), value);
        }
    }

    // 2. Query parameters (never for `body: "*"`: everything comes from the body then).
    if let Some(query) = query.filter(|q| !q.is_empty()) {
        if route.body == "*" {
            let first = query.split('&').next().unwrap_or(query).split('=').next().unwrap_or_default();
            return Err(FieldError::new(first, "this route takes its input from the JSON body, not the query string"));
        }
        query::apply(&mut root, &input, query, &route.body)?;
    }

    // 3. Path variables win over anything else.
    set_captures(&mut root, &input, captures)?;

    decode(&input, Value::Object(root))
}

/// Puts each path variable's canonical JSON at its field path in `root`.
fn set_captures(
    root: &mut Map<String, Value>,
    input: &MessageDescriptor,
    captures: &Captures,
) -> Result<(), FieldError> {
    for (path, raw) in captures {
        let field = leaf_field(input, path).ok_or_else(|| FieldError::new(path.clone(), "unknown path variable"))?;
        let value = scalar_json(&field, raw, path)?;
        set_path(root, input, path, value)?;
    }
    Ok(())
}

/// The common case of a GET or DELETE: only path variables, each a top-level string field
/// (`/events/{event_id}`). Their canonical JSON is the string itself, so the message is built
/// directly instead of through a JSON document; anything else returns `None` (general path).
fn from_string_captures(input: &MessageDescriptor, captures: &Captures) -> Option<DynamicMessage> {
    let mut message = DynamicMessage::new(input.clone());
    for (path, raw) in captures {
        let field = input.get_field_by_name(path)?;
        if field.kind() != Kind::String || field.is_list() || field.is_map() {
            return None;
        }
        message.set_field(&field, prost_reflect::Value::String(raw.clone()));
    }
    Some(message)
}

fn leaf_field(message: &MessageDescriptor, path: &str) -> Option<FieldDescriptor> {
    let mut current = message.clone();
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        let field = field_named(&current, part)?;
        if parts.peek().is_none() {
            return Some(field);
        }
        current = field.kind().as_message()?.clone();
    }
    None
}

/// Decodes canonical JSON into `desc`, naming the field of the first error.
pub fn decode(desc: &MessageDescriptor, json: Value) -> Result<DynamicMessage, FieldError> {
    let mut track = serde_path_to_error::Track::new();
    let deserializer = serde_path_to_error::Deserializer::new(json, &mut track);
    DynamicMessage::deserialize(desc.clone(), deserializer).map_err(|e| {
        let path = track.path().to_string();
        let field = if path == "." || path.is_empty() { "body".to_owned() } else { path };
        FieldError::new(field, e.to_string())
    })
}

/// What to send back for a successful call.
#[derive(Debug)]
pub enum ResponseBody {
    /// Canonical JSON.
    Json(Vec<u8>),
    /// Raw bytes with a content type (`response_body` naming a `bytes` field next to a
    /// `content_type` field, e.g. image downloads).
    Raw {
        /// MIME type.
        content_type: String,
        /// Bytes.
        data: Vec<u8>,
        /// Their digest from a `sha256` field next to them, when the message has one and it is
        /// set: the answer is content-addressed (see [`crate::caching`]).
        sha256: Option<String>,
        /// The suggested file name from a `filename` field next to them, when the message has one
        /// and it is set: the answer is a download (`Content-Disposition: attachment`).
        filename: Option<String>,
    },
}

/// Serializes a response message as proto3 canonical JSON (camelCase, int64 as strings, enums
/// as names, well-known types in their JSON forms), selecting `response_body` if set.
pub fn write_response(
    route: &Route,
    message: &DynamicMessage,
    pretty: bool,
) -> Result<ResponseBody, serde_json::Error> {
    let options = SerializeOptions::new();
    if !route.response_body.is_empty()
        && let Some(field) = message.descriptor().get_field_by_name(&route.response_body)
    {
        let value = message.get_field(&field);
        if let prost_reflect::Value::Bytes(data) = value.as_ref() {
            let content_type = message
                .get_field_by_name("content_type")
                .and_then(|v| v.as_str().map(str::to_owned))
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "application/octet-stream".to_owned());
            let sha256 = message
                .get_field_by_name(crate::caching::DIGEST_FIELD)
                .and_then(|v| v.as_str().map(str::to_owned))
                .filter(|s| !s.is_empty());
            let filename = message
                .get_field_by_name(crate::caching::FILENAME_FIELD)
                .and_then(|v| v.as_str().map(str::to_owned))
                .filter(|s| !s.is_empty());
            return Ok(ResponseBody::Raw { content_type, data: data.to_vec(), sha256, filename });
        }
        if let prost_reflect::Value::Message(inner) = value.as_ref() {
            return to_json(inner, &options, pretty).map(ResponseBody::Json);
        }
    }
    to_json(message, &options, pretty).map(ResponseBody::Json)
}

fn to_json(message: &DynamicMessage, options: &SerializeOptions, pretty: bool) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::with_capacity(256);
    if pretty {
        let mut serializer = serde_json::Serializer::pretty(&mut out);
        message.serialize_with_options(&mut serializer, options)?;
    } else {
        let mut serializer = serde_json::Serializer::new(&mut out);
        message.serialize_with_options(&mut serializer, options)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
