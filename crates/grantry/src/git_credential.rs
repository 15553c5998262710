//! `grantry git-credential`: a git credential helper that hands `git` a fresh token for one
//! connection, so a backup job or an agent clones and pushes without ever holding a refresh
//! token or an OAuth secret.
//!
//! git runs the helper with `get`, `store` or `erase` and writes the request to its standard
//! input as `key=value` lines (`protocol=https`, `host=bitbucket.org`, …) ended by an empty line;
//! for `get` it reads `username=` and `password=` back (git-credential(1)). Grantry owns the
//! tokens, so `store` and `erase` have nothing to do.
//!
//! The token comes from a Grantry server (`--server`, with an API key in `GRANTRY_API_KEY`), or,
//! without `--server`, from the local database exactly as `grantry token` reads it.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, bail};
use grantry_core::clock::{Clock, SystemClock, Timestamp};
use grantry_core::ids::ConnectionId;
use grantry_core::store::CredentialKind;
use secrecy::{ExposeSecret, SecretString};

use crate::cli::{GitCredentialArgs, GitOperation};
use crate::config::Config;
use crate::runtime::{self, Schema};

/// Bitbucket's git user for OAuth, client-credentials and access tokens. Data Center reads the
/// token as the password and ignores the name, so the same one serves there.
const TOKEN_USER: &str = "x-token-auth";
/// Bitbucket Cloud's git user for API tokens.
const API_TOKEN_USER: &str = "x-bitbucket-api-token-auth";

/// The parts of git's request the helper looks at; git may send more, which are ignored.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct GitRequest {
    pub protocol: Option<String>,
    pub host: Option<String>,
}

impl GitRequest {
    pub fn parse(input: &str) -> GitRequest {
        let mut request = GitRequest::default();
        for line in input.lines() {
            if line.is_empty() {
                break;
            }
            match line.split_once('=') {
                Some(("protocol", value)) => request.protocol = Some(value.to_owned()),
                Some(("host", value)) => request.host = Some(value.to_owned()),
                _ => {}
            }
        }
        request
    }

    /// A token travels only over HTTPS, or over plain HTTP to this very machine.
    pub fn check_transport(&self) -> anyhow::Result<()> {
        let host = self.host.as_deref().unwrap_or_default();
        match self.protocol.as_deref() {
            Some("https") => Ok(()),
            Some("http") if is_loopback(host) => Ok(()),
            Some(protocol) => bail!(
                "refusing to hand a token to git for {protocol}://{host}: only https remotes \
                 (or http on this machine) get one"
            ),
            None => bail!("git sent no protocol; run this as a git credential helper"),
        }
    }
}

fn is_loopback(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    matches!(name, "localhost" | "127.0.0.1" | "::1")
}

/// What git needs of a token.
pub struct GitToken {
    pub secret: SecretString,
    /// An Atlassian API token (HTTP Basic) rather than a bearer token.
    pub api_token: bool,
    /// Unix time at which the token stops working, when it does.
    pub expires_at: Option<Timestamp>,
}

impl GitToken {
    /// The answer to `get`: user, password and, so git's own caches drop it in time, expiry.
    pub fn answer(&self) -> anyhow::Result<String> {
        let secret = self.secret.expose_secret();
        if secret.contains(['\n', '\0']) {
            bail!("the stored token holds a line break; git's protocol cannot carry it");
        }
        let user = if self.api_token {
            API_TOKEN_USER
        } else {
            TOKEN_USER
        };
        let mut answer = format!("username={user}\npassword={secret}\n");
        if let Some(at) = self.expires_at {
            answer.push_str(&format!("password_expiry_utc={}\n", at.unix()));
        }
        Ok(answer)
    }
}

pub async fn run(args: GitCredentialArgs, config_file: Option<&Path>) -> anyhow::Result<()> {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .context("reading git's request from standard input")?;
    if args.operation != GitOperation::Get {
        return Ok(());
    }
    GitRequest::parse(&input).check_transport()?;
    let connection = ConnectionId::parse(&args.connection)?;
    let token = match &args.server {
        Some(server) => from_server(server, &connection).await?,
        None => from_local_store(config_file, &connection).await?,
    };
    print!("{}", token.answer()?);
    Ok(())
}

/// The API key travels to the server: only over HTTPS, or plain HTTP on this machine.
fn check_server(server: &url::Url) -> anyhow::Result<()> {
    let host = server.host_str().unwrap_or_default();
    match server.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(host) => Ok(()),
        scheme => bail!(
            "refusing to send the API key to {server} over {scheme}: use an https:// server \
             (or http on this machine)"
        ),
    }
}

/// `{server}/v1/connections/{id}/token`, below the server's path when it has one
/// (`https://tools.internal/grantry` → `https://tools.internal/grantry/v1/…`).
fn token_url(server: &url::Url, connection: &ConnectionId) -> anyhow::Result<url::Url> {
    let mut base = server.clone();
    if !base.path().ends_with('/') {
        base.set_path(&format!("{}/", base.path()));
    }
    base.join(&format!("v1/connections/{connection}/token"))
        .context("building the token URL from --server")
}

async fn from_server(server: &url::Url, connection: &ConnectionId) -> anyhow::Result<GitToken> {
    check_server(server)?;
    let key = std::env::var("GRANTRY_API_KEY").map_err(|_| {
        anyhow::anyhow!("set GRANTRY_API_KEY to an API key of the Grantry server at {server}")
    })?;
    let url = token_url(server, connection)?;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(30))
        .build()?;
    let response = client
        .get(url)
        .bearer_auth(key)
        .send()
        .await
        .with_context(|| format!("asking the Grantry server at {server} for a token"))?;
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    if !status.is_success() {
        let said = body["detail"]
            .as_str()
            .or(body["title"].as_str())
            .unwrap_or("no explanation given");
        bail!("the Grantry server answered {status} for connection {connection}: {said}");
    }
    let Some(secret) = body["access_token"].as_str() else {
        bail!("the Grantry server's answer carries no access_token");
    };
    let now = SystemClock.now();
    Ok(GitToken {
        secret: SecretString::from(secret.to_owned()),
        api_token: body["token_type"] == "basic",
        expires_at: body["expires_in"]
            .as_i64()
            .map(|left| now.plus_seconds(left)),
    })
}

async fn from_local_store(
    config_file: Option<&Path>,
    connection: &ConnectionId,
) -> anyhow::Result<GitToken> {
    let config = Config::load(config_file)?;
    let runtime = runtime::open(&config, Schema::Expect).await?;
    let token = runtime.grantry.token(connection).await;
    runtime.backend.close().await;
    let token = token?;
    Ok(GitToken {
        secret: token.access_token.clone(),
        api_token: token.credential == CredentialKind::ApiToken,
        expires_at: token.expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_read_up_to_the_empty_line() {
        let request = GitRequest::parse(
            "protocol=https\nhost=bitbucket.org\npath=acme/widget.git\n\nhost=x\n",
        );
        assert_eq!(
            request,
            GitRequest {
                protocol: Some("https".into()),
                host: Some("bitbucket.org".into()),
            }
        );
    }

    #[test]
    fn tokens_travel_only_over_https_or_to_this_machine() {
        let request = |protocol: &str, host: &str| GitRequest {
            protocol: Some(protocol.into()),
            host: Some(host.into()),
        };
        assert!(request("https", "bitbucket.org").check_transport().is_ok());
        assert!(request("http", "127.0.0.1:7990").check_transport().is_ok());
        assert!(request("http", "localhost").check_transport().is_ok());
        assert!(request("http", "[::1]:8080").check_transport().is_ok());
        let refused = request("http", "bitbucket.example.com")
            .check_transport()
            .unwrap_err()
            .to_string();
        assert!(refused.contains("only https"), "{refused}");
        assert!(
            request("http", "127.0.0.1.evil.example")
                .check_transport()
                .is_err()
        );
        assert!(GitRequest::default().check_transport().is_err());
    }

    #[test]
    fn api_keys_go_only_to_https_servers_or_this_machine() {
        let server = |url: &str| check_server(&url::Url::parse(url).unwrap());
        assert!(server("https://grantry.internal").is_ok());
        assert!(server("http://127.0.0.1:8080").is_ok());
        assert!(server("http://localhost:8080/").is_ok());
        assert!(server("http://[::1]:8080/").is_ok());
        let refused = server("http://grantry.internal").unwrap_err().to_string();
        assert!(refused.contains("https://"), "{refused}");
    }

    #[test]
    fn the_token_url_keeps_the_servers_path() {
        let connection = ConnectionId::parse("con_00000000000000000000000000").unwrap();
        let url = |server: &str| {
            token_url(&url::Url::parse(server).unwrap(), &connection)
                .unwrap()
                .to_string()
        };
        let tail = "v1/connections/con_00000000000000000000000000/token";
        assert_eq!(
            url("https://tools.internal/grantry"),
            format!("https://tools.internal/grantry/{tail}")
        );
        assert_eq!(
            url("https://tools.internal/grantry/"),
            format!("https://tools.internal/grantry/{tail}")
        );
        assert_eq!(
            url("http://127.0.0.1:8080"),
            format!("http://127.0.0.1:8080/{tail}")
        );
    }

    #[test]
    fn answers_name_bitbucket_git_users() {
        let token = |api_token, expires_at| GitToken {
            secret: SecretString::from("t0ken".to_owned()),
            api_token,
            expires_at,
        };
        assert_eq!(
            token(false, Some(Timestamp::from_unix(1_900_000_000)))
                .answer()
                .unwrap(),
            "username=x-token-auth\npassword=t0ken\npassword_expiry_utc=1900000000\n"
        );
        assert_eq!(
            token(true, None).answer().unwrap(),
            "username=x-bitbucket-api-token-auth\npassword=t0ken\n"
        );
        let broken = GitToken {
            secret: SecretString::from("a\nb".to_owned()),
            api_token: false,
            expires_at: None,
        };
        assert!(broken.answer().is_err());
    }
}
