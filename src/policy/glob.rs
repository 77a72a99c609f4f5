//! Wildcard patterns (`*`, `?`) with policy variables (`${key}`, `${key, 'default'}`, `${*}`,
//! `${?}`, `${$}`), compiled once and matched without allocating unless a variable is used.

/// One compiled token.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    /// Literal text (already lower-cased for case-insensitive patterns).
    Lit(Box<str>),
    /// `*`: any run of characters (possibly empty).
    Star,
    /// `?`: exactly one character.
    Quest,
    /// `${key}` with an optional default; `key` lower-cased.
    Var {
        key: Box<str>,
        default: Option<Box<str>>,
    },
}

/// A matching unit after variable substitution.
#[derive(Debug, Clone, Copy)]
enum Atom<'a> {
    Lit(&'a str),
    Star,
    Quest,
}

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    toks: Vec<Tok>,
    has_vars: bool,
    has_wildcards: bool,
    case_insensitive: bool,
}

/// How to read pattern text.
#[derive(Debug, Clone, Copy)]
pub struct PatternOptions {
    /// `*` and `?` are wildcards (else literal characters).
    pub wildcards: bool,
    /// `${…}` are policy variables (only under `Version: 2012-10-17`).
    pub variables: bool,
    /// Compare case-insensitively (the pattern is lower-cased; callers lower-case the text).
    pub case_insensitive: bool,
}

/// Resolves a lower-cased variable key to its single value, if present.
pub trait Resolve {
    /// The value of `key` (lower-case), when the key is present and single-valued.
    fn resolve(&self, key: &str) -> Option<&str>;
}

impl Resolve for () {
    fn resolve(&self, _: &str) -> Option<&str> {
        None
    }
}

fn push_lit(toks: &mut Vec<Tok>, s: &str) {
    if s.is_empty() {
        return;
    }
    if let Some(Tok::Lit(prev)) = toks.last_mut() {
        let mut joined = String::with_capacity(prev.len() + s.len());
        joined.push_str(prev);
        joined.push_str(s);
        *prev = joined.into_boxed_str();
    } else {
        toks.push(Tok::Lit(s.into()));
    }
}

impl Pattern {
    /// Compiles pattern text.
    pub fn compile(text: &str, opts: PatternOptions) -> Self {
        let lowered;
        let text = if opts.case_insensitive {
            lowered = text.to_lowercase();
            lowered.as_str()
        } else {
            text
        };
        let mut toks = Vec::new();
        let mut lit = String::new();
        let mut rest = text;
        while let Some(ch) = rest.chars().next() {
            if opts.variables && rest.starts_with("${") {
                if let Some(end) = rest.find('}') {
                    let inner = rest.get(2..end).unwrap_or("");
                    rest = rest.get(end + 1..).unwrap_or("");
                    match inner {
                        "*" | "?" | "$" => lit.push_str(inner),
                        _ => {
                            push_lit(&mut toks, &lit);
                            lit.clear();
                            let (key, default) = match inner.split_once(',') {
                                Some((k, d)) => {
                                    let d = d.trim();
                                    let d = d
                                        .strip_prefix('\'')
                                        .and_then(|d| d.strip_suffix('\''))
                                        .unwrap_or(d);
                                    (k.trim(), Some(Box::<str>::from(d)))
                                }
                                None => (inner.trim(), None),
                            };
                            toks.push(Tok::Var {
                                key: key.to_ascii_lowercase().into(),
                                default,
                            });
                        }
                    }
                    continue;
                }
            }
            rest = &rest[ch.len_utf8()..];
            match ch {
                '*' if opts.wildcards => {
                    push_lit(&mut toks, &lit);
                    lit.clear();
                    if toks.last() != Some(&Tok::Star) {
                        toks.push(Tok::Star);
                    }
                }
                '?' if opts.wildcards => {
                    push_lit(&mut toks, &lit);
                    lit.clear();
                    toks.push(Tok::Quest);
                }
                c => lit.push(c),
            }
        }
        push_lit(&mut toks, &lit);
        let has_vars = toks.iter().any(|t| matches!(t, Tok::Var { .. }));
        let has_wildcards = toks.iter().any(|t| matches!(t, Tok::Star | Tok::Quest));
        Self {
            toks,
            has_vars,
            has_wildcards,
            case_insensitive: opts.case_insensitive,
        }
    }

    /// True for the pattern `*` alone.
    pub fn is_match_all(&self) -> bool {
        self.toks.len() == 1 && self.toks.first() == Some(&Tok::Star)
    }

    /// The literal text when the pattern has no wildcard and no variable.
    pub fn as_literal(&self) -> Option<&str> {
        if self.has_vars || self.has_wildcards {
            return None;
        }
        match self.toks.as_slice() {
            [] => Some(""),
            [Tok::Lit(s)] => Some(s),
            _ => None,
        }
    }

    /// Matches `text` (already lower-cased by the caller for case-insensitive patterns).
    /// `None` when a variable has no value and no default: the pattern matches nothing and a
    /// negated operator treats it as "not equal".
    pub fn matches(&self, text: &str, vars: &dyn Resolve) -> Option<bool> {
        if !self.has_vars {
            if let Some(lit) = self.as_literal() {
                return Some(lit == text);
            }
            let mut atoms: [Atom<'_>; 8] = [Atom::Star; 8];
            if self.toks.len() <= atoms.len() {
                for (slot, t) in atoms.iter_mut().zip(&self.toks) {
                    *slot = match t {
                        Tok::Lit(s) => Atom::Lit(s),
                        Tok::Star => Atom::Star,
                        Tok::Quest | Tok::Var { .. } => Atom::Quest,
                    };
                }
                return Some(glob(atoms.get(..self.toks.len()).unwrap_or(&[]), text));
            }
        }
        let mut lowered: Vec<String> = Vec::new();
        let mut resolved: Vec<(usize, &str)> = Vec::new();
        for (i, t) in self.toks.iter().enumerate() {
            if let Tok::Var { key, default } = t {
                let v = match vars.resolve(key) {
                    Some(v) => v,
                    None => default.as_deref()?,
                };
                if self.case_insensitive {
                    lowered.push(v.to_lowercase());
                    resolved.push((i, ""));
                } else {
                    resolved.push((i, v));
                }
            }
        }
        let mut lowered_iter = lowered.iter();
        let mut resolved_iter = resolved.iter();
        let atoms: Vec<Atom<'_>> = self
            .toks
            .iter()
            .map(|t| match t {
                Tok::Lit(s) => Atom::Lit(s),
                Tok::Star => Atom::Star,
                Tok::Quest => Atom::Quest,
                Tok::Var { .. } => {
                    let v = resolved_iter.next().map_or("", |r| r.1);
                    if self.case_insensitive {
                        Atom::Lit(lowered_iter.next().map_or("", String::as_str))
                    } else {
                        Atom::Lit(v)
                    }
                }
            })
            .collect();
        Some(glob(&atoms, text))
    }
}

fn char_len(text: &str, at: usize) -> usize {
    text.get(at..)
        .and_then(|s| s.chars().next())
        .map_or(1, char::len_utf8)
}

/// Glob match with single-star backtracking (linear in practice, no recursion).
fn glob(atoms: &[Atom<'_>], text: &str) -> bool {
    let (mut ai, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    loop {
        if let Some(atom) = atoms.get(ai) {
            match *atom {
                Atom::Star => {
                    ai += 1;
                    star = Some((ai, ti));
                    continue;
                }
                Atom::Quest if ti < text.len() => {
                    ti += char_len(text, ti);
                    ai += 1;
                    continue;
                }
                Atom::Lit(s) if text.get(ti..).is_some_and(|t| t.starts_with(s)) => {
                    ti += s.len();
                    ai += 1;
                    continue;
                }
                _ => {}
            }
        } else if ti == text.len() {
            return true;
        }
        match star {
            Some((sa, st)) if st < text.len() => {
                let next = st + char_len(text, st);
                star = Some((sa, next));
                ai = sa;
                ti = next;
            }
            _ => return false,
        }
    }
}

/// Case-insensitive equality without allocating.
pub fn eq_ignore_case(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        return a.eq_ignore_ascii_case(b);
    }
    a.chars()
        .flat_map(char::to_lowercase)
        .eq(b.chars().flat_map(char::to_lowercase))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIKE: PatternOptions = PatternOptions {
        wildcards: true,
        variables: true,
        case_insensitive: false,
    };

    struct Vars;
    impl Resolve for Vars {
        fn resolve(&self, key: &str) -> Option<&str> {
            (key == "aws:username").then_some("alice")
        }
    }

    fn m(p: &str, t: &str) -> Option<bool> {
        Pattern::compile(p, LIKE).matches(t, &Vars)
    }

    #[test]
    fn wildcards() {
        assert_eq!(m("*", "anything"), Some(true));
        assert_eq!(m("a*c", "abbbc"), Some(true));
        assert_eq!(m("a?c", "abc"), Some(true));
        assert_eq!(m("a?c", "ac"), Some(false));
        assert_eq!(m("bucket/*/test/*", "bucket/1/2/test/x"), Some(true));
        assert_eq!(m("bucket/*/test/*", "bucket//test/object.jpg"), Some(true));
        assert_eq!(m("bucket/*/test/*", "bucket/test/object.jpg"), Some(false));
        assert_eq!(m("bucket/*/test/*", "bucket/1-test/x"), Some(false));
        assert_eq!(m("é?", "éü"), Some(true));
        assert_eq!(m("*a*a*a*a*a*a*a*a*b", &"a".repeat(200)), Some(false));
    }

    #[test]
    fn variables_and_escapes() {
        assert_eq!(m("home/${aws:username}/*", "home/alice/x"), Some(true));
        assert_eq!(m("home/${AWS:UserName}/*", "home/bob/x"), Some(false));
        assert_eq!(m("home/${aws:PrincipalTag/team}/*", "home/x/y"), None);
        assert_eq!(
            m("home/${aws:PrincipalTag/team, 'shared'}/*", "home/shared/y"),
            Some(true)
        );
        assert_eq!(m("a${*}b", "a*b"), Some(true));
        assert_eq!(m("a${*}b", "axb"), Some(false));
        assert_eq!(m("${?}${$}", "?$"), Some(true));
        let literal = Pattern::compile(
            "home/${aws:username}",
            PatternOptions {
                variables: false,
                ..LIKE
            },
        );
        assert_eq!(literal.matches("home/${aws:username}", &Vars), Some(true));
        assert_eq!(literal.matches("home/alice", &Vars), Some(false));
    }

    #[test]
    fn case_insensitive() {
        let p = Pattern::compile(
            "S3:Get*",
            PatternOptions {
                wildcards: true,
                variables: false,
                case_insensitive: true,
            },
        );
        assert_eq!(p.matches("s3:getobject", &()), Some(true));
        assert!(eq_ignore_case("ÄbC", "äBc"));
    }
}
