//! The Admins page's markup, from the struct in `data.rs`: a pure function, no services.

use maud::{Markup, html};

use super::data::AdminsPage;
use crate::console::layout::time;
use crate::console::layout::{csrf, field};
use crate::console::signed_in::Admin;

/// The page as `admin` sees it: "(you)" by their name, and no Remove on it nor on the last one.
pub fn page(admin: &Admin, page: &AdminsPage) -> Markup {
    let errors = &page.errors;
    let admins = &page.admins;
    html! {
        h1 { "Admins" }
        p.muted { "Admins sign in to this console. Removing an admin or changing a password ends that admin's sessions at once." }
        h2 { "Your password" }
        form.stack method="post" action="/ui/admins/password" {
            (csrf(admin))
            (field("current", "Current password", html! { input type="password" id="current" name="current" autocomplete="current-password" required; }, None, errors.current.as_deref()))
            (field("new_password", "New password", html! { input type="password" id="new_password" name="new_password" autocomplete="new-password" required; }, Some("At least 12 characters. You will sign in again with it."), errors.new_password.as_deref()))
            button.primary type="submit" { "Change password" }
        }
        h2 { "Add an admin" }
        form.stack method="post" action="/ui/admins" {
            (csrf(admin))
            (field("username", "User name", html! { input type="text" id="username" name="username" value=(page.typed_username) autocomplete="off" required; }, None, errors.username.as_deref()))
            (field("password", "Password", html! { input type="password" id="password" name="password" autocomplete="new-password" required; }, Some("At least 12 characters; tell it to them out of band."), errors.password.as_deref()))
            button.primary type="submit" { "Add admin" }
        }
        h2 { "Admins" }
        div.table-wrap { table {
            thead { tr { th { "User name" } th { "Added" } th { "Actions" } } }
            tbody { @for each in admins { tr {
                td { (each.username) @if each.username == admin.username { " (you)" } }
                td { (time(each.created_at)) }
                td { @if each.username != admin.username && admins.len() > 1 {
                    form method="post" action={"/ui/admins/" (each.username) "/remove"} {
                        (csrf(admin)) button.danger type="submit" aria-label={"Remove " (each.username)} { "Remove" }
                    }
                } }
            } } }
        } }
    }
}

#[cfg(test)]
mod tests {
    use grantry_core::ids::AdminId;
    use grantry_core::store::AdminRecord;

    use super::*;
    use crate::console::admins::data::Errors;
    use crate::console::fixtures::{self, NOW};

    fn record(username: &str) -> AdminRecord {
        AdminRecord {
            id: AdminId::generate(),
            username: username.into(),
            password_hash: String::new(),
            created_at: NOW,
        }
    }

    #[test]
    fn no_admin_can_remove_themselves() {
        let list = AdminsPage {
            admins: vec![record("ada"), record("grace")],
            errors: Errors::default(),
            typed_username: String::new(),
            flash: None,
        };
        let html = page(&fixtures::admin(), &list).into_string();
        assert!(html.contains("<td>ada (you)</td>"));
        assert!(html.contains("<td>grace</td>"));
        assert!(html.contains(r#"action="/ui/admins/grace/remove""#));
        assert!(!html.contains(r#"action="/ui/admins/ada/remove""#));
        assert!(html.contains("<td>2026-11-24 09:12 UTC</td>"));
    }

    #[test]
    fn the_last_admin_cannot_be_removed_and_a_refused_name_is_kept() {
        let list = AdminsPage {
            admins: vec![record("ada")],
            errors: Errors {
                username: Some("that user name is taken".into()),
                ..Errors::default()
            },
            typed_username: "ada".into(),
            flash: None,
        };
        let html = page(&fixtures::admin(), &list).into_string();
        assert!(!html.contains("/remove"));
        assert!(html.contains(r#"name="username" value="ada""#));
        assert!(html.contains(
            r#"<p class="error" id="username-error" role="alert">That user name is taken</p>"#
        ));
    }
}
