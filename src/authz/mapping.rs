//! Request → (action, resource, extra condition keys) for internal REST APIs (route templates),
//! awsJson services (`X-Amz-Target`) and awsQuery services (`Action=`). S3 has its own table in
//! [`super::s3`].

use std::borrow::Cow;

/// What a request asks to do, in IAM terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapped {
    /// `service:Action`.
    pub action: String,
    /// The resource ARN, or `*`.
    pub resource: String,
    /// Extra condition keys (service-specific, or `aws:RequestTag/*`), single-valued.
    pub keys: Vec<(String, String)>,
    /// Further (action, resource) pairs that must also be allowed (S3 copy, tagging on put…).
    pub also: Vec<(String, String)>,
}

/// Values a template can refer to besides route captures: `${region}`, `${account}`,
/// `${partition}`, `${method}`.
#[derive(Debug, Clone, Copy)]
pub struct TemplateVars<'a> {
    /// The request's scope region.
    pub region: &'a str,
    /// The account that owns the API's resources.
    pub account: &'a str,
    /// The HTTP method.
    pub method: &'a str,
}

/// A string with `{capture}` and `${var}` placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<TemplatePart>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum TemplatePart {
    Lit(String),
    Capture(String),
    Var(String),
}

/// A template or route could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TemplateError(pub String);

impl Template {
    /// Parses `arn:aws:orders:${region}:${account}:order/{id}`.
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut rest = text;
        while let Some(c) = rest.chars().next() {
            let var = rest.starts_with("${");
            if var || c == '{' {
                let start = if var { 2 } else { 1 };
                let end = rest
                    .find('}')
                    .ok_or_else(|| TemplateError(format!("unclosed `{{` in `{text}`")))?;
                let name = rest.get(start..end).unwrap_or("").trim().to_owned();
                if name.is_empty() {
                    return Err(TemplateError(format!("empty placeholder in `{text}`")));
                }
                if !lit.is_empty() {
                    parts.push(TemplatePart::Lit(std::mem::take(&mut lit)));
                }
                if var {
                    if !matches!(name.as_str(), "region" | "account" | "partition" | "method") {
                        return Err(TemplateError(format!(
                            "unknown variable `${{{name}}}` in `{text}`: use ${{region}}, ${{account}}, ${{partition}} or ${{method}}"
                        )));
                    }
                    parts.push(TemplatePart::Var(name));
                } else {
                    parts.push(TemplatePart::Capture(name.trim_end_matches('+').to_owned()));
                }
                rest = rest.get(end + 1..).unwrap_or("");
                continue;
            }
            lit.push(c);
            rest = rest.get(c.len_utf8()..).unwrap_or("");
        }
        if !lit.is_empty() {
            parts.push(TemplatePart::Lit(lit));
        }
        Ok(Self { parts })
    }

    /// The capture names the template uses.
    pub fn captures(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            TemplatePart::Capture(c) => Some(c.as_str()),
            _ => None,
        })
    }

    /// Renders with captures and variables.
    pub fn render(&self, captures: &[(&str, Cow<'_, str>)], vars: &TemplateVars<'_>) -> String {
        let mut out = String::with_capacity(64);
        for p in &self.parts {
            match p {
                TemplatePart::Lit(s) => out.push_str(s),
                TemplatePart::Capture(name) => {
                    if let Some((_, v)) = captures.iter().find(|(n, _)| n == name) {
                        out.push_str(v);
                    }
                }
                TemplatePart::Var(name) => out.push_str(match name.as_str() {
                    "region" => vars.region,
                    "account" => vars.account,
                    "partition" => "aws",
                    _ => vars.method,
                }),
            }
        }
        out
    }
}

/// One segment of a route path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Lit(String),
    Capture(String),
    /// `{name+}`: the rest of the path (at least one segment), as the last segment.
    Greedy(String),
}

/// Where an extra condition key's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `header:x-channel`
    Header(String),
    /// `query:channel`
    Query(String),
    /// `path:id` (a route capture)
    Capture(String),
}

impl KeySource {
    /// Parses `header:NAME`, `query:NAME` or `path:NAME`.
    pub fn parse(s: &str) -> Result<Self, TemplateError> {
        match s.split_once(':') {
            Some(("header", n)) if !n.is_empty() => Ok(KeySource::Header(n.to_ascii_lowercase())),
            Some(("query", n)) if !n.is_empty() => Ok(KeySource::Query(n.to_owned())),
            Some(("path", n)) if !n.is_empty() => Ok(KeySource::Capture(n.to_owned())),
            _ => Err(TemplateError(format!(
                "`{s}` must be header:NAME, query:NAME or path:NAME"
            ))),
        }
    }
}

/// A REST route: method + path template → action + resource + keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    method: Option<String>,
    segments: Vec<Segment>,
    action: Template,
    resource: Template,
    keys: Vec<(String, KeySource)>,
}

impl Route {
    /// Builds a route. `method` `*` matches any method; `path` like `/orders/{id}` or
    /// `/files/{path+}`.
    pub fn new(
        method: &str,
        path: &str,
        action: &str,
        resource: &str,
        keys: &[(String, String)],
    ) -> Result<Self, TemplateError> {
        if !path.starts_with('/') {
            return Err(TemplateError(format!(
                "route path `{path}` must start with `/`"
            )));
        }
        let raw: Vec<&str> = path.split('/').skip(1).collect();
        let mut segments = Vec::with_capacity(raw.len());
        for (i, s) in raw.iter().enumerate() {
            let seg = match s.strip_prefix('{').and_then(|x| x.strip_suffix('}')) {
                Some(name) if name.ends_with('+') => {
                    if i + 1 != raw.len() {
                        return Err(TemplateError(format!(
                            "`{{{name}}}` must be the last segment of `{path}`"
                        )));
                    }
                    Segment::Greedy(name.trim_end_matches('+').to_owned())
                }
                Some(name) if !name.is_empty() => Segment::Capture(name.to_owned()),
                _ => Segment::Lit((*s).to_owned()),
            };
            segments.push(seg);
        }
        let action = Template::parse(action)?;
        let resource = Template::parse(resource)?;
        let names: Vec<&str> = segments
            .iter()
            .filter_map(|s| match s {
                Segment::Capture(n) | Segment::Greedy(n) => Some(n.as_str()),
                Segment::Lit(_) => None,
            })
            .collect();
        for c in action.captures().chain(resource.captures()) {
            if !names.contains(&c) {
                return Err(TemplateError(format!(
                    "`{{{c}}}` is not captured by the path `{path}`"
                )));
            }
        }
        let keys = keys
            .iter()
            .map(|(k, src)| {
                let src = KeySource::parse(src)?;
                if let KeySource::Capture(c) = &src {
                    if !names.contains(&c.as_str()) {
                        return Err(TemplateError(format!(
                            "`path:{c}` is not captured by the path `{path}`"
                        )));
                    }
                }
                Ok((k.clone(), src))
            })
            .collect::<Result<_, _>>()?;
        let method = (method != "*").then(|| method.to_ascii_uppercase());
        Ok(Self {
            method,
            segments,
            action,
            resource,
            keys,
        })
    }

    fn matches<'p>(&self, method: &str, path: &'p str) -> Option<Vec<(&str, Cow<'p, str>)>> {
        if self.method.as_deref().is_some_and(|m| m != method) {
            return None;
        }
        let mut captures = Vec::new();
        let mut rest = path.strip_prefix('/')?;
        for (i, seg) in self.segments.iter().enumerate() {
            let last = i + 1 == self.segments.len();
            match seg {
                Segment::Greedy(name) => {
                    if rest.is_empty() {
                        return None;
                    }
                    captures.push((name.as_str(), decode(rest)));
                    return Some(captures);
                }
                _ => {
                    let (piece, tail) = match crate::text::split_once(rest, b'/') {
                        Some((p, t)) if !last => (p, Some(t)),
                        Some(_) => return None,
                        None if last => (rest, None),
                        None => return None,
                    };
                    match seg {
                        Segment::Lit(l) if l == piece => {}
                        Segment::Capture(name) if !piece.is_empty() => {
                            captures.push((name.as_str(), decode(piece)))
                        }
                        _ => return None,
                    }
                    rest = tail.unwrap_or("");
                }
            }
        }
        Some(captures)
    }
}

fn decode(s: &str) -> Cow<'_, str> {
    if !s.as_bytes().contains(&b'%') {
        return Cow::Borrowed(s);
    }
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            if let (Some(h), Some(l)) = (
                b.get(i + 1).and_then(|x| (*x as char).to_digit(16)),
                b.get(i + 2).and_then(|x| (*x as char).to_digit(16)),
            ) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// How many times parameter `name` appears in `query`.
fn query_count(query: Option<&str>, name: &str) -> usize {
    query.map_or(0, |q| {
        crate::text::split(q, b'&')
            .filter(|p| decode(crate::text::split_once(p, b'=').map_or(*p, |(k, _)| k)) == name)
            .count()
    })
}

fn query_value<'q>(query: Option<&'q str>, name: &str) -> Option<Cow<'q, str>> {
    crate::text::split(query?, b'&').find_map(|p| {
        let (k, v) = crate::text::split_once(p, b'=').unwrap_or((p, ""));
        (decode(k) == name).then(|| decode(&v.replace('+', " ")).into_owned().into())
    })
}

/// Routes of one REST API, tried in order; the first match wins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestRoutes {
    routes: Vec<Route>,
}

impl RestRoutes {
    /// Routes in priority order.
    pub fn new(routes: Vec<Route>) -> Self {
        Self { routes }
    }

    /// Maps a request; `Ok(None)` when no route matches. A condition key whose header or query
    /// parameter appears more than once is an error: the policy would see one value and the
    /// upstream might read another.
    pub fn map(
        &self,
        method: &str,
        raw_path: &str,
        query: Option<&str>,
        headers: &http::HeaderMap,
        vars: &TemplateVars<'_>,
    ) -> Result<Option<Mapped>, &'static str> {
        let Some((r, captures)) = self
            .routes
            .iter()
            .find_map(|r| Some((r, r.matches(method, raw_path)?)))
        else {
            return Ok(None);
        };
        let action = r.action.render(&captures, vars);
        let resource = r.resource.render(&captures, vars);
        let mut keys = Vec::with_capacity(r.keys.len());
        for (k, src) in &r.keys {
            let v = match src {
                KeySource::Header(h) => {
                    let mut values = headers.get_all(h.as_str()).iter();
                    let first = values.next();
                    if values.next().is_some() {
                        return Err(
                            "has more than one value for a header a condition key is read from",
                        );
                    }
                    first
                        .and_then(|v| v.to_str().ok())
                        .map(|v| v.trim().to_owned())
                }
                KeySource::Query(q) => {
                    if query_count(query, q) > 1 {
                        return Err("has more than one value for a query parameter a condition key is read from");
                    }
                    query_value(query, q).map(Cow::into_owned)
                }
                KeySource::Capture(c) => captures
                    .iter()
                    .find(|(n, _)| n == c)
                    .map(|(_, v)| v.to_string()),
            };
            if let Some(v) = v {
                keys.push((k.clone(), v));
            }
        }
        Ok(Some(Mapped {
            action,
            resource,
            keys,
            also: Vec::new(),
        }))
    }
}

/// Why a REST request path might name one resource here and another upstream, or `None`: a `.`
/// or `..` segment (percent-encoded too), which servers that normalize paths resolve, so
/// `/orders/../admin` would be authorized as an order and served as `/admin`. Such paths are
/// refused, not mapped. (Empty segments are not refused: [`merge_slashes`] maps them.)
pub fn ambiguous_path(raw_path: &str) -> Option<&'static str> {
    // A dot segment has a `.` or, percent-encoded, a `%`: most paths have neither.
    if !raw_path.as_bytes().contains(&b'.') && !raw_path.as_bytes().contains(&b'%') {
        return None;
    }
    crate::text::split(raw_path, b'/')
        .any(|segment| matches!(&*decode(segment), "." | ".."))
        .then_some("has a `.` or `..` segment")
}

/// The path the REST routes map: runs of `/` merged into one, as SigV4's canonical path (for
/// every service but S3) and servers that merge slashes read it. `//admin` is then authorized
/// as `/admin`, so a Deny on `/admin/*` applies to it.
pub fn merge_slashes(raw_path: &str) -> Cow<'_, str> {
    if !raw_path.as_bytes().windows(2).any(|w| w == b"//") {
        return Cow::Borrowed(raw_path);
    }
    let mut out = String::with_capacity(raw_path.len());
    for c in raw_path.chars() {
        if !(c == '/' && out.ends_with('/')) {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Why an awsJson request might name one operation here and another upstream, or `None`: more
/// than one `X-Amz-Target` header (which one would the service read?).
pub fn ambiguous_target(headers: &http::HeaderMap) -> Option<&'static str> {
    (headers.get_all("x-amz-target").iter().count() > 1)
        .then_some("has more than one X-Amz-Target header")
}

/// Why an awsQuery request might name one action here and another upstream, or `None`: more than
/// one `Action` parameter, in the query and the form body together (services differ on which
/// one wins; the mapping takes the query's first).
pub fn ambiguous_action(query: Option<&str>, form_body: Option<&[u8]>) -> Option<&'static str> {
    let body = form_body.and_then(|b| std::str::from_utf8(b).ok());
    (query_count(query, "Action") + query_count(body, "Action") > 1)
        .then_some("has more than one Action parameter")
}

/// awsJson: the action is `X-Amz-Target`'s operation (`DynamoDB_20120810.GetItem` →
/// `dynamodb:GetItem`), in the IAM service `iam_service`.
pub fn map_aws_json(
    iam_service: &str,
    headers: &http::HeaderMap,
    resource: &str,
) -> Option<Mapped> {
    let target = headers.get("x-amz-target")?.to_str().ok()?;
    let op = target
        .rsplit('.')
        .next()
        .filter(|o| !o.is_empty() && o.chars().all(|c| c.is_ascii_alphanumeric()))?;
    Some(Mapped {
        action: format!("{iam_service}:{op}"),
        resource: resource.to_owned(),
        keys: Vec::new(),
        also: Vec::new(),
    })
}

/// awsQuery: the action is the `Action` parameter of the query or of the form body.
pub fn map_aws_query(
    iam_service: &str,
    query: Option<&str>,
    form_body: Option<&[u8]>,
    resource: &str,
) -> Option<Mapped> {
    let from_query = query_value(query, "Action");
    let action = match from_query {
        Some(a) => a.into_owned(),
        None => {
            let body = std::str::from_utf8(form_body?).ok()?;
            query_value(Some(body), "Action")?.into_owned()
        }
    };
    if action.is_empty() || !action.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    Some(Mapped {
        action: format!("{iam_service}:{action}"),
        resource: resource.to_owned(),
        keys: Vec::new(),
        also: Vec::new(),
    })
}

#[cfg(test)]
mod tests {

    #[test]
    fn condition_keys_from_repeated_headers_or_parameters_are_refused() {
        let mut h = http::HeaderMap::new();
        h.append("x-channel", http::HeaderValue::from_static("web"));
        h.append("x-channel", http::HeaderValue::from_static("admin"));
        assert!(routes().map("GET", "/orders/1", None, &h, &VARS).is_err());
        let h = http::HeaderMap::new();
        assert!(routes()
            .map("POST", "/orders", Some("kind=gift&kind=bulk"), &h, &VARS)
            .is_err());
        assert!(routes()
            .map("POST", "/orders", Some("kind=gift&k%69nd=bulk"), &h, &VARS)
            .is_err());
        // A repeated parameter no key reads is the service's business.
        assert!(routes()
            .map(
                "POST",
                "/orders",
                Some("kind=gift&page=1&page=2"),
                &h,
                &VARS
            )
            .unwrap()
            .is_some());
    }

    #[test]
    fn paths_targets_and_actions_read_one_way_only() {
        for plain in [
            "/",
            "/orders",
            "/orders/",
            "/orders/7",
            "/a%2Fb",
            "/.well-known/x",
            "/a/.b/c..",
            "//a",
            "/a//b",
        ] {
            assert_eq!(ambiguous_path(plain), None, "{plain}");
        }
        for odd in [
            "/..",
            "/a/../b",
            "/a/./b",
            "/a/%2e%2E/b",
            "/a/%2E",
            "/a/b/..",
        ] {
            assert!(ambiguous_path(odd).is_some(), "{odd}");
        }
        assert_eq!(merge_slashes("/a/b/"), "/a/b/");
        assert_eq!(merge_slashes("//a//b///c/"), "/a/b/c/");
        assert_eq!(merge_slashes("/a%2F%2Fb"), "/a%2F%2Fb");
        let mut h = http::HeaderMap::new();
        h.append("x-amz-target", http::HeaderValue::from_static("S.GetItem"));
        assert_eq!(ambiguous_target(&h), None);
        h.append(
            "x-amz-target",
            http::HeaderValue::from_static("S.DeleteTable"),
        );
        assert!(ambiguous_target(&h).is_some());
        assert_eq!(ambiguous_action(Some("Action=List&Version=1"), None), None);
        assert_eq!(
            ambiguous_action(None, Some(b"Action=List&QueueUrl=x")),
            None
        );
        for (query, body) in [
            (Some("Action=List&Action=Delete"), None),
            (Some("Action=List&Act%69on=Delete"), None),
            (Some("Action=List"), Some(&b"Action=Delete"[..])),
        ] {
            assert!(
                ambiguous_action(query, body).is_some(),
                "{query:?} {body:?}"
            );
        }
    }

    use super::*;

    const VARS: TemplateVars<'static> = TemplateVars {
        region: "us-east-1",
        account: "123456789012",
        method: "GET",
    };

    fn routes() -> RestRoutes {
        RestRoutes::new(vec![
            Route::new(
                "GET",
                "/orders/{id}",
                "orders:GetOrder",
                "arn:aws:orders:${region}:${account}:order/{id}",
                &[("orders:Channel".into(), "header:x-channel".into())],
            )
            .unwrap(),
            Route::new(
                "POST",
                "/orders",
                "orders:CreateOrder",
                "arn:aws:orders:${region}:${account}:order/*",
                &[("orders:Kind".into(), "query:kind".into())],
            )
            .unwrap(),
            Route::new(
                "*",
                "/files/{path+}",
                "files:${method}",
                "arn:aws:files:::{path}",
                &[],
            )
            .unwrap(),
        ])
    }

    #[test]
    fn rest_routes_map_and_capture() {
        let mut h = http::HeaderMap::new();
        h.insert("x-channel", http::HeaderValue::from_static("web"));
        let m = routes()
            .map("GET", "/orders/a%20b", None, &h, &VARS)
            .unwrap()
            .unwrap();
        assert_eq!(m.action, "orders:GetOrder");
        assert_eq!(
            m.resource,
            "arn:aws:orders:us-east-1:123456789012:order/a b"
        );
        assert_eq!(
            m.keys,
            vec![("orders:Channel".to_owned(), "web".to_owned())]
        );
        let m = routes()
            .map("POST", "/orders", Some("kind=gift"), &h, &VARS)
            .unwrap()
            .unwrap();
        assert_eq!(m.keys, vec![("orders:Kind".to_owned(), "gift".to_owned())]);
        let m = routes()
            .map(
                "DELETE",
                "/files/a/b/c.txt",
                None,
                &h,
                &TemplateVars {
                    method: "DELETE",
                    ..VARS
                },
            )
            .unwrap()
            .unwrap();
        assert_eq!(
            (m.action.as_str(), m.resource.as_str()),
            ("files:DELETE", "arn:aws:files:::a/b/c.txt")
        );
        assert!(routes()
            .map("GET", "/orders", None, &h, &VARS)
            .unwrap()
            .is_none());
        assert!(routes()
            .map("GET", "/orders/1/x", None, &h, &VARS)
            .unwrap()
            .is_none());
        assert!(routes()
            .map("GET", "/orders/", None, &h, &VARS)
            .unwrap()
            .is_none());
        assert!(routes()
            .map("PUT", "/orders/1", None, &h, &VARS)
            .unwrap()
            .is_none());
        assert!(routes()
            .map("GET", "/files/", None, &h, &VARS)
            .unwrap()
            .is_none());
    }

    #[test]
    fn bad_routes_are_refused() {
        assert!(Route::new("GET", "orders", "a:b", "*", &[]).is_err());
        assert!(Route::new("GET", "/o/{id}", "a:b", "arn:x:{other}", &[]).is_err());
        assert!(Route::new("GET", "/o/{p+}/x", "a:b", "*", &[]).is_err());
        assert!(Route::new("GET", "/o", "a:b", "${nope}", &[]).is_err());
        assert!(Route::new("GET", "/o", "a:b", "*", &[("k".into(), "cookie:x".into())]).is_err());
    }

    #[test]
    fn json_and_query_protocols() {
        let mut h = http::HeaderMap::new();
        h.insert(
            "x-amz-target",
            http::HeaderValue::from_static("DynamoDB_20120810.GetItem"),
        );
        assert_eq!(
            map_aws_json("dynamodb", &h, "*").unwrap().action,
            "dynamodb:GetItem"
        );
        assert!(map_aws_json("dynamodb", &http::HeaderMap::new(), "*").is_none());
        assert_eq!(
            map_aws_query("sqs", Some("Action=SendMessage&x=1"), None, "*")
                .unwrap()
                .action,
            "sqs:SendMessage"
        );
        assert_eq!(
            map_aws_query(
                "sts",
                None,
                Some(b"Version=2011-06-15&Action=GetCallerIdentity"),
                "*"
            )
            .unwrap()
            .action,
            "sts:GetCallerIdentity"
        );
        assert!(map_aws_query("sts", None, Some(b"Action=Get%2FCaller"), "*").is_none());
    }
}
