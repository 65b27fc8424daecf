//! Transcoding against the real published contracts.

use http::Method;
use prost_reflect::{DynamicMessage, Value as PValue};
use serde_json::json;

use super::*;
use crate::routes::{Lookup, RouteTable};

fn table() -> RouteTable {
    RouteTable::from_pool(kem_proto::descriptor_pool()).expect("routes")
}

fn request(method: Method, path_and_query: &str, body: &str) -> Result<DynamicMessage, FieldError> {
    let table = table();
    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path_and_query, None),
    };
    let Lookup::Found(route, captures) = table.lookup(&method, path) else { panic!("no route for {path}") };
    build_request(route, &captures, query, body.as_bytes())
}

fn json_of(message: &DynamicMessage) -> serde_json::Value {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::new(&mut out);
    message.serialize_with_options(&mut ser, &SerializeOptions::new()).expect("serialize");
    serde_json::from_slice(&out).expect("json")
}

#[test]
fn path_variables_fill_the_request() {
    let m = request(Method::GET, "/api/v1/events/ev-42", "").expect("ok");
    assert_eq!(json_of(&m), json!({"eventId": "ev-42"}));
}

#[test]
fn the_path_only_shortcut_builds_what_the_json_path_builds() {
    // Every route whose input is filled by path variables alone, with awkward values.
    let table = table();
    let mut checked = 0;
    for route in table.routes() {
        let variables = route.template.variables();
        if variables.is_empty() {
            continue;
        }
        for raw in ["ev-42", "a b/é", "", "0"] {
            let captures: Captures = variables.iter().map(|v| ((*v).to_owned(), raw.to_owned())).collect();
            let Some(fast) = from_string_captures(&route.rpc.input(), &captures) else { continue };
            let mut root = serde_json::Map::new();
            set_captures(&mut root, &route.rpc.input(), &captures).expect("captures");
            let general = decode(&route.rpc.input(), serde_json::Value::Object(root)).expect("decode");
            assert_eq!(fast, general, "{} with {raw:?}", route.limit_name);
            checked += 1;
        }
    }
    assert!(checked >= 40, "only {checked} shortcut cases");
    // A non-string path variable (or a nested one) takes the general path.
    let input = table.routes()[0].rpc.input();
    assert!(from_string_captures(&input, &vec![("no_such_field".into(), "x".into())]).is_none());
}

#[test]
fn body_star_with_path_variable_and_enums() {
    let m = request(
        Method::POST,
        "/api/v1/events/ev-1:publish",
        r#"{"channels": ["CHANNEL_INSTAGRAM", "CHANNEL_KAKAO_CHANNEL"]}"#,
    )
    .expect("ok");
    assert_eq!(json_of(&m), json!({"eventId": "ev-1", "channels": ["CHANNEL_INSTAGRAM", "CHANNEL_KAKAO_CHANNEL"]}));
}

#[test]
fn path_variables_override_the_body() {
    let m = request(Method::POST, "/api/v1/events/ev-1:publish", r#"{"eventId": "other"}"#).expect("ok");
    assert_eq!(json_of(&m)["eventId"], "ev-1");
}

#[test]
fn query_parameters_repeated_and_typed() {
    let m = request(Method::GET, "/api/v1/events?status=EVENT_STATUS_DRAFT&pageSize=5&pageToken=abc", "").expect("ok");
    let j = json_of(&m);
    assert_eq!(j["pageSize"], 5);
    assert_eq!(j["pageToken"], "abc");
    // snake_case names are accepted too.
    let m = request(Method::GET, "/api/v1/events?page_size=7", "").expect("ok");
    assert_eq!(json_of(&m)["pageSize"], 7);
    let err = request(Method::GET, "/api/v1/events?pageSize=seven", "").expect_err("bad int");
    assert_eq!(err.field, "pageSize");
    let err = request(Method::GET, "/api/v1/events?nope=1", "").expect_err("unknown");
    assert_eq!(err.field, "nope");
}

#[test]
fn patch_derives_the_field_mask_from_the_body() {
    let m = request(Method::PATCH, "/api/v1/events/ev-1", r#"{"title": "Lunch", "prize": {"name": "Coffee"}}"#)
        .expect("ok");
    let j = json_of(&m);
    assert_eq!(j["eventId"], "ev-1");
    assert_eq!(j["event"]["title"], "Lunch");
    assert_eq!(j["updateMask"], "prize.name,title");
    // An explicit mask wins.
    let m = request(Method::PATCH, "/api/v1/events/ev-1?updateMask=title", r#"{"title": "Lunch", "description": "x"}"#)
        .expect("ok");
    assert_eq!(json_of(&m)["updateMask"], "title");
}

#[test]
fn unknown_fields_and_wrong_types_name_the_field() {
    let err = request(Method::POST, "/api/v1/events", r#"{"title": "x", "bogus": 1}"#).expect_err("unknown");
    assert!(err.field.contains("event"), "{err:?}");
    assert!(err.description.contains("bogus"), "{err:?}");
    let err = request(Method::POST, "/api/v1/events", r#"{"title": 5}"#).expect_err("type");
    assert_eq!(err.field, "event.title", "{err:?}");
    let err = request(Method::POST, "/api/v1/events", r#"{"title": "#).expect_err("malformed");
    assert_eq!(err.field, "body");
    let err = request(Method::GET, "/api/v1/events/e1", r#"{"x": 1}"#).expect_err("no body allowed");
    assert_eq!(err.field, "body");
}

#[test]
fn well_known_types_and_int64_in_canonical_form() {
    let m = request(
        Method::POST,
        "/api/v1/events",
        r#"{"title": "x", "budget": {"amountKrw": "9007199254740993"}, "period": {"startTime": "2026-12-01T00:00:00Z", "endTime": "2026-12-31T23:59:59.5Z"}}"#,
    )
    .expect("ok");
    let j = json_of(&m);
    assert_eq!(j["event"]["budget"]["amountKrw"], "9007199254740993", "int64 stays exact, as a string");
    assert_eq!(j["event"]["period"]["endTime"], "2026-12-31T23:59:59.500Z");
}

#[test]
fn responses_select_response_body_and_raw_bytes() {
    let table = table();
    let Lookup::Found(route, _) = table.lookup(&Method::GET, "/api/v1/images/img-1/content") else { panic!("route") };
    let mut response = DynamicMessage::new(route.rpc.output());
    response.set_field_by_name("content_type", PValue::String("image/png".into()));
    response.set_field_by_name("data", PValue::Bytes(bytes::Bytes::from_static(b"\x89PNG")));
    match write_response(route, &response, false).expect("write") {
        ResponseBody::Raw { content_type, data, sha256, filename } => {
            assert_eq!((content_type.as_str(), data.as_slice()), ("image/png", &b"\x89PNG"[..]));
            assert_eq!(sha256, None, "an unset digest is none");
            assert_eq!(filename, None, "an image is no download");
        }
        other => panic!("{other:?}"),
    }
    response.set_field_by_name("sha256", PValue::String("abc123".into()));
    match write_response(route, &response, false).expect("write") {
        ResponseBody::Raw { sha256, .. } => {
            assert_eq!(sha256.as_deref(), Some("abc123"), "the digest beside the bytes")
        }
        other => panic!("{other:?}"),
    }
    // A CSV export names its file: the answer is a download.
    let Lookup::Found(export, _) = table.lookup(&Method::GET, "/api/v1/events/ev-1/participants:export") else {
        panic!("export route")
    };
    let mut csv = DynamicMessage::new(export.rpc.output());
    csv.set_field_by_name("content_type", PValue::String("text/csv; charset=utf-8".into()));
    csv.set_field_by_name("data", PValue::Bytes(bytes::Bytes::from_static(b"\xEF\xBB\xBFa,b\r\n")));
    csv.set_field_by_name("filename", PValue::String("winners-ev-1-20261207.csv".into()));
    match write_response(export, &csv, false).expect("write") {
        ResponseBody::Raw { content_type, filename, sha256, .. } => {
            assert_eq!(content_type, "text/csv; charset=utf-8");
            assert_eq!(filename.as_deref(), Some("winners-ev-1-20261207.csv"));
            assert_eq!(sha256, None);
        }
        other => panic!("{other:?}"),
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 512, ..Default::default() })]

    /// Any path, query string and body: route lookup and transcoding answer (a message or a
    /// field error), never panic — whatever an attacker puts in the URL or the body.
    #[test]
    fn any_request_is_routed_and_transcoded_without_panicking(
        segments in proptest::collection::vec("[a-z0-9%:.{}*_ -]{0,12}|\\PC{0,6}", 0..6),
        query in proptest::option::of("[a-zA-Z0-9=&%._\\[\\]-]{0,40}|\\PC{0,20}"),
        body in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
        json_body in proptest::option::of("\\{(\"[a-zA-Z]{1,8}\": ?(\"\\PC{0,8}\"|-?[0-9]{1,25}|true|null|\\[\\]|\\{\\}),? ?){0,3}\\}"),
        method in proptest::sample::select(vec![Method::GET, Method::POST, Method::PATCH, Method::DELETE, Method::PUT]),
    ) {
        let table = table();
        let path = format!("/api/v1/{}", segments.join("/"));
        let body = json_body.map(String::into_bytes).unwrap_or(body);
        if let Lookup::Found(route, captures) = table.lookup(&method, &path) {
            let _ = build_request(route, &captures, query.as_deref(), &body);
        }
    }

    /// Every route with arbitrary path variables and query: an answer, never a panic.
    #[test]
    fn every_route_takes_arbitrary_variables_and_queries(
        value in "\\PC{0,40}|[0-9a-f-]{36}",
        query in "[a-zA-Z0-9=&%._-]{0,60}",
    ) {
        let table = table();
        for method in [Method::GET, Method::POST, Method::PATCH, Method::DELETE] {
            let path = format!("/api/v1/events/{}", value.replace(['/', '?', '#'], "x"));
            if let Lookup::Found(route, captures) = table.lookup(&method, &path) {
                let _ = build_request(route, &captures, Some(&query), b"{}");
            }
        }
    }
}
