//! Turns a byte offset in a TOML document into a line, a column and (best effort) the key path
//! at that point, e.g. `users[1].access_keys[0].status`.
//!
//! The toml crate reports where an error is but not which key it belongs to, so this walks the
//! text line by line, tracking table headers (`[a]`, `[[a.b]]`, counting array-of-tables
//! entries), assignments, multi-line strings and multi-line arrays or inline tables.

use std::collections::HashMap;

/// Where an offset is.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Location {
    /// 1-based line.
    pub(crate) line: usize,
    /// 1-based column, in characters.
    pub(crate) column: usize,
    /// The key path, when the offset is inside a table or an assignment.
    pub(crate) key: Option<String>,
}

/// Locates `offset` (clamped to the text) in `text`.
pub(crate) fn locate(text: &str, offset: usize) -> Location {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = text.get(..offset).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).unwrap_or("").chars().count() + 1;
    Location {
        line,
        column,
        key: key_at_line(text, line),
    }
}

#[derive(Default)]
struct Walker {
    /// The current table, as displayed segments (`users[1]`, `access_keys[0]`).
    table: Vec<String>,
    /// Entries seen so far per array of tables, keyed by its displayed path.
    counts: HashMap<String, usize>,
    /// The path of the most recent assignment.
    last_key: Option<String>,
    /// Open brackets and braces of a value spanning lines.
    depth: i64,
    /// The delimiter of an open multi-line string.
    multiline: Option<&'static str>,
}

fn key_at_line(text: &str, target: usize) -> Option<String> {
    let mut w = Walker::default();
    for (index, line) in text.lines().enumerate() {
        let is_target = index + 1 == target;
        if w.multiline.is_some() || w.depth > 0 {
            // Continuation of the previous assignment's value.
            w.scan_value(line);
            if is_target {
                return w.last_key;
            }
            continue;
        }
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed.strip_prefix("[[") {
            let name = rest.split("]]").next().unwrap_or("");
            w.enter_table(name, true);
        } else if let Some(rest) = trimmed.strip_prefix('[') {
            let name = rest.split(']').next().unwrap_or("");
            w.enter_table(name, false);
        } else if let Some((key, value)) = split_assignment(trimmed) {
            let mut path = w.table.clone();
            path.extend(split_dotted(key).into_iter().map(|s| display_segment(&s)));
            w.last_key = Some(path.join("."));
            w.scan_value(value);
            if is_target {
                return w.last_key;
            }
            continue;
        }
        if is_target {
            return w.table_path();
        }
    }
    let table = w.table_path();
    w.last_key.or(table)
}

impl Walker {
    fn table_path(&self) -> Option<String> {
        (!self.table.is_empty()).then(|| self.table.join("."))
    }

    fn enter_table(&mut self, header: &str, array: bool) {
        let names = split_dotted(header);
        let last = names.len().saturating_sub(1);
        let mut path: Vec<String> = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let shown = display_segment(name);
            let mut base = path.clone();
            base.push(shown.clone());
            let base = base.join(".");
            let segment = if array && i == last {
                let count = self.counts.entry(base).or_insert(0);
                *count += 1;
                format!("{shown}[{}]", *count - 1)
            } else if let Some(count) = self.counts.get(&base) {
                format!("{shown}[{}]", count.saturating_sub(1))
            } else {
                shown
            };
            path.push(segment);
        }
        self.table = path;
        self.last_key = None;
    }

    /// Follows a value's text: strings, comments, brackets, multi-line strings.
    fn scan_value(&mut self, text: &str) {
        let mut rest = text;
        loop {
            if let Some(delim) = self.multiline {
                match rest.find(delim) {
                    Some(at) => {
                        rest = rest.get(at + delim.len()..).unwrap_or("");
                        self.multiline = None;
                    }
                    None => return,
                }
            }
            let Some(c) = rest.chars().next() else {
                return;
            };
            let after = rest.get(c.len_utf8()..).unwrap_or("");
            match c {
                '#' => return,
                '"' | '\'' => {
                    let triple = if c == '"' { "\"\"\"" } else { "'''" };
                    if let Some(inner) = rest.strip_prefix(triple) {
                        self.multiline = Some(triple);
                        rest = inner;
                    } else {
                        rest = skip_string(after, c);
                    }
                    continue;
                }
                '[' | '{' => self.depth += 1,
                ']' | '}' => self.depth -= 1,
                _ => {}
            }
            rest = after;
        }
    }
}

/// The text after a single-line string whose opening quote was just consumed.
fn skip_string(text: &str, quote: char) -> &str {
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' && quote == '"' {
            escaped = true;
        } else if c == quote {
            return text.get(i + c.len_utf8()..).unwrap_or("");
        }
    }
    ""
}

/// `key = value` → (`key`, `value`), with `=` found outside quoted key parts.
fn split_assignment(line: &str) -> Option<(&str, &str)> {
    let first = line.chars().next()?;
    if !(first.is_ascii_alphanumeric() || matches!(first, '_' | '-' | '"' | '\'')) {
        return None;
    }
    let mut quote: Option<char> = None;
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '=') => {
                return Some((line.get(..i)?.trim(), line.get(i + 1..)?));
            }
            _ => {}
        }
    }
    None
}

/// `a."b.c".d` → [`a`, `b.c`, `d`].
fn split_dotted(key: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    for c in key.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => current.push(c),
            (None, '"' | '\'') => quote = Some(c),
            (None, '.') => parts.push(std::mem::take(&mut current).trim().to_owned()),
            (None, c) => current.push(c),
        }
    }
    parts.push(current.trim().to_owned());
    parts
}

/// A key as shown in a key path: bare when it can be, quoted otherwise.
pub(crate) fn display_segment(name: &str) -> String {
    let bare = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        name.to_owned()
    } else {
        format!("{name:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_of(text: &str, needle: &str) -> Option<String> {
        let at = text.find(needle).unwrap();
        locate(text, at).key
    }

    #[test]
    fn line_and_column() {
        let text = "a = 1\nbb = 2\n";
        let loc = locate(text, text.find("2").unwrap());
        assert_eq!((loc.line, loc.column), (2, 6));
        assert_eq!(loc.key.as_deref(), Some("bb"));
    }

    #[test]
    fn arrays_of_tables_are_counted_per_parent() {
        let text = "[auth]\nregions = []\n[[users]]\nname = \"a\"\n[[users.access_keys]]\nid = \"1\"\n\
                    [[users]]\nname = \"b\"\n[[users.access_keys]]\nid = \"2\"\n[[users.access_keys]]\n\
                    sttus = \"x\"\n";
        assert_eq!(key_of(text, "regions").as_deref(), Some("auth.regions"));
        assert_eq!(
            key_of(text, "name = \"b\"").as_deref(),
            Some("users[1].name")
        );
        assert_eq!(
            key_of(text, "id = \"2\"").as_deref(),
            Some("users[1].access_keys[0].id")
        );
        assert_eq!(
            key_of(text, "sttus").as_deref(),
            Some("users[1].access_keys[1].sttus")
        );
    }

    #[test]
    fn header_line_gives_the_table() {
        let text = "[[users]]\nname = \"a\"\n[[users]]\n";
        let loc = locate(text, text.rfind("[[users]]").unwrap());
        assert_eq!(loc.key.as_deref(), Some("users[1]"));
    }

    #[test]
    fn multi_line_values_belong_to_their_key() {
        let text = "[[policies]]\nname = \"p\"\ndocument = '''\n{\n  \"Statement\": [\n   {\"a\": 1}\n  ]\n}\n'''\n\
                    [upstream]\nhost = [\n  \"x\",\n  { y = 1 },\n]\nurl = 1\n";
        assert_eq!(
            key_of(text, "\"Statement\"").as_deref(),
            Some("policies[0].document")
        );
        assert_eq!(key_of(text, "{ y").as_deref(), Some("upstream.host"));
        assert_eq!(key_of(text, "url").as_deref(), Some("upstream.url"));
    }

    #[test]
    fn quoted_and_dotted_keys() {
        let text = "[[users]]\ntags.\"cost center\" = 5\n";
        assert_eq!(
            key_of(text, "5").as_deref(),
            Some("users[0].tags.\"cost center\"")
        );
    }

    #[test]
    fn top_level_key_and_offset_past_end() {
        let text = "secrets_file = 3";
        assert_eq!(key_of(text, "3").as_deref(), Some("secrets_file"));
        let loc = locate(text, 999);
        assert_eq!((loc.line, loc.column), (1, 17));
    }
}
