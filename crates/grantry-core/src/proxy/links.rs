//! Links that stay on Grantry. Bitbucket's answers name other API resources by absolute URL:
//! `next` and `previous` of a page, every `links.….href`, and the `Location`, `Content-Location`
//! and `Link` headers. A client that follows one must come back through the proxy (with the same
//! connection), not go to Bitbucket with Grantry's API key. Only URLs below the REST root are
//! rewritten; web links (`links.html`), git links (`links.clone`) and all user content
//! (descriptions, comments, file contents, diffs) are left exactly as they are, and so is every
//! answer that is not JSON.

use serde_json::Value;

/// Where Bitbucket's links point, and where the proxy serves the same place.
#[derive(Debug, Clone)]
pub struct Rewrite {
    /// The REST root as Bitbucket writes it, ending in `/`: `https://api.bitbucket.org/2.0/`,
    /// or a Data Center `{base}/rest/`.
    pub from: String,
    /// The same place through the proxy, ending in `/`:
    /// `{public_url}/v1/proxy/{connection}/2.0/` or `…/rest/`.
    pub to: String,
}

/// The largest JSON answer read whole to rewrite it; larger ones pass through untouched.
pub const MAX_REWRITTEN: usize = 32 * 1024 * 1024;

impl Rewrite {
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
    /// link into the REST API at all, or not JSON), so the answer passes as it came.
    pub fn json(&self, body: &[u8]) -> Option<Vec<u8>> {
        let needle = self.from.trim_end_matches('/').as_bytes();
        if !body.windows(needle.len()).any(|window| window == needle) {
            return None;
        }
        let mut value: Value = serde_json::from_slice(body).ok()?;
        let mut changed = false;
        if let Value::Object(page) = &mut value {
            for key in ["next", "previous"] {
                if let Some(Value::String(url)) = page.get_mut(key) {
                    changed |= self.replace(url);
                }
            }
        }
        changed |= self.walk(&mut value, false);
        changed.then(|| serde_json::to_vec(&value).expect("a JSON value serializes"))
    }

    fn replace(&self, url: &mut String) -> bool {
        match self.url(url) {
            Some(rewritten) => {
                *url = rewritten;
                true
            }
            None => false,
        }
    }

    /// Rewrites every `href` inside `links` objects, except web and git links.
    fn walk(&self, value: &mut Value, in_links: bool) -> bool {
        let mut changed = false;
        match value {
            Value::Object(map) => {
                for (key, child) in map.iter_mut() {
                    match (key.as_str(), child) {
                        ("html" | "clone", _) if in_links => {}
                        ("href", Value::String(url)) if in_links => changed |= self.replace(url),
                        ("links", child) => changed |= self.walk(child, true),
                        (_, child) => changed |= self.walk(child, in_links),
                    }
                }
            }
            Value::Array(items) => {
                for item in items {
                    changed |= self.walk(item, in_links);
                }
            }
            _ => {}
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn cloud() -> Rewrite {
        Rewrite {
            from: "https://api.bitbucket.org/2.0/".into(),
            to: "https://grantry.example.com/v1/proxy/con_1/2.0/".into(),
        }
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
}
