//! Tests of the generated document over the published contracts (and a planted proto for the
//! binding shapes the contracts do not use yet), plus validation with `openapi-spec-validator`.

use std::collections::{BTreeSet, HashSet};
use std::process::Command;

use kem_proto::contract::{Access, DESIGN_ROUTES, access, http_bindings, normalize_template};
use prost_reflect::{DescriptorPool, Kind};
use serde_json::Value;

use super::comments::Comments;
use super::schema::Schemas;
use super::*;

fn published() -> Value {
    document(kem_proto::descriptor_pool(), &ApiInfo::default())
}

/// Every `(path, method, operation)` of the document.
fn operations(doc: &Value) -> Vec<(&str, &str, &Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths object") {
        for (method, op) in item.as_object().expect("path item object") {
            out.push((path.as_str(), method.as_str(), op));
        }
    }
    out
}

fn operation<'a>(doc: &'a Value, rpc: &str) -> &'a Value {
    operations(doc)
        .into_iter()
        .find(|(_, _, op)| op["x-kem-rpc"] == rpc)
        .map(|(_, _, op)| op)
        .unwrap_or_else(|| panic!("no operation for {rpc}"))
}

/// Follows a `$ref` to a component schema (components never chain refs).
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => component(doc, reference.strip_prefix("#/components/schemas/").expect("schema ref")),
        None => schema,
    }
}

fn component<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["components"]["schemas"].get(name).unwrap_or_else(|| panic!("no component schema {name}"))
}

fn parameter<'a>(op: &'a Value, location: &str, name: &str) -> Option<&'a Value> {
    op["parameters"].as_array()?.iter().find(|p| p["in"] == location && p["name"] == name)
}

#[test]
fn every_design_route_is_an_operation_of_its_rpc() {
    let doc = published();
    let ops = operations(&doc);
    for route in DESIGN_ROUTES {
        let want = normalize_template(route.path);
        let found: Vec<_> = ops
            .iter()
            .filter(|(path, method, _)| normalize_template(path) == want && method.to_uppercase() == route.method)
            .collect();
        assert_eq!(found.len(), 1, "{} {} should be exactly one operation", route.method, route.path);
        assert_eq!(found[0].2["x-kem-rpc"], route.rpc, "{} {}", route.method, route.path);
    }
}

#[test]
fn exactly_the_public_and_owner_bindings_appear() {
    let pool = kem_proto::descriptor_pool();
    let doc = published();
    let documented: Vec<&str> =
        operations(&doc).iter().map(|(_, _, op)| op["x-kem-rpc"].as_str().expect("x-kem-rpc")).collect();
    let mut expected_bindings = 0;
    for service in pool.services() {
        for method in service.methods() {
            match access(pool, &method) {
                Access::Public | Access::Owner => {
                    expected_bindings += http_bindings(pool, &method).len();
                    assert!(documented.contains(&method.full_name()), "{} is missing", method.full_name());
                }
                Access::Internal | Access::Unspecified => {
                    assert!(!documented.contains(&method.full_name()), "{} must not appear", method.full_name());
                }
            }
        }
    }
    assert_eq!(documented.len(), expected_bindings, "one operation per binding");
    assert!(!documented.contains(&"kem.event.v1.EventService.GetEventForParticipation"));
    let text = doc.to_string();
    assert!(!text.contains("IdentityService"), "the identity CA is mesh-only");
}

#[test]
fn operation_ids_are_service_and_method_and_unique() {
    let doc = published();
    let ids: Vec<&str> =
        operations(&doc).iter().map(|(_, _, op)| op["operationId"].as_str().expect("operationId")).collect();
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len(), "duplicate operationId in {ids:?}");
    let publish = operation(&doc, "kem.event.v1.EventService.PublishEvent");
    assert_eq!(publish["operationId"], "EventService_PublishEvent");
    assert_eq!(publish["tags"], serde_json::json!(["EventService"]));
    assert_eq!(
        publish["summary"],
        "Publishes a CONTENT_READY event to the given channels: the event becomes PUBLISHED and one delivery per channel is enqueued on `distribution-jobs` in the same transaction (outbox)."
    );
    assert!(publish["description"].as_str().expect("description").contains("Errors: NOT_FOUND"));
    let tags: Vec<&str> = doc["tags"].as_array().expect("tags").iter().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(tags.first(), Some(&"UserService"), "services in SERVICE_NAMES order: {tags:?}");
    assert!(doc["tags"][0]["description"].as_str().is_some_and(|d| !d.is_empty()));
}

#[test]
fn every_path_variable_is_a_required_path_parameter() {
    let doc = published();
    for (path, method, op) in operations(&doc) {
        let variables: BTreeSet<&str> =
            path.split('{').skip(1).map(|rest| rest.split('}').next().expect("closed variable")).collect();
        let declared: BTreeSet<&str> = op["parameters"]
            .as_array()
            .map(|ps| ps.iter().filter(|p| p["in"] == "path").filter_map(|p| p["name"].as_str()).collect())
            .unwrap_or_default();
        assert_eq!(variables, declared, "{method} {path}");
        for name in variables {
            let p = parameter(op, "path", name).expect("declared");
            assert_eq!(p["required"], true, "{method} {path} {name}");
            assert_eq!(p["schema"]["type"], "string", "{method} {path} {name}");
        }
    }
    let get = operation(&doc, "kem.event.v1.EventService.GetEvent");
    assert!(parameter(get, "path", "event_id").is_some(), "proto field names as in the template");
}

#[test]
fn int64_fields_are_decimal_strings() {
    let doc = published();
    let amount = &component(&doc, "kem.common.v1.Money")["properties"]["amountKrw"];
    assert_eq!(amount["type"], "string");
    assert_eq!(amount["format"], "int64");
    let pool = kem_proto::descriptor_pool();
    let mut checked = 0;
    for message in pool.all_messages() {
        let Some(schema) = doc["components"]["schemas"].get(message.full_name()) else { continue };
        for field in message.fields().filter(|f| matches!(f.kind(), Kind::Int64 | Kind::Sint64 | Kind::Sfixed64)) {
            let mut property = &schema["properties"][field.json_name()];
            if field.is_list() {
                property = &property["items"];
            }
            assert_eq!(property["type"], "string", "{}", field.full_name());
            assert_eq!(property["format"], "int64", "{}", field.full_name());
            checked += 1;
        }
        for field in message.fields().filter(|f| matches!(f.kind(), Kind::Int32)) {
            if !field.is_list() && !field.is_map() {
                assert_eq!(schema["properties"][field.json_name()]["type"], "integer", "{}", field.full_name());
            }
        }
    }
    assert!(checked > 5, "int64 fields checked: {checked}");
}

#[test]
fn enums_are_string_enums_of_value_names() {
    let doc = published();
    let status = component(&doc, "kem.event.v1.EventStatus");
    assert_eq!(status["type"], "string");
    let names: Vec<&str> = status["enum"].as_array().expect("enum").iter().filter_map(Value::as_str).collect();
    assert_eq!(names.first(), Some(&"EVENT_STATUS_UNSPECIFIED"));
    assert!(names.contains(&"EVENT_STATUS_PUBLISHED"));
    assert!(status["description"].as_str().expect("description").contains("- `EVENT_STATUS_DRAFT`: Created"));
    let event_status = &component(&doc, "kem.event.v1.Event")["properties"]["status"];
    assert_eq!(resolve(&doc, event_status)["type"], "string");
    for (name, schema) in doc["components"]["schemas"].as_object().expect("schemas") {
        if schema.get("enum").is_some() {
            assert_eq!(schema["type"], "string", "{name}");
            assert!(schema["enum"].as_array().expect("enum").iter().all(Value::is_string), "{name}");
        }
    }
}

#[test]
fn field_behavior_becomes_read_only_write_only_and_required() {
    let doc = published();
    let event = component(&doc, "kem.event.v1.Event");
    assert_eq!(event["properties"]["eventId"]["readOnly"], true);
    assert_eq!(event["properties"]["createTime"]["readOnly"], true);
    assert!(event["properties"]["title"].get("readOnly").is_none());
    let required: Vec<&str> =
        event["required"].as_array().expect("required").iter().filter_map(Value::as_str).collect();
    assert!(required.contains(&"title") && required.contains(&"period"), "{required:?}");
    assert!(!required.contains(&"eventId"));

    // Every OUTPUT_ONLY field of every documented message.
    let pool = kem_proto::descriptor_pool();
    let comments = Comments::new(pool);
    let schemas = Schemas::new(pool, &comments);
    let mut checked = 0;
    for message in pool.all_messages() {
        let Some(schema) = doc["components"]["schemas"].get(message.full_name()) else { continue };
        for field in message.fields() {
            let behavior = schemas.behavior(&field);
            let property = &schema["properties"][field.json_name()];
            assert_eq!(property.get("readOnly").is_some(), behavior.output_only, "{}", field.full_name());
            assert_eq!(property.get("writeOnly").is_some(), behavior.input_only, "{}", field.full_name());
            checked += usize::from(behavior.output_only);
        }
    }
    assert!(checked > 20, "OUTPUT_ONLY fields checked: {checked}");

    let register = operation(&doc, "kem.user.v1.UserService.Register");
    let body = resolve(&doc, &register["requestBody"]["content"]["application/json"]["schema"]);
    assert_eq!(body["properties"]["password"]["writeOnly"], true);
}

#[test]
fn documented_messages_fields_and_rpcs_have_descriptions() {
    let pool = kem_proto::descriptor_pool();
    let doc = published();
    let comments = Comments::new(pool);
    let mut checked = 0;
    for message in pool.all_messages() {
        let Some(schema) = doc["components"]["schemas"].get(message.full_name()) else { continue };
        if let Some(comment) = comments.message(&message) {
            assert_eq!(schema["description"], comment, "{}", message.full_name());
        }
        for field in message.fields() {
            let Some(comment) = comments.field(&field) else { continue };
            let description = schema["properties"][field.json_name()]["description"].as_str();
            assert!(description.is_some_and(|d| d.starts_with(comment)), "{}: {description:?}", field.full_name());
            checked += 1;
        }
    }
    assert!(checked > 100, "documented fields checked: {checked}");
    let amount = &component(&doc, "kem.common.v1.Money")["properties"]["amountKrw"]["description"];
    assert_eq!(
        amount,
        "Amount in whole won (KRW). Non-negative unless a field's documentation says otherwise.\nExample: 150000 is \
         ₩150,000. In JSON, int64 values are encoded as strings (\"150000\")."
    );
    for (path, method, op) in operations(&doc) {
        assert!(op["summary"].as_str().is_some_and(|s| !s.is_empty()), "{method} {path}");
        assert!(op["description"].as_str().is_some_and(|s| !s.is_empty()), "{method} {path}");
    }
    let job = component(&doc, "kem.event.v1.Job");
    let oneof = job["properties"]["recommendations"]["description"].as_str().expect("description");
    assert!(oneof.contains("Member of oneof `result`"), "{oneof}");
}

#[test]
fn query_parameters_are_the_fields_outside_path_and_body() {
    let doc = published();
    let list = operation(&doc, "kem.event.v1.EventService.ListEvents");
    let names: Vec<&str> =
        list["parameters"].as_array().expect("parameters").iter().filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(names, ["status", "pageSize", "pageToken"]);
    let status = parameter(list, "query", "status").expect("status");
    assert_eq!(resolve(&doc, &status["schema"])["type"], "string");
    assert!(status.get("required").is_none());
    assert_eq!(parameter(list, "query", "pageSize").expect("pageSize")["schema"]["type"], "integer");

    let trends = operation(&doc, "kem.ai.v1.AiService.GetTrends");
    assert_eq!(parameter(trends, "query", "category").expect("category")["required"], true);
    assert_eq!(parameter(trends, "query", "region").expect("region")["required"], true);

    // body: "event" leaves update_mask to the query string (grpc-gateway semantics).
    let update = operation(&doc, "kem.event.v1.EventService.UpdateEvent");
    let mask = parameter(update, "query", "updateMask").expect("updateMask");
    assert_eq!(mask["schema"]["type"], "string");
    assert!(parameter(update, "query", "event").is_none() && parameter(update, "query", "eventId").is_none());

    // body: "*" takes every non-path field.
    let publish = operation(&doc, "kem.event.v1.EventService.PublishEvent");
    assert!(publish["parameters"].as_array().expect("parameters").iter().all(|p| p["in"] != "query"));
    let get = operation(&doc, "kem.event.v1.EventService.GetEvent");
    assert_eq!(get["parameters"].as_array().expect("parameters").len(), 1);
}

#[test]
fn request_bodies_follow_the_body_selector() {
    let doc = published();
    let publish = operation(&doc, "kem.event.v1.EventService.PublishEvent");
    assert_eq!(publish["requestBody"]["required"], true);
    let body = &publish["requestBody"]["content"]["application/json"]["schema"];
    assert!(body["properties"].get("eventId").is_none(), "path-bound field left out of the body");
    assert_eq!(body["properties"]["channels"]["type"], "array");
    assert_eq!(body["required"], serde_json::json!(["channels"]));
    assert!(publish["parameters"].as_array().expect("params").iter().any(|p| p["$ref"].is_string()));

    let create = operation(&doc, "kem.event.v1.EventService.CreateEvent");
    let body = &create["requestBody"]["content"]["application/json"]["schema"];
    assert_eq!(body["$ref"], "#/components/schemas/kem.event.v1.Event");

    let update = operation(&doc, "kem.event.v1.EventService.UpdateEvent");
    let body = &update["requestBody"]["content"]["application/json"]["schema"];
    assert_eq!(body["type"], "object", "PATCH body is an inline partial Event");
    assert!(body.get("required").is_none(), "a partial update requires nothing");
    assert!(body["properties"].get("title").is_some());

    let get = operation(&doc, "kem.event.v1.EventService.GetEvent");
    assert!(get.get("requestBody").is_none());
}

#[test]
fn responses_are_the_message_and_the_status_error() {
    let doc = published();
    for (path, method, op) in operations(&doc) {
        assert_eq!(op["responses"]["default"]["$ref"], "#/components/responses/Error", "{method} {path}");
        assert!(op["responses"]["200"]["description"].is_string(), "{method} {path}");
    }
    let get = operation(&doc, "kem.event.v1.EventService.GetEvent");
    assert_eq!(
        get["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/kem.event.v1.GetEventResponse"
    );
    let status = component(&doc, "google.rpc.Status");
    assert_eq!(status["properties"]["code"]["type"], "integer");
    assert_eq!(status["properties"]["message"]["type"], "string");
    assert_eq!(status["properties"]["details"]["items"]["properties"]["@type"]["type"], "string");
    let content = operation(&doc, "kem.content.v1.ContentService.GetImageContent");
    assert!(content["responses"]["200"]["content"].get("*/*").is_some(), "response_body bytes are raw");
    // Bytes with a digest beside them are content-addressed: ETag and 304; public only if public.
    assert!(content["responses"]["200"]["headers"].get("ETag").is_some());
    assert!(content["responses"]["304"]["headers"].get("ETag").is_some());
    assert!(content["responses"]["200"]["headers"].get("Cache-Control").is_none(), "an owner's bytes");
    let public = operation(&doc, "kem.content.v1.ContentService.GetPublicImageContent");
    assert_eq!(
        public["responses"]["200"]["headers"]["Cache-Control"]["schema"]["const"],
        crate::caching::PUBLIC_IMMUTABLE
    );
    assert!(public["responses"].get("304").is_some());
    let event = operation(&doc, "kem.event.v1.EventService.GetEvent");
    assert!(event["responses"].get("304").is_none() && event["responses"]["200"].get("headers").is_none());
    // A CSV export: its type from the contract, a download never stored.
    let export = operation(&doc, "kem.participation.v1.ParticipationService.ExportParticipants");
    let ok = &export["responses"]["200"];
    assert_eq!(ok["content"]["text/csv"]["schema"]["type"], "string", "{ok}");
    assert!(ok["content"].get("*/*").is_none());
    assert_eq!(ok["headers"]["Cache-Control"]["schema"]["const"], "no-store");
    assert!(ok["headers"]["Content-Disposition"]["description"].is_string());
    assert!(content["responses"]["200"]["content"].get("*/*").is_some(), "an image's type varies");
}

#[test]
fn owner_operations_need_a_bearer_token_and_public_ones_do_not() {
    let pool = kem_proto::descriptor_pool();
    let doc = published();
    assert_eq!(doc["components"]["securitySchemes"]["bearerAuth"]["scheme"], "bearer");
    assert_eq!(doc["components"]["securitySchemes"]["bearerAuth"]["bearerFormat"], "JWT");
    for (path, method, op) in operations(&doc) {
        let rpc = op["x-kem-rpc"].as_str().expect("rpc");
        let (service, name) = rpc.rsplit_once('.').expect("qualified");
        let descriptor = pool
            .get_service_by_name(service)
            .and_then(|s| s.methods().find(|m| m.name() == name))
            .expect("method exists");
        let want = match access(pool, &descriptor) {
            Access::Owner => serde_json::json!([{ "bearerAuth": [] }]),
            _ => serde_json::json!([]),
        };
        assert_eq!(op["security"], want, "{method} {path}");
    }
    assert_eq!(operation(&doc, "kem.participation.v1.ParticipationService.Enter")["security"], serde_json::json!([]));
    assert_eq!(doc["info"]["title"], TITLE);
    assert_eq!(doc["openapi"], "3.1.0");
}

#[test]
fn well_known_types_are_inlined_in_canonical_json_form() {
    let doc = published();
    let event = component(&doc, "kem.event.v1.Event");
    assert_eq!(event["properties"]["createTime"]["type"], "string");
    assert_eq!(event["properties"]["createTime"]["format"], "date-time");
    let job = component(&doc, "kem.event.v1.Job");
    assert_eq!(job["properties"]["pollInterval"]["pattern"], r"^-?[0-9]+(\.[0-9]+)?s$");
    assert!(doc["components"]["schemas"].get("google.protobuf.Timestamp").is_none());
    let names: Vec<&String> = doc["components"]["schemas"].as_object().expect("schemas").keys().collect();
    assert!(names.iter().all(|n| !n.starts_with("google.protobuf.")), "{names:?}");
}

/// Compiles a planted proto next to the vendored Google protos.
fn planted(source: &str) -> DescriptorPool {
    let dir = tempfile::tempdir().expect("tempdir");
    let package_dir = dir.path().join("kem/planted/v1");
    std::fs::create_dir_all(&package_dir).expect("mkdir");
    std::fs::write(package_dir.join("planted.proto"), source).expect("write proto");
    let protos = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../proto");
    let mut compiler = protox::Compiler::new([dir.path(), protos.as_path()]).expect("compiler");
    compiler.include_imports(true).include_source_info(true);
    compiler.open_file("kem/planted/v1/planted.proto").expect("planted proto compiles");
    DescriptorPool::decode(compiler.encode_file_descriptor_set().as_slice()).expect("pool")
}

const PLANTED: &str = r#"syntax = "proto3";
package kem.planted.v1;
import "google/api/annotations.proto";
import "google/api/field_behavior.proto";
import "google/protobuf/any.proto";
import "google/protobuf/struct.proto";
import "google/protobuf/wrappers.proto";
import "google/protobuf/empty.proto";
import "kem/api/v1/options.proto";

// Things on shelves.
service ThingService {
  // Gets a thing.
  rpc GetThing(GetThingRequest) returns (GetThingResponse) {
    option (kem.api.v1.access) = ACCESS_PUBLIC;
    option (google.api.http) = {
      get: "/api/v1/{thing.name=shelves/*/things/*}"
      additional_bindings { get: "/api/v1/things/{thing.name}" }
      additional_bindings { post: "/api/v1/things:get" body: "*" }
    };
  }
  // Hidden.
  rpc Hidden(HiddenRequest) returns (HiddenResponse) {
    option (kem.api.v1.access) = ACCESS_INTERNAL;
    option (kem.api.v1.callers) = "event";
  }
}

// A selector.
message Thing {
  // Resource name.
  string name = 1;
  // Revision.
  uint64 revision = 2;
}

message Filter {
  // Tags to match.
  repeated string tags = 1;
  // Minimum size.
  google.protobuf.Int64Value min_size = 2;
  // Loops back.
  Filter next = 3;
}

message GetThingRequest {
  Thing thing = 1 [(google.api.field_behavior) = REQUIRED];
  Filter filter = 2;
  map<string, int64> counts = 3;
  repeated Thing many = 4;
  google.protobuf.Struct extra = 5;
  oneof choice {
    // Pick by index.
    int32 index = 6;
    // Pick by label.
    string label = 7;
  }
}

message GetThingResponse {
  map<string, Thing> things = 1;
  google.protobuf.Any any = 2;
  google.protobuf.Value value = 3;
  google.protobuf.ListValue list = 4;
  google.protobuf.Empty empty = 5;
  google.protobuf.BoolValue flag = 6;
  bytes blob = 7;
  double ratio = 8;
  Filter filter = 9;
}

message HiddenRequest {}
message HiddenResponse {}
"#;

#[test]
fn planted_bindings_nested_variables_and_well_known_types() {
    let pool = planted(PLANTED);
    let doc = document(&pool, &ApiInfo::default());
    let ops = operations(&doc);
    let ids: Vec<&str> = ops.iter().map(|(_, _, op)| op["operationId"].as_str().expect("id")).collect();
    assert_eq!(ids.len(), 3, "{ids:?}");
    for id in ["ThingService_GetThing", "ThingService_GetThing_1", "ThingService_GetThing_2"] {
        assert!(ids.contains(&id), "{id} in {ids:?}");
    }
    assert!(!doc.to_string().contains("Hidden"), "INTERNAL RPC documented");

    let get = &doc["paths"]["/api/v1/{thing.name}"]["get"];
    let name = parameter(get, "path", "thing.name").expect("nested path parameter");
    assert_eq!(name["schema"]["pattern"], "^shelves/[^/]+/things/[^/]+$");
    let query: Vec<&str> = get["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .filter(|p| p["in"] == "query")
        .filter_map(|p| p["name"].as_str())
        .collect();
    // thing.name is in the path; the rest of `thing` and `filter` are flattened; maps, repeated
    // messages and Struct cannot be query parameters; a recursive message is flattened once.
    assert!(query.contains(&"thing.revision") && query.contains(&"filter.tags"), "{query:?}");
    assert!(query.contains(&"filter.minSize"), "{query:?}");
    assert!(query.contains(&"index") && query.contains(&"label"), "{query:?}");
    for absent in ["thing.name", "counts", "many", "extra", "filter.next.tags"] {
        assert!(!query.contains(&absent), "{absent} in {query:?}");
    }
    let tags = parameter(get, "query", "filter.tags").expect("filter.tags");
    assert_eq!(tags["style"], "form");
    assert_eq!(tags["explode"], true);
    assert_eq!(tags["schema"]["type"], "array");
    // Required only when the field and every enclosing field are REQUIRED.
    assert!(parameter(get, "query", "thing.revision").expect("revision").get("required").is_none());
    assert_eq!(parameter(get, "query", "thing.revision").expect("revision")["schema"]["format"], "uint64");
    assert_eq!(
        parameter(get, "query", "filter.minSize").expect("minSize")["schema"]["type"],
        serde_json::json!(["string", "null"])
    );

    let post = &doc["paths"]["/api/v1/things:get"]["post"];
    assert_eq!(
        post["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/kem.planted.v1.GetThingRequest"
    );

    let response = component(&doc, "kem.planted.v1.GetThingResponse");
    let p = &response["properties"];
    assert_eq!(p["things"]["type"], "object");
    assert_eq!(p["things"]["additionalProperties"]["$ref"], "#/components/schemas/kem.planted.v1.Thing");
    assert_eq!(p["any"]["required"], serde_json::json!(["@type"]));
    assert!(p["value"].get("type").is_none(), "Value is any JSON");
    assert_eq!(p["list"]["type"], "array");
    assert_eq!(p["empty"]["type"], "object");
    assert_eq!(p["flag"]["type"], serde_json::json!(["boolean", "null"]));
    assert_eq!(p["blob"]["contentEncoding"], "base64");
    assert_eq!(p["ratio"]["type"], "number");
    let request = component(&doc, "kem.planted.v1.GetThingRequest");
    assert_eq!(request["properties"]["counts"]["additionalProperties"]["format"], "int64");
    assert_eq!(request["properties"]["extra"]["type"], "object");
    assert!(request["properties"]["label"]["description"].as_str().expect("desc").contains("oneof `choice`"));
    let filter = component(&doc, "kem.planted.v1.Filter");
    assert_eq!(filter["properties"]["next"]["$ref"], "#/components/schemas/kem.planted.v1.Filter", "recursion by ref");
    validate_with_python(&doc, "planted");
}

#[test]
fn servers_and_description_come_from_api_info() {
    let info = ApiInfo {
        version: "9.9.9".into(),
        description: Some("custom".into()),
        servers: vec![ApiServer { url: "https://api.example".into(), description: Some("prod".into()) }],
    };
    let doc = document(kem_proto::descriptor_pool(), &info);
    assert_eq!(doc["info"]["version"], "9.9.9");
    assert_eq!(doc["info"]["description"], "custom");
    assert_eq!(doc["servers"], serde_json::json!([{ "url": "https://api.example", "description": "prod" }]));
    assert!(published().get("servers").is_none());
}

#[test]
fn comment_cleanup_and_summaries() {
    use super::comments::{clean, summary};
    assert_eq!(clean(" First line.\n second line.\n\n More.\n"), "First line.\nsecond line.\n\nMore.");
    assert_eq!(summary("Lists things, e.g. books. Then more."), "Lists things, e.g. books.");
    assert_eq!(summary("Wrapped\nsentence here.\n\nRest."), "Wrapped sentence here.");
}

const VALIDATE_PY: &str = r#"
import json, sys
try:
    from openapi_spec_validator import OpenAPIV31SpecValidator
except ImportError as error:
    print("MISSING: %s" % error, file=sys.stderr)
    sys.exit(3)
with open(sys.argv[1], encoding="utf-8") as f:
    spec = json.load(f)
errors = list(OpenAPIV31SpecValidator(spec).iter_errors())
for error in errors:
    print("%s at %s" % (error.message, "/".join(str(p) for p in error.absolute_path)), file=sys.stderr)
sys.exit(1 if errors else 0)
"#;

/// Validates `doc` as OpenAPI 3.1 with Python's `openapi-spec-validator`; never skips.
fn validate_with_python(doc: &Value, label: &str) {
    let path = std::env::temp_dir().join(format!("kem-openapi-{label}-{}.json", std::process::id()));
    std::fs::write(&path, serde_json::to_vec_pretty(doc).expect("serialize")).expect("write temp file");
    let output = Command::new("python3").arg("-c").arg(VALIDATE_PY).arg(&path).output().unwrap_or_else(|error| {
        panic!("cannot run python3 ({error}); scripts/test installs python3 and openapi-spec-validator")
    });
    let stderr = String::from_utf8_lossy(&output.stderr);
    match output.status.code() {
        Some(0) => {
            let _ = std::fs::remove_file(&path);
        }
        Some(3) => panic!(
            "python3 lacks openapi-spec-validator ({}); scripts/test installs it \
             (python3 -m pip install 'openapi-spec-validator>=0.7')",
            stderr.trim()
        ),
        _ => panic!("{label} OpenAPI document is not valid OpenAPI 3.1 (kept at {}):\n{stderr}", path.display()),
    }
}

#[test]
fn document_validates_as_openapi_3_1() {
    validate_with_python(&published(), "published");
}
