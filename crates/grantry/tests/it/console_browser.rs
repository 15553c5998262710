//! The web console in real headless Chromium: first-run setup, a Bitbucket Cloud profile set up
//! by following the steps it shows against the simulator, a connected account, Test, Refresh, API
//! keys, Activity, deletion; a Data Center profile with PKCE; admins added, removed and changing
//! their password; and the refusals (wrong password, expired session, a form without its CSRF
//! token). Screenshots of each main page go to `screenshots/`.

use crate::common::TestApp;
use crate::common::views::{Connection, Page, Webhook};
use crate::common::webdriver::Browser;
use bitbucket_facts::cloud::CHECKBOXES;
use bitbucket_sim::Mode;
use reqwest::{Method, StatusCode};
use secrecy::SecretString;
use serde_json::json;

const PASSWORD: &str = "correct-horse-battery";

async fn sign_in(browser: &Browser, app: &TestApp, username: &str) {
    let secret = SecretString::from(PASSWORD.to_owned());
    app.grantry
        .create_admin(username, &secret, &grantry_core::Actor::Cli)
        .await
        .unwrap();
    browser.goto(&format!("{}/ui/login", app.base)).await;
    browser.find("#username").await.fill(username).await;
    browser.find("#password").await.fill(PASSWORD).await;
    browser.find("button[type=submit]").await.click().await;
    browser.wait_for_url("/ui/profiles").await;
}

/// Submits the form around the first element matching `css` by clicking its submit button.
async fn submit(browser: &Browser, button: &str) {
    browser.click_and_wait_for_page(button).await;
}

async fn tick(browser: &Browser, value: &str) {
    let checkbox = browser.find(&format!("input[value=\"{value}\"]")).await;
    if !checkbox.is_selected().await {
        checkbox.click().await;
    }
}

/// Fills the Create panel; `provider` is the option value.
async fn fill_profile(browser: &Browser, name: &str, provider: &str, key: &str, secret: &str) {
    browser.find("#name").await.fill(name).await;
    browser
        .find(&format!("#provider option[value={provider}]"))
        .await
        .click()
        .await;
    browser.find("#key").await.fill(key).await;
    browser.find("#secret").await.fill(secret).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_sets_up_bitbucket_cloud_in_the_browser() {
    let app = TestApp::start(Mode::Rotating).await;
    app.manual_consent().await;
    let browser = Browser::start(1280, 900).await;

    let link = app
        .grantry
        .setup_link()
        .await
        .unwrap()
        .expect("no admin yet: a setup link");
    browser.goto(&link).await;
    browser.screenshot("01-first-run-setup").await;
    browser.find("#username").await.fill("root").await;
    browser.find("#password").await.fill(PASSWORD).await;
    submit(&browser, "button.primary").await;
    browser.wait_for_url("/ui/profiles").await;
    assert!(browser.text("header .who").await.contains("root"));
    browser.screenshot("02-application-connections-empty").await;

    browser.click_and_wait_for_page("a.button.primary").await;
    browser.wait_for_url("/ui/profiles/new").await;
    assert_eq!(
        browser.text("#callback-url").await,
        format!("{}/oauth/callback", app.base)
    );
    browser
        .find("#description")
        .await
        .fill("Nightly backups of Acme")
        .await;
    browser.find("#secret").await.fill("typed-secret").await;
    tick(&browser, "pull_requests.write").await;
    assert!(
        browser
            .find("input[value=\"repositories.write\"]")
            .await
            .is_selected()
            .await,
        "Write ticks what it implies"
    );
    submit(&browser, "form.stack button.primary").await;
    assert!(
        browser.text("#name-error").await.contains("needs a name"),
        "the error sits next to its field"
    );
    assert_eq!(
        browser.find("#description").await.property("value").await,
        "Nightly backups of Acme",
        "typed values are kept"
    );
    assert_eq!(
        browser.find("#secret").await.property("value").await,
        "",
        "except the secret"
    );
    browser.screenshot("03-create-panel-with-error").await;

    fill_profile(
        &browser,
        "Nightly backups",
        "bitbucket-cloud",
        "pending",
        "pending",
    )
    .await;
    tick(&browser, "pull_requests.write").await;
    tick(&browser, "account.read").await;
    submit(&browser, "form.stack button.primary").await;
    let profile_url = browser.wait_for_url("created=1").await;
    let profile_id = profile_url
        .split("/ui/profiles/")
        .nth(1)
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    browser
        .screenshot("04-profile-saved-with-bitbucket-steps")
        .await;

    let callback = browser.text("#setup-callback-url").await;
    let mut boxes = Vec::new();
    for item in browser.find_all("#boxes-to-tick li").await {
        let label = item.text().await;
        let checkbox = CHECKBOXES
            .iter()
            .find(|b| b.describe() == label)
            .unwrap_or_else(|| panic!("unknown box {label}"));
        boxes.push(checkbox.key);
    }
    assert_eq!(boxes, ["account.read", "pull_requests.write"]);
    let consumer = app
        .sim_post("/_sim/consumers", json!({"workspace": "acme", "name": "Nightly backups", "callback_url": callback, "permissions": boxes}))
        .await;

    browser
        .click_and_wait_for_page(&format!("a[href=\"/ui/profiles/{profile_id}/edit\"]"))
        .await;
    browser
        .find("#key")
        .await
        .fill(consumer["key"].as_str().unwrap())
        .await;
    browser
        .find("#secret")
        .await
        .fill(consumer["secret"].as_str().unwrap())
        .await;
    submit(&browser, "form.stack button.primary").await;
    browser.wait_for_url("saved=1").await;
    assert!(browser.text(".flash.ok").await.contains("Changes saved"));

    submit(&browser, "form[action$=\"/connect\"] button").await;
    browser.wait_for_url("/site/oauth2/authorize").await;
    assert!(
        browser.source().await.contains("Nightly backups"),
        "Bitbucket's consent names the consumer"
    );
    browser.screenshot("05-bitbucket-consent").await;
    browser.find("#username").await.fill("alice").await;
    browser.find("#password").await.fill("alice-pw").await;
    browser.find("#grant").await.click().await;
    browser.wait_for_url("connected=1").await;
    let row = browser.text("table tbody tr").await;
    assert!(
        row.contains("Alice Liddell")
            && row.contains("Active")
            && row.contains("pullrequest:write"),
        "{row}"
    );
    browser.screenshot("06-profile-with-connection").await;

    submit(&browser, "button[aria-label^=\"Test\"]").await;
    assert_eq!(browser.text("#test-status").await, "HTTP 200");
    assert!(browser.text("#test-body").await.contains("Alice Liddell"));
    browser.screenshot("07-test-connection").await;
    browser.click_and_wait_for_page("a.button").await;
    submit(&browser, "button[aria-label^=\"Refresh\"]").await;
    browser.wait_for_url("refreshed=1").await;
    assert!(browser.text(".flash.ok").await.contains("Token refreshed"));

    browser.goto(&format!("{}/ui/api-keys", app.base)).await;
    browser.find("#name").await.fill("ci-pipeline").await;
    submit(&browser, "form.stack button.primary").await;
    let key = browser.text("#new-api-key").await;
    assert!(key.starts_with("gry_"));
    assert_eq!(
        app.call(Method::GET, "/v1/connections", Some(&key), None)
            .await
            .0,
        StatusCode::OK
    );
    browser.screenshot("08-api-key-created").await;
    submit(&browser, "button[aria-label=\"Revoke ci-pipeline\"]").await;
    assert!(browser.text(".flash.ok").await.contains("revoked"));
    assert_eq!(
        app.call(Method::GET, "/v1/connections", Some(&key), None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );

    browser.goto(&format!("{}/ui/activity", app.base)).await;
    let activity = browser.text("table").await;
    for kind in [
        "profile.created",
        "profile.updated",
        "connection.created",
        "connection.refreshed",
        "api_key.revoked",
    ] {
        assert!(activity.contains(kind), "{kind} missing from the activity");
    }
    assert!(activity.contains("admin:root"), "the console is the actor");
    browser.screenshot("09-activity").await;
    browser
        .find("#kind option[value=\"api_key.\"]")
        .await
        .click()
        .await;
    submit(&browser, "form[role=search] button").await;
    browser.wait_for_url("kind=api_key").await;
    let filtered = browser.text("table tbody").await;
    assert!(
        filtered.contains("api_key.created") && !filtered.contains("connection.created"),
        "{filtered}"
    );

    // The list's action bar acts on the chosen profile.
    browser
        .goto(&format!("{}/ui/profiles/selected?action=edit", app.base))
        .await;
    browser.wait_for_url("error=select").await;
    assert!(
        browser
            .text(".flash")
            .await
            .contains("Select a profile first")
    );
    let delete = browser.find("button[value=delete]").await;
    assert_eq!(
        delete.property("disabled").await,
        true,
        "nothing chosen yet"
    );
    browser.find("tbody tr td:nth-child(3)").await.click().await;
    assert!(
        browser
            .find(&format!("#choose-{profile_id}"))
            .await
            .is_selected()
            .await,
        "a click on the row chooses it"
    );
    browser
        .screenshot("09b-application-connections-chosen")
        .await;
    browser.find("button[value=delete]").await.click().await;
    browser
        .wait_for_url(&format!("/ui/profiles/{profile_id}/delete"))
        .await;
    assert!(
        browser.text("main").await.contains("1 connection(s)"),
        "the confirmation names what goes"
    );
    browser.find("#confirm").await.fill("nightly backups").await;
    submit(&browser, "button.danger").await;
    assert!(
        browser
            .text("#confirm-error")
            .await
            .contains("not the profile's name")
    );
    browser.screenshot("10-delete-profile").await;
    browser.find("#confirm").await.fill("Nightly backups").await;
    submit(&browser, "button.danger").await;
    browser.wait_for_url("deleted=1").await;
    assert!(browser.text(".flash.ok").await.contains("1 connection(s)"));
    submit(&browser, "header form button").await;
    browser.wait_for_url("/ui/login").await;
    browser.goto(&format!("{}/ui/profiles", app.base)).await;
    browser.wait_for_url("/ui/login").await;
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_center_profile_connects_with_pkce() {
    let app = TestApp::start(Mode::Rotating).await;
    app.manual_consent().await;
    let browser = Browser::start(1280, 900).await;
    sign_in(&browser, &app, "dc-admin").await;

    browser.goto(&format!("{}/ui/profiles/new", app.base)).await;
    fill_profile(
        &browser,
        "Platform DC",
        "bitbucket-datacenter",
        "pending",
        "pending",
    )
    .await;
    browser
        .find("#base_url")
        .await
        .fill(&format!("{}/dc", app.sim.url()))
        .await;
    tick(&browser, "REPO_READ").await;
    browser.screenshot("11-data-center-panel").await;
    submit(&browser, "form.stack button.primary").await;
    let url = browser.wait_for_url("created=1").await;
    let id = url
        .split("/ui/profiles/")
        .nth(1)
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(browser.text("#link-scopes").await, "REPO_READ");
    let redirect = browser.text("#setup-callback-url").await;
    let link = app
        .sim_post(
            "/_sim/dc/links",
            json!({"name": "Grantry", "redirect_url": redirect, "scopes": ["REPO_READ"]}),
        )
        .await;

    browser
        .goto(&format!("{}/ui/profiles/{id}/edit", app.base))
        .await;
    browser
        .find("#key")
        .await
        .fill(link["client_id"].as_str().unwrap())
        .await;
    browser
        .find("#secret")
        .await
        .fill(link["client_secret"].as_str().unwrap())
        .await;
    submit(&browser, "form.stack button.primary").await;
    browser.wait_for_url("saved=1").await;

    submit(&browser, "form[action$=\"/connect\"] button").await;
    let consent = browser
        .wait_for_url("/dc/rest/oauth2/latest/authorize")
        .await;
    assert!(consent.contains("code_challenge_method=S256"), "{consent}");
    browser.find("#username").await.fill("carol").await;
    browser.find("#password").await.fill("password").await;
    browser.find("#grant").await.click().await;
    browser.wait_for_url("connected=1").await;
    let row = browser.text("table tbody tr").await;
    assert!(
        row.contains("Carol Danvers") && row.contains("Active") && row.contains("REPO_READ"),
        "{row}"
    );
    browser.screenshot("12-data-center-connected").await;
    browser.resize(390, 844).await;
    browser
        .goto(&format!("{}/ui/profiles/{id}", app.base))
        .await;
    browser.screenshot("13-phone-profile").await;
    browser.goto(&format!("{}/ui/profiles", app.base)).await;
    browser.screenshot("14-phone-application-connections").await;
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_expired_sessions_and_forged_forms_are_refused() {
    let app = TestApp::start(Mode::Rotating).await;
    let browser = Browser::start(1280, 900).await;
    let secret = SecretString::from(PASSWORD.to_owned());
    app.grantry
        .create_admin("root", &secret, &grantry_core::Actor::Cli)
        .await
        .unwrap();

    browser.goto(&format!("{}/ui/profiles", app.base)).await;
    browser.wait_for_url("/ui/login").await;
    browser.find("#username").await.fill("root").await;
    browser
        .find("#password")
        .await
        .fill("not-the-password")
        .await;
    submit(&browser, "button.primary").await;
    assert_eq!(
        browser.text(".flash.bad").await,
        "Incorrect user name or password."
    );
    assert_eq!(
        browser.find("#username").await.property("value").await,
        "root"
    );
    browser.screenshot("15-sign-in-refused").await;

    browser.find("#password").await.fill(PASSWORD).await;
    submit(&browser, "button.primary").await;
    browser.wait_for_url("/ui/profiles").await;

    browser.goto(&format!("{}/ui/api-keys", app.base)).await;
    browser
        .execute("document.querySelector('form.stack input[name=csrf]').remove()")
        .await;
    browser.find("#name").await.fill("sneaky").await;
    submit(&browser, "form.stack button.primary").await;
    assert_eq!(browser.text("h1").await, "This form was not accepted");
    assert!(
        app.grantry
            .list_api_keys()
            .await
            .unwrap()
            .iter()
            .all(|k| k.name != "sneaky"),
        "nothing was created"
    );

    app.clock.advance(31 * 60);
    browser.goto(&format!("{}/ui/activity", app.base)).await;
    browser.wait_for_url("/ui/login?expired=1").await;
    assert!(
        browser
            .text(".flash")
            .await
            .contains("Your session expired")
    );
    browser.screenshot("16-session-expired").await;
    browser.quit().await;

    let response = app
        .http
        .post(format!("{}/ui/login", app.base))
        .form(&[("username", "root"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict")
            && cookie.contains("Path=/ui"),
        "{cookie}"
    );
    let session = cookie.split(';').next().unwrap();
    let forged = app
        .http
        .post(format!("{}/ui/api-keys", app.base))
        .header("cookie", session)
        .form(&[("name", "forged"), ("role", "admin")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        forged.status(),
        StatusCode::FORBIDDEN,
        "a form without the CSRF token is refused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_are_added_removed_and_change_their_own_password() {
    let app = TestApp::start(Mode::Rotating).await;
    let browser = Browser::start(1280, 900).await;
    sign_in(&browser, &app, "root").await;
    browser.goto(&format!("{}/ui/admins", app.base)).await;

    browser.find("#username").await.fill("dana").await;
    browser.find("#password").await.fill("too-short").await;
    submit(&browser, "form[action=\"/ui/admins\"] button").await;
    assert!(
        browser
            .text("#password-error")
            .await
            .contains("12 characters"),
        "the error sits next to its field"
    );
    assert_eq!(
        browser.find("#username").await.property("value").await,
        "dana",
        "what was typed is kept"
    );
    browser
        .find("#password")
        .await
        .fill("a long enough password")
        .await;
    submit(&browser, "form[action=\"/ui/admins\"] button").await;
    assert!(browser.text(".flash.ok").await.contains("“dana” added"));
    let table = browser.text("table tbody").await;
    assert!(
        table.contains("dana") && table.contains("root (you)"),
        "{table}"
    );
    assert!(
        !browser.exists("button[aria-label=\"Remove root\"]").await,
        "no one removes themselves here"
    );
    browser.screenshot("17-admins").await;

    submit(&browser, "button[aria-label=\"Remove dana\"]").await;
    assert!(browser.text(".flash.ok").await.contains("“dana” removed"));
    assert!(!browser.text("table tbody").await.contains("dana"));

    browser.find("#current").await.fill("not my password").await;
    browser
        .find("#new_password")
        .await
        .fill("a brand new passphrase")
        .await;
    submit(&browser, "form[action=\"/ui/admins/password\"] button").await;
    assert!(
        browser
            .text("#current-error")
            .await
            .contains("not your current password")
    );
    browser.find("#current").await.fill(PASSWORD).await;
    browser
        .find("#new_password")
        .await
        .fill("a brand new passphrase")
        .await;
    submit(&browser, "form[action=\"/ui/admins/password\"] button").await;
    browser.wait_for_url("/ui/login?password_changed=1").await;
    assert!(browser.text(".flash").await.contains("Password changed"));
    browser.goto(&format!("{}/ui/profiles", app.base)).await;
    browser.wait_for_url("/ui/login").await;

    browser.find("#username").await.fill("root").await;
    browser
        .find("#password")
        .await
        .fill("a brand new passphrase")
        .await;
    submit(&browser, "button.primary").await;
    browser.wait_for_url("/ui/profiles").await;
    let kinds: Vec<String> = app
        .grantry
        .list_events(
            &grantry_core::store::EventFilter {
                kind: Some("admin.".into()),
                ..Default::default()
            },
            &grantry_core::store::PageRequest {
                after: None,
                limit: 10,
            },
        )
        .await
        .unwrap()
        .into_iter()
        .map(|e| format!("{} by {}", e.kind, e.actor))
        .collect();
    assert_eq!(
        kinds,
        [
            "admin.password_changed by admin:root",
            "admin.removed by admin:root",
            "admin.created by admin:root",
            "admin.created by cli"
        ]
    );
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_added_tested_and_watched_in_the_console() {
    let app = TestApp::with(Mode::Rotating, |c| {
        c.webhooks.interval = std::time::Duration::from_millis(50);
    })
    .await;
    let browser = Browser::start(1280, 900).await;
    sign_in(&browser, &app, "root").await;
    browser.goto(&format!("{}/ui/webhooks", app.base)).await;

    browser.find("#url").await.fill("ftp://nowhere/").await;
    submit(&browser, "form[action=\"/ui/webhooks\"] button.primary").await;
    assert!(
        browser.text("#url-error").await.contains("http"),
        "named next to its field"
    );

    // An endpoint nobody listens on: the test message is attempted and waits for a retry.
    let port = crate::common::process::free_port();
    let url = format!("http://127.0.0.1:{port}/hooks");
    browser.find("#url").await.fill(&url).await;
    tick(&browser, "connection.needs_reauth").await;
    submit(&browser, "form[action=\"/ui/webhooks\"] button.primary").await;
    let secret = browser.text("#webhook-secret").await;
    assert!(
        secret.contains("whsec_"),
        "the secret, shown once: {secret}"
    );
    let row = browser.text("table tbody").await;
    assert!(
        row.contains(&url) && row.contains("connection.needs_reauth"),
        "{row}"
    );
    browser.screenshot("18-webhooks").await;

    submit(&browser, "table tbody button").await;
    assert!(browser.text(".flash.ok").await.contains("Test message"));
    let listed: Page<Webhook> = app.admin_get("/v1/webhooks").await;
    let id = listed.items[0].id.clone();
    let mut failing = false;
    for _ in 0..100 {
        browser
            .goto(&format!("{}/ui/webhooks/{id}", app.base))
            .await;
        if browser.source().await.contains("Failing") {
            failing = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(failing, "the endpoint shows as failing");
    let deliveries = browser.text("table tbody").await;
    assert!(
        deliveries.contains("webhook.test") && deliveries.contains("Pending"),
        "{deliveries}"
    );
    browser.screenshot("19-webhook-deliveries").await;

    browser.goto(&format!("{}/ui/webhooks", app.base)).await;
    submit(
        &browser,
        &format!("form[action=\"/ui/webhooks/{id}/remove\"] button"),
    )
    .await;
    assert!(browser.text(".flash.ok").await.contains("removed"));
    let listed: Page<Webhook> = app.admin_get("/v1/webhooks").await;
    assert!(listed.items.is_empty(), "{listed:?}");
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_token_is_added_checked_and_warned_about_in_the_console() {
    let app = TestApp::start(Mode::Rotating).await;
    let profile = app
        .cloud_profile(
            "Backups",
            &["account.read", "repositories.write"],
            &["repository:write"],
        )
        .await;
    let browser = Browser::start(1280, 900).await;
    sign_in(&browser, &app, "root").await;
    browser
        .goto(&format!("{}/ui/profiles/{profile}", app.base))
        .await;
    browser.find("#add-credential summary").await.click().await;
    let scopes = browser.text("#api-token-scopes").await;
    assert!(
        scopes.contains("read:repository:bitbucket")
            && scopes.contains("write:repository:bitbucket"),
        "the scopes to tick for what the profile needs: {scopes}"
    );

    // A token Bitbucket does not know is refused next to its field, and nothing is stored.
    browser.find("#email").await.fill("alice@example.com").await;
    browser.find("#token").await.fill("ATATT-made-up").await;
    submit(&browser, "#add-credential button.primary").await;
    assert!(
        browser
            .text("#token-error")
            .await
            .contains("refused this API token"),
        "said next to the token"
    );
    let listed: Page<Connection> = app.app_get("/v1/connections").await;
    assert!(listed.items.is_empty(), "{listed:?}");

    let now = app.grantry.clock.now();
    let made = app
        .sim_post(
            "/_sim/api-tokens",
            json!({"user": "alice", "expires_at": now.plus_seconds(30 * 86_400).unix(),
                   "scopes": "read:user:bitbucket read:repository:bitbucket write:repository:bitbucket"}),
        )
        .await;
    let day = grantry_core::clock::rfc3339(now.plus_seconds(3 * 86_400))[..10].to_owned();
    browser.find("#email").await.fill("alice@example.com").await;
    browser
        .find("#token")
        .await
        .fill(made["token"].as_str().unwrap())
        .await;
    browser
        .execute(&format!(
            "document.getElementById('expires_on').value = '{day}'"
        ))
        .await;
    submit(&browser, "#add-credential button.primary").await;
    assert!(browser.text(".flash.ok").await.contains("connected"));
    let row = browser.text("table tbody").await;
    assert!(
        row.contains("alice") && row.contains("api_token") && row.contains("Ends in"),
        "the account Bitbucket named, and the warning ahead of the expiry: {row}"
    );
    browser.screenshot("20-api-token-added").await;

    submit(&browser, "table tbody form[action$=\"/refresh\"] button").await;
    assert!(browser.text(".flash.ok").await.contains("Checked"));

    // The API reference, rendered from the OpenAPI document the binary serves.
    browser
        .click_and_wait_for_page("nav a[href=\"/ui/api\"]")
        .await;
    let token = browser.text("#op-getToken").await;
    assert!(
        token.contains("GET /v1/connections/{connection}/token") && token.contains("TokenView"),
        "{token}"
    );
    assert!(browser.text("#schema-Problem").await.contains("code"));
    browser.screenshot("21-api-reference").await;
    browser.quit().await;
}
