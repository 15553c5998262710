//! The Create / Edit panel of an application connection: what was typed (kept on error, except
//! the secret), errors next to their fields, and Bitbucket's permission boxes.

use bitbucket_facts::{cloud, datacenter};
use grantry_core::CoreError;
use grantry_core::catalog::ProviderKind;
use grantry_core::store::ProfileRecord;
use maud::{Markup, html};

use crate::console::layout::{self, copyable, csrf, field};
use crate::console::session::{Admin, Form};

/// The panel's values, as text.
#[derive(Debug, Default, Clone)]
pub struct ProfileForm {
    pub name: String,
    pub description: String,
    pub provider: String,
    pub key: String,
    pub base_url: String,
    /// Ticked Cloud checkboxes, by key (`pull_requests.write`).
    pub permissions: Vec<String>,
    pub dc_scopes: Vec<String>,
    pub return_urls: String,
    pub private: bool,
    pub confirm_connections: bool,
}

/// Errors by form field.
#[derive(Debug, Default)]
pub struct Errors(Vec<(&'static str, String)>);

impl Errors {
    pub fn get(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, m)| m.as_str())
    }

    /// Places a service error next to the field it names.
    pub fn from_core(error: &CoreError) -> Option<Errors> {
        let (field, message) = match error {
            CoreError::Invalid { field, message } => (field.as_str(), message.clone()),
            CoreError::Conflict(message) => ("name", message.clone()),
            _ => return None,
        };
        let field = match field {
            "required_scopes" => "permissions",
            "allowed_return_urls" => "return_urls",
            "name" => "name",
            "description" => "description",
            "key" => "key",
            "secret" => "secret",
            "base_url" => "base_url",
            "private" => "private",
            _ => "provider",
        };
        Some(Errors(vec![(field, message)]))
    }

    pub fn one(field: &'static str, message: &str) -> Errors {
        Errors(vec![(field, message.to_owned())])
    }
}

impl ProfileForm {
    pub fn from_form(form: &Form) -> ProfileForm {
        ProfileForm {
            name: form.text("name"),
            description: form.text("description"),
            provider: form.text("provider"),
            key: form.text("key"),
            base_url: form.text("base_url"),
            permissions: form.all("permission"),
            dc_scopes: form.all("dc_scope"),
            return_urls: form.text("return_urls"),
            private: form.checked("private"),
            confirm_connections: form.checked("confirm_connections"),
        }
    }

    pub fn from_profile(profile: &ProfileRecord) -> ProfileForm {
        let spec = profile.provider.spec();
        let required = spec
            .parse_scopes(profile.required_scopes.iter().map(String::as_str))
            .unwrap_or_else(|_| spec.scopes.empty());
        let (permissions, dc_scopes) = match profile.provider {
            ProviderKind::BitbucketCloud => {
                let ticked = cloud::form_closure(&required);
                let boxes = cloud::CHECKBOXES
                    .iter()
                    .filter(|b| ticked.contains(b.scope));
                (boxes.map(|b| b.key.to_owned()).collect(), Vec::new())
            }
            ProviderKind::BitbucketDatacenter => (Vec::new(), required.to_vec()),
        };
        ProfileForm {
            name: profile.name.clone(),
            description: profile.description.clone(),
            provider: profile.provider.as_str().to_owned(),
            key: profile.client_id.clone(),
            base_url: profile.base_url.clone().unwrap_or_default(),
            permissions,
            dc_scopes,
            return_urls: profile.allowed_return_urls.join("\n"),
            private: profile.private,
            confirm_connections: profile.confirm_connections,
        }
    }

    pub fn provider(&self) -> Result<ProviderKind, Errors> {
        ProviderKind::parse(&self.provider).ok_or_else(|| {
            Errors::one(
                "provider",
                "choose Bitbucket Cloud or Bitbucket Data Center",
            )
        })
    }

    /// The scopes the ticked boxes stand for.
    pub fn required_scopes(&self, provider: ProviderKind) -> Result<Vec<String>, Errors> {
        match provider {
            ProviderKind::BitbucketCloud => {
                let keys = self.permissions.iter().map(String::as_str);
                let scopes = cloud::scopes_from_form(keys)
                    .map_err(|e| Errors::one("permissions", &e.to_string()))?;
                Ok(scopes.to_vec())
            }
            ProviderKind::BitbucketDatacenter => Ok(self.dc_scopes.clone()),
        }
    }

    pub fn return_urls(&self) -> Vec<String> {
        self.return_urls
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    }

    pub fn base_url(&self, provider: ProviderKind) -> Option<String> {
        (provider == ProviderKind::BitbucketDatacenter).then(|| self.base_url.clone())
    }
}

/// The boxes Bitbucket's form ticks by itself with `checkbox` (for the page's script).
fn also_ticks(checkbox: &cloud::Checkbox) -> String {
    let own = cloud::SCOPES.parse(checkbox.scope).expect("known scope");
    let with = cloud::form_closure(&own);
    cloud::CHECKBOXES
        .iter()
        .filter(|b| b.key != checkbox.key && with.contains(b.scope))
        .map(|b| b.key)
        .collect::<Vec<_>>()
        .join(" ")
}

fn cloud_permissions(form: &ProfileForm) -> Markup {
    let mut groups: Vec<&str> = Vec::new();
    for checkbox in cloud::CHECKBOXES {
        if !groups.contains(&checkbox.group) {
            groups.push(checkbox.group);
        }
    }
    html! {
        div.perms {
            @for group in groups {
                fieldset {
                    legend { (group) }
                    @for checkbox in cloud::CHECKBOXES.iter().filter(|b| b.group == group) {
                        label.check {
                            input type="checkbox" name="permission" value=(checkbox.key)
                                data-also=(also_ticks(checkbox)) checked[form.permissions.iter().any(|p| p == checkbox.key)];
                            span { (checkbox.label) }
                        }
                    }
                }
            }
        }
    }
}

fn dc_scopes(form: &ProfileForm) -> Markup {
    html! {
        div.perms {
            fieldset {
                legend { "Scopes" }
                @for scope in datacenter::SCOPES.names {
                    label.check {
                        input type="checkbox" name="dc_scope" value=(scope) checked[form.dc_scopes.iter().any(|s| s == scope)];
                        span { (scope) }
                    }
                }
            }
        }
    }
}

fn text_input(name: &str, value: &str, kind: &str) -> Markup {
    html! { input type=(kind) id=(name) name=(name) value=(value) autocomplete="off"; }
}

/// The whole panel. `editing` leaves the secret optional.
pub fn render(
    admin: &Admin,
    form: &ProfileForm,
    errors: &Errors,
    action: &str,
    callback_url: &str,
    editing: bool,
) -> Markup {
    let provider_select = html! {
        select id="provider" name="provider" {
            option value="bitbucket-cloud" selected[form.provider != "bitbucket-datacenter"] { "Bitbucket Cloud" }
            option value="bitbucket-datacenter" selected[form.provider == "bitbucket-datacenter"] { "Bitbucket Data Center" }
        }
    };
    let secret_hint = if editing {
        "Leave empty to keep the stored secret."
    } else {
        "Shown once by Bitbucket; Grantry seals it and never shows it again."
    };
    html! {
        div.card {
            p { "Callback URL to give Bitbucket: " (copyable("callback-url", callback_url)) }
        }
        form.stack method="post" action=(action) novalidate {
            (csrf(admin))
            (field("name", "Profile name", text_input("name", &form.name, "text"), None, errors.get("name")))
            (field("description", "Description (optional)", html! { textarea id="description" name="description" rows="2" { (form.description) } }, None, errors.get("description")))
            (field("provider", "Select application", provider_select, None, errors.get("provider")))
            (field("key", "Key", text_input("key", &form.key, "text"), Some("The OAuth consumer's Key (Cloud) or the link's Client ID (Data Center)."), errors.get("key")))
            (field("secret", "Secret", html! { input type="password" id="secret" name="secret" value="" autocomplete="new-password"; }, Some(secret_hint), errors.get("secret")))
            div data-provider="bitbucket-datacenter" {
                (field("base_url", "Data Center base URL", text_input("base_url", &form.base_url, "url"), Some("e.g. https://git.example.com/bitbucket"), errors.get("base_url")))
            }
            div.field.invalid[errors.get("permissions").is_some()] {
                span id="permissions" class="label" { strong { "Permissions the integration needs" } }
                                p.hint data-provider="bitbucket-cloud" { "The same boxes Bitbucket shows. Account Read also ticks Email; Write ticks Read; Admin and Delete stand apart." }
                p.hint data-provider="bitbucket-datacenter" { "The scopes Grantry asks for; the incoming link must allow them. Each repository level includes the ones below it." }
                div data-provider="bitbucket-cloud" { (cloud_permissions(form)) }
                div data-provider="bitbucket-datacenter" { (dc_scopes(form)) }
                                @if let Some(error) = errors.get("permissions") { p.error role="alert" { (layout::sentence(error)) } }
            }
            div data-provider="bitbucket-cloud" {
                div.field.invalid[errors.get("private").is_some()] {
                    label.check for="private" {
                        input type="checkbox" id="private" name="private" checked[form.private];
                        span { "This is a private consumer (allows client-credentials connections)" }
                    }
                                        @if let Some(error) = errors.get("private") { p.error role="alert" { (layout::sentence(error)) } }
                }
            }
            (field("return_urls", "Allowed return URLs (optional, one per line)", html! { textarea id="return_urls" name="return_urls" rows="3" { (form.return_urls) } }, Some("Where your application may send users back to after they connect."), errors.get("return_urls")))
            div.field {
                label.check for="confirm_connections" {
                    input type="checkbox" id="confirm_connections" name="confirm_connections" checked[form.confirm_connections];
                    span { "The application confirms each new connection (recommended)" }
                }
                p.hint { "When a user comes back to the application's return URL, the application's backend confirms with "
                    code { "POST /v1/connect-sessions/{id}/confirm" } " that the browser which finished is its own signed-in user. "
                    strong { "Without it, " } "anyone who gets hold of a connect link, for instance because a user forwarded it, can connect their own Bitbucket account under that user's name, and the application will use that account." }
            }
            div.actions {
                button.primary type="submit" { @if editing { "Save changes" } @else { "Create" } }
                a.button href="/ui/profiles" { "Cancel" }
            }
        }
    }
}
