//! Request mapping for REST routes, awsJson and awsQuery (`authz::mapping`): route templates as
//! an operator writes them (`Route::new` on arbitrary text) and requests as clients send them
//! (arbitrary methods, paths, queries, headers and form bodies, read after the signature is
//! verified). Must never panic; a mapped request has a `service:Action` action and a resource.
//!
//! Input: `mode-byte text`. Mode 0: `text` is `method \n path \n action \n resource \n key-spec`
//! for one route (the route is only built). Otherwise `text` is a request,
//! `method \n path \n query \n body \n header-lines…`, mapped by fixed REST routes and by both
//! awsJson and awsQuery.
#![no_main]

#[path = "common.rs"]
mod common;

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tollgate::authz::mapping::{
    map_aws_json, map_aws_query, Mapped, RestRoutes, Route, TemplateVars,
};

fn routes() -> &'static RestRoutes {
    static ROUTES: OnceLock<RestRoutes> = OnceLock::new();
    ROUTES.get_or_init(|| {
        let route =
            |method: &str, path: &str, action: &str, resource: &str, keys: &[(&str, &str)]| {
                let keys: Vec<(String, String)> = keys
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect();
                Route::new(method, path, action, resource, &keys).expect("a valid route")
            };
        RestRoutes::new(vec![
            route(
                "GET",
                "/orders/{id}",
                "orders:GetOrder",
                "arn:aws:orders:${region}:${account}:order/{id}",
                &[
                    ("orders:Channel", "header:x-channel"),
                    ("orders:Page", "query:page"),
                ],
            ),
            route(
                "*",
                "/users/{uid}/items/{item}",
                "items:${method}Item",
                "arn:aws:items:${region}:${account}:user/{uid}/item/{item}",
                &[("items:Owner", "path:uid")],
            ),
            route(
                "PUT",
                "/files/{path+}",
                "files:PutFile",
                "arn:aws:files:::${partition}/{path}",
                &[],
            ),
            route("*", "/{proxy+}", "execute-api:Invoke", "*", &[]),
        ])
    })
}

fn check(m: &Mapped) {
    assert!(m.action.contains(':'), "{m:?}");
    assert!(!m.resource.is_empty(), "{m:?}");
    for (k, _) in &m.keys {
        assert!(k.contains(':'), "{m:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let mut lines = text.split('\n');
    let mut next = || lines.next().unwrap_or("");
    if mode == 0 {
        let (method, path, action, resource, key) = (next(), next(), next(), next(), next());
        let keys = match key.split_once('=') {
            Some((k, v)) => vec![(k.to_owned(), v.to_owned())],
            None => Vec::new(),
        };
        let _ = Route::new(method, path, action, resource, &keys);
        return;
    }
    let (method, path, query, body) = (next(), next(), next(), next());
    let query = (!query.is_empty()).then_some(query);
    let headers = common::header_lines(lines);
    let vars = TemplateVars {
        region: "us-east-1",
        account: "123456789012",
        method,
    };
    if let Ok(Some(m)) = routes().map(method, path, query, &headers, &vars) {
        check(&m);
    }
    if let Some(m) = map_aws_json("dynamodb", &headers, "*") {
        check(&m);
        assert!(
            m.action[9..].chars().all(|c| c.is_ascii_alphanumeric()),
            "{m:?}"
        );
    }
    if let Some(m) = map_aws_query("sqs", query, Some(body.as_bytes()), "*") {
        check(&m);
        assert!(
            m.action[4..].chars().all(|c| c.is_ascii_alphanumeric()),
            "{m:?}"
        );
    }
});
