//! The public handles can cross threads.

use modo::prelude::*;

fn send_sync<T: Send + Sync>() {}
fn send<T: Send>() {}

struct S;
impl Service for S {}

#[test]
fn handles_are_send_and_sync() {
    send_sync::<System>();
    send_sync::<Addr<S>>();
    send_sync::<modo::WeakAddr<S>>();
    send_sync::<ServiceRef>();
    send_sync::<Error>();
    send_sync::<CrashReason>();
    send_sync::<modo::StopSignal>();
    send_sync::<modo::SendError<u8>>();
    send_sync::<Context<S>>();
    send::<ServiceSpec<S>>();
    send::<Dependency>();
}
