//! Where a proxied call may go: only below the provider's REST root (Cloud `…/2.0/`, Data
//! Center `{base}/rest/`), whatever the caller writes.
//!
//! The path is kept as the caller sent it, percent-encoding included, because Bitbucket reads
//! some of it encoded (`%2F` inside a branch name of a diff spec must arrive as `%2F`). So every
//! segment is checked in every spelling a URL parser or a server might resolve: it may hold only
//! the characters a path segment may hold and well-formed `%XX` escapes; decoded, it may hold no
//! control character and no backslash (some servers take it for `/`); and neither the segment nor
//! any part of it between decoded slashes may be `.` or `..`, also once tabs and line breaks are
//! dropped as URL parsers drop them (`.%09.` would otherwise become `..`). After the URL is built,
//! its origin and path are compared with what was intended, so a parser that still normalized
//! something is caught too.
//!
//! One control character is let through encoded: a carriage return (`%0D`), which Bitbucket's own
//! canonical diff URLs use between the two commits
//! (`…/diff/acme/widget:ee29727266d0%0D8c26574ba5fb`); a client following the redirect of a pull
//! request's diff must be able to come back through the proxy.

use url::Url;

/// Why a proxied path was refused, in words for the application's developer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("give the REST path after the connection id, e.g. /v1/proxy/con_…/2.0/user")]
    Empty,
    #[error(
        "the path has an empty segment (`//`); write the REST path as Bitbucket's documentation does"
    )]
    EmptySegment,
    #[error(
        "the path segment `{0}` is a `.` or `..` in some spelling; the proxy only reaches the REST API"
    )]
    DotSegment(String),
    #[error("the path segment `{0}` holds a control character or a backslash")]
    Forbidden(String),
    #[error(
        "the path segment `{0}` holds a character that must be percent-encoded, or a bad `%` escape"
    )]
    Unencoded(String),
    #[error("the path would leave the REST API")]
    Escapes,
}

/// A checked path below a provider's REST root, still percent-encoded as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyPath {
    raw: String,
}

/// Characters a path segment may hold as they are (RFC 3986 `pchar` without `%`).
fn plain(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&byte)
}

fn hex(byte: u8) -> Option<u8> {
    char::from(byte).to_digit(16).map(|d| d as u8)
}

/// The segment's bytes with `%XX` decoded; `None` when it holds anything else unencoded.
fn decode(segment: &str) -> Option<Vec<u8>> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let high = hex(*bytes.get(i + 1)?)?;
                let low = hex(*bytes.get(i + 2)?)?;
                out.push(high << 4 | low);
                i += 3;
            }
            byte if plain(byte) => {
                out.push(byte);
                i += 1;
            }
            _ => return None,
        }
    }
    Some(out)
}

fn check_segment(segment: &str) -> Result<(), PathError> {
    let shown = || segment.chars().take(80).collect::<String>();
    let decoded = decode(segment).ok_or_else(|| PathError::Unencoded(shown()))?;
    let forbidden = |b: &u8| (b.is_ascii_control() && *b != b'\r') || *b == b'\\';
    if decoded.iter().any(forbidden) {
        return Err(PathError::Forbidden(shown()));
    }
    // What a URL parser would make of it: tabs and line breaks dropped.
    let parsed: Vec<u8> = decoded
        .iter()
        .copied()
        .filter(|b| !matches!(b, b'\t' | b'\n' | b'\r'))
        .collect();
    let dot = |part: &[u8]| part == b"." || part == b"..";
    if dot(&parsed) || parsed.split(|b| *b == b'/').any(dot) {
        return Err(PathError::DotSegment(shown()));
    }
    Ok(())
}

impl ProxyPath {
    /// Checks a path as sent (percent-encoded, no leading `/`, no query). A trailing `/` is kept:
    /// Bitbucket's directory listings end in one.
    pub fn parse(raw: &str) -> Result<ProxyPath, PathError> {
        if raw.is_empty() {
            return Err(PathError::Empty);
        }
        let segments: Vec<&str> = raw.split('/').collect();
        let last = segments.len() - 1;
        for (n, segment) in segments.iter().enumerate() {
            if segment.is_empty() {
                if n == last && n > 0 {
                    continue;
                }
                return Err(PathError::EmptySegment);
            }
            check_segment(segment)?;
        }
        Ok(ProxyPath {
            raw: raw.to_owned(),
        })
    }

    /// The path as sent, percent-encoded.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// This path without `prefix` (e.g. `2.0/` of Bitbucket's own layout), if it starts so.
    pub fn strip_prefix(&self, prefix: &str) -> Option<ProxyPath> {
        let rest = self.raw.strip_prefix(prefix)?;
        ProxyPath::parse(rest).ok()
    }

    /// `prefix` and then this path (e.g. `api/latest/` before a Data Center short path).
    pub fn under(&self, prefix: &str) -> ProxyPath {
        ProxyPath {
            raw: format!("{prefix}{}", self.raw),
        }
    }

    /// The URL below `root` (which ends in `/`), with the caller's query. Refused if the built
    /// URL is not exactly `root` followed by this path.
    pub fn url(&self, root: &Url, query: Option<&str>) -> Result<Url, PathError> {
        // The root's scheme, host and port are kept as they are (a clone, not a new parse: the
        // host is never parsed again); only the path and query are set.
        let expected_path = format!("{}{}", root.path(), self.raw);
        let mut url = root.clone();
        url.set_path(&expected_path);
        url.set_query(query.filter(|q| !q.is_empty()));
        if url.path() != expected_path || !url.path().starts_with(root.path()) {
            return Err(PathError::Escapes);
        }
        Ok(url)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn root() -> Url {
        Url::parse("https://api.bitbucket.org/2.0/").unwrap()
    }

    #[test]
    fn bitbucket_paths_pass_as_sent() {
        for path in [
            "user",
            "repositories/acme/widget",
            "repositories/acme/widget/src/main/",
            "repositories/acme/widget/diff/feature%2Fx..main",
            "repositories/acme/widget/diff/acme/widget:ee29727266d0%0D8c26574ba5fb",
            "repositories/acme/widget/src/main/docs/a%20b.md",
            "repositories/%7Bc3f1%7D/widget",
            "workspaces/acme/members/me@example.com",
        ] {
            let parsed = ProxyPath::parse(path).unwrap_or_else(|e| panic!("{path}: {e}"));
            let url = parsed.url(&root(), Some("page=2")).unwrap();
            assert_eq!(
                url.as_str(),
                format!("https://api.bitbucket.org/2.0/{path}?page=2")
            );
        }
    }

    #[test]
    fn every_spelling_of_leaving_the_api_is_refused() {
        for path in [
            "",
            "/user",
            "a//b",
            "..",
            "user/../../x",
            "./user",
            ".%09./.%09./_sim/world",
            ".%0a./x",
            "%09../x",
            "..%09/x",
            "..%0D/x",
            ".%0D./x",
            "a%0D%2F..%0D%2Fb",
            "a%09b",
            "%2e%2E/x",
            ".%2e/x",
            "%2E/x",
            "a%2F..%2Fb",
            "a%2f.%2fb",
            "..%5C..%5Cx",
            "a%5Cb",
            "a%00b",
            "a%7fb",
            "a\tb",
            "a b",
            "a\\b",
            "a%zzb",
            "a%2",
            "ümlaut",
        ] {
            assert!(ProxyPath::parse(path).is_err(), "{path:?} is refused");
        }
    }

    proptest! {
        /// Whatever the path, an accepted one builds a URL on the same host, below the root,
        /// holding exactly the path as sent.
        #[test]
        fn no_accepted_path_leaves_the_root(
            segments in prop::collection::vec(
                prop::string::string_regex("([a-zA-Z0-9._~:@!$&'()*+,;=-]|%[0-9a-fA-F]{2}|%2[eE]|\\.|%09|%0[aAdD]|%5[cC]|%2[fF]|/|\\\\|\\t| |\\?|#){0,8}").unwrap(),
                1..6,
            ),
            query in prop::option::of("[a-z=&%0-9]{0,12}"),
        ) {
            let raw = segments.join("/");
            let roots = [
                Url::parse("https://api.bitbucket.org/2.0/").unwrap(),
                Url::parse("https://git.example.com/bitbucket/rest/").unwrap(),
            ];
            if let Ok(path) = ProxyPath::parse(&raw) {
                for root in &roots {
                    if let Ok(url) = path.url(root, query.as_deref()) {
                        prop_assert_eq!(url.origin(), root.origin());
                        prop_assert!(url.path().starts_with(root.path()));
                        prop_assert_eq!(url.path(), format!("{}{}", root.path(), raw));
                        let resolved: Vec<&str> = url.path_segments().unwrap().collect();
                        prop_assert!(!resolved.iter().any(|s| *s == "." || *s == ".."));
                    }
                }
            }
        }

        /// A path that decodes, with tabs and line breaks dropped as URL parsers do, to a `.` or
        /// `..` anywhere is refused.
        #[test]
        fn dot_segments_in_any_spelling_are_refused(
            before in "[a-z]{0,3}",
            dot in prop::sample::select(vec![".", "..", "%2e", "%2E", ".%2e", "%2e.", "%2e%2E", ".%09.", "%0a..", "..%0d", "%09%2e"]),
            after in "[a-z]{0,3}",
        ) {
            let raw = format!("{before}/{dot}/{after}");
            prop_assert!(ProxyPath::parse(&raw).is_err(), "{} accepted", raw);
        }
    }
}
