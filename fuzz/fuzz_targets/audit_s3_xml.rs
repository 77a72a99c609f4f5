//! The S3 audit sink's response parsers: the ListObjectsV2 `ListBucketResult` parser, the
//! element reader that takes `<Code>` / `<Message>` out of error bodies, and the cut that makes
//! them printable. Must never panic, and:
//!
//! - on any body: a listing has at most one key per `<Contents>`, and a next page only with a
//!   non-empty token; `printable` output has no control character and at most `max`
//!   characters (and `…`), and is the text itself when that is short and clean;
//! - on listings rendered from arbitrary keys and tokens (escaped with named entities, decimal
//!   or hex character references, elements in any order, pretty-printed or not): exactly those
//!   keys, in order, and the token when the listing is truncated;
//! - on error bodies rendered from arbitrary codes and messages: exactly those.
//!
//! Input: the first byte selects the mode; 0 → the rest is a response body, 1 → the rest drives
//! a rendered listing, otherwise → a rendered error body. Seeds (`seeds/audit_s3_xml/`) hold
//! listings (with pagination) and error bodies as S3 and MinIO send them.
#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use tollgate::audit::s3::{fuzz_parse_list, fuzz_printable, fuzz_xml_element};

fn check_printable(s: &str, max: usize) {
    let out = fuzz_printable(s, max);
    assert!(!out.chars().any(char::is_control), "{out:?}");
    let n = out.chars().count();
    if s.chars().count() > max {
        assert_eq!(n, max + 1);
        assert!(out.ends_with('…'));
    } else {
        assert_eq!(n, s.chars().count());
        if !s.chars().any(char::is_control) {
            assert_eq!(out, s);
        }
    }
}

fn check_body(body: &str) {
    if let Ok((keys, next)) = fuzz_parse_list(body) {
        assert!(keys.len() <= body.matches("<Contents>").count());
        assert!(next.as_ref().is_none_or(|t| !t.is_empty()));
        assert!(body.contains("<ListBucketResult"));
    }
    for name in ["Code", "Message"] {
        if let Some(text) = fuzz_xml_element(body, name) {
            assert!(text.len() <= body.len());
            check_printable(&text, 64);
            check_printable(&text, 200);
        }
    }
    check_printable(body, 16);
}

/// Escapes `s` as element text, each character in a style the input picks: `&` and `<` always
/// escaped, `>`, quotes and any other character optionally, as a named entity, `&#N;` or
/// `&#xH;`.
fn escape(u: &mut Unstructured<'_>, s: &str) -> Result<String> {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let style = u.int_in_range(0..=3)?;
        let named = match c {
            '&' => Some("&amp;"),
            '<' => Some("&lt;"),
            '>' => Some("&gt;"),
            '"' => Some("&quot;"),
            '\'' => Some("&apos;"),
            _ => None,
        };
        match (style, named) {
            (0, _) if c != '&' && c != '<' => out.push(c),
            (1, Some(entity)) => out.push_str(entity),
            (0 | 1, _) if c != '&' && c != '<' => out.push(c),
            (2, _) => out.push_str(&format!("&#{};", u32::from(c))),
            _ => out.push_str(&format!("&#x{:X};", u32::from(c))),
        }
    }
    Ok(out)
}

/// Whitespace between elements, when pretty-printed.
fn gap(pretty: bool) -> &'static str {
    if pretty {
        "\n  "
    } else {
        ""
    }
}

fn listing(u: &mut Unstructured<'_>) -> Result<()> {
    let pretty: bool = u.arbitrary()?;
    let g = gap(pretty);
    let n = u.int_in_range(0..=6)?;
    let keys: Vec<String> = (0..n).map(|_| u.arbitrary()).collect::<Result<_>>()?;
    let token: String = u.arbitrary()?;
    let truncated: bool = u.arbitrary()?;
    let prefix: String = u.arbitrary()?;

    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    xml.push_str("<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
    xml.push_str(&format!("{g}<Name>tollgate-audit</Name>"));
    xml.push_str(&format!("{g}<Prefix>{}</Prefix>", escape(u, &prefix)?));
    if u.arbitrary()? {
        let current: String = u.arbitrary()?;
        xml.push_str(&format!(
            "{g}<ContinuationToken>{}</ContinuationToken>",
            escape(u, &current)?
        ));
    }
    xml.push_str(&format!(
        "{g}<KeyCount>{n}</KeyCount><MaxKeys>1000</MaxKeys>"
    ));
    let truncated_first: bool = u.arbitrary()?;
    let is_truncated = format!("{g}<IsTruncated>{truncated}</IsTruncated>");
    if truncated_first && (truncated || u.arbitrary()?) {
        xml.push_str(&is_truncated);
    }
    for key in &keys {
        let mut parts = vec![
            format!("<Key>{}</Key>", escape(u, key)?),
            "<LastModified>2025-01-15T12:00:00.000Z</LastModified>".to_owned(),
            "<ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag>".to_owned(),
            "<Size>1042</Size>".to_owned(),
            "<StorageClass>STANDARD</StorageClass>".to_owned(),
        ];
        if u.arbitrary()? {
            parts.push("<Owner><ID>02d6176db174dc93cb1b899f7c6078f08654445fe8cf1b6ce98d8855f66bdbf4</ID><DisplayName>minio</DisplayName></Owner>".to_owned());
        }
        // The key anywhere among the other elements.
        let at = u.int_in_range(0..=parts.len() - 1)?;
        parts.swap(0, at);
        xml.push_str(&format!("{g}<Contents>"));
        for p in parts {
            xml.push_str(g);
            xml.push_str(g);
            xml.push_str(&p);
        }
        xml.push_str(&format!("{g}</Contents>"));
    }
    if u.arbitrary()? {
        xml.push_str(&format!(
            "{g}<CommonPrefixes><Prefix>{}</Prefix></CommonPrefixes>",
            escape(u, &prefix)?
        ));
    }
    if truncated {
        xml.push_str(&format!(
            "{g}<NextContinuationToken>{}</NextContinuationToken>",
            escape(u, &token)?
        ));
    }
    if !truncated_first && (truncated || u.arbitrary()?) {
        xml.push_str(&is_truncated);
    }
    xml.push_str("\n</ListBucketResult>");

    match fuzz_parse_list(&xml) {
        Ok((got, next)) => {
            assert_eq!(got, keys, "{xml}");
            assert!(!truncated || !token.is_empty(), "{xml}");
            assert_eq!(next, truncated.then_some(token), "{xml}");
        }
        Err(e) => assert!(truncated && token.is_empty(), "{e}: {xml}"),
    }
    check_body(&xml);
    Ok(())
}

fn error_body(u: &mut Unstructured<'_>) -> Result<()> {
    let code: String = u.arbitrary()?;
    let message: String = u.arbitrary()?;
    let g = gap(u.arbitrary()?);
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>{g}<Code>{}</Code>{g}<Message>{}</Message>{g}<Key>AWSLogs/x.json.gz</Key>{g}<BucketName>tollgate-audit</BucketName>{g}<RequestId>4442587FB7D0A2F9</RequestId>{g}<HostId>h</HostId>\n</Error>",
        escape(u, &code)?,
        escape(u, &message)?,
    );
    assert_eq!(fuzz_xml_element(&xml, "Code"), Some(code), "{xml}");
    assert_eq!(fuzz_xml_element(&xml, "Message"), Some(message), "{xml}");
    assert!(fuzz_parse_list(&xml).is_err());
    check_body(&xml);
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode {
        0 => check_body(&String::from_utf8_lossy(rest)),
        1 => {
            let _ = listing(&mut Unstructured::new(rest));
        }
        _ => {
            let _ = error_body(&mut Unstructured::new(rest));
        }
    }
});
