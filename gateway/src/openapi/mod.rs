//! OpenAPI 3.1 for the REST edge, generated from the same descriptors the edge transcodes with.
//!
//! [`document`] walks the descriptor pool at start-up: every `google.api.http` binding (primary and
//! `additional_bindings`) of every `ACCESS_PUBLIC` / `ACCESS_OWNER` RPC becomes one operation,
//! every reachable message and enum one schema in proto3 canonical JSON, and proto comments become
//! summaries and descriptions. Nothing is written by hand per route, so the document cannot drift
//! from what the edge accepts. [`html_page`] and [`asset`] serve a local Swagger UI for humans.
//!
//! Module layout: `comments` (source info), `schema` (JSON Schemas of messages, enums and
//! well-known types), `operations` (paths, parameters, bodies, responses), `ui` (the page).

mod comments;
mod operations;
mod schema;
mod ui;

#[cfg(test)]
mod tests;

use prost_reflect::DescriptorPool;
use serde_json::{Map, Value, json};

pub use ui::{DOCS_ASSETS_PATH, SWAGGER_UI_VERSION, asset, html_page};

/// The document's `info.title`.
pub const TITLE: &str = "kem — KT Event Marketing API";

/// The OpenAPI version the document declares.
pub const OPENAPI_VERSION: &str = "3.1.0";

const DEFAULT_DESCRIPTION: &str = "\
The REST/JSON edge of kem. Every operation is transcoded into a gRPC call; bodies are proto3 \
canonical JSON: camelCase field names, 64-bit integers as decimal strings, enums by value name, \
timestamps as RFC 3339 strings, durations as `\"1.5s\"`. Fields with default values may be omitted \
from responses.

Errors are `google.rpc.Status` objects (`code`, `message`, `details`) with the HTTP status of the \
standard gRPC mapping (INVALID_ARGUMENT 400, UNAUTHENTICATED 401, PERMISSION_DENIED 403, NOT_FOUND \
404, ALREADY_EXISTS/ABORTED 409, FAILED_PRECONDITION 400, RESOURCE_EXHAUSTED 429, UNAVAILABLE 503, DEADLINE_EXCEEDED 504).

Owner operations need an access token (`Authorization: Bearer <JWT>`) from `POST /api/v1/auth:login`.";

/// Document metadata that is not in the descriptors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiInfo {
    /// `info.version`: the API (build) version.
    pub version: String,
    /// `info.description` (Markdown); `None` uses the built-in overview of the edge's conventions.
    pub description: Option<String>,
    /// `servers`, in order of preference; empty means "the origin the document was fetched from".
    pub servers: Vec<ApiServer>,
}

impl Default for ApiInfo {
    fn default() -> Self {
        Self { version: env!("CARGO_PKG_VERSION").to_owned(), description: None, servers: Vec::new() }
    }
}

/// One entry of the document's `servers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiServer {
    /// Base URL of the edge, e.g. `https://api.kem.example`.
    pub url: String,
    /// What this server is, e.g. "production".
    pub description: Option<String>,
}

/// Generates the OpenAPI 3.1 document of every PUBLIC and OWNER RPC in `pool`.
pub fn document(pool: &DescriptorPool, info: &ApiInfo) -> Value {
    let comments = comments::Comments::new(pool);
    let mut schemas = schema::Schemas::new(pool, &comments);
    let status = schemas.status_ref(pool);
    let built = operations::build(pool, &comments, &mut schemas);

    let mut doc = Map::new();
    doc.insert("openapi".into(), OPENAPI_VERSION.into());
    doc.insert(
        "info".into(),
        json!({
            "title": TITLE,
            "version": info.version,
            "description": info.description.as_deref().unwrap_or(DEFAULT_DESCRIPTION),
            "license": { "name": "Apache-2.0", "identifier": "Apache-2.0" }
        }),
    );
    if !info.servers.is_empty() {
        let servers: Vec<Value> = info
            .servers
            .iter()
            .map(|server| match &server.description {
                Some(description) => json!({ "url": server.url, "description": description }),
                None => json!({ "url": server.url }),
            })
            .collect();
        doc.insert("servers".into(), Value::Array(servers));
    }
    doc.insert("tags".into(), Value::Array(built.tags));
    doc.insert("paths".into(), Value::Object(built.paths));
    doc.insert(
        "components".into(),
        json!({
            "schemas": schemas.into_components(),
            "responses": {
                "Error": {
                    "description": "The call failed: a `google.rpc.Status` with the HTTP status of its gRPC code \
                                    (see the API description).",
                    "content": { "application/json": { "schema": status } }
                }
            },
            "parameters": {
                "IdempotencyKey": {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": false,
                    "description": "A client-chosen unique key (e.g. a UUID). Repeating a POST with the same key \
                                    returns the first result instead of performing the call again.",
                    "schema": { "type": "string", "minLength": 1, "maxLength": 255 }
                }
            },
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "An owner access token from `POST /api/v1/auth:login` or `POST /api/v1/auth:refresh`."
                }
            }
        }),
    );
    Value::Object(doc)
}
