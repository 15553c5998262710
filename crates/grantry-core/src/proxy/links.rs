//! Links that stay on Grantry. Bitbucket's answers name other API resources by absolute URL:
//! `next` and `previous` of a page, every `links.….href`, and the `Location`, `Content-Location`
//! and `Link` headers. A client that follows one must come back through the proxy (with the same
//! connection), not go to Bitbucket with Grantry's API key. Only URLs below the REST root are
//! rewritten; web links (`links.html`), git links (`links.clone`) and all user content
//! (descriptions, comments, file contents, diffs) are left exactly as they are, and so is every
//! answer that is not JSON.

use crate::json::needs_no_escape;

/// Where Bitbucket's links point, and where the proxy serves the same place.
#[derive(Debug, Clone)]
pub struct Rewrite {
    /// The REST root as Bitbucket writes it, ending in `/`: `https://api.bitbucket.org/2.0/`,
    /// or a Data Center `{base}/rest/`.
    pub from: String,
    /// The same place through the proxy, ending in `/`:
    /// `{public_url}/v1/proxy/{connection}/2.0/` or `…/rest/`.
    pub to: String,
    /// `to` can go into a JSON string as it is, and both roots end in `/` as documented: the
    /// byte-copying rewrite relies on both.
    to_is_plain: bool,
}

/// The largest JSON answer read whole to rewrite it; larger ones pass through untouched.
pub const MAX_REWRITTEN: usize = 32 * 1024 * 1024;

impl Rewrite {
    pub fn new(from: String, to: String) -> Rewrite {
        let to_is_plain =
            needs_no_escape(to.as_bytes()) && from.ends_with('/') && to.ends_with('/');
        Rewrite {
            from,
            to,
            to_is_plain,
        }
    }

    /// `url` through the proxy, if it points into the REST API.
    pub fn url(&self, url: &str) -> Option<String> {
        if let Some(rest) = url.strip_prefix(&self.from) {
            return Some(format!("{}{rest}", self.to));
        }
        (url == self.from.trim_end_matches('/')).then(|| self.to.trim_end_matches('/').to_owned())
    }

    /// A `Link` header with each `<…>` target that points into the REST API rewritten.
    pub fn link_header(&self, value: &str) -> String {
        let mut out = String::with_capacity(value.len() + 64);
        let mut rest = value;
        while let Some(open) = rest.find('<') {
            let Some(close) = rest[open..].find('>') else {
                break;
            };
            let target = &rest[open + 1..open + close];
            out.push_str(&rest[..=open]);
            out.push_str(&self.url(target).unwrap_or_else(|| target.to_owned()));
            out.push('>');
            rest = &rest[open + close + 1..];
        }
        out.push_str(rest);
        out
    }

    /// A JSON answer with its API links rewritten; `None` when there is nothing to rewrite (no
    /// link into the REST API at all, or not JSON), so the answer passes as it came. Every byte
    /// but the rewritten links is copied as it was: spacing, key order, escapes and numbers.
    pub fn json(&self, body: &[u8]) -> Option<Vec<u8>> {
        let needle = self.from.trim_end_matches('/').as_bytes();
        memchr::memmem::find(body, needle)?;
        let mut scan = Scan {
            rewrite: self,
            body,
            at: 0,
            out: Vec::with_capacity(body.len() + 256),
            copied: 0,
            changed: false,
        };
        scan.value(Place::Top, false, 0)?;
        scan.whitespace();
        if scan.at != body.len() || !scan.changed {
            return None;
        }
        scan.out.extend_from_slice(&body[scan.copied..]);
        Some(scan.out)
    }
}

/// Where a JSON value sits, which decides whether a string there is a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// The answer itself.
    Top,
    /// A member of the answer object (or of a top-level array): its `next` and `previous` are
    /// links when the answer is an object.
    Page,
    /// Inside a `links` object: `href`s are links.
    Links,
    /// Inside `links.html` or `links.clone`: web and git links, left alone.
    Kept,
    /// Anywhere else: user content and data, never changed.
    Other,
}

/// Deeper texts are left untouched rather than risk the stack (Bitbucket's nest a few levels).
const MAX_DEPTH: usize = 128;

/// One pass over a JSON text that copies it, replacing only link strings.
struct Scan<'a> {
    rewrite: &'a Rewrite,
    body: &'a [u8],
    at: usize,
    out: Vec<u8>,
    /// Bytes before this offset are already in `out`.
    copied: usize,
    changed: bool,
}

impl Scan<'_> {
    fn peek(&self) -> Option<u8> {
        self.body.get(self.at).copied()
    }

    fn whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        self.whitespace();
        (self.peek()? == byte).then(|| self.at += 1)
    }

    /// Skips the string starting at `at`; answers where it started.
    fn string(&mut self) -> Option<usize> {
        let start = self.at;
        (self.peek()? == b'"').then_some(())?;
        self.at += 1;
        loop {
            let next = memchr::memchr2(b'"', b'\\', self.body.get(self.at..)?)?;
            self.at += next;
            if self.body[self.at] == b'\\' {
                self.at += 2;
            } else {
                self.at += 1;
                return Some(start);
            }
        }
    }

    /// A string value, replaced in the output when `link` says it is one and it points into the
    /// REST API.
    fn string_value(&mut self, link: bool) -> Option<()> {
        let start = self.string()?;
        if !link {
            return Some(());
        }
        let raw = &self.body[start + 1..self.at - 1];
        // Bitbucket writes its links in plain ASCII without escapes: then the text is the bytes
        // between the quotes, and the rewritten link is `to` and the rest, copied as they are
        // (`to` needs no escaping either; `Rewrite::new` checks). Anything else goes through
        // serde_json, which decodes and re-escapes.
        if self.rewrite.to_is_plain && needs_no_escape(raw) {
            let from = self.rewrite.from.as_bytes();
            let rest = if let Some(rest) = raw.strip_prefix(from) {
                Some((self.rewrite.to.as_bytes(), rest))
            } else if raw == &from[..from.len() - 1] {
                Some((
                    &self.rewrite.to.as_bytes()[..self.rewrite.to.len() - 1],
                    &b""[..],
                ))
            } else {
                None
            };
            if let Some((to, rest)) = rest {
                self.out.extend_from_slice(&self.body[self.copied..start]);
                self.out.push(b'"');
                self.out.extend_from_slice(to);
                self.out.extend_from_slice(rest);
                self.out.push(b'"');
                self.copied = self.at;
                self.changed = true;
            }
            return Some(());
        }
        let text: String = serde_json::from_slice(&self.body[start..self.at]).ok()?;
        if let Some(rewritten) = self.rewrite.url(&text) {
            self.out.extend_from_slice(&self.body[self.copied..start]);
            let quoted = serde_json::to_vec(&rewritten).expect("a string serializes");
            self.out.extend_from_slice(&quoted);
            self.copied = self.at;
            self.changed = true;
        }
        Some(())
    }

    /// One value at `place`; `link` says whether a string here is a link.
    fn value(&mut self, place: Place, link: bool, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.whitespace();
        match self.peek()? {
            b'"' => self.string_value(link),
            b'{' => self.object(place, depth),
            b'[' => self.array(place, depth),
            _ => {
                // A number, true, false or null: copied as it is.
                let rest = self.body.get(self.at..)?;
                let end = rest
                    .iter()
                    .position(|b| matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
                    .unwrap_or(rest.len());
                (end > 0).then(|| self.at += end)
            }
        }
    }

    /// What a member named `key` of an object at `place` is.
    fn member(place: Place, key: &[u8]) -> (Place, bool) {
        match (place, key) {
            (Place::Top, b"next" | b"previous") => (Place::Page, true),
            (Place::Top | Place::Page | Place::Other, b"links") => (Place::Links, false),
            (Place::Top, _) => (Place::Page, false),
            (Place::Links, b"html" | b"clone") => (Place::Kept, false),
            (Place::Links, b"href") => (Place::Links, true),
            (Place::Links, _) => (Place::Links, false),
            (Place::Kept, _) => (Place::Kept, false),
            (Place::Page | Place::Other, _) => (Place::Other, false),
        }
    }

    fn object(&mut self, place: Place, depth: usize) -> Option<()> {
        self.at += 1;
        self.whitespace();
        if self.peek()? == b'}' {
            self.at += 1;
            return Some(());
        }
        loop {
            self.whitespace();
            let start = self.string()?;
            let key = &self.body[start + 1..self.at - 1];
            let (child, link) = Self::member(place, key);
            self.expect(b':')?;
            self.value(child, link, depth + 1)?;
            self.whitespace();
            match self.peek()? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    fn array(&mut self, place: Place, depth: usize) -> Option<()> {
        self.at += 1;
        self.whitespace();
        if self.peek()? == b']' {
            self.at += 1;
            return Some(());
        }
        let place = match place {
            Place::Top | Place::Page => Place::Other,
            other => other,
        };
        loop {
            self.value(place, false, depth + 1)?;
            self.whitespace();
            match self.peek()? {
                b',' => self.at += 1,
                b']' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;

    fn cloud() -> Rewrite {
        Rewrite::new(
            "https://api.bitbucket.org/2.0/".into(),
            "https://grantry.example.com/v1/proxy/con_1/2.0/".into(),
        )
    }

    #[test]
    fn api_links_and_pages_point_back_through_the_proxy() {
        let page = json!({
            "pagelen": 1,
            "next": "https://api.bitbucket.org/2.0/repositories/acme?page=2",
            "values": [{
                "type": "repository",
                "description": "Mirror of https://api.bitbucket.org/2.0/repositories/acme/x",
                "links": {
                    "self": {"href": "https://api.bitbucket.org/2.0/repositories/acme/widget"},
                    "html": {"href": "https://bitbucket.org/acme/widget"},
                    "clone": [{"name": "https", "href": "https://bitbucket.org/acme/widget.git"}],
                    "pullrequests": {"href": "https://api.bitbucket.org/2.0/repositories/acme/widget/pullrequests"},
                },
                "owner": {"links": {"avatar": {"href": "https://api.bitbucket.org/2.0/users/x/avatar"}}}
            }]
        });
        let rewritten: Value =
            serde_json::from_slice(&cloud().json(page.to_string().as_bytes()).unwrap()).unwrap();
        let proxy = "https://grantry.example.com/v1/proxy/con_1/2.0/";
        assert_eq!(
            rewritten["next"],
            format!("{proxy}repositories/acme?page=2")
        );
        let repo = &rewritten["values"][0];
        assert_eq!(
            repo["links"]["self"]["href"],
            format!("{proxy}repositories/acme/widget")
        );
        assert_eq!(
            repo["links"]["pullrequests"]["href"],
            format!("{proxy}repositories/acme/widget/pullrequests")
        );
        assert_eq!(
            repo["owner"]["links"]["avatar"]["href"],
            format!("{proxy}users/x/avatar")
        );
        assert_eq!(
            repo["links"]["html"]["href"], "https://bitbucket.org/acme/widget",
            "web links stay"
        );
        assert_eq!(
            repo["links"]["clone"][0]["href"], "https://bitbucket.org/acme/widget.git",
            "git links stay"
        );
        assert_eq!(
            repo["description"], "Mirror of https://api.bitbucket.org/2.0/repositories/acme/x",
            "user content is never changed"
        );
    }

    #[test]
    fn links_written_with_escapes_or_beyond_ascii_are_rewritten_all_the_same() {
        // The plain links take a shortcut; these go through serde_json, and must end the same.
        let escaped = br#"{"next": "https:\/\/api.bitbucket.org\/2.0\/x?page=2", "links": {"self": {"href": "https://api.bitbucket.org/2.0/users/\u00e9t\u00e9"}}}"#;
        let out: Value = serde_json::from_slice(&cloud().json(escaped).unwrap()).unwrap();
        assert_eq!(
            out["next"],
            "https://grantry.example.com/v1/proxy/con_1/2.0/x?page=2"
        );
        assert_eq!(
            out["links"]["self"]["href"],
            "https://grantry.example.com/v1/proxy/con_1/2.0/users/été"
        );
        let root = br#"{"links": {"self": {"href": "https://api.bitbucket.org/2.0"}}}"#;
        assert_eq!(
            cloud().json(root).unwrap(),
            br#"{"links": {"self": {"href": "https://grantry.example.com/v1/proxy/con_1/2.0"}}}"#,
            "the root itself, without its slash"
        );
    }

    #[test]
    fn answers_without_api_links_pass_as_they_came() {
        assert!(cloud().json(br#"{"values": [], "pagelen": 10}"#).is_none());
        assert!(cloud().json(b"diff --git a/x b/x").is_none());
        assert!(
            cloud()
                .json(b"not json https://api.bitbucket.org/2.0/x")
                .is_none(),
            "not JSON: untouched"
        );
        let only_content = br#"{"message": "see https://api.bitbucket.org/2.0/user"}"#;
        assert!(
            cloud().json(only_content).is_none(),
            "a mention is not a link"
        );
    }

    #[test]
    fn headers_point_back_through_the_proxy() {
        let rewrite = cloud();
        assert_eq!(
            rewrite
                .url("https://api.bitbucket.org/2.0/repositories/a/b/diff/x..y")
                .unwrap(),
            "https://grantry.example.com/v1/proxy/con_1/2.0/repositories/a/b/diff/x..y"
        );
        assert_eq!(rewrite.url("https://bitbucket.org/a/b"), None);
        assert_eq!(
            rewrite.link_header(r#"<https://api.bitbucket.org/2.0/x?page=2>; rel="next", <https://bitbucket.org/y>; rel="alternate""#),
            r#"<https://grantry.example.com/v1/proxy/con_1/2.0/x?page=2>; rel="next", <https://bitbucket.org/y>; rel="alternate""#
        );
    }

    #[test]
    fn everything_but_the_links_keeps_its_bytes() {
        // Bitbucket's spacing, an escaped slash, a number written its own way, key order.
        let body = br#"{"size": 1.50, "next": "https:\/\/api.bitbucket.org\/2.0\/x?page=2",  "values" : [ {"links": {"self": {"href": "https://api.bitbucket.org/2.0/y"}}, "z": "\u00e9"} ] }"#;
        let out = String::from_utf8(cloud().json(body).unwrap()).unwrap();
        assert_eq!(
            out,
            r#"{"size": 1.50, "next": "https://grantry.example.com/v1/proxy/con_1/2.0/x?page=2",  "values" : [ {"links": {"self": {"href": "https://grantry.example.com/v1/proxy/con_1/2.0/y"}}, "z": "\u00e9"} ] }"#
        );
        assert!(
            cloud()
                .json(br#"{"next": "https://api.bitbucket.org/2.0/x""#)
                .is_none(),
            "cut short: untouched"
        );
        let deep = format!(
            "{}\"https://api.bitbucket.org/2.0/\"{}",
            "[".repeat(500),
            "]".repeat(500)
        );
        assert!(
            cloud().json(deep.as_bytes()).is_none(),
            "too deep: untouched, no stack overflow"
        );
    }

    /// The rule, written plainly over a parsed value: the reference the scanner must agree with.
    fn reference(rewrite: &Rewrite, value: &mut Value) {
        fn walk(rewrite: &Rewrite, value: &mut Value, in_links: bool) {
            match value {
                Value::Object(map) => {
                    for (key, child) in map.iter_mut() {
                        match (key.as_str(), child) {
                            ("html" | "clone", _) if in_links => {}
                            ("href", Value::String(url)) if in_links => {
                                if let Some(new) = rewrite.url(url) {
                                    *url = new;
                                }
                            }
                            ("links", child) => walk(rewrite, child, true),
                            (_, child) => walk(rewrite, child, in_links),
                        }
                    }
                }
                Value::Array(items) => items
                    .iter_mut()
                    .for_each(|item| walk(rewrite, item, in_links)),
                _ => {}
            }
        }
        if let Value::Object(page) = value {
            for key in ["next", "previous"] {
                if let Some(Value::String(url)) = page.get_mut(key)
                    && let Some(new) = rewrite.url(url)
                {
                    *url = new;
                }
            }
        }
        walk(rewrite, value, false);
    }

    fn json_values() -> impl Strategy<Value = Value> {
        let text = prop_oneof![
            Just("https://api.bitbucket.org/2.0/repositories/a".to_owned()),
            Just("https://bitbucket.org/a/b".to_owned()),
            Just("https://api.bitbucket.org/2.0".to_owned()),
            "[a-z /:.é\"\\\\]{0,12}",
        ];
        let leaf = prop_oneof![
            text.prop_map(Value::String),
            any::<i32>().prop_map(|n| json!(n)),
            any::<bool>().prop_map(Value::Bool),
            Just(Value::Null),
        ];
        let key = prop_oneof![
            Just("links".to_owned()),
            Just("href".to_owned()),
            Just("html".to_owned()),
            Just("clone".to_owned()),
            Just("next".to_owned()),
            Just("previous".to_owned()),
            Just("self".to_owned()),
            "[a-z]{1,6}",
        ];
        leaf.prop_recursive(5, 64, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::btree_map(key.clone(), inner, 0..6)
                    .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn the_scanner_rewrites_exactly_what_the_rule_says(value in json_values(), pretty in any::<bool>()) {
            let body = if pretty {
                serde_json::to_vec_pretty(&value).unwrap()
            } else {
                serde_json::to_vec(&value).unwrap()
            };
            let mut expected = value.clone();
            reference(&cloud(), &mut expected);
            let scanned: Value = match cloud().json(&body) {
                Some(out) => serde_json::from_slice(&out).unwrap(),
                None => value.clone(),
            };
            prop_assert_eq!(scanned, expected);
        }
    }
}
