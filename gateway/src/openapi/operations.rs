//! OpenAPI paths and operations from the `google.api.http` bindings of PUBLIC and OWNER RPCs.
//!
//! Mapping (grpc-gateway semantics, as the edge transcodes):
//! - path variables are path parameters named as in the template (proto field paths, `a.b`);
//! - without a `body: "*"`, every request field bound neither to the path nor to the body is a query
//!   parameter named by its JSON name; nested messages are flattened to `a.b` (JSON names joined
//!   with dots), repeated scalars are exploded form arrays, maps, repeated messages and
//!   structured well-known types (Struct, Value, Any, ...) cannot be sent in a query;
//! - `body: "*"` is the request message minus the path-bound fields, `body: "field"` that field;
//! - `response_body` selects the response field written as the body; a `bytes` field (or a
//!   `google.api.HttpBody`) is written raw, and with a `sha256` field beside it the answer has an
//!   `ETag`, a `304` for a held tag and, on public reads, a public `Cache-Control` (see
//!   [`crate::caching`]); with a `filename` field beside it the answer is a download
//!   (`Content-Disposition`, and `Cache-Control: no-store` on owner routes); when the comment of
//!   the `content_type` field beside it is exactly one quoted media type (`"text/csv;
//!   charset=utf-8".`), the bytes are documented as that type instead of `*/*`.

use std::collections::{BTreeMap, HashSet};

use kem_proto::contract::{Access, HttpBinding, access, http_bindings, idempotency};
use prost_reflect::{DescriptorPool, Kind, MessageDescriptor, MethodDescriptor, ServiceDescriptor};
use serde_json::{Map, Value, json};

use super::comments::{Comments, summary};
use super::schema::{Schemas, is_deprecated, is_scalar_well_known};

/// Where the error response and the shared parameters live in the document.
pub(crate) const ERROR_RESPONSE_REF: &str = "#/components/responses/Error";
pub(crate) const IDEMPOTENCY_KEY_REF: &str = "#/components/parameters/IdempotencyKey";

/// How deep nested request messages are flattened into query parameters (`a.b.c.d`).
const MAX_QUERY_DEPTH: usize = 4;

/// The `paths` object and the `tags` list (one tag per service with at least one operation).
pub(crate) struct Built {
    pub(crate) paths: Map<String, Value>,
    pub(crate) tags: Vec<Value>,
}

/// Builds every operation of every PUBLIC or OWNER RPC in `pool`.
pub(crate) fn build(pool: &DescriptorPool, comments: &Comments, schemas: &mut Schemas<'_>) -> Built {
    let mut services: Vec<ServiceDescriptor> = pool.services().collect();
    // Services in the order kem lists them (unknown ones after, by name) so the page reads like
    // the architecture.
    services.sort_by_cached_key(|s| {
        let rank = kem_proto::SERVICE_NAMES.iter().position(|n| *n == s.full_name()).unwrap_or(usize::MAX);
        (rank, s.full_name().to_owned())
    });

    let mut paths: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    let mut tags = Vec::new();
    let mut operation_ids = HashSet::new();
    for service in &services {
        let mut exposed = false;
        for method in service.methods() {
            let access = access(pool, &method);
            if !matches!(access, Access::Public | Access::Owner) {
                continue;
            }
            for (index, binding) in http_bindings(pool, &method).iter().enumerate() {
                let Some(verb) = openapi_method(&binding.method) else {
                    tracing::warn!(rpc = %binding.rpc, method = %binding.method, "HTTP method has no OpenAPI operation; not documented");
                    continue;
                };
                let template = PathTemplate::parse(&binding.path);
                let entry = paths.entry(template.path.clone()).or_default();
                if entry.contains_key(verb) {
                    tracing::warn!(rpc = %binding.rpc, path = %binding.path, "route bound twice; documenting the first RPC only");
                    continue;
                }
                let mut id = format!("{}_{}", service.name(), method.name());
                if index > 0 {
                    id = format!("{id}_{index}");
                }
                if !operation_ids.insert(id.clone()) {
                    // Two packages with a same-named service: fall back to the full name.
                    id = format!("{}_{index}", binding.rpc.replace('.', "_"));
                    operation_ids.insert(id.clone());
                }
                let context = OperationContext { method: &method, binding, template: &template, access, id };
                entry.insert(verb.to_owned(), operation(comments, schemas, &context));
                exposed = true;
            }
        }
        if exposed {
            let mut tag = Map::new();
            tag.insert("name".into(), service.name().into());
            if let Some(comment) = comments.service(service) {
                tag.insert("description".into(), comment.into());
            }
            tags.push(Value::Object(tag));
        }
    }
    Built { paths: paths.into_iter().map(|(path, item)| (path, Value::Object(item))).collect(), tags }
}

/// The OpenAPI operation key of an HTTP method (`custom` kinds OpenAPI cannot name are skipped).
fn openapi_method(method: &str) -> Option<&'static str> {
    Some(match method {
        "GET" => "get",
        "PUT" => "put",
        "POST" => "post",
        "DELETE" => "delete",
        "PATCH" => "patch",
        "HEAD" => "head",
        "OPTIONS" => "options",
        "TRACE" => "trace",
        _ => return None,
    })
}

/// A `google.api.http` path template in OpenAPI form.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct PathTemplate {
    /// The OpenAPI path: every `{var=pattern}` written `{var}`; literals (and `:verb`) kept.
    pub(crate) path: String,
    /// Each variable's field path and, when the template constrains it, its segment pattern.
    pub(crate) variables: Vec<(String, Option<String>)>,
}

impl PathTemplate {
    /// `/v1/{name=shelves/*}:get` → path `/v1/{name}:get`, variable `name` with pattern `shelves/*`.
    pub(crate) fn parse(template: &str) -> Self {
        let mut path = String::with_capacity(template.len());
        let mut variables = Vec::new();
        let mut rest = template;
        while let Some(start) = rest.find('{') {
            let Some(len) = rest[start..].find('}') else { break };
            path.push_str(&rest[..start]);
            let inner = &rest[start + 1..start + len];
            let (name, pattern) = match inner.split_once('=') {
                Some((name, pattern)) => (name.trim(), Some(pattern.trim().to_owned())),
                None => (inner.trim(), None),
            };
            path.push('{');
            path.push_str(name);
            path.push('}');
            variables.push((name.to_owned(), pattern));
            rest = &rest[start + len + 1..];
        }
        path.push_str(rest);
        Self { path, variables }
    }
}

/// A template segment pattern (`shelves/*/books/**`) as an anchored regular expression.
fn pattern_regex(pattern: &str) -> String {
    let segments: Vec<String> =
        pattern
            .split('/')
            .map(|segment| match segment {
                "*" => "[^/]+".to_owned(),
                "**" => ".+".to_owned(),
                literal => literal
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c.to_string() } else { format!("\\{c}") }
                    })
                    .collect(),
            })
            .collect();
    format!("^{}$", segments.join("/"))
}

struct OperationContext<'a> {
    method: &'a MethodDescriptor,
    binding: &'a HttpBinding,
    template: &'a PathTemplate,
    access: Access,
    id: String,
}

fn operation(comments: &Comments, schemas: &mut Schemas<'_>, cx: &OperationContext<'_>) -> Value {
    let input = cx.method.input();
    let mut op = Map::new();
    op.insert("operationId".into(), cx.id.clone().into());
    op.insert("tags".into(), json!([cx.method.parent_service().name()]));
    match comments.method(cx.method) {
        Some(comment) => {
            op.insert("summary".into(), summary(comment).into());
            op.insert("description".into(), comment.into());
        }
        None => {
            op.insert("summary".into(), cx.method.name().into());
        }
    }

    let mut parameters = path_parameters(comments, schemas, &input, cx.template);
    // Query parameters: every field not bound to the path or the body (none when the body is `*`).
    if cx.binding.body != "*" {
        let bound: HashSet<&str> = cx
            .template
            .variables
            .iter()
            .map(|(name, _)| name.as_str())
            .chain((!cx.binding.body.is_empty()).then_some(cx.binding.body.as_str()))
            .collect();
        let mut query = QueryParams { comments, schemas, bound: &bound, out: &mut parameters };
        query.flatten(&input, "", "", true, &mut vec![input.full_name().to_owned()]);
    }
    if cx.binding.method == "POST" {
        parameters.push(json!({ "$ref": IDEMPOTENCY_KEY_REF }));
    }
    if !parameters.is_empty() {
        op.insert("parameters".into(), Value::Array(parameters));
    }
    if let Some(body) = request_body(comments, schemas, cx) {
        op.insert("requestBody".into(), body);
    }
    op.insert("responses".into(), responses(comments, schemas, cx.method, &cx.binding.response_body, cx.access));
    let security = match cx.access {
        Access::Owner => json!([{ "bearerAuth": [] }]),
        _ => json!([]),
    };
    op.insert("security".into(), security);
    if is_deprecated(&cx.method.options()) {
        op.insert("deprecated".into(), true.into());
    }
    op.insert("x-kem-rpc".into(), cx.method.full_name().into());
    Value::Object(op)
}

fn path_parameters(
    comments: &Comments,
    schemas: &mut Schemas<'_>,
    input: &MessageDescriptor,
    template: &PathTemplate,
) -> Vec<Value> {
    let mut out = Vec::new();
    for (name, pattern) in &template.variables {
        let field = resolve_field_path(input, name);
        let mut schema = match field.as_ref().map(|f| f.kind()) {
            // A path segment is text: an enum variable is written inline as the string of its
            // value names (tools read a path parameter's type without following references).
            Some(prost_reflect::Kind::Enum(enumeration)) => {
                let names: Vec<String> = enumeration.values().map(|v| v.name().to_owned()).collect();
                json!({ "type": "string", "enum": names })
            }
            Some(kind) => schemas.kind_schema(&kind),
            None => json!({ "type": "string" }),
        };
        let mut description = field.as_ref().and_then(|f| comments.field(f)).unwrap_or_default().to_owned();
        if let Some(pattern) = pattern {
            if schema.get("type").and_then(Value::as_str) == Some("string") {
                schema["pattern"] = pattern_regex(pattern).into();
            }
            let note = format!("Matches the path pattern `{pattern}`.");
            description = if description.is_empty() { note } else { format!("{description}\n\n{note}") };
        }
        let mut parameter = json!({ "name": name, "in": "path", "required": true, "schema": schema });
        if !description.is_empty() {
            parameter["description"] = description.into();
        }
        out.push(parameter);
    }
    out
}

/// The field a dotted path (`a.b`) names, if every segment exists.
fn resolve_field_path(message: &MessageDescriptor, path: &str) -> Option<prost_reflect::FieldDescriptor> {
    let mut current = message.clone();
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        let field = current.get_field_by_name(part)?;
        if parts.peek().is_none() {
            return Some(field);
        }
        current = field.kind().as_message()?.clone();
    }
    None
}

struct QueryParams<'a, 'b, 's> {
    comments: &'a Comments,
    schemas: &'a mut Schemas<'s>,
    /// Proto field paths bound to the path or the body.
    bound: &'a HashSet<&'b str>,
    out: &'a mut Vec<Value>,
}

impl QueryParams<'_, '_, '_> {
    /// Adds a query parameter for every scalar reachable from `message` under the given proto and
    /// JSON prefixes; `required` says whether every ancestor is REQUIRED.
    fn flatten(
        &mut self,
        message: &MessageDescriptor,
        proto_prefix: &str,
        json_prefix: &str,
        required: bool,
        visiting: &mut Vec<String>,
    ) {
        for field in message.fields() {
            let proto_path = format!("{proto_prefix}{}", field.name());
            if self.bound.contains(proto_path.as_str()) || field.is_map() {
                continue;
            }
            let behavior = self.schemas.behavior(&field);
            if behavior.output_only {
                continue;
            }
            let json_name = format!("{json_prefix}{}", field.json_name());
            let required = required && behavior.required;
            let item = match field.kind() {
                Kind::Message(nested) if is_scalar_well_known(&nested) => self.schemas.kind_schema(&field.kind()),
                Kind::Message(nested) => {
                    let structured = nested.full_name().starts_with("google.protobuf.");
                    if field.is_list() || structured || visiting.len() >= MAX_QUERY_DEPTH {
                        continue;
                    }
                    if visiting.iter().any(|name| name == nested.full_name()) {
                        continue;
                    }
                    visiting.push(nested.full_name().to_owned());
                    self.flatten(&nested, &format!("{proto_path}."), &format!("{json_name}."), required, visiting);
                    visiting.pop();
                    continue;
                }
                kind => self.schemas.kind_schema(&kind),
            };
            let mut parameter = Map::new();
            parameter.insert("name".into(), json_name.into());
            parameter.insert("in".into(), "query".into());
            if field.is_list() {
                parameter.insert("schema".into(), json!({ "type": "array", "items": item }));
                parameter.insert("style".into(), "form".into());
                parameter.insert("explode".into(), true.into());
            } else {
                parameter.insert("schema".into(), item);
            }
            if required {
                parameter.insert("required".into(), true.into());
            }
            let mut description = self.comments.field(&field).unwrap_or_default().to_owned();
            if let Some(oneof) = field.containing_oneof().filter(|o| !o.is_synthetic()) {
                let note = format!("Member of oneof `{}`: set at most one of its fields.", oneof.name());
                description = if description.is_empty() { note } else { format!("{description}\n\n{note}") };
            }
            if !description.is_empty() {
                parameter.insert("description".into(), description.into());
            }
            if is_deprecated(&field.options()) {
                parameter.insert("deprecated".into(), true.into());
            }
            self.out.push(Value::Object(parameter));
        }
    }
}

/// Whether the method is a FieldMask PATCH: the body carries only the fields to change, so the
/// message's REQUIRED fields are not required in it.
fn is_partial_update(method: &MethodDescriptor, binding: &HttpBinding) -> bool {
    binding.method == "PATCH"
        && method.input().fields().any(|f| {
            !f.is_list() && f.kind().as_message().is_some_and(|m| m.full_name() == "google.protobuf.FieldMask")
        })
}

fn request_body(comments: &Comments, schemas: &mut Schemas<'_>, cx: &OperationContext<'_>) -> Option<Value> {
    let input = cx.method.input();
    let partial = is_partial_update(cx.method, cx.binding);
    let (schema, description) = match cx.binding.body.as_str() {
        "" => return None,
        "*" => {
            // Top-level fields bound to the path are not repeated in the body.
            let path_fields: HashSet<String> = cx
                .template
                .variables
                .iter()
                .filter(|(name, _)| !name.contains('.'))
                .filter_map(|(name, _)| input.get_field_by_name(name).map(|f| f.json_name().to_owned()))
                .collect();
            let schema = if path_fields.is_empty() && !partial {
                schemas.message_ref(&input)
            } else {
                let mut schema = schemas.message_schema(&input);
                without_properties(&mut schema, &path_fields, partial);
                schema
            };
            (schema, None)
        }
        field_name => {
            let field = input.get_field_by_name(field_name)?;
            let description = comments.field(&field).map(str::to_owned);
            let schema = match field.kind() {
                Kind::Message(message) if partial && !field.is_list() && !field.is_map() => {
                    let mut schema = schemas.message_schema(&message);
                    without_properties(&mut schema, &HashSet::new(), true);
                    schema
                }
                _ => {
                    let mut schema = schemas.field_schema(&field);
                    // The body field's own comment is the request body's description.
                    if let Value::Object(map) = &mut schema {
                        map.remove("description");
                        map.remove("readOnly");
                    }
                    schema
                }
            };
            (schema, description)
        }
    };
    let mut body = json!({ "required": true, "content": { "application/json": { "schema": schema } } });
    if let Some(description) = description {
        body["description"] = description.into();
    }
    if partial {
        let note = "Partial update: send only the fields to change (they form the update mask when no \
                    `updateMask` is given).";
        let text = match body.get("description").and_then(Value::as_str) {
            Some(own) => format!("{own}\n\n{note}"),
            None => note.to_owned(),
        };
        body["description"] = text.into();
    }
    Some(body)
}

/// Removes `names` from an inline object schema's properties and `required` (all of `required`
/// when `drop_required`).
fn without_properties(schema: &mut Value, names: &HashSet<String>, drop_required: bool) {
    let Value::Object(map) = schema else { return };
    if let Some(Value::Object(properties)) = map.get_mut("properties") {
        properties.retain(|name, _| !names.contains(name));
    }
    let keep_required = match map.get_mut("required") {
        Some(Value::Array(required)) if !drop_required => {
            required.retain(|name| name.as_str().is_none_or(|n| !names.contains(n)));
            !required.is_empty()
        }
        _ => false,
    };
    if !keep_required {
        map.remove("required");
    }
}

fn responses(
    comments: &Comments,
    schemas: &mut Schemas<'_>,
    method: &MethodDescriptor,
    response_body: &str,
    access: Access,
) -> Value {
    let output = method.output();
    let mut content_addressed = false;
    let raw = json!({
        "description": "The raw bytes of the response body; the `Content-Type` header gives their media type.",
        "content": { "*/*": { "schema": {} } }
    });
    let ok = if response_body.is_empty() {
        if output.full_name() == "google.api.HttpBody" {
            raw
        } else {
            let description = comments.message(&output).map(summary).unwrap_or_else(|| "OK".to_owned());
            json!({
                "description": description,
                "content": { "application/json": { "schema": schemas.message_ref(&output) } }
            })
        }
    } else {
        match output.get_field_by_name(response_body) {
            Some(field)
                if !field.is_list()
                    && (matches!(field.kind(), Kind::Bytes)
                        || field.kind().as_message().is_some_and(|m| m.full_name() == "google.api.HttpBody")) =>
            {
                let mut raw = raw;
                if let Some(comment) = comments.field(&field) {
                    raw["description"] = format!("{comment}\n\nWritten as the raw response body.").into();
                }
                if let Some(media_type) = fixed_media_type(comments, &output) {
                    raw["content"] = json!({ media_type: { "schema": { "type": "string" } } });
                }
                if output.get_field_by_name(crate::caching::FILENAME_FIELD).is_some_and(|f| f.kind() == Kind::String) {
                    raw["headers"] = download_headers(access);
                }
                if output.get_field_by_name(crate::caching::DIGEST_FIELD).is_some() {
                    content_addressed = true;
                    raw["headers"] = caching_headers(crate::caching::publicly_cacheable(access, idempotency(method)));
                }
                raw
            }
            Some(field) => {
                let mut schema = schemas.field_schema(&field);
                let description = match &mut schema {
                    Value::Object(map) => map.remove("description").and_then(|d| d.as_str().map(summary)),
                    _ => None,
                };
                json!({
                    "description": description.unwrap_or_else(|| "OK".to_owned()),
                    "content": { "application/json": { "schema": schema } }
                })
            }
            None => json!({ "description": "OK" }),
        }
    };
    let mut responses = json!({ "200": ok, "default": { "$ref": ERROR_RESPONSE_REF } });
    if content_addressed {
        responses["304"] = json!({
            "description": "Not Modified: the `If-None-Match` request header holds the `ETag` of these bytes; no body.",
            "headers": caching_headers(crate::caching::publicly_cacheable(access, idempotency(method))),
        });
    }
    responses
}

/// The media type of a raw answer when the message fixes it: the comment of its `content_type`
/// field is exactly one quoted media type (`"text/csv; charset=utf-8".`); its essence
/// (`text/csv`). `None` for anything else ("MIME type of data, e.g. "image/png"" varies).
fn fixed_media_type(comments: &Comments, output: &MessageDescriptor) -> Option<String> {
    let field = output.get_field_by_name("content_type")?;
    let comment = comments.field(&field)?.trim().trim_end_matches('.');
    let quoted = comment.strip_prefix('"')?.strip_suffix('"')?;
    let essence = quoted.split(';').next()?.trim().to_ascii_lowercase();
    let (kind, subtype) = essence.split_once('/')?;
    let token = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b));
    (token(kind) && token(subtype)).then_some(essence)
}

/// The headers of a download (a raw answer with a `filename`).
fn download_headers(access: Access) -> Value {
    let mut headers = json!({
        "Content-Disposition": {
            "description": "`attachment` with the suggested file name: `filename` in ASCII (other characters \
                            replaced by `_`) and `filename*` as percent-encoded UTF-8 (RFC 6266, RFC 8187).",
            "schema": { "type": "string" }
        }
    });
    if access == Access::Owner {
        headers["Cache-Control"] = json!({
            "description": "The file holds personal data: no cache may keep it.",
            "schema": { "type": "string", "const": "no-store" }
        });
    }
    headers
}

/// The headers of a content-addressed raw answer (and of its `304`).
fn caching_headers(public: bool) -> Value {
    let mut headers = json!({
        "ETag": {
            "description": "The SHA-256 of the bytes, quoted (a strong entity tag); send it back in `If-None-Match`.",
            "schema": { "type": "string" }
        }
    });
    if public {
        headers["Cache-Control"] = json!({
            "description": "The bytes never change: any cache may keep them for a day without asking again.",
            "schema": { "type": "string", "const": crate::caching::PUBLIC_IMMUTABLE }
        });
    }
    headers
}

#[cfg(test)]
mod tests {
    use kem_proto::contract::template_variables;

    use super::*;

    #[test]
    fn templates_convert_to_openapi_paths() {
        let t = PathTemplate::parse("/api/v1/events/{event_id}:publish");
        assert_eq!(t.path, "/api/v1/events/{event_id}:publish");
        assert_eq!(t.variables, vec![("event_id".to_owned(), None)]);

        let t = PathTemplate::parse("/v1/{a.b=shelves/*/books/**}/x/{c}");
        assert_eq!(t.path, "/v1/{a.b}/x/{c}");
        assert_eq!(
            t.variables,
            vec![("a.b".to_owned(), Some("shelves/*/books/**".to_owned())), ("c".to_owned(), None)]
        );
        // The same variables the contract checker and the transcoder see.
        let names: Vec<String> = t.variables.iter().map(|(n, _)| n.clone()).collect();
        assert_eq!(names, template_variables("/v1/{a.b=shelves/*/books/**}/x/{c}"));
        assert_eq!(pattern_regex("shelves/*/books/**"), "^shelves/[^/]+/books/.+$");
        assert_eq!(pattern_regex("v1.x/*"), r"^v1\.x/[^/]+$");
    }
}
