//! The API keys page's markup, from the struct in `data.rs`: a pure function, no services.

use maud::{Markup, html};

use super::data::KeysPage;
use crate::console::layout::time;
use crate::console::layout::{self, copyable, csrf};
use crate::console::signed_in::Admin;

pub fn page(admin: &Admin, page: &KeysPage) -> Markup {
    html! {
        h1 { "API keys" }
        p.muted { "Applications present an API key to Grantry. An app key creates connect sessions and reads tokens; an admin key may also manage profiles and keys." }
        @if let Some(created) = &page.created {
            div.card role="status" {
                p { strong { "New key “" (created.name) "”." } " Copy it now: it is shown this once." }
                p { (copyable("new-api-key", &created.key)) }
            }
        }
        h2 { "Create a key" }
        form.stack method="post" action="/ui/api-keys" {
            (csrf(admin))
            (layout::field("name", "Name", html! { input type="text" id="name" name="name" placeholder="backup-service" autocomplete="off"; }, Some("What the key is for."), page.error.as_deref()))
            div.field {
                label for="role" { "Role" }
                select id="role" name="role" {
                    option value="app" { "app — connect sessions, connections, tokens" }
                    option value="admin" { "admin — everything" }
                }
            }
            button.primary type="submit" { "Create key" }
        }
        h2 { "Keys" }
        div.table-wrap { table {
            thead { tr { th { "Name" } th { "Role" } th { "Key" } th { "Created" } th { "State" } th { "Actions" } } }
            tbody { @for key in &page.keys { tr id={"key-" (key.id)} {
                td { (key.name) } td { (key.role.as_str()) } td { code { (key.hint) } } td { (time(key.created_at)) }
                td { @match key.revoked_at { Some(at) => { span class="status problem" { "Revoked" } " " (time(at)) }, None => span class="status active" { "Active" } } }
                td { @if key.revoked_at.is_none() {
                    form method="post" action={"/ui/api-keys/" (key.id) "/revoke"} {
                        (csrf(admin)) button.danger type="submit" aria-label={"Revoke " (key.name)} { "Revoke" }
                    }
                } }
            } } }
        } }
    }
}

#[cfg(test)]
mod tests {
    use grantry_core::ids::ApiKeyId;
    use grantry_core::store::{ApiKeyRecord, Role};

    use super::*;
    use crate::console::fixtures::{self, NOW};
    use crate::console::keys::data::NewKey;

    fn key(name: &str, revoked: bool) -> ApiKeyRecord {
        ApiKeyRecord {
            id: ApiKeyId::generate(),
            name: name.into(),
            role: Role::App,
            digest: String::new(),
            hint: "gk_ab12…".into(),
            created_at: NOW,
            revoked_at: revoked.then_some(NOW),
        }
    }

    #[test]
    fn a_new_key_is_shown_once_and_revoked_keys_cannot_be_revoked_again() {
        let keys = KeysPage {
            keys: vec![key("backup", false), key("old", true)],
            created: Some(NewKey {
                name: "backup".into(),
                key: "gk_secret".into(),
            }),
            error: None,
            flash: None,
        };
        let html = page(&fixtures::admin(), &keys).into_string();
        assert!(html.contains("<strong>New key “backup”.</strong>"));
        assert!(html.contains(r#"<code id="new-api-key">gk_secret</code>"#));
        assert!(
            html.contains(r#"<span class="status problem">Revoked</span> 2026-11-24 09:12 UTC"#)
        );
        assert!(html.contains(r#"aria-label="Revoke backup""#));
        assert!(!html.contains(r#"aria-label="Revoke old""#));
        assert!(html.contains("<td><code>gk_ab12…</code></td>"));
    }

    #[test]
    fn a_refused_name_is_said_by_its_field() {
        let keys = KeysPage {
            keys: Vec::new(),
            created: None,
            error: Some("a name is needed".into()),
            flash: None,
        };
        let html = page(&fixtures::admin(), &keys).into_string();
        assert!(!html.contains("new-api-key"));
        assert!(
            html.contains(r#"<p class="error" id="name-error" role="alert">A name is needed</p>"#)
        );
    }
}
