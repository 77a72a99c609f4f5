//! Shared by the fuzz targets that build requests from text (included with `#[path]`).

use http::{HeaderMap, HeaderName, HeaderValue};

/// `name: value` lines as a header map; lines that are not a valid header are skipped.
pub fn header_lines<'a>(lines: impl Iterator<Item = &'a str>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.trim().as_bytes()),
            HeaderValue::from_str(value.trim()),
        ) {
            headers.append(name, value);
        }
    }
    headers
}
