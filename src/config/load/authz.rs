//! `authz`: the verify-only listener (docs/authz.md).

use std::net::SocketAddr;

use super::Validator;
use crate::config::file::AuthzFile;
use crate::config::{Admin, Server};
use crate::gateway::authz::{HttpDuplicate, Settings};

impl Validator {
    pub(super) fn authz(&mut self, f: AuthzFile) -> Settings {
        let d = Settings::default();
        let listen = self.addr("authz.listen", f.listen, "127.0.0.1:9191");
        let prefix = self.text(
            "authz.http_path_prefix",
            f.http_path_prefix,
            "a path such as /authz",
        );
        let http_path_prefix = match prefix {
            None => d.http_path_prefix,
            Some(p) if valid_prefix(&p) => p,
            Some(p) => {
                self.problem(
                    "authz.http_path_prefix",
                    format!("`{p}` is not a path prefix; write it with a leading `/` and no trailing `/`, e.g. /authz"),
                );
                d.http_path_prefix
            }
        };
        let duplicate = self.text(
            "authz.http_duplicate",
            f.http_duplicate,
            "deny_202 or allow_marked",
        );
        let http_duplicate = match duplicate.as_deref() {
            None | Some("deny_202") => HttpDuplicate::Deny202,
            Some("allow_marked") => HttpDuplicate::AllowMarked,
            Some(other) => {
                self.problem(
                    "authz.http_duplicate",
                    format!("`{other}` is not a choice; use deny_202 (Envoy http_service: the default) or allow_marked (Traefik forwardAuth, which allows on every 2xx)"),
                );
                HttpDuplicate::Deny202
            }
        };
        Settings {
            listen,
            http_path_prefix,
            http_duplicate,
        }
    }

    /// The authz listener cannot take the proxy's or the admin listener's port.
    pub(super) fn authz_apart(&mut self, authz: &Settings, server: &Server, admin: &Admin) {
        for (other, name) in [
            (server.listen, "server.listen"),
            (admin.listen, "admin.listen"),
        ] {
            if overlaps(authz.listen, other) {
                self.problem(
                    "authz.listen",
                    format!(
                        "`{}` takes the port {name} (`{other}`) listens on; give the authz listener its own port, e.g. 127.0.0.1:9191",
                        authz.listen
                    ),
                );
            }
        }
    }
}

/// `/authz`, `/ext/authz`: a leading `/`, no trailing one, no query, no spaces.
fn valid_prefix(p: &str) -> bool {
    p.starts_with('/')
        && !p.ends_with('/')
        && p.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'?' && b != b'#')
}

/// Whether two listeners would need the same port (not 0) on overlapping addresses.
fn overlaps(a: SocketAddr, b: SocketAddr) -> bool {
    let overlap = a.ip() == b.ip()
        || (a.ip().is_unspecified() && (a.is_ipv6() || b.is_ipv4()))
        || (b.ip().is_unspecified() && (b.is_ipv6() || a.is_ipv4()));
    a.port() != 0 && a.port() == b.port() && overlap
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use crate::gateway::authz::HttpDuplicate;

    #[test]
    fn defaults_and_choices() {
        assert!(parse(ROUTE).unwrap().authz.is_none());
        let c = parse(&format!("{ROUTE}authz: {{}}\n")).unwrap();
        let a = c.authz.unwrap();
        assert_eq!(a.listen.to_string(), "127.0.0.1:9191");
        assert_eq!(a.http_path_prefix, "/authz");
        assert_eq!(a.http_duplicate, HttpDuplicate::Deny202);
        let c = parse(&format!(
            "{ROUTE}authz: {{listen: 127.0.0.1:0, http_path_prefix: /check, http_duplicate: allow_marked}}\n"
        ))
        .unwrap();
        let a = c.authz.unwrap();
        assert_eq!(a.http_path_prefix, "/check");
        assert_eq!(a.http_duplicate, HttpDuplicate::AllowMarked);
    }

    #[test]
    fn bad_values_name_their_key_and_fix() {
        let p = problems(&format!(
            "{ROUTE}authz: {{listen: nowhere, http_path_prefix: authz/, http_duplicate: allow}}\n"
        ));
        for key in [
            "authz.listen:",
            "authz.http_path_prefix: `authz/` is not a path prefix",
            "authz.http_duplicate: `allow` is not a choice; use deny_202",
        ] {
            assert!(p.iter().any(|p| p.starts_with(key)), "{key} not in {p:?}");
        }
        let p = problems(&format!("{ROUTE}authz: {{lsten: x}}\n"));
        assert!(p.iter().any(|p| p.starts_with("authz.lsten: unknown key")));
    }
}
