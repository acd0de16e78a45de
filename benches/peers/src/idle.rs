//! The idle workload: each measurement in a fresh child process of this same binary, so that
//! one system's leftovers (heap kept by the allocator, runtime threads) cannot count for the
//! next. The parent re-executes itself with `MODO_PEERS_IDLE_CHILD=<system>,<flavour>` and
//! reads one line from the child's stdout.

use std::io::Read;
use std::process::{Command, Stdio};

use tokio::runtime::Builder;

use crate::{IDLE_K, IDLE_WARM, LIMIT, Sys, actix_sys, floor, kameo_sys, modo_sys, ractor_sys};

/// Names the system and flavour a child process measures.
pub const CHILD_ENV: &str = "MODO_PEERS_IDLE_CHILD";
/// Starts the child's one result line.
const RESULT: &str = "idle-rss-growth-bytes ";

/// In the child: warm up (spawn and stop `IDLE_WARM` actors, so one-time costs of the
/// runtime and the allocator are paid before the first reading), measure, print, exit.
pub fn child_main(spec: &str) -> ! {
    let (key, flavour) = spec
        .split_once(',')
        .unwrap_or_else(|| panic!("{CHILD_ENV}={spec}: expected <system>,<mt2|ct>"));
    let sys = Sys::from_key(key).unwrap_or_else(|| panic!("{CHILD_ENV}: unknown system {key}"));
    let mt2 = match flavour {
        "mt2" => true,
        "ct" => false,
        other => panic!("{CHILD_ENV}: unknown flavour {other}"),
    };
    let bytes = if sys == Sys::Actix {
        actix_sys::run(mt2, async {
            actix_sys::spawn_stop(IDLE_WARM).await;
            actix_sys::idle(IDLE_K).await
        })
    } else {
        let rt = if mt2 {
            Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
        } else {
            Builder::new_current_thread().enable_all().build()
        }
        .expect("runtime");
        let measured = rt.spawn(async move {
            match sys {
                Sys::Flume => {
                    floor::spawn_stop(IDLE_WARM).await;
                    floor::idle(IDLE_K).await
                }
                Sys::Modo => {
                    modo_sys::spawn_stop(IDLE_WARM).await;
                    modo_sys::idle(IDLE_K).await
                }
                Sys::Ractor => {
                    ractor_sys::spawn_stop(IDLE_WARM).await;
                    ractor_sys::idle(IDLE_K).await
                }
                Sys::Kameo => {
                    kameo_sys::spawn_stop(IDLE_WARM).await;
                    kameo_sys::idle(IDLE_K).await
                }
                Sys::Actix => unreachable!("actix runs in its own System"),
            }
        });
        rt.block_on(measured).expect("idle measurement panicked")
    };
    println!("{RESULT}{bytes}");
    // Exit without tearing down 100,000 actors: the process is done.
    std::process::exit(0)
}

/// In the parent: one child-process measurement of `sys` in `flavour` ("mt2" or "ct"): the
/// RSS growth in bytes for `IDLE_K` actors; `None` if the child gave no answer within `LIMIT`
/// (it is killed). Panics if the child failed (a failed check in it) or printed no result.
pub fn measure(sys: Sys, flavour: &str) -> Option<f64> {
    let exe = std::env::current_exe().expect("the path of this benchmark binary");
    let mut child = Command::new(exe)
        .env(CHILD_ENV, format!("{},{flavour}", sys.key()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the idle child process");
    let mut stdout = child.stdout.take().expect("child stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut out = String::new();
        let read = stdout.read_to_string(&mut out).map(|_| out);
        let _ = tx.send(read);
    });
    let Ok(out) = rx.recv_timeout(LIMIT) else {
        eprintln!(
            "idle {} {flavour}: no answer within {LIMIT:?}, child killed",
            sys.name()
        );
        let _ = child.kill();
        let _ = child.wait();
        return None;
    };
    let out = out.expect("read the child's stdout");
    let status = child.wait().expect("wait for the idle child");
    assert!(
        status.success(),
        "idle {} {flavour}: the child process failed ({status})",
        sys.name()
    );
    let bytes = out
        .lines()
        .find_map(|l| l.strip_prefix(RESULT))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or_else(|| panic!("idle {} {flavour}: no result in {out:?}", sys.name()));
    Some(bytes)
}
