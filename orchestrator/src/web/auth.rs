//! Who may do what: bearer tokens with a role (viewer < operator < admin), configured in
//! `WEIR_HOME/tokens.txt` (`ROLE TOKEN` per line) or `WEIR_TOKENS` (`TOKEN=ROLE,...`).
//!
//! Read-only views are open when the server listens on loopback; launching, stopping,
//! approving and rejecting always need an operator (or admin) token. A server on loopback with
//! no tokens configured makes one admin token for its own page, which only same-origin
//! requests can read; a server on another address refuses to start without tokens.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;

/// Roles, from least to most allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Viewer,
    Operator,
    Admin,
}

impl Role {
    fn parse(text: &str) -> Option<Self> {
        match text.trim() {
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// Errors configuring access.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(
        "{source_name}: line {line}: expected `ROLE TOKEN` with ROLE viewer, operator or admin"
    )]
    BadLine { source_name: String, line: usize },
    #[error("refusing to listen on {addr} without access tokens: add `operator TOKEN` lines to {tokens_file} or set WEIR_TOKENS=TOKEN=operator, or listen on 127.0.0.1")]
    ExposedWithoutTokens {
        addr: SocketAddr,
        tokens_file: String,
    },
    #[error("cannot make a token for the page: the operating system gave no random bytes ({0}); configure tokens in {1} or WEIR_TOKENS")]
    NoRandomness(getrandom::Error, String),
}

/// The access rules of one server.
#[derive(Debug, Clone)]
pub struct Access {
    tokens: HashMap<String, Role>,
    /// Reads need no token (loopback listener).
    open_reads: bool,
    /// The token the server made for its own page, when none were configured.
    pub page_token: Option<String>,
    /// The server listens on loopback: only loopback names in `Host` are answered.
    loopback_only: bool,
}

/// Why a server on loopback refuses a request's `Host` (DNS rebinding protection).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostRefused {
    #[error(
        "this server listens on loopback and answers only to localhost or 127.0.0.1, not `{0}`"
    )]
    NotLoopback(String),
    #[error("a request without `Host` is refused on loopback")]
    NoHost,
}

/// Why a request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// No or unknown token: 401.
    Unauthenticated,
    /// A valid token whose role is too low: 403.
    Forbidden,
}

impl Access {
    /// Reads the configured tokens and applies the rules for `addr`.
    pub fn configure(home: &Path, addr: SocketAddr) -> Result<Self, AuthError> {
        let file = home.join("tokens.txt");
        let mut tokens = HashMap::new();
        if let Ok(text) = std::fs::read_to_string(&file) {
            for (index, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let bad = || AuthError::BadLine {
                    source_name: file.display().to_string(),
                    line: index + 1,
                };
                let (role, token) = line.split_once(char::is_whitespace).ok_or_else(bad)?;
                tokens.insert(token.trim().to_string(), Role::parse(role).ok_or_else(bad)?);
            }
        }
        if let Ok(spec) = std::env::var("WEIR_TOKENS") {
            for (index, pair) in spec.split(',').filter(|p| !p.trim().is_empty()).enumerate() {
                let bad = || AuthError::BadLine {
                    source_name: "WEIR_TOKENS".into(),
                    line: index + 1,
                };
                let (token, role) = pair.split_once('=').ok_or_else(bad)?;
                tokens.insert(token.trim().to_string(), Role::parse(role).ok_or_else(bad)?);
            }
        }
        let loopback = addr.ip().is_loopback();
        let mut page_token = None;
        if tokens.is_empty() {
            if !loopback {
                return Err(AuthError::ExposedWithoutTokens {
                    addr,
                    tokens_file: file.display().to_string(),
                });
            }
            let token = random_token()
                .map_err(|e| AuthError::NoRandomness(e, file.display().to_string()))?;
            tokens.insert(token.clone(), Role::Admin);
            page_token = Some(token);
        }
        Ok(Self {
            tokens,
            open_reads: loopback,
            page_token,
            loopback_only: loopback,
        })
    }

    /// On loopback, requests must name the server by a loopback name: a page on another site
    /// whose name resolves to 127.0.0.1 (DNS rebinding) is refused, with the reason.
    pub fn host_allowed(&self, host: Option<&str>) -> Result<(), HostRefused> {
        match host {
            _ if !self.loopback_only => Ok(()),
            Some(host) if is_loopback_host(host) => Ok(()),
            Some(host) => Err(HostRefused::NotLoopback(host.into())),
            None => Err(HostRefused::NoHost),
        }
    }

    /// Checks a request's `Authorization` header against the role it needs.
    pub fn check(&self, authorization: Option<&str>, needed: Role) -> Result<(), Denied> {
        if needed == Role::Viewer && self.open_reads {
            return Ok(());
        }
        let token = authorization
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or(Denied::Unauthenticated)?;
        match self.tokens.get(token) {
            None => Err(Denied::Unauthenticated),
            Some(role) if *role >= needed => Ok(()),
            Some(_) => Err(Denied::Forbidden),
        }
    }
}

/// 32 hex characters from the operating system's random source; an error when it cannot be
/// read (a guessable token is never made).
fn random_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The names a loopback server answers to: `localhost` and loopback addresses, any port.
fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        // `[::1]:8080`
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Cross-site request check for mutating calls: a browser sends `Origin`; it must be this
/// server's own. Calls without `Origin` (curl, scripts) rely on their token alone.
pub fn same_origin(origin: Option<&str>, host: Option<&str>) -> bool {
    match (origin, host) {
        (None, _) => true,
        (Some(origin), Some(host)) => {
            origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"))
                == Some(host)
        }
        (Some(_), None) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(tokens: &[(&str, Role)], open_reads: bool) -> Access {
        Access {
            tokens: tokens.iter().map(|(t, r)| (t.to_string(), *r)).collect(),
            open_reads,
            page_token: None,
            loopback_only: open_reads,
        }
    }

    #[test]
    fn a_loopback_server_answers_only_to_loopback_names() {
        let local = access(&[], true);
        for host in [
            "127.0.0.1:8080",
            "localhost:8080",
            "LOCALHOST",
            "[::1]:8080",
            "127.0.0.2",
        ] {
            assert_eq!(local.host_allowed(Some(host)), Ok(()), "{host}");
        }
        for host in [
            "rebind.example:8080",
            "127.0.0.1.nip.io:8080",
            "10.0.0.1:8080",
        ] {
            assert!(
                local
                    .host_allowed(Some(host))
                    .unwrap_err()
                    .to_string()
                    .contains(host),
                "{host}"
            );
        }
        assert!(local.host_allowed(None).is_err());
        let exposed = access(&[("t", Role::Operator)], false);
        assert_eq!(exposed.host_allowed(Some("weir.example.com")), Ok(()));
    }

    #[test]
    fn roles_are_ordered_and_reads_open_on_loopback() {
        let a = access(&[("v", Role::Viewer), ("o", Role::Operator)], true);
        assert_eq!(a.check(None, Role::Viewer), Ok(()));
        assert_eq!(a.check(None, Role::Operator), Err(Denied::Unauthenticated));
        assert_eq!(
            a.check(Some("Bearer v"), Role::Operator),
            Err(Denied::Forbidden)
        );
        assert_eq!(a.check(Some("Bearer o"), Role::Operator), Ok(()));
        assert_eq!(
            a.check(Some("Bearer nope"), Role::Operator),
            Err(Denied::Unauthenticated)
        );
        let exposed = access(&[("v", Role::Viewer)], false);
        assert_eq!(
            exposed.check(None, Role::Viewer),
            Err(Denied::Unauthenticated)
        );
        assert_eq!(exposed.check(Some("Bearer v"), Role::Viewer), Ok(()));
    }

    #[test]
    fn exposed_servers_need_tokens() {
        let home = tempfile::tempdir().unwrap();
        let err = Access::configure(home.path(), "0.0.0.0:8080".parse().unwrap()).unwrap_err();
        assert!(
            err.to_string()
                .contains("refusing to listen on 0.0.0.0:8080"),
            "{err}"
        );
        let local = Access::configure(home.path(), "127.0.0.1:8080".parse().unwrap()).unwrap();
        let token = local.page_token.clone().unwrap();
        assert_eq!(token.len(), 32);
        assert_eq!(
            local.check(Some(&format!("Bearer {token}")), Role::Admin),
            Ok(())
        );
    }

    #[test]
    fn origin_must_match_host() {
        assert!(same_origin(None, Some("127.0.0.1:8080")));
        assert!(same_origin(
            Some("http://127.0.0.1:8080"),
            Some("127.0.0.1:8080")
        ));
        assert!(!same_origin(
            Some("http://evil.example"),
            Some("127.0.0.1:8080")
        ));
    }
}
