//! The contract checker: rules every published kem proto must follow, evaluated over a
//! descriptor pool so the same code checks the embedded contracts and planted violations in tests.
//!
//! Rules (see DESIGN.md "Contracts"):
//! - every route of the DESIGN.md REST table is bound to exactly the RPC the table names;
//! - every RPC has its own `<Rpc>Request` / `<Rpc>Response` messages, used by no other RPC;
//! - every kem enum starts with `<ENUM_NAME>_UNSPECIFIED = 0`;
//! - every path variable and body field of an HTTP binding exists in the request message;
//! - GET bindings are `NO_SIDE_EFFECTS`;
//! - every kem RPC declares `kem.api.v1.access`: annotated RPCs are PUBLIC or OWNER, internal
//!   (unannotated) RPCs are INTERNAL, so the gateway can never reach a mesh-only method;
//! - field names are `snake_case`.

use std::collections::HashMap;
use std::fmt;

use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, MethodDescriptor, Value};

/// Idempotency levels from `google.protobuf.MethodOptions.IdempotencyLevel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    /// Not declared: the mesh and gateway never retry it.
    Unknown,
    /// A read: safe to retry and hedge.
    NoSideEffects,
    /// Repeating it has the effect of doing it once: safe to retry.
    Idempotent,
}

impl Idempotency {
    /// Whether a failed attempt may be retried automatically.
    pub fn is_retryable(self) -> bool {
        !matches!(self, Idempotency::Unknown)
    }
}

/// Who may call a method, from the `kem.api.v1.access` method option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The option is missing (a contract violation for kem methods).
    Unspecified,
    /// Anyone through the REST edge.
    Public,
    /// An authenticated owner through the REST edge.
    Owner,
    /// Mesh peers only; never exposed over REST.
    Internal,
}

/// One HTTP binding of an RPC (the primary rule or one of its `additional_bindings`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpBinding {
    /// Full RPC name, `package.Service.Method`.
    pub rpc: String,
    /// HTTP method in upper case (`GET`, `POST`, ... or the custom kind).
    pub method: String,
    /// The path template, e.g. `/api/v1/events/{event_id}:publish`.
    pub path: String,
    /// The `body` selector: empty (no body), `*`, or a top-level field name.
    pub body: String,
    /// The `response_body` selector: empty for the whole response message.
    pub response_body: String,
}

/// One row of DESIGN.md's REST table.
#[derive(Debug, Clone, Copy)]
pub struct DesignRoute {
    /// HTTP method.
    pub method: &'static str,
    /// Path as written in DESIGN.md (variable names may differ from the proto's).
    pub path: &'static str,
    /// Full RPC name the route must reach.
    pub rpc: &'static str,
}

const fn route(method: &'static str, path: &'static str, rpc: &'static str) -> DesignRoute {
    DesignRoute { method, path, rpc }
}

/// DESIGN.md's REST table, one row per method and path.
pub const DESIGN_ROUTES: &[DesignRoute] = &[
    route("POST", "/api/v1/users:register", "kem.user.v1.UserService.Register"),
    route("POST", "/api/v1/auth:login", "kem.user.v1.UserService.Login"),
    route("POST", "/api/v1/auth:refresh", "kem.user.v1.UserService.Refresh"),
    route("POST", "/api/v1/auth:logout", "kem.user.v1.UserService.Logout"),
    route("GET", "/api/v1/users/me", "kem.user.v1.UserService.GetMe"),
    route("PATCH", "/api/v1/users/me", "kem.user.v1.UserService.UpdateMe"),
    route("POST", "/api/v1/business-numbers:verify", "kem.user.v1.UserService.VerifyBusinessNumber"),
    route("GET", "/api/v1/trends", "kem.ai.v1.AiService.GetTrends"),
    route("POST", "/api/v1/events", "kem.event.v1.EventService.CreateEvent"),
    route("GET", "/api/v1/events", "kem.event.v1.EventService.ListEvents"),
    route("GET", "/api/v1/events/{id}", "kem.event.v1.EventService.GetEvent"),
    route("PATCH", "/api/v1/events/{id}", "kem.event.v1.EventService.UpdateEvent"),
    route("DELETE", "/api/v1/events/{id}", "kem.event.v1.EventService.DeleteEvent"),
    route("POST", "/api/v1/events/{id}:recommend", "kem.event.v1.EventService.RequestRecommendations"),
    route("POST", "/api/v1/events/{id}:selectRecommendation", "kem.event.v1.EventService.SelectRecommendation"),
    route("POST", "/api/v1/events/{id}:generateImages", "kem.event.v1.EventService.RequestImages"),
    route("GET", "/api/v1/events/{id}/images", "kem.content.v1.ContentService.ListImages"),
    route("POST", "/api/v1/events/{id}:selectImage", "kem.event.v1.EventService.SelectImage"),
    route("POST", "/api/v1/events/{id}:publish", "kem.event.v1.EventService.PublishEvent"),
    route("POST", "/api/v1/events/{id}:end", "kem.event.v1.EventService.EndEvent"),
    route("GET", "/api/v1/jobs/{id}", "kem.event.v1.EventService.GetJob"),
    route("GET", "/api/v1/events/{id}/distribution", "kem.distribution.v1.DistributionService.GetStatus"),
    route("POST", "/api/v1/events/{id}/distribution:retry", "kem.distribution.v1.DistributionService.Retry"),
    route("POST", "/api/v1/events/{id}/participants", "kem.participation.v1.ParticipationService.Enter"),
    route("GET", "/api/v1/events/{id}/participants", "kem.participation.v1.ParticipationService.ListParticipants"),
    route("POST", "/api/v1/events/{id}:drawWinners", "kem.participation.v1.ParticipationService.DrawWinners"),
    route("GET", "/api/v1/events/{id}/winners", "kem.participation.v1.ParticipationService.ListWinners"),
    route("GET", "/api/v1/events/{id}/analytics", "kem.analytics.v1.AnalyticsService.GetEventAnalytics"),
    route("GET", "/api/v1/analytics/dashboard", "kem.analytics.v1.AnalyticsService.GetDashboard"),
];

/// One broken rule, naming the element that breaks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Short rule identifier, stable for tests (e.g. `enum-zero-value`).
    pub rule: &'static str,
    /// The offending element and what is wrong with it.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}", self.rule, self.detail)
    }
}

/// The gRPC path of a method, `/package.Service/Method`: what a call's HTTP/2 `:path` carries.
pub fn grpc_path(method: &MethodDescriptor) -> String {
    format!("/{}/{}", method.parent_service().full_name(), method.name())
}

/// The idempotency level a method declares.
pub fn idempotency(method: &MethodDescriptor) -> Idempotency {
    match method.options().get_field_by_name("idempotency_level").as_deref() {
        Some(Value::EnumNumber(1)) => Idempotency::NoSideEffects,
        Some(Value::EnumNumber(2)) => Idempotency::Idempotent,
        _ => Idempotency::Unknown,
    }
}

/// The access level a method declares through `kem.api.v1.access`.
pub fn access(pool: &DescriptorPool, method: &MethodDescriptor) -> Access {
    let Some(ext) = pool.get_extension_by_name("kem.api.v1.access") else {
        return Access::Unspecified;
    };
    let options = method.options();
    if !options.has_extension(&ext) {
        return Access::Unspecified;
    }
    match options.get_extension(&ext).as_ref() {
        Value::EnumNumber(1) => Access::Public,
        Value::EnumNumber(2) => Access::Owner,
        Value::EnumNumber(3) => Access::Internal,
        _ => Access::Unspecified,
    }
}

/// Workload names that may appear in `(kem.api.v1.callers)`; `*` means any caller (only the
/// identity CA uses it: its callers have no certificate yet and authenticate with a token).
pub const WORKLOADS: [&str; 9] =
    ["identity", "gateway", "user", "event", "ai", "content", "distribution", "participation", "analytics"];

/// The mesh workloads a method declares as its callers through `kem.api.v1.callers`.
pub fn callers(pool: &DescriptorPool, method: &MethodDescriptor) -> Vec<String> {
    let Some(ext) = pool.get_extension_by_name("kem.api.v1.callers") else {
        return Vec::new();
    };
    let options = method.options();
    if !options.has_extension(&ext) {
        return Vec::new();
    }
    match options.get_extension(&ext).as_ref() {
        Value::List(values) => values.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
        _ => Vec::new(),
    }
}

/// Every HTTP binding of a method (primary rule first, then `additional_bindings`).
pub fn http_bindings(pool: &DescriptorPool, method: &MethodDescriptor) -> Vec<HttpBinding> {
    let Some(ext) = pool.get_extension_by_name("google.api.http") else {
        return Vec::new();
    };
    let options = method.options();
    if !options.has_extension(&ext) {
        return Vec::new();
    }
    let mut out = Vec::new();
    if let Value::Message(rule) = options.get_extension(&ext).as_ref() {
        collect_rule(method.full_name(), rule, &mut out);
        if let Some(Value::List(extra)) = rule.get_field_by_name("additional_bindings").as_deref() {
            for value in extra {
                if let Value::Message(rule) = value {
                    collect_rule(method.full_name(), rule, &mut out);
                }
            }
        }
    }
    out
}

fn collect_rule(rpc: &str, rule: &DynamicMessage, out: &mut Vec<HttpBinding>) {
    let text = |name: &str| match rule.get_field_by_name(name).as_deref() {
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    };
    let mut pattern = None;
    for verb in ["get", "put", "post", "delete", "patch"] {
        if rule.has_field_by_name(verb) {
            pattern = Some((verb.to_ascii_uppercase(), text(verb)));
        }
    }
    if rule.has_field_by_name("custom")
        && let Some(Value::Message(custom)) = rule.get_field_by_name("custom").as_deref()
    {
        let get = |name: &str| match custom.get_field_by_name(name).as_deref() {
            Some(Value::String(s)) => s.clone(),
            _ => String::new(),
        };
        pattern = Some((get("kind").to_ascii_uppercase(), get("path")));
    }
    if let Some((method, path)) = pattern {
        out.push(HttpBinding {
            rpc: rpc.to_owned(),
            method,
            path,
            body: text("body"),
            response_body: text("response_body"),
        });
    }
}

/// Replaces every `{...}` variable with `{}` so DESIGN.md's `{id}` matches the proto's `{event_id}`.
pub fn normalize_template(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut depth = 0usize;
    for ch in path.chars() {
        match ch {
            '{' => {
                if depth == 0 {
                    out.push_str("{}");
                }
                depth += 1;
            }
            '}' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(ch),
            _ => {}
        }
    }
    out
}

/// The field paths named by the variables of a path template (`{a.b=x/*}` → `a.b`).
pub fn template_variables(path: &str) -> Vec<String> {
    let mut vars = Vec::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        let Some(len) = rest[start..].find('}') else { break };
        let inner = &rest[start + 1..start + len];
        vars.push(inner.split('=').next().unwrap_or(inner).trim().to_owned());
        rest = &rest[start + len + 1..];
    }
    vars
}

fn field_path_exists(message: &MessageDescriptor, path: &str) -> bool {
    let mut current = message.clone();
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        let Some(field) = current.get_field_by_name(part) else { return false };
        if parts.peek().is_none() {
            return !field.is_list() && !field.is_map();
        }
        match field.kind().as_message() {
            Some(next) => current = next.clone(),
            None => return false,
        }
    }
    false
}

fn is_snake_case(name: &str) -> bool {
    !name.is_empty()
        && name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.contains("__")
}

fn upper_snake(name: &str) -> String {
    let mut out = String::new();
    for (i, ch) in name.chars().enumerate() {
        if ch.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(ch.to_ascii_uppercase());
    }
    out
}

/// Checks every rule over the `kem.*` packages of `pool` and the given REST table.
pub fn check(pool: &DescriptorPool, routes: &[DesignRoute]) -> Vec<Violation> {
    let mut violations = Vec::new();
    let mut push = |rule: &'static str, detail: String| violations.push(Violation { rule, detail });

    let services: Vec<_> = pool.services().filter(|s| s.package_name().starts_with("kem.")).collect();
    let mut bindings = Vec::new();
    let mut message_users: HashMap<String, Vec<String>> = HashMap::new();

    for service in &services {
        for method in service.methods() {
            let rpc = method.full_name().to_owned();
            let (input, output) = (method.input(), method.output());
            message_users.entry(input.full_name().to_owned()).or_default().push(rpc.clone());
            message_users.entry(output.full_name().to_owned()).or_default().push(rpc.clone());
            if input.name() != format!("{}Request", method.name()) {
                push("rpc-request-name", format!("{rpc} takes {} (want {}Request)", input.full_name(), method.name()));
            }
            if output.name() != format!("{}Response", method.name()) {
                push(
                    "rpc-response-name",
                    format!("{rpc} returns {} (want {}Response)", output.full_name(), method.name()),
                );
            }

            let method_bindings = http_bindings(pool, &method);
            let access = access(pool, &method);
            match (method_bindings.is_empty(), access) {
                (_, Access::Unspecified) => push("access-declared", format!("{rpc} has no (kem.api.v1.access) option")),
                (true, Access::Public | Access::Owner) => {
                    push("access-internal", format!("{rpc} has no HTTP binding but is declared {access:?}"))
                }
                (false, Access::Internal) => {
                    push("access-internal", format!("{rpc} is INTERNAL but has an HTTP binding"))
                }
                _ => {}
            }

            let declared = callers(pool, &method);
            match access {
                Access::Internal if declared.is_empty() => {
                    push("internal-callers", format!("{rpc} is INTERNAL but declares no (kem.api.v1.callers)"))
                }
                Access::Public | Access::Owner if !declared.is_empty() => push(
                    "internal-callers",
                    format!("{rpc} is reached through the gateway; it must not declare callers {declared:?}"),
                ),
                _ => {}
            }
            for caller in &declared {
                if caller != "*" && !WORKLOADS.contains(&caller.as_str()) {
                    push("internal-callers", format!("{rpc}: unknown caller workload {caller:?}"));
                }
            }

            for binding in &method_bindings {
                for var in template_variables(&binding.path) {
                    if !field_path_exists(&input, &var) {
                        push(
                            "path-variable",
                            format!("{rpc}: `{{{var}}}` in {} is not a field of {}", binding.path, input.full_name()),
                        );
                    }
                }
                if !binding.body.is_empty() && binding.body != "*" && input.get_field_by_name(&binding.body).is_none() {
                    push(
                        "body-field",
                        format!("{rpc}: body `{}` is not a field of {}", binding.body, input.full_name()),
                    );
                }
                if !binding.response_body.is_empty() && output.get_field_by_name(&binding.response_body).is_none() {
                    push(
                        "response-body-field",
                        format!(
                            "{rpc}: response_body `{}` is not a field of {}",
                            binding.response_body,
                            output.full_name()
                        ),
                    );
                }
                // OAuth redirection endpoints (RFC 6749 §3.1.2) are the one exception: the
                // provider sends the browser there with a GET, and completing the flow has a side
                // effect (the single-use state is spent). They must be public and declare no
                // idempotency, so nothing retries or caches them.
                let oauth_redirect = binding.path.ends_with("/oauth/callback")
                    && access == Access::Public
                    && idempotency(&method) == Idempotency::Unknown;
                if binding.method == "GET" && idempotency(&method) != Idempotency::NoSideEffects && !oauth_redirect {
                    push(
                        "read-no-side-effects",
                        format!("{rpc} is bound to GET {} but is not NO_SIDE_EFFECTS", binding.path),
                    );
                }
            }
            bindings.extend(method_bindings);
        }
    }

    for (message, users) in &message_users {
        if users.len() > 1 {
            push("rpc-message-shared", format!("{message} is used by several RPCs: {}", users.join(", ")));
        }
    }

    for route in routes {
        let want = normalize_template(route.path);
        let matches: Vec<_> =
            bindings.iter().filter(|b| b.method == route.method && normalize_template(&b.path) == want).collect();
        match matches.as_slice() {
            [] => {
                push("route-bound", format!("{} {} is bound to no RPC (want {})", route.method, route.path, route.rpc))
            }
            [one] if one.rpc == route.rpc => {}
            [one] => push(
                "route-bound",
                format!("{} {} is bound to {} (want {})", route.method, route.path, one.rpc, route.rpc),
            ),
            many => push(
                "route-bound",
                format!(
                    "{} {} is bound to {} RPCs: {}",
                    route.method,
                    route.path,
                    many.len(),
                    many.iter().map(|b| b.rpc.as_str()).collect::<Vec<_>>().join(", ")
                ),
            ),
        }
    }

    for message in pool.all_messages().filter(|m| m.package_name().starts_with("kem.")) {
        if message.is_map_entry() {
            continue;
        }
        for field in message.fields() {
            if !is_snake_case(field.name()) {
                push("field-snake-case", format!("{}.{} is not snake_case", message.full_name(), field.name()));
            }
        }
    }
    for enumeration in pool.all_enums().filter(|e| e.package_name().starts_with("kem.")) {
        let want = format!("{}_UNSPECIFIED", upper_snake(enumeration.name()));
        match enumeration.get_value(0) {
            Some(zero) if zero.name() == want => {}
            Some(zero) => push(
                "enum-zero-value",
                format!("{}: value 0 is {} (want {want})", enumeration.full_name(), zero.name()),
            ),
            None => push("enum-zero-value", format!("{}: has no value 0 (want {want})", enumeration.full_name())),
        }
    }

    violations.sort_by(|a, b| (a.rule, &a.detail).cmp(&(b.rule, &b.detail)));
    violations
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The published contracts satisfy every rule.
    #[test]
    fn embedded_contracts_pass() {
        let violations = check(crate::descriptor_pool(), DESIGN_ROUTES);
        let report: Vec<String> = violations.iter().map(ToString::to_string).collect();
        assert!(violations.is_empty(), "contract violations:\n{}", report.join("\n"));
    }

    /// Every DESIGN.md route resolves to its RPC, and that RPC exists in a compiled service.
    #[test]
    fn every_design_route_reaches_an_existing_rpc() {
        let pool = crate::descriptor_pool();
        for route in DESIGN_ROUTES {
            let (service, method) = route.rpc.rsplit_once('.').expect("rpc names are qualified");
            let service = pool.get_service_by_name(service).unwrap_or_else(|| panic!("no service for {}", route.rpc));
            assert!(service.methods().any(|m| m.name() == method), "no method {}", route.rpc);
        }
    }

    #[test]
    fn templates_normalize_and_expose_variables() {
        assert_eq!(normalize_template("/api/v1/events/{event_id}:publish"), "/api/v1/events/{}:publish");
        assert_eq!(normalize_template("/v1/{name=shelves/*/books/*}"), "/v1/{}");
        assert_eq!(template_variables("/v1/{a.b=x/*}/c/{d}"), vec!["a.b".to_owned(), "d".to_owned()]);
        assert_eq!(upper_snake("EventStatus"), "EVENT_STATUS");
    }

    /// Compiles a planted proto next to the vendored Google protos.
    fn planted(source: &str) -> DescriptorPool {
        let dir = tempfile::tempdir().expect("tempdir");
        let kem_dir = dir.path().join("kem/planted/v1");
        std::fs::create_dir_all(&kem_dir).expect("mkdir");
        std::fs::write(kem_dir.join("planted.proto"), source).expect("write proto");
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut compiler = protox::Compiler::new([dir.path(), root]).expect("compiler");
        compiler.include_imports(true);
        compiler.open_file("kem/planted/v1/planted.proto").expect("planted proto compiles");
        DescriptorPool::decode(compiler.encode_file_descriptor_set().as_slice()).expect("pool")
    }

    const HEADER: &str = r#"syntax = "proto3";
package kem.planted.v1;
import "google/api/annotations.proto";
import "kem/api/v1/options.proto";
"#;

    fn rules(violations: &[Violation]) -> Vec<&'static str> {
        violations.iter().map(|v| v.rule).collect()
    }

    #[test]
    fn clean_planted_service_passes() {
        let pool = planted(&format!(
            r#"{HEADER}
enum Color {{ COLOR_UNSPECIFIED = 0; COLOR_RED = 1; }}
message GetThingRequest {{ string thing_id = 1; }}
message GetThingResponse {{ Color color = 1; }}
service PlantedService {{
  rpc GetThing(GetThingRequest) returns (GetThingResponse) {{
    option idempotency_level = NO_SIDE_EFFECTS;
    option (kem.api.v1.access) = ACCESS_OWNER;
    option (google.api.http) = {{ get: "/api/v1/things/{{thing_id}}" }};
  }}
}}"#
        ));
        let routes = [route("GET", "/api/v1/things/{id}", "kem.planted.v1.PlantedService.GetThing")];
        assert_eq!(check(&pool, &routes), Vec::new());
    }

    #[test]
    fn planted_violations_are_each_reported() {
        let pool = planted(&format!(
            r#"{HEADER}
enum Color {{ RED = 0; }}
message GetThingRequest {{ string thingId = 1; }}
message Thing {{ string thing_id = 1; }}
service PlantedService {{
  rpc GetThing(GetThingRequest) returns (Thing) {{
    option (kem.api.v1.access) = ACCESS_OWNER;
    option (google.api.http) = {{ get: "/api/v1/things/{{missing_id}}" }};
  }}
  rpc Hidden(GetThingRequest) returns (Thing) {{
    option (kem.api.v1.access) = ACCESS_PUBLIC;
  }}
  rpc Internal(InternalRequest) returns (InternalResponse) {{
    option (kem.api.v1.access) = ACCESS_INTERNAL;
    option (kem.api.v1.callers) = "nobody";
  }}
  rpc Lonely(LonelyRequest) returns (LonelyResponse) {{
    option (kem.api.v1.access) = ACCESS_INTERNAL;
  }}
  rpc NoAccess(NoAccessRequest) returns (NoAccessResponse) {{
    option (google.api.http) = {{ post: "/api/v1/things" body: "nope" }};
  }}
}}
message NoAccessRequest {{}}
message NoAccessResponse {{}}
message InternalRequest {{}}
message InternalResponse {{}}
message LonelyRequest {{}}
message LonelyResponse {{}}"#
        ));
        let routes = [
            route("GET", "/api/v1/things/{id}", "kem.planted.v1.PlantedService.Other"),
            route("DELETE", "/api/v1/things/{id}", "kem.planted.v1.PlantedService.GetThing"),
        ];
        let violations = check(&pool, &routes);
        let found = rules(&violations);
        for rule in [
            "enum-zero-value",
            "field-snake-case",
            "path-variable",
            "read-no-side-effects",
            "rpc-response-name",
            "rpc-request-name",
            "rpc-message-shared",
            "access-internal",
            "access-declared",
            "body-field",
            "route-bound",
            "internal-callers",
        ] {
            assert!(found.contains(&rule), "planted `{rule}` not reported; got:\n{violations:#?}");
        }
        assert_eq!(found.iter().filter(|r| **r == "internal-callers").count(), 2, "{violations:#?}");
        // The wrong-RPC route and the unbound route are both reported.
        assert_eq!(found.iter().filter(|r| **r == "route-bound").count(), 2, "{violations:#?}");
    }

    #[test]
    fn a_route_bound_twice_is_reported() {
        let pool = planted(&format!(
            r#"{HEADER}
message ARequest {{}}
message AResponse {{}}
message BRequest {{}}
message BResponse {{}}
service PlantedService {{
  rpc A(ARequest) returns (AResponse) {{
    option (kem.api.v1.access) = ACCESS_OWNER;
    option (google.api.http) = {{ post: "/api/v1/x" body: "*" }};
  }}
  rpc B(BRequest) returns (BResponse) {{
    option (kem.api.v1.access) = ACCESS_OWNER;
    option (google.api.http) = {{ post: "/api/v1/y" body: "*" additional_bindings {{ post: "/api/v1/x" body: "*" }} }};
  }}
}}"#
        ));
        let violations = check(&pool, &[route("POST", "/api/v1/x", "kem.planted.v1.PlantedService.A")]);
        assert_eq!(rules(&violations), vec!["route-bound"], "{violations:#?}");
        assert!(violations[0].detail.contains("2 RPCs"));
    }
}
