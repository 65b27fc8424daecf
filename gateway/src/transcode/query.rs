//! Query parameters → request fields: `a.b=c` for nested fields, repeated keys for repeated
//! fields, JSON or proto names accepted.

use prost_reflect::{Kind, MessageDescriptor};
use serde_json::{Map, Value};

use super::{FieldError, field_named, scalar_json, set_path};

/// Parameters the edge itself understands; they are not request fields.
const RESERVED: &[&str] = &["pretty", "alt", "$pretty"];

pub(super) fn apply(
    root: &mut Map<String, Value>,
    input: &MessageDescriptor,
    query: &str,
    body_field: &str,
) -> Result<(), FieldError> {
    // Collect repeated keys first so `status=A&status=B` becomes one array.
    let mut params: Vec<(String, Vec<String>)> = Vec::new();
    for (key, value) in form_urlencoded(query) {
        if RESERVED.contains(&key.as_str()) {
            continue;
        }
        match params.iter_mut().find(|(k, _)| *k == key) {
            Some((_, values)) => values.push(value),
            None => params.push((key, vec![value])),
        }
    }
    for (key, values) in params {
        let field = resolve(input, &key)?;
        if !body_field.is_empty()
            && key.split('.').next().and_then(|first| field_named(input, first)).is_some_and(|f| f.name() == body_field)
        {
            return Err(FieldError::new(key, "this field comes from the request body"));
        }
        let value = if field.is_list() {
            Value::Array(values.iter().map(|v| scalar_json(&field, v, &key)).collect::<Result<_, _>>()?)
        } else {
            if values.len() > 1 {
                return Err(FieldError::new(key, "repeated for a field that is not repeated"));
            }
            if field.is_map() || (matches!(field.kind(), Kind::Message(_)) && !is_string_encoded_wkt(&field.kind())) {
                return Err(FieldError::new(
                    key,
                    "a message field cannot be set from the query string; set its fields (a.b=c)",
                ));
            }
            scalar_json(&field, &values[0], &key)?
        };
        set_path(root, input, &key, value)?;
    }
    Ok(())
}

/// Well-known types whose JSON form is a string (or scalar): settable from a query parameter.
fn is_string_encoded_wkt(kind: &Kind) -> bool {
    let Kind::Message(message) = kind else { return false };
    matches!(
        message.full_name(),
        "google.protobuf.Timestamp"
            | "google.protobuf.Duration"
            | "google.protobuf.FieldMask"
            | "google.protobuf.StringValue"
            | "google.protobuf.BytesValue"
            | "google.protobuf.Int64Value"
            | "google.protobuf.UInt64Value"
            | "google.protobuf.Int32Value"
            | "google.protobuf.UInt32Value"
            | "google.protobuf.BoolValue"
            | "google.protobuf.DoubleValue"
            | "google.protobuf.FloatValue"
    )
}

fn resolve(input: &MessageDescriptor, key: &str) -> Result<prost_reflect::FieldDescriptor, FieldError> {
    let mut current = input.clone();
    let parts: Vec<&str> = key.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let field = field_named(&current, part).ok_or_else(|| FieldError::new(key, "unknown query parameter"))?;
        if i + 1 == parts.len() {
            return Ok(field);
        }
        current = match field.kind() {
            Kind::Message(m) if !field.is_list() && !field.is_map() => m,
            _ => return Err(FieldError::new(key, format!("`{part}` has no sub-fields"))),
        };
    }
    Err(FieldError::new(key, "empty query parameter name"))
}

/// `application/x-www-form-urlencoded` pairs ('+' is a space).
fn form_urlencoded(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let decode =
                |s: &str| percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned();
            (decode(k), decode(v))
        })
        .collect()
}
