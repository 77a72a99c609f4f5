//! Splitting text at ASCII delimiters, for the request path.
//!
//! `str::split(char)` and `str::split_once(char)` search through `CharSearcher`, which calls
//! `memchr` (with its set-up) once per piece. On a request's short pieces — path segments, the
//! `SignedHeaders` list, query pairs, the parts of an ARN — a plain byte loop costs a fraction of
//! that, and together these searches were about 2,000 instructions of every proxied call
//! (`benches/instructions.sh`). Splitting at an ASCII byte leaves both sides valid UTF-8.

/// `s` split around the first `delim` (an ASCII byte), like `str::split_once`.
#[inline]
pub fn split_once(s: &str, delim: u8) -> Option<(&str, &str)> {
    debug_assert!(delim.is_ascii());
    let i = s.bytes().position(|b| b == delim)?;
    Some((s.get(..i)?, s.get(i + 1..)?))
}

/// The pieces of `s` between `delim`s (an ASCII byte), like `str::split`: `n` delimiters give
/// `n + 1` pieces, empty ones included.
#[inline]
pub fn split(s: &str, delim: u8) -> Split<'_> {
    debug_assert!(delim.is_ascii());
    Split {
        rest: Some(s),
        delim,
    }
}

/// The iterator of [`split`].
#[derive(Debug, Clone)]
pub struct Split<'a> {
    rest: Option<&'a str>,
    delim: u8,
}

impl<'a> Iterator for Split<'a> {
    type Item = &'a str;

    #[inline]
    fn next(&mut self) -> Option<&'a str> {
        let rest = self.rest?;
        match split_once(rest, self.delim) {
            Some((piece, tail)) => {
                self.rest = Some(tail);
                Some(piece)
            }
            None => {
                self.rest = None;
                Some(rest)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn like_the_str_methods() {
        for s in [
            "",
            "a",
            ";",
            "a;b",
            ";a;;b;",
            "host;x-amz-date",
            "é;ü;",
            ";;",
        ] {
            assert_eq!(
                split(s, b';').collect::<Vec<_>>(),
                s.split(';').collect::<Vec<_>>()
            );
            assert_eq!(split_once(s, b';'), s.split_once(';'));
        }
    }

    proptest! {
        #[test]
        fn split_matches_str_split(s in "[a-c;/é=&]{0,24}", d in prop::sample::select(vec![b';', b'/', b'=', b'&'])) {
            let c = char::from(d);
            prop_assert_eq!(split(&s, d).collect::<Vec<_>>(), s.split(c).collect::<Vec<_>>());
            prop_assert_eq!(split_once(&s, d), s.split_once(c));
        }
    }
}
