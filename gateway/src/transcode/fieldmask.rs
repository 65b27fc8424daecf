//! PATCH without an explicit `updateMask`: the mask is the set of fields present in the body, as
//! grpc-gateway does, so `{"title": "x"}` updates the title and nothing else.

use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Map, Value};

use super::field_named;

/// Messages whose JSON form is not an object of their fields: a path stops at them.
fn is_opaque(message: &MessageDescriptor) -> bool {
    message.full_name().starts_with("google.protobuf.")
}

fn collect(message: &MessageDescriptor, object: &Map<String, Value>, prefix: &str, out: &mut Vec<String>) {
    for (key, value) in object {
        let Some(field) = field_named(message, key) else {
            // Unknown keys are reported by decoding; they contribute no path.
            continue;
        };
        let path =
            if prefix.is_empty() { field.json_name().to_owned() } else { format!("{prefix}.{}", field.json_name()) };
        match (field.kind(), value) {
            (Kind::Message(inner), Value::Object(map))
                if !field.is_map() && !field.is_list() && !is_opaque(&inner) && !map.is_empty() =>
            {
                collect(&inner, map, &path, out)
            }
            _ => out.push(path),
        }
    }
}

/// Adds `updateMask` (comma-separated camelCase paths, its canonical JSON form) derived from
/// `body` unless the client sent one in the query string.
pub(super) fn derive_if_absent(
    root: &mut Map<String, Value>,
    body_field: &FieldDescriptor,
    body: &Value,
    query: Option<&str>,
) {
    let given =
        query.is_some_and(|q| q.split('&').any(|p| p.starts_with("updateMask=") || p.starts_with("update_mask=")));
    if given {
        return;
    }
    let (Kind::Message(message), Value::Object(object)) = (body_field.kind(), body) else { return };
    let mut paths = Vec::new();
    collect(&message, object, "", &mut paths);
    paths.sort();
    root.insert("updateMask".to_owned(), Value::String(paths.join(",")));
}
