//! A nats-server of the test's own, on a free loopback port, killed when dropped; and the
//! skip rule: without nats-server on this machine the remote tests print how to install it
//! and pass. `MODO_NATS_SERVER` names the binary (a path that does not exist forces the
//! skip, which is how the skip path is checked).
#![allow(dead_code)]

pub mod watcher;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The line a skipped test prints.
pub const SKIP: &str =
    "skipped: nats-server not found; install it with: apt-get install nats-server";

/// The nats-server binary: `MODO_NATS_SERVER` if set (and it exists), else `nats-server` on
/// PATH, else `/usr/sbin/nats-server` (Debian's package installs it there).
pub fn server_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("MODO_NATS_SERVER") {
        let path = PathBuf::from(path);
        return path.is_file().then_some(path);
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("nats-server"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        let sbin = PathBuf::from("/usr/sbin/nats-server");
        sbin.is_file().then_some(sbin)
    })
}

/// Prints the skip line where a test run shows it (straight to stderr: libtest captures
/// only the print macros).
pub fn print_skip() {
    let _ = writeln!(std::io::stderr(), "{SKIP}");
}

/// Starts a server, or prints the skip line and returns from the test.
#[macro_export]
macro_rules! server_or_skip {
    () => {
        match $crate::remote_support::NatsServer::start() {
            Some(server) => server,
            None => {
                $crate::remote_support::print_skip();
                return;
            }
        }
    };
}

/// A nats-server process on 127.0.0.1.
pub struct NatsServer {
    binary: PathBuf,
    child: Option<Child>,
    dir: PathBuf,
    port: u16,
    extra: Vec<String>,
    host: String,
}

impl NatsServer {
    /// A server on a free port; `None` if there is no nats-server binary.
    ///
    /// # Panics
    /// If the binary exists but the server does not come up within 10 s.
    pub fn start() -> Option<NatsServer> {
        Self::start_with(&[], None)
    }

    /// A server on a free port with this configuration file text (`authorization {...}`,
    /// `tls {...}`, `cluster {...}`) and these extra arguments.
    pub fn start_with(args: &[String], config: Option<&str>) -> Option<NatsServer> {
        Self::start_on("127.0.0.1", args, config)
    }

    /// A server listening on `host` (loopback, or the link-local address of a test's own
    /// veth pair).
    pub fn start_on(host: &str, args: &[String], config: Option<&str>) -> Option<NatsServer> {
        let binary = server_binary()?;
        let dir = temp_dir("nats");
        let mut extra: Vec<String> = vec!["-a".into(), host.into()];
        extra.extend_from_slice(args);
        if let Some(text) = config {
            let path = dir.join("server.conf");
            std::fs::write(&path, text).expect("write the server's config");
            extra.push("-c".into());
            extra.push(path.display().to_string());
        }
        let child = spawn_with(&binary, &dir, None, &extra);
        let pid = child.id();
        let mut server = NatsServer {
            binary,
            child: Some(child),
            dir,
            port: 0,
            extra,
            host: host.to_owned(),
        };
        server.port = server.read_port(pid);
        server.wait_until_listening();
        Some(server)
    }

    /// The folder the server's files live in (removed when it is dropped).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The cluster (route) port the server wrote in its ports file, if it has one.
    pub fn cluster_port(&self) -> Option<u16> {
        let pid = self.child.as_ref()?.id();
        let text =
            std::fs::read_to_string(self.dir.join(format!("nats-server_{pid}.ports"))).ok()?;
        let start = text.find("\"cluster\"")?;
        parse_port(&text[start..])
    }

    /// The client URL.
    pub fn url(&self) -> String {
        format!("nats://{}:{}", self.host, self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (after [`kill`](Self::kill)).
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut child = spawn_with(&self.binary, &self.dir, Some(self.port), &self.extra);
            std::thread::sleep(Duration::from_millis(100));
            match child.try_wait() {
                Ok(None) => {
                    self.child = Some(child);
                    break;
                }
                // The port is not free yet: try again, for a while.
                _ if Instant::now() < deadline => continue,
                other => panic!(
                    "nats-server did not restart on port {}: {other:?}",
                    self.port
                ),
            }
        }
        self.wait_until_listening();
    }

    fn read_port(&mut self, pid: u32) -> u16 {
        let file = self.dir.join(format!("nats-server_{pid}.ports"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(text) = std::fs::read_to_string(&file)
                && let Some(port) = parse_port(&text)
            {
                return port;
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("nats-server exited at start: {status}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "nats-server wrote no ports file in 10 s ({})",
            file.display()
        );
    }

    fn wait_until_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect((self.host.as_str(), self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("nats-server is not listening on {} after 10 s", self.port);
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A fresh folder under the temp dir.
pub fn temp_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "modo-{what}-{}-{}",
        std::process::id(),
        uuid_like()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn spawn_with(binary: &Path, dir: &Path, port: Option<u16>, extra: &[String]) -> Child {
    let port = port.map_or_else(|| "-1".to_string(), |p| p.to_string());
    Command::new(binary)
        .args(["-a", "127.0.0.1", "-p", &port, "--ports_file_dir"])
        .arg(dir)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()))
}

/// `{"nats":["nats://127.0.0.1:33869"], ...}` -> 33869 (the scheme is `tls://` for a server
/// that requires TLS).
fn parse_port(text: &str) -> Option<u16> {
    let start = text.find("://")? + "://".len();
    let rest = &text[start..];
    let colon = rest.find(':')?;
    let digits: String = rest[colon + 1..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

fn uuid_like() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    );
    h.finish()
}

/// Three servers routed to each other on loopback: the first with a random cluster port, the
/// others routed to it (the mesh completes by gossip).
pub struct NatsCluster {
    /// The servers.
    pub servers: Vec<NatsServer>,
}

impl NatsCluster {
    /// `n` servers in one cluster; `None` without nats-server.
    ///
    /// # Panics
    /// If they do not come up, or do not form routes within 10 s.
    pub fn start(n: usize) -> Option<NatsCluster> {
        let first = NatsServer::start_with(
            &[
                "--cluster_name".into(),
                "modo".into(),
                "--cluster".into(),
                "nats://127.0.0.1:-1".into(),
            ],
            None,
        )?;
        let deadline = Instant::now() + Duration::from_secs(10);
        let route = loop {
            if let Some(p) = first.cluster_port() {
                break p;
            }
            assert!(
                Instant::now() < deadline,
                "no cluster port for the first server"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut servers = vec![first];
        for _ in 1..n {
            let args = [
                "--cluster_name".to_string(),
                "modo".into(),
                "--cluster".into(),
                "nats://127.0.0.1:-1".into(),
                "--routes".into(),
                format!("nats://127.0.0.1:{route}"),
            ];
            servers.push(NatsServer::start_with(&args, None)?);
        }
        Some(NatsCluster { servers })
    }

    /// Every client URL, comma separated (what `Node::connect` takes).
    pub fn urls(&self) -> String {
        self.servers
            .iter()
            .map(NatsServer::url)
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// PEM files of a throwaway CA, a server certificate for 127.0.0.1 and a client certificate,
/// made with the `openssl` command line at test time.
pub struct Certs {
    /// The folder they are in (removed when dropped).
    pub dir: PathBuf,
    /// The CA's certificate.
    pub ca: PathBuf,
    /// The server's certificate and key.
    pub server: (PathBuf, PathBuf),
    /// The client's certificate and key.
    pub client: (PathBuf, PathBuf),
}

impl Drop for Certs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Certs {
    /// `None` if `openssl` is not installed (the TLS tests then skip, saying so).
    ///
    /// # Panics
    /// If openssl is there but fails.
    pub fn make() -> Option<Certs> {
        let openssl = Command::new("openssl").arg("version").output().ok()?;
        if !openssl.status.success() {
            return None;
        }
        let dir = temp_dir("tls");
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(&dir)
                .stdin(Stdio::null())
                .output()
                .expect("openssl runs");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        run(&[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=modo test CA",
            ],
        ]
        .concat());
        for (who, usage) in [("server", "serverAuth"), ("client", "clientAuth")] {
            let key = format!("{who}.key");
            let csr = format!("{who}.csr");
            let pem = format!("{who}.pem");
            let ext = format!("{who}.ext");
            std::fs::write(
                dir.join(&ext),
                format!("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage={usage}\n"),
            )
            .expect("write the extensions");
            run(&[
                &["req"][..],
                &ec,
                &[
                    "-keyout",
                    &key,
                    "-out",
                    &csr,
                    "-subj",
                    &format!("/CN=modo test {who}"),
                ],
            ]
            .concat());
            run(&[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &pem,
                "-days",
                "2",
                "-extfile",
                &ext,
            ]);
        }
        Some(Certs {
            ca: dir.join("ca.pem"),
            server: (dir.join("server.pem"), dir.join("server.key")),
            client: (dir.join("client.pem"), dir.join("client.key")),
            dir,
        })
    }
}

/// `<target>/<profile>/examples/<name>`, built once per test binary with the `nats` feature
/// (a no-op when fresh).
pub fn example_binary(name: &'static str) -> PathBuf {
    use std::sync::{Mutex, OnceLock};
    static BUILT: OnceLock<Mutex<Vec<(&'static str, PathBuf)>>> = OnceLock::new();
    let built = BUILT.get_or_init(Mutex::default);
    let mut built = built.lock().unwrap();
    if let Some((_, path)) = built.iter().find(|(n, _)| *n == name) {
        return path.clone();
    }
    let exe = std::env::current_exe().expect("the test's own path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test runs from <target>/<profile>/deps");
    let binary = profile_dir.join("examples").join(name);
    let mut build = Command::new(env!("CARGO"));
    build.args(["build", "--features", "nats", "--example", name]);
    // Without the variables cargo sets for a running test: a build script that watches one
    // (ring's watches CARGO_MANIFEST_DIR) would rebuild its crate and everything above it,
    // here and again in the next `cargo test`.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if [
            "CARGO_PKG_",
            "CARGO_MANIFEST_",
            "CARGO_CRATE_",
            "CARGO_BIN_",
        ]
        .iter()
        .any(|p| key.starts_with(p))
            || key == "CARGO_PRIMARY_PACKAGE"
            || key == "CARGO_TARGET_TMPDIR"
        {
            build.env_remove(key.as_ref());
        }
    }
    if profile_dir.ends_with("release") {
        build.arg("--release");
    }
    let status = build
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("cargo runs");
    assert!(status.success(), "cargo build --example {name} failed");
    assert!(binary.exists(), "no example binary at {}", binary.display());
    built.push((name, binary.clone()));
    binary
}

/// A network namespace of the test's own, joined to this one by a veth pair with link-local
/// addresses (`169.254.<n>.1` here, `.2` inside); deleted when dropped, also on failure.
pub struct Netns {
    /// The namespace's name.
    pub name: String,
    /// The address on this side (a server listens there).
    pub host_addr: String,
    inner_if: String,
    host_if: String,
}

fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl Netns {
    /// `None` (the caller skips) unless this runs as root with `ip` and namespaces work.
    pub fn create() -> Option<Netns> {
        let n = std::process::id() % 200 + 20;
        let ns = Netns {
            name: format!("modo{n}"),
            host_addr: format!("169.254.{n}.1"),
            inner_if: format!("modo{n}b"),
            host_if: format!("modo{n}a"),
        };
        // Left over from a killed run of the same pid: remove first.
        ip(&["link", "del", &ns.host_if]);
        ip(&["netns", "del", &ns.name]);
        let ok = ip(&["netns", "add", &ns.name])
            && ip(&[
                "link",
                "add",
                &ns.host_if,
                "type",
                "veth",
                "peer",
                "name",
                &ns.inner_if,
            ])
            && ip(&["link", "set", &ns.inner_if, "netns", &ns.name])
            && ip(&[
                "addr",
                "add",
                &format!("{}/30", ns.host_addr),
                "dev",
                &ns.host_if,
            ])
            && ip(&["link", "set", &ns.host_if, "up"])
            && ip(&[
                "-n",
                &ns.name,
                "addr",
                "add",
                &format!("169.254.{n}.2/30"),
                "dev",
                &ns.inner_if,
            ])
            && ip(&["-n", &ns.name, "link", "set", &ns.inner_if, "up"])
            && ip(&["-n", &ns.name, "link", "set", "lo", "up"]);
        ok.then_some(ns)
    }

    /// Cuts the link (inside the namespace): its processes lose the network, none is killed.
    pub fn cut(&self) {
        assert!(
            ip(&["-n", &self.name, "link", "set", &self.inner_if, "down"]),
            "cut"
        );
    }

    /// Restores the link.
    pub fn restore(&self) {
        assert!(
            ip(&["-n", &self.name, "link", "set", &self.inner_if, "up"]),
            "restore"
        );
    }

    /// The command prefix that runs a program inside: `ip netns exec <name>`.
    pub fn exec_prefix(&self) -> Vec<String> {
        vec![
            "ip".into(),
            "netns".into(),
            "exec".into(),
            self.name.clone(),
        ]
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        ip(&["link", "del", &self.host_if]);
        ip(&["netns", "del", &self.name]);
    }
}
