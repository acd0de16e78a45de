//! Hook order (Mode's), start and stop of trees, restart, maybe_start, states, dependencies.

mod common;

use common::{Fail, Journal, Ping, Probe};
use modo::prelude::*;

fn j(entries: &[&str]) -> Vec<String> {
    entries.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn single_service_runs_hooks_in_mode_order() {
    let journal = Journal::new();
    let system = System::new();
    let a = system.spawn(Probe::new("A", &journal)).await.unwrap();
    assert_eq!(
        journal.take(),
        j(&[
            "A:on_init",
            "A:on_first_start",
            "A:on_start",
            "A:on_started"
        ])
    );
    assert_eq!(a.state(), ServiceState::Running);
    a.stop().await.unwrap();
    assert_eq!(journal.take(), j(&["A:on_stop", "A:on_shutdown"]));
    assert_eq!(a.state(), ServiceState::Shutdown);
    assert_eq!(a.state().to_string(), "shutdown");
    system.shutdown().await.unwrap();
}
