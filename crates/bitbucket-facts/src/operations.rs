//! Bitbucket Cloud's REST operations and the OAuth scopes each one needs, from Bitbucket's
//! published OpenAPI document (318 operations).

use std::sync::OnceLock;

use crate::scopes::ScopeSet;
use crate::{api_tokens, cloud};

const TABLE: &str = include_str!("../data/operation-scopes.tsv");

/// Operations Bitbucket published after the OpenAPI snapshot the table was made from, in the
/// table's columns. `GET /user/workspaces` replaces the deprecated `GET /workspaces` (changelog
/// CHANGE-2770); published clients (atlassian-python-api 5) already call it.
const NEWER: &str = "GET\t/user/workspaces\taccount\tread:workspace:bitbucket\n";

/// One REST operation, e.g. `GET /repositories/{workspace}/{repo_slug}`.
#[derive(Debug)]
pub struct Operation {
    pub method: String,
    /// The path template under `/2.0`, as written in the OpenAPI document.
    pub template: String,
    /// Classic OAuth scopes; all of them are required. Empty: no scope needed.
    pub scopes: ScopeSet,
    /// API token scopes; all of them are required. The document's own where it names them,
    /// otherwise those corresponding to the classic scopes (see [`api_tokens::for_operation`]).
    pub api_token_scopes: ScopeSet,
    segments: Vec<Segment>,
}

#[derive(Debug)]
enum Segment {
    Literal(String),
    Param(String),
    /// Text and parameters mixed, e.g. `{repo_name}-issues-{task_id}.zip`.
    Mixed(Vec<Piece>),
    /// A trailing `{path}` (zero or more segments: the root directory) or `{spec}` (a diff spec
    /// such as `acme/widget:1a2b%0D3c4d`, one or more segments).
    Rest {
        name: String,
        may_be_empty: bool,
    },
}

#[derive(Debug)]
enum Piece {
    Text(String),
    Param(String),
}

/// An operation matched against a concrete path, with the template's parameters.
#[derive(Debug)]
pub struct Matched<'t> {
    pub operation: &'t Operation,
    pub params: Vec<(&'t str, String)>,
}

impl Matched<'_> {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// The table of every operation.
#[derive(Debug)]
pub struct OperationTable {
    operations: Vec<Operation>,
}

impl OperationTable {
    /// Bitbucket Cloud's table, parsed once.
    pub fn cloud() -> &'static OperationTable {
        static TABLE_CELL: OnceLock<OperationTable> = OnceLock::new();
        TABLE_CELL.get_or_init(|| {
            let mut table = OperationTable::parse(TABLE);
            table
                .operations
                .extend(OperationTable::parse(NEWER).operations);
            table
        })
    }

    fn parse(text: &str) -> OperationTable {
        let operations = text
            .lines()
            .filter(|line| !line.starts_with("method\t"))
            .filter(|line| !line.trim().is_empty())
            .map(|line| {
                let mut columns = line.split('\t');
                let method = columns.next().unwrap_or_default().to_owned();
                let template = columns.next().unwrap_or_default().to_owned();
                let scopes = cloud::parse_scopes(columns.next().unwrap_or_default())
                    .expect("the OpenAPI table names only known scopes");
                let published = api_tokens::parse_scopes(columns.next().unwrap_or_default())
                    .expect("the OpenAPI table names only known API token scopes");
                let api_token_scopes = if published.is_empty() {
                    api_tokens::for_operation(&method, &scopes)
                } else {
                    published
                };
                let segments = parse_template(&template);
                Operation {
                    method,
                    template,
                    scopes,
                    api_token_scopes,
                    segments,
                }
            })
            .collect();
        OperationTable { operations }
    }

    pub fn len(&self) -> usize {
        self.operations.len()
    }

    pub fn is_empty(&self) -> bool {
        self.operations.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Operation> {
        self.operations.iter()
    }

    /// The operation a request addresses. `path` is the part after `/2.0`, e.g. `/user`.
    /// Where several templates match, the one with the most literal segments wins.
    pub fn find(&self, method: &str, path: &str) -> Option<Matched<'_>> {
        let parts: Vec<&str> = path
            .trim_start_matches('/')
            .trim_end_matches('/')
            .split('/')
            .collect();
        self.operations
            .iter()
            .filter(|op| op.method.eq_ignore_ascii_case(method))
            .filter_map(|op| match_segments(op, &parts).map(|params| (op, params)))
            .max_by_key(|(op, _)| literal_count(op))
            .map(|(operation, params)| Matched { operation, params })
    }

    /// Whether any method is defined for this path (to tell 404 from 405).
    pub fn path_exists(&self, path: &str) -> bool {
        ["GET", "POST", "PUT", "DELETE"]
            .iter()
            .any(|method| self.find(method, path).is_some())
    }
}

fn parse_template(template: &str) -> Vec<Segment> {
    let parts: Vec<&str> = template.trim_start_matches('/').split('/').collect();
    let last = parts.len().saturating_sub(1);
    parts
        .iter()
        .enumerate()
        .map(|(index, part)| {
            let whole_param = part
                .strip_prefix('{')
                .and_then(|p| p.strip_suffix('}'))
                .filter(|name| !name.contains(['{', '}']));
            match whole_param {
                Some(name @ ("path" | "spec")) if index == last => Segment::Rest {
                    name: name.to_owned(),
                    may_be_empty: name == "path",
                },
                Some(name) => Segment::Param(name.to_owned()),
                None if part.contains('{') => Segment::Mixed(pieces(part)),
                None => Segment::Literal((*part).to_owned()),
            }
        })
        .collect()
}

fn pieces(segment: &str) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut rest = segment;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            pieces.push(Piece::Text(rest[..open].to_owned()));
        }
        let close = rest[open..].find('}').map_or(rest.len(), |i| open + i);
        pieces.push(Piece::Param(rest[open + 1..close].to_owned()));
        rest = rest.get(close + 1..).unwrap_or_default();
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest.to_owned()));
    }
    pieces
}

/// Matches text against pieces; each parameter takes the shortest non-empty run up to the next
/// text piece (the last one takes what is left before the final text).
fn match_pieces<'t>(pieces: &'t [Piece], mut text: &str) -> Option<Vec<(&'t str, String)>> {
    let mut params = Vec::new();
    for (index, piece) in pieces.iter().enumerate() {
        match piece {
            Piece::Text(literal) => text = text.strip_prefix(literal.as_str())?,
            Piece::Param(name) => {
                let end = match pieces.get(index + 1) {
                    Some(Piece::Text(next)) if index + 2 == pieces.len() => {
                        text.strip_suffix(next.as_str())?.len()
                    }
                    Some(Piece::Text(next)) => text.get(1..)?.find(next.as_str())? + 1,
                    _ => text.len(),
                };
                if end == 0 {
                    return None;
                }
                params.push((name.as_str(), text[..end].to_owned()));
                text = &text[end..];
            }
        }
    }
    text.is_empty().then_some(params)
}

fn literal_count(op: &Operation) -> usize {
    op.segments
        .iter()
        .filter(|segment| matches!(segment, Segment::Literal(_)))
        .count()
}

fn match_segments<'t>(op: &'t Operation, parts: &[&str]) -> Option<Vec<(&'t str, String)>> {
    let mut params = Vec::new();
    for (index, segment) in op.segments.iter().enumerate() {
        match segment {
            Segment::Rest { name, may_be_empty } => {
                let rest = parts.get(index..).unwrap_or_default();
                if (rest.is_empty() && !may_be_empty) || rest.iter().any(|p| p.is_empty()) {
                    return None;
                }
                params.push((name.as_str(), rest.join("/")));
                return Some(params);
            }
            Segment::Literal(literal) => {
                if parts.get(index) != Some(&literal.as_str()) {
                    return None;
                }
            }
            Segment::Param(name) => {
                let value = parts.get(index).filter(|value| !value.is_empty())?;
                params.push((name.as_str(), (*value).to_owned()));
            }
            Segment::Mixed(pieces) => params.extend(match_pieces(pieces, parts.get(index)?)?),
        }
    }
    (parts.len() == op.segments.len()).then_some(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_whole_openapi_table_loads() {
        assert_eq!(OperationTable::cloud().len(), 318 + NEWER.lines().count());
        let newer = OperationTable::cloud()
            .find("GET", "/user/workspaces")
            .unwrap();
        assert_eq!(newer.operation.scopes.to_string(), "account");
    }

    #[test]
    fn literal_segments_beat_parameters() {
        let table = OperationTable::cloud();
        let user = table.find("GET", "/user/emails").unwrap();
        assert_eq!(user.operation.template, "/user/emails");
        assert_eq!(user.operation.scopes.to_string(), "email");

        let prs = table
            .find("POST", "/repositories/acme/widget/pullrequests")
            .unwrap();
        assert_eq!(prs.operation.scopes.to_string(), "pullrequest:write");
        assert_eq!(prs.param("workspace"), Some("acme"));
        assert_eq!(prs.param("repo_slug"), Some("widget"));
    }

    #[test]
    fn a_trailing_path_takes_the_rest() {
        let table = OperationTable::cloud();
        let src = table
            .find("GET", "/repositories/acme/widget/src/main/docs/readme.md")
            .unwrap();
        assert_eq!(src.param("path"), Some("docs/readme.md"));
        let root = table
            .find("GET", "/repositories/acme/widget/src/main/")
            .unwrap();
        assert_eq!(root.param("path"), Some(""));
        let diff = table
            .find(
                "GET",
                "/repositories/acme/widget/diff/acme/widget:1a2b%0D3c4d",
            )
            .unwrap();
        assert_eq!(diff.param("spec"), Some("acme/widget:1a2b%0D3c4d"));
        assert!(
            table
                .find("GET", "/repositories/acme/widget/diff")
                .is_none()
        );
        assert!(table.find("GET", "/nothing/here").is_none());
        assert!(table.find("PATCH", "/user").is_none());
    }

    #[test]
    fn parameters_inside_a_segment_are_matched() {
        let table = OperationTable::cloud();
        let export = table
            .find(
                "GET",
                "/repositories/acme/widget/issues/export/widget-issues-7.zip",
            )
            .unwrap();
        assert_eq!(export.param("repo_name"), Some("widget"));
        assert_eq!(export.param("task_id"), Some("7"));
        assert!(
            table
                .find("GET", "/repositories/acme/widget/issues/export/x.tar")
                .is_none()
        );
    }

    #[test]
    fn two_scopes_are_both_required() {
        let op = OperationTable::cloud()
            .find("GET", "/user/permissions/repositories")
            .unwrap();
        assert_eq!(op.operation.scopes.to_string(), "account repository");
    }
}
