//! The route table: every `google.api.http` binding of every edge-reachable RPC, built at start
//! from the descriptors (no handwritten routes).

pub mod template;

use std::collections::HashMap;

use http::Method;
use kem_proto::contract::{Access, Idempotency, access, grpc_path, http_bindings, idempotency};
use prost_reflect::{DescriptorPool, MethodDescriptor};

pub use template::{Captures, PathTemplate, split_path};

/// One HTTP binding of an RPC.
#[derive(Debug, Clone)]
pub struct Route {
    /// HTTP method.
    pub method: Method,
    /// Path template.
    pub template: PathTemplate,
    /// The RPC.
    pub rpc: MethodDescriptor,
    /// `body` selector: empty, `*` or a top-level field.
    pub body: String,
    /// `response_body` selector: empty or a top-level field.
    pub response_body: String,
    /// Who may call it.
    pub access: Access,
    /// Whether a failed attempt may be retried.
    pub idempotency: Idempotency,
    /// The pattern name rate limits and idempotency keys use: `POST /api/v1/events/{id}/participants`.
    pub limit_name: String,
    /// `/package.Service/Method`, computed once (every request needs it).
    grpc_path: http::uri::PathAndQuery,
}

impl Route {
    /// `/package.Service/Method`, the gRPC path.
    pub fn grpc_path(&self) -> &str {
        self.grpc_path.as_str()
    }

    /// The gRPC path as a URI path, ready for a request.
    pub fn grpc_path_and_query(&self) -> &http::uri::PathAndQuery {
        &self.grpc_path
    }

    /// The service's full name (`package.Service`), read off the gRPC path.
    pub fn service(&self) -> &str {
        let path = self.grpc_path();
        path[1..].rsplit_once('/').map_or(path, |(service, _)| service)
    }
}

/// Result of looking a request up.
#[derive(Debug)]
pub enum Lookup<'a> {
    /// A route matched.
    Found(&'a Route, Captures),
    /// The path exists, but not for this method; the allowed methods.
    MethodNotAllowed(Vec<Method>),
    /// Nothing matches the path.
    NotFound,
}

/// Why the table could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// A template is invalid.
    #[error("{rpc}: {source}")]
    Template {
        /// The RPC.
        rpc: String,
        /// Underlying error.
        #[source]
        source: template::TemplateError,
    },
    /// The RPC's name does not form a valid gRPC path.
    #[error("{rpc}: not a valid gRPC path")]
    GrpcPath {
        /// The RPC.
        rpc: String,
    },
    /// A method name is not an HTTP method.
    #[error("{rpc}: unsupported HTTP method {method:?}")]
    Method {
        /// The RPC.
        rpc: String,
        /// The method.
        method: String,
    },
}

/// All routes, looked up by method and path.
///
/// Lookup only tries the routes that can match at all: those with the request's segment count
/// (templates ending in `**` match any count and are always tried), most specific first. With
/// the API's ~40 routes that is a handful of candidates instead of all.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
    /// Segment count → indexes into `routes` of the templates with that many segments and of the
    /// open-ended ones, in specificity order (merged once here, not on every lookup).
    by_shape: HashMap<usize, Vec<usize>>,
    /// Templates matching a variable number of segments (`**`), in specificity order: the
    /// candidates for a segment count no fixed template has.
    open_ended: Vec<usize>,
}

impl RouteTable {
    /// Builds the table from every PUBLIC/OWNER RPC in `pool`. INTERNAL RPCs are never routed,
    /// even if someone annotated one by mistake (the contract test forbids that too).
    pub fn from_pool(pool: &DescriptorPool) -> Result<RouteTable, RouteError> {
        let mut routes = Vec::new();
        for service in pool.services().filter(|s| s.package_name().starts_with("kem.")) {
            for rpc in service.methods() {
                let access = access(pool, &rpc);
                if !matches!(access, Access::Public | Access::Owner) {
                    continue;
                }
                for binding in http_bindings(pool, &rpc) {
                    let template = PathTemplate::parse(&binding.path)
                        .map_err(|source| RouteError::Template { rpc: binding.rpc.clone(), source })?;
                    let method = Method::from_bytes(binding.method.as_bytes())
                        .map_err(|_| RouteError::Method { rpc: binding.rpc.clone(), method: binding.method.clone() })?;
                    let limit_name = format!(
                        "{method} {}",
                        kem_proto::contract::normalize_template(&binding.path).replace("{}", "{id}")
                    );
                    let grpc_path = http::uri::PathAndQuery::try_from(grpc_path(&rpc))
                        .map_err(|_| RouteError::GrpcPath { rpc: binding.rpc.clone() })?;
                    routes.push(Route {
                        grpc_path,
                        limit_name,
                        method,
                        template,
                        rpc: rpc.clone(),
                        body: binding.body,
                        response_body: binding.response_body,
                        access,
                        idempotency: idempotency(&rpc),
                    });
                }
            }
        }
        Ok(RouteTable::indexed(routes))
    }

    /// The table of `routes`, ordered and indexed for lookup.
    fn indexed(mut routes: Vec<Route>) -> RouteTable {
        // Most specific first, so `/users/me` wins over a hypothetical `/users/{id}`.
        routes.sort_by_key(|r| std::cmp::Reverse(r.template.specificity()));
        let open_ended: Vec<usize> =
            (0..routes.len()).filter(|&i| routes[i].template.fixed_segments().is_none()).collect();
        let mut by_shape: HashMap<usize, Vec<usize>> = HashMap::new();
        for (i, route) in routes.iter().enumerate() {
            if let Some(count) = route.template.fixed_segments() {
                by_shape.entry(count).or_insert_with(|| open_ended.clone()).push(i);
            }
        }
        // Ascending indexes are the specificity order across fixed and open-ended templates.
        for candidates in by_shape.values_mut() {
            candidates.sort_unstable();
        }
        RouteTable { routes, by_shape, open_ended }
    }

    /// Every route.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// Finds the route for `method` and `path`.
    pub fn lookup(&self, method: &Method, path: &str) -> Lookup<'_> {
        let Some((segments, verb)) = split_path(path) else { return Lookup::NotFound };
        let candidates = self.by_shape.get(&segments.len()).unwrap_or(&self.open_ended);
        let mut allowed = Vec::new();
        for route in candidates.iter().map(|&i| &self.routes[i]) {
            if let Some(captures) = route.template.matches(&segments, verb.as_deref()) {
                // HEAD is served by GET routes.
                if route.method == method || (method == Method::HEAD && route.method == Method::GET) {
                    return Lookup::Found(route, captures);
                }
                if !allowed.contains(&route.method) {
                    allowed.push(route.method.clone());
                }
            }
        }
        if allowed.is_empty() { Lookup::NotFound } else { Lookup::MethodNotAllowed(allowed) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kem_proto::contract::DESIGN_ROUTES;

    fn table() -> RouteTable {
        RouteTable::from_pool(kem_proto::descriptor_pool()).expect("routes")
    }

    /// Table-driven from DESIGN.md: every REST route resolves to its RPC.
    #[test]
    fn every_design_route_resolves_to_its_rpc() {
        let table = table();
        for route in DESIGN_ROUTES {
            let path = route.path.replace("{id}", "abc-123");
            let method = Method::from_bytes(route.method.as_bytes()).expect("method");
            match table.lookup(&method, &path) {
                Lookup::Found(found, captures) => {
                    assert_eq!(found.rpc.full_name(), route.rpc, "{} {}", route.method, route.path);
                    assert_eq!(found.service(), found.rpc.parent_service().full_name());
                    if route.path.contains("{id}") {
                        assert_eq!(captures.len(), 1);
                        assert_eq!(captures[0].1, "abc-123");
                    }
                }
                other => panic!("{} {} → {other:?}", route.method, route.path),
            }
        }
    }

    #[test]
    fn internal_rpcs_are_never_routed() {
        let table = table();
        assert!(table.routes().iter().all(|r| matches!(r.access, Access::Public | Access::Owner)));
        assert!(!table.routes().iter().any(|r| r.rpc.name() == "GetEventForParticipation"));
    }

    #[test]
    fn wrong_method_and_unknown_path_are_told_apart() {
        let table = table();
        match table.lookup(&Method::PUT, "/api/v1/events/e1") {
            Lookup::MethodNotAllowed(mut allowed) => {
                allowed.sort_by_key(|m| m.to_string());
                assert_eq!(allowed, vec![Method::DELETE, Method::GET, Method::PATCH]);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(table.lookup(&Method::GET, "/api/v1/nope"), Lookup::NotFound));
        assert!(matches!(table.lookup(&Method::GET, "/api/v1/events/e1:publish"), Lookup::MethodNotAllowed(_)));
    }

    #[test]
    fn the_shape_index_finds_exactly_what_a_full_scan_finds() {
        let table = table();
        let paths = [
            "/api/v1/events",
            "/api/v1/events/e1",
            "/api/v1/events/e1:publish",
            "/api/v1/events/e1/participants",
            "/api/v1/users/me",
            "/api/v1/auth:login",
            "/api/v1/events/e1/images/i1/content",
            "/api/v1/nothing/here/at/all",
            "/",
            "/api/v1/events/",
        ];
        for method in [Method::GET, Method::POST, Method::PATCH, Method::DELETE, Method::HEAD, Method::PUT] {
            for path in paths {
                let scan = {
                    let (segments, verb) = split_path(path).expect("path");
                    table
                        .routes()
                        .iter()
                        .find(|r| {
                            (r.method == method || (method == Method::HEAD && r.method == Method::GET))
                                && r.template.matches(&segments, verb.as_deref()).is_some()
                        })
                        .map(|r| r.rpc.full_name().to_owned())
                };
                let indexed = match table.lookup(&method, path) {
                    Lookup::Found(route, _) => Some(route.rpc.full_name().to_owned()),
                    _ => None,
                };
                assert_eq!(indexed, scan, "{method} {path}");
            }
        }
    }

    #[test]
    fn open_ended_templates_are_still_matched() {
        let mut routes = table().routes;
        let rpc = routes[0].rpc.clone();
        let mut files = routes[0].clone();
        files.template = PathTemplate::parse("/api/v1/files/{name=**}").expect("template");
        files.method = Method::GET;
        routes.push(files);
        let table = RouteTable::indexed(routes);
        match table.lookup(&Method::GET, "/api/v1/files/a/b/c.txt") {
            Lookup::Found(route, captures) => {
                assert_eq!(route.rpc.full_name(), rpc.full_name());
                assert_eq!(captures, vec![("name".to_owned(), "a/b/c.txt".to_owned())]);
            }
            other => panic!("{other:?}"),
        }
        // A segment count no fixed template has: only the open-ended one is a candidate.
        match table.lookup(&Method::GET, "/api/v1/files/a/b/c/d/e/f/g.txt") {
            Lookup::Found(route, captures) => {
                assert_eq!(route.rpc.full_name(), rpc.full_name());
                assert_eq!(captures, vec![("name".to_owned(), "a/b/c/d/e/f/g.txt".to_owned())]);
            }
            other => panic!("{other:?}"),
        }
    }
}
