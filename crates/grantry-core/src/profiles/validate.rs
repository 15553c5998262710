//! Checks on what admins type into a profile, each naming the field at fault.

use bitbucket_facts::ScopeSet;
use url::Url;

use crate::catalog::ProviderSpec;
use crate::error::{CoreError, CoreResult};

pub fn name(value: &str) -> CoreResult<String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(CoreError::invalid("name", "a profile needs a name"));
    }
    if trimmed.chars().count() > 100 {
        return Err(CoreError::invalid("name", "at most 100 characters"));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(CoreError::invalid(
            "name",
            "control characters are not allowed",
        ));
    }
    if trimmed.starts_with("prf_") {
        return Err(CoreError::invalid(
            "name",
            "must not start with `prf_` (ids do)",
        ));
    }
    Ok(trimmed.to_owned())
}

pub fn description(value: &str) -> CoreResult<String> {
    if value.chars().count() > 1000 {
        return Err(CoreError::invalid("description", "at most 1000 characters"));
    }
    Ok(value.trim().to_owned())
}

pub fn client_id(value: &str) -> CoreResult<String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(CoreError::invalid(
            "key",
            "the OAuth key (client id) is required",
        ));
    }
    if trimmed.len() > 200 || trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(CoreError::invalid(
            "key",
            "at most 200 characters, no spaces",
        ));
    }
    Ok(trimmed.to_owned())
}

pub fn client_secret(value: &str) -> CoreResult<()> {
    if value.is_empty() {
        return Err(CoreError::invalid("secret", "the OAuth secret is required"));
    }
    if value.len() > 1000 || value.chars().any(char::is_control) {
        return Err(CoreError::invalid(
            "secret",
            "at most 1000 characters, no control characters",
        ));
    }
    Ok(())
}

fn http_url(field: &str, value: &str) -> CoreResult<Url> {
    let url = Url::parse(value.trim())
        .map_err(|e| CoreError::invalid(field, format!("`{value}` is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
        return Err(CoreError::invalid(
            field,
            format!("`{value}` must be an http(s) URL"),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(CoreError::invalid(
            field,
            "must not contain a user name or password",
        ));
    }
    if url.fragment().is_some() {
        return Err(CoreError::invalid(field, "must not contain a #fragment"));
    }
    Ok(url)
}

/// A Data Center base URL, e.g. `https://git.example.com/bitbucket` (kept without a trailing `/`).
pub fn base_url(spec: &ProviderSpec, value: Option<&str>) -> CoreResult<Option<String>> {
    let value = value.map(str::trim).filter(|v| !v.is_empty());
    match (spec.needs_base_url, value) {
        (true, None) => Err(CoreError::invalid(
            "base_url",
            format!(
                "{} profiles need the instance's base URL",
                spec.display_name
            ),
        )),
        (false, Some(_)) => Err(CoreError::invalid(
            "base_url",
            format!(
                "{} has fixed hosts; leave the base URL empty",
                spec.display_name
            ),
        )),
        (false, None) => Ok(None),
        (true, Some(value)) => {
            let url = http_url("base_url", value)?;
            if url.query().is_some() {
                return Err(CoreError::invalid("base_url", "must not contain a ?query"));
            }
            Ok(Some(url.as_str().trim_end_matches('/').to_owned()))
        }
    }
}

/// Required scopes in the provider's vocabulary, plus the ones Grantry needs itself.
pub fn scopes(spec: &ProviderSpec, values: &[String]) -> CoreResult<ScopeSet> {
    let asked = spec
        .parse_scopes(values.iter().map(|s| s.trim()).filter(|s| !s.is_empty()))
        .map_err(|e| CoreError::invalid("required_scopes", e.to_string()))?;
    Ok(spec.required_with_identity(&asked))
}

pub fn return_urls(values: &[String]) -> CoreResult<Vec<String>> {
    if values.len() > 20 {
        return Err(CoreError::invalid("allowed_return_urls", "at most 20 URLs"));
    }
    values
        .iter()
        .map(|value| http_url("allowed_return_urls", value).map(|url| url.to_string()))
        .collect()
}

pub fn private_flag(spec: &ProviderSpec, private: bool) -> CoreResult<bool> {
    if private && !spec.client_credentials {
        return Err(CoreError::invalid(
            "private",
            format!(
                "{} has no private consumers (client credentials)",
                spec.display_name
            ),
        ));
    }
    Ok(private)
}

/// Whether `candidate` is one of the allowed return URLs: same scheme, host, port and path; its
/// query may differ (applications carry their own parameters back).
pub fn return_url_allowed(
    candidate: &str,
    allowed: &[String],
    builtin: &str,
) -> CoreResult<String> {
    let url = http_url("return_url", candidate)?;
    let same_place = |other: &str| {
        Url::parse(other).is_ok_and(|o| {
            o.scheme() == url.scheme()
                && o.host_str() == url.host_str()
                && o.port_or_known_default() == url.port_or_known_default()
                && o.path() == url.path()
        })
    };
    if same_place(builtin) || allowed.iter().any(|a| same_place(a)) {
        Ok(url.to_string())
    } else {
        Err(CoreError::invalid(
            "return_url",
            format!("`{candidate}` is not one of the profile's allowed return URLs"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::ProviderKind;

    #[test]
    fn return_urls_match_on_origin_and_path_only() {
        let allowed = vec!["https://app.example.com/done".to_owned()];
        let builtin = "http://127.0.0.1:8080/connect/complete";
        assert!(
            return_url_allowed("https://app.example.com/done?user=7", &allowed, builtin).is_ok()
        );
        assert!(
            return_url_allowed("https://app.example.com/done/../evil", &allowed, builtin).is_err()
        );
        assert!(
            return_url_allowed("https://app.example.com.evil.io/done", &allowed, builtin).is_err()
        );
        assert!(return_url_allowed("http://app.example.com/done", &allowed, builtin).is_err());
        assert!(return_url_allowed(builtin, &[], builtin).is_ok());
    }

    #[test]
    fn base_urls_belong_to_data_center_only() {
        let dc = ProviderKind::BitbucketDatacenter.spec();
        let cloud = ProviderKind::BitbucketCloud.spec();
        assert_eq!(
            base_url(dc, Some("https://git.example.com/bb/"))
                .unwrap()
                .as_deref(),
            Some("https://git.example.com/bb")
        );
        assert!(base_url(dc, None).is_err());
        assert!(base_url(cloud, Some("https://x.example")).is_err());
        assert!(base_url(dc, Some("https://user:pw@x.example")).is_err());
    }

    #[test]
    fn names_and_keys_are_checked() {
        assert!(name("  ").is_err());
        assert_eq!(name(" Backups ").unwrap(), "Backups");
        assert!(client_id("has space").is_err());
        assert!(client_secret("").is_err());
    }
}
