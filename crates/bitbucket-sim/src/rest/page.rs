//! Pagination: Cloud's `page`/`pagelen`/`next`, Data Center's `start`/`limit`/`isLastPage`.

use serde_json::{Value, json};

use crate::oauth::Params;

/// Why a page request was refused.
#[derive(Debug)]
pub struct BadPage(pub String);

fn number(query: &Params, name: &str, default: u64, range: (u64, u64)) -> Result<u64, BadPage> {
    let Some(text) = query.get(name) else {
        return Ok(default);
    };
    match text.parse::<u64>() {
        Ok(value) if (range.0..=range.1).contains(&value) => Ok(value),
        _ => Err(BadPage(format!(
            "Invalid {name} `{text}`: expected a whole number from {} to {}",
            range.0, range.1
        ))),
    }
}

/// One Cloud page of `items`: `{"pagelen", "size", "values", "page", "next"?, "previous"?}`.
/// `url` is the request URL without `page`, used to build `next` and `previous`.
pub fn cloud(items: Vec<Value>, query: &Params, url: &str) -> Result<Value, BadPage> {
    let pagelen = number(query, "pagelen", 10, (1, 100))?;
    let page = number(query, "page", 1, (1, u64::from(u32::MAX)))?;
    let size = items.len() as u64;
    let skip = (page - 1).saturating_mul(pagelen);
    let values: Vec<Value> = items
        .into_iter()
        .skip(usize::try_from(skip).unwrap_or(usize::MAX))
        .take(pagelen as usize)
        .collect();
    let link = |page: u64| {
        let separator = if url.contains('?') { '&' } else { '?' };
        format!("{url}{separator}pagelen={pagelen}&page={page}")
    };
    let mut body = json!({"pagelen": pagelen, "size": size, "values": values, "page": page});
    if skip + pagelen < size {
        body["next"] = Value::String(link(page + 1));
    }
    if page > 1 {
        body["previous"] = Value::String(link(page - 1));
    }
    Ok(body)
}

/// One Data Center page: `{"size", "limit", "isLastPage", "values", "start", "nextPageStart"?}`.
pub fn dc(items: Vec<Value>, query: &Params) -> Result<Value, BadPage> {
    let start = number(query, "start", 0, (0, u64::from(u32::MAX)))?;
    let limit = number(query, "limit", 25, (1, 1000))?;
    let total = items.len() as u64;
    let values: Vec<Value> = items
        .into_iter()
        .skip(start as usize)
        .take(limit as usize)
        .collect();
    let is_last = start + limit >= total;
    let mut body = json!({
        "size": values.len(),
        "limit": limit,
        "isLastPage": is_last,
        "values": values,
        "start": start,
    });
    if !is_last {
        body["nextPageStart"] = json!(start + limit);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(n: usize) -> Vec<Value> {
        (0..n).map(|i| json!(i)).collect()
    }

    #[test]
    fn cloud_pages_link_forward_and_back() {
        let query = Params::parse(b"pagelen=2&page=2");
        let body = cloud(items(5), &query, "http://x/2.0/workspaces").unwrap();
        assert_eq!(body["values"], json!([2, 3]));
        assert_eq!(body["size"], 5);
        assert_eq!(body["next"], "http://x/2.0/workspaces?pagelen=2&page=3");
        assert_eq!(body["previous"], "http://x/2.0/workspaces?pagelen=2&page=1");
    }

    #[test]
    fn bad_numbers_are_named() {
        let error = cloud(items(1), &Params::parse(b"pagelen=500"), "u").unwrap_err();
        assert!(error.0.contains("pagelen"), "{}", error.0);
        assert!(dc(items(1), &Params::parse(b"start=-1")).is_err());
    }

    #[test]
    fn dc_pages_say_where_to_continue() {
        let body = dc(items(30), &Params::default()).unwrap();
        assert_eq!(body["isLastPage"], false);
        assert_eq!(body["nextPageStart"], 25);
    }
}
