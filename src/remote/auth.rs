//! How a node proves who it is to NATS ([`Credentials`]) and how it checks the server
//! ([`Tls`]), from the builder or from the environment.

use std::fmt;
use std::path::PathBuf;

use super::RemoteError;

/// The environment variables [`NodeOptions::from_env`](super::NodeOptions::from_env) reads.
pub const ENV_VARS: [&str; 9] = [
    "MODO_NATS_USER",
    "MODO_NATS_PASSWORD",
    "MODO_NATS_TOKEN",
    "MODO_NATS_NKEY",
    "MODO_NATS_CREDS",
    "MODO_NATS_TLS_CA",
    "MODO_NATS_TLS_CERT",
    "MODO_NATS_TLS_KEY",
    "MODO_NATS_TLS_REQUIRED",
];

/// How a node authenticates to the NATS server. Its `Debug` never shows a secret.
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Credentials {
    /// None (a server without authorization).
    #[default]
    None,
    /// A user name and password (`authorization { users = [...] }`).
    UserPassword {
        /// The user.
        user: String,
        /// The password.
        password: String,
    },
    /// A token (`authorization { token: ... }`).
    Token(String),
    /// An nkey seed (`SU...`): the node signs the server's nonce with it; the server knows
    /// only the public key.
    NKey(String),
    /// A `.creds` file (a user JWT and its nkey seed, for decentralized auth).
    CredsFile(PathBuf),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::None => f.write_str("None"),
            Credentials::UserPassword { user, .. } => f
                .debug_struct("UserPassword")
                .field("user", user)
                .field("password", &"<redacted>")
                .finish(),
            Credentials::Token(_) => f.write_str("Token(<redacted>)"),
            Credentials::NKey(_) => f.write_str("NKey(<redacted>)"),
            Credentials::CredsFile(path) => f.debug_tuple("CredsFile").field(path).finish(),
        }
    }
}

/// TLS towards the NATS server: the CA that signed its certificate, and a client certificate
/// when the server verifies clients.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Tls {
    /// PEM file of the certificate authority the server's certificate is checked against
    /// (besides the system's roots).
    pub root_ca: Option<PathBuf>,
    /// PEM files of the client certificate and its key (for servers with `verify: true`).
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// Refuse a server that does not offer TLS.
    pub required: bool,
}

impl Tls {
    pub(crate) fn is_set(&self) -> bool {
        self.root_ca.is_some() || self.client_cert.is_some() || self.required
    }
}

/// Reads the credentials and TLS settings from `get` (the environment, or a test's map).
pub(crate) fn from_vars(
    get: impl Fn(&str) -> Option<String>,
) -> Result<(Credentials, Tls), RemoteError> {
    let get = |k: &str| get(k).filter(|v| !v.is_empty());
    let config = |what: String| RemoteError::Config { what };
    let mut found = Vec::new();
    let mut creds = Credentials::None;
    match (get("MODO_NATS_USER"), get("MODO_NATS_PASSWORD")) {
        (Some(user), Some(password)) => {
            found.push("MODO_NATS_USER");
            creds = Credentials::UserPassword { user, password };
        }
        (Some(_), None) => {
            return Err(config(
                "MODO_NATS_USER is set without MODO_NATS_PASSWORD".into(),
            ));
        }
        (None, Some(_)) => {
            return Err(config(
                "MODO_NATS_PASSWORD is set without MODO_NATS_USER".into(),
            ));
        }
        (None, None) => {}
    }
    if let Some(token) = get("MODO_NATS_TOKEN") {
        found.push("MODO_NATS_TOKEN");
        creds = Credentials::Token(token);
    }
    if let Some(seed) = get("MODO_NATS_NKEY") {
        found.push("MODO_NATS_NKEY");
        creds = Credentials::NKey(seed);
    }
    if let Some(path) = get("MODO_NATS_CREDS") {
        found.push("MODO_NATS_CREDS");
        creds = Credentials::CredsFile(PathBuf::from(path));
    }
    if found.len() > 1 {
        return Err(config(format!(
            "more than one way to authenticate is set: {}",
            found.join(", ")
        )));
    }
    let client_cert = match (get("MODO_NATS_TLS_CERT"), get("MODO_NATS_TLS_KEY")) {
        (Some(cert), Some(key)) => Some((PathBuf::from(cert), PathBuf::from(key))),
        (None, None) => None,
        _ => {
            return Err(config(
                "MODO_NATS_TLS_CERT and MODO_NATS_TLS_KEY go together".into(),
            ));
        }
    };
    let required = match get("MODO_NATS_TLS_REQUIRED").as_deref() {
        None | Some("0" | "false" | "no") => false,
        Some("1" | "true" | "yes") => true,
        Some(other) => {
            return Err(config(format!(
                "MODO_NATS_TLS_REQUIRED must be 1/true/yes or 0/false/no, not {other:?}"
            )));
        }
    };
    let tls = Tls {
        root_ca: get("MODO_NATS_TLS_CA").map(PathBuf::from),
        client_cert,
        required,
    };
    Ok((creds, tls))
}

/// Applies credentials and TLS to the client's options.
pub(crate) async fn apply(
    mut opts: async_nats::ConnectOptions,
    creds: &Credentials,
    tls: &Tls,
) -> Result<async_nats::ConnectOptions, RemoteError> {
    let config = |what: String| RemoteError::Config { what };
    opts = match creds {
        Credentials::None => opts,
        Credentials::UserPassword { user, password } => {
            opts.user_and_password(user.clone(), password.clone())
        }
        Credentials::Token(token) => opts.token(token.clone()),
        Credentials::NKey(seed) => opts.nkey(seed.clone()),
        Credentials::CredsFile(path) => opts.credentials_file(path).await.map_err(|e| {
            config(format!(
                "cannot read the credentials file {}: {e}",
                path.display()
            ))
        })?,
    };
    if let Some(ca) = &tls.root_ca {
        if !ca.is_file() {
            return Err(config(format!("no TLS CA file at {}", ca.display())));
        }
        opts = opts.add_root_certificates(ca.clone());
    }
    if let Some((cert, key)) = &tls.client_cert {
        for f in [cert, key] {
            if !f.is_file() {
                return Err(config(format!("no TLS file at {}", f.display())));
            }
        }
        opts = opts.add_client_certificate(cert.clone(), key.clone());
    }
    if tls.is_set() {
        opts = opts.require_tls(true);
    }
    Ok(opts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn the_environment_gives_one_way_in_or_a_typed_error() {
        let (c, t) = from_vars(vars(&[])).unwrap();
        assert_eq!(c, Credentials::None);
        assert!(!t.is_set());
        let (c, _) = from_vars(vars(&[
            ("MODO_NATS_USER", "shop"),
            ("MODO_NATS_PASSWORD", "s3cret"),
        ]))
        .unwrap();
        assert_eq!(
            c,
            Credentials::UserPassword {
                user: "shop".into(),
                password: "s3cret".into()
            }
        );
        assert!(!format!("{c:?}").contains("s3cret"));
        let (c, _) = from_vars(vars(&[("MODO_NATS_TOKEN", "tok")])).unwrap();
        assert_eq!(format!("{c:?}"), "Token(<redacted>)");
        let (_, t) = from_vars(vars(&[
            ("MODO_NATS_TLS_CA", "/ca.pem"),
            ("MODO_NATS_TLS_REQUIRED", "1"),
        ]))
        .unwrap();
        assert_eq!(t.root_ca.as_deref(), Some(std::path::Path::new("/ca.pem")));
        assert!(t.required);
        for bad in [
            vec![("MODO_NATS_USER", "u")],
            vec![("MODO_NATS_PASSWORD", "p")],
            vec![("MODO_NATS_TOKEN", "t"), ("MODO_NATS_NKEY", "SU")],
            vec![("MODO_NATS_TLS_CERT", "/c.pem")],
            vec![("MODO_NATS_TLS_REQUIRED", "maybe")],
        ] {
            let err = from_vars(vars(&bad)).unwrap_err();
            assert!(matches!(err, RemoteError::Config { .. }), "{bad:?}: {err}");
        }
    }
}
