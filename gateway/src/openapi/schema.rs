//! JSON Schemas (OpenAPI 3.1 = JSON Schema 2020-12) for messages and enums in proto3 canonical JSON.
//!
//! Every kem message and enum reachable from an operation becomes one component named by its full
//! proto name; well-known types are inlined as the JSON shape canonical JSON gives them (a
//! Timestamp is an RFC 3339 string, not an object with `seconds`).

use std::collections::BTreeMap;

use prost_reflect::{
    DescriptorPool, EnumDescriptor, ExtensionDescriptor, FieldDescriptor, Kind, MessageDescriptor, Value as Proto,
};
use serde_json::{Map, Value, json};

use super::comments::{Comments, one_line};

/// Where component schemas live in the document.
pub(crate) const SCHEMA_REF_PREFIX: &str = "#/components/schemas/";

/// Full name of the error body every operation may return.
pub(crate) const STATUS_MESSAGE: &str = "google.rpc.Status";

/// What `google.api.field_behavior` says about a field.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Behavior {
    /// `REQUIRED`: the client must set it.
    pub(crate) required: bool,
    /// `OUTPUT_ONLY`: set by the server, ignored in requests.
    pub(crate) output_only: bool,
    /// `INPUT_ONLY`: accepted in requests, never returned.
    pub(crate) input_only: bool,
}

/// Collects component schemas while operations are built.
pub(crate) struct Schemas<'a> {
    comments: &'a Comments,
    field_behavior: Option<ExtensionDescriptor>,
    components: BTreeMap<String, Value>,
}

impl<'a> Schemas<'a> {
    pub(crate) fn new(pool: &DescriptorPool, comments: &'a Comments) -> Self {
        Self {
            comments,
            field_behavior: pool.get_extension_by_name("google.api.field_behavior"),
            components: BTreeMap::new(),
        }
    }

    /// The collected component schemas, sorted by name.
    pub(crate) fn into_components(self) -> Map<String, Value> {
        self.components.into_iter().collect()
    }

    /// The `google.api.field_behavior` annotations of `field`.
    pub(crate) fn behavior(&self, field: &FieldDescriptor) -> Behavior {
        let mut behavior = Behavior::default();
        let Some(ext) = &self.field_behavior else { return behavior };
        let options = field.options();
        if !options.has_extension(ext) {
            return behavior;
        }
        let Kind::Enum(names) = ext.kind() else { return behavior };
        if let Proto::List(values) = options.get_extension(ext).as_ref() {
            for value in values {
                let Proto::EnumNumber(number) = value else { continue };
                match names.get_value(*number).as_ref().map(|v| v.name()) {
                    Some("REQUIRED") => behavior.required = true,
                    Some("OUTPUT_ONLY") => behavior.output_only = true,
                    Some("INPUT_ONLY") => behavior.input_only = true,
                    _ => {}
                }
            }
        }
        behavior
    }

    /// A reference to the component schema of `message` (registering it and everything it
    /// reaches), or the inline schema of a well-known type.
    pub(crate) fn message_ref(&mut self, message: &MessageDescriptor) -> Value {
        if let Some(inline) = well_known(message) {
            return inline;
        }
        let name = message.full_name();
        if !self.components.contains_key(name) {
            // Placeholder first: a recursive message refers to itself while it is being built.
            self.components.insert(name.to_owned(), Value::Null);
            let schema = self.message_schema(message);
            self.components.insert(name.to_owned(), schema);
        }
        json!({ "$ref": format!("{SCHEMA_REF_PREFIX}{name}") })
    }

    /// The object schema of `message` itself (not a reference), for request bodies that differ
    /// from the message (path-bound fields removed) and for components.
    pub(crate) fn message_schema(&mut self, message: &MessageDescriptor) -> Value {
        if let Some(inline) = well_known(message) {
            return inline;
        }
        let mut properties = Map::new();
        let mut required = Vec::new();
        for field in message.fields() {
            if self.behavior(&field).required {
                required.push(Value::from(field.json_name()));
            }
            properties.insert(field.json_name().to_owned(), self.field_schema(&field));
        }
        let mut schema = Map::new();
        schema.insert("type".into(), "object".into());
        if let Some(comment) = self.comments.message(message) {
            schema.insert("description".into(), comment.into());
        }
        schema.insert("properties".into(), Value::Object(properties));
        if !required.is_empty() {
            schema.insert("required".into(), Value::Array(required));
        }
        Value::Object(schema)
    }

    /// The schema of one field as it appears in JSON, with its description and behaviour.
    pub(crate) fn field_schema(&mut self, field: &FieldDescriptor) -> Value {
        let mut schema = if field.is_map() {
            let value = match field.kind() {
                Kind::Message(entry) => self.kind_schema(&entry.map_entry_value_field().kind()),
                _ => json!({}),
            };
            json!({ "type": "object", "additionalProperties": value })
        } else if field.is_list() {
            json!({ "type": "array", "items": self.kind_schema(&field.kind()) })
        } else {
            self.kind_schema(&field.kind())
        };
        self.annotate_field(&mut schema, field);
        schema
    }

    /// Adds `field`'s description, oneof membership, behaviour and deprecation to `schema`.
    pub(crate) fn annotate_field(&self, schema: &mut Value, field: &FieldDescriptor) {
        let Value::Object(map) = schema else { return };
        let mut text = self.comments.field(field).map(str::to_owned).unwrap_or_default();
        if let Some(oneof) = field.containing_oneof().filter(|o| !o.is_synthetic()) {
            let members: Vec<String> = oneof.fields().map(|f| format!("`{}`", f.json_name())).collect();
            let note = format!("Member of oneof `{}`: at most one of {} is set.", oneof.name(), members.join(", "));
            text = if text.is_empty() { note } else { format!("{text}\n\n{note}") };
        }
        if !text.is_empty() {
            // A well-known type may carry its own description (e.g. the FieldMask syntax): keep it
            // after the field's.
            let merged = match map.get("description").and_then(Value::as_str) {
                Some(own) => format!("{text}\n\n{own}"),
                None => text,
            };
            map.insert("description".into(), merged.into());
        }
        let behavior = self.behavior(field);
        if behavior.output_only {
            map.insert("readOnly".into(), true.into());
        }
        if behavior.input_only {
            map.insert("writeOnly".into(), true.into());
        }
        if is_deprecated(&field.options()) {
            map.insert("deprecated".into(), true.into());
        }
    }

    /// The schema of one value of `kind` (one list element, one map value, or a singular field).
    pub(crate) fn kind_schema(&mut self, kind: &Kind) -> Value {
        match kind {
            Kind::Message(message) => self.message_ref(message),
            Kind::Enum(enumeration) => self.enum_ref(enumeration),
            scalar => scalar_schema(scalar),
        }
    }

    /// A reference to the string-enum component of `enumeration` (registering it).
    pub(crate) fn enum_ref(&mut self, enumeration: &EnumDescriptor) -> Value {
        if enumeration.full_name() == "google.protobuf.NullValue" {
            return json!({ "type": "null" });
        }
        let name = enumeration.full_name();
        if !self.components.contains_key(name) {
            let schema = self.enum_schema(enumeration);
            self.components.insert(name.to_owned(), schema);
        }
        json!({ "$ref": format!("{SCHEMA_REF_PREFIX}{name}") })
    }

    fn enum_schema(&self, enumeration: &EnumDescriptor) -> Value {
        let names: Vec<Value> = enumeration.values().map(|v| Value::from(v.name())).collect();
        // Canonical JSON writes enum values by name; the list documents what each name means.
        let bullets: Vec<String> = enumeration
            .values()
            .map(|v| match self.comments.enum_value(&v) {
                Some(comment) => format!("- `{}`: {}", v.name(), one_line(comment)),
                None => format!("- `{}`", v.name()),
            })
            .collect();
        let description = match self.comments.enumeration(enumeration) {
            Some(comment) => format!("{comment}\n\n{}", bullets.join("\n")),
            None => bullets.join("\n"),
        };
        json!({ "type": "string", "description": description, "enum": names })
    }

    /// A reference to the `google.rpc.Status` error schema, from the pool's descriptor when it has
    /// one (so the error shape is as published), otherwise the standard shape.
    pub(crate) fn status_ref(&mut self, pool: &DescriptorPool) -> Value {
        if let Some(status) = pool.get_message_by_name(STATUS_MESSAGE) {
            return self.message_ref(&status);
        }
        self.components.entry(STATUS_MESSAGE.to_owned()).or_insert_with(|| {
            json!({
                "type": "object",
                "description": "The error model: a gRPC status code, a developer-facing message and details.",
                "properties": {
                    "code": { "type": "integer", "format": "int32", "description": "The gRPC status code (google.rpc.Code)." },
                    "message": { "type": "string", "description": "A developer-facing error message in English." },
                    "details": { "type": "array", "items": any_schema() }
                }
            })
        });
        json!({ "$ref": format!("{SCHEMA_REF_PREFIX}{STATUS_MESSAGE}") })
    }
}

/// Whether an options message (`FieldOptions`, `MethodOptions`) sets `deprecated = true`.
pub(crate) fn is_deprecated(options: &prost_reflect::DynamicMessage) -> bool {
    matches!(options.get_field_by_name("deprecated").as_deref(), Some(Proto::Bool(true)))
}

/// The canonical JSON schema of a scalar kind (messages and enums are handled by [`Schemas`]).
pub(crate) fn scalar_schema(kind: &Kind) -> Value {
    match kind {
        Kind::Double => json!({ "type": "number", "format": "double" }),
        Kind::Float => json!({ "type": "number", "format": "float" }),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => json!({ "type": "integer", "format": "int32" }),
        Kind::Uint32 | Kind::Fixed32 => json!({ "type": "integer", "format": "uint32", "minimum": 0 }),
        // Canonical JSON writes 64-bit integers as decimal strings (JavaScript numbers lose precision).
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            json!({ "type": "string", "format": "int64", "pattern": "^-?[0-9]+$" })
        }
        Kind::Uint64 | Kind::Fixed64 => json!({ "type": "string", "format": "uint64", "pattern": "^[0-9]+$" }),
        Kind::Bool => json!({ "type": "boolean" }),
        Kind::String => json!({ "type": "string" }),
        Kind::Bytes => json!({ "type": "string", "contentEncoding": "base64" }),
        Kind::Message(_) | Kind::Enum(_) => json!({}),
    }
}

fn any_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "@type": {
                "type": "string",
                "description": "Type URL of the embedded message, e.g. `type.googleapis.com/google.rpc.ErrorInfo`."
            }
        },
        "required": ["@type"],
        "additionalProperties": true
    })
}

/// Well-known types that canonical JSON writes as a single scalar (usable as query parameters).
pub(crate) fn is_scalar_well_known(message: &MessageDescriptor) -> bool {
    matches!(
        message.full_name(),
        "google.protobuf.Timestamp" | "google.protobuf.Duration" | "google.protobuf.FieldMask"
    ) || wrapped_kind(message).is_some()
}

/// The scalar kind a `google.protobuf.*Value` wrapper wraps.
fn wrapped_kind(message: &MessageDescriptor) -> Option<Kind> {
    let wrapper = matches!(
        message.full_name(),
        "google.protobuf.DoubleValue"
            | "google.protobuf.FloatValue"
            | "google.protobuf.Int64Value"
            | "google.protobuf.UInt64Value"
            | "google.protobuf.Int32Value"
            | "google.protobuf.UInt32Value"
            | "google.protobuf.BoolValue"
            | "google.protobuf.StringValue"
            | "google.protobuf.BytesValue"
    );
    if wrapper { message.get_field_by_name("value").map(|f| f.kind()) } else { None }
}

/// The inline canonical JSON schema of a well-known type, `None` for any other message.
pub(crate) fn well_known(message: &MessageDescriptor) -> Option<Value> {
    if let Some(kind) = wrapped_kind(message) {
        // A wrapper is its scalar, or null when unset.
        let mut schema = scalar_schema(&kind);
        if let Some(ty) = schema.get("type").cloned() {
            schema["type"] = json!([ty, "null"]);
        }
        return Some(schema);
    }
    let schema = match message.full_name() {
        "google.protobuf.Timestamp" => json!({ "type": "string", "format": "date-time" }),
        "google.protobuf.Duration" => json!({
            "type": "string",
            "pattern": r"^-?[0-9]+(\.[0-9]+)?s$",
            "description": "Seconds with up to nine fractional digits, suffixed with `s`, e.g. `1.5s`."
        }),
        "google.protobuf.FieldMask" => json!({
            "type": "string",
            "description": "A FieldMask in canonical JSON: comma-separated field paths in lowerCamelCase, e.g. `title,prize.winnerCount`."
        }),
        "google.protobuf.Struct" => json!({ "type": "object", "additionalProperties": true }),
        "google.protobuf.Value" => json!({}),
        "google.protobuf.ListValue" => json!({ "type": "array", "items": {} }),
        "google.protobuf.Empty" => json!({ "type": "object" }),
        "google.protobuf.Any" => any_schema(),
        _ => return None,
    };
    Some(schema)
}
