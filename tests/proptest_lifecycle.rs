//! A state-machine property test: random sequences of spawn, tell, ask, crash, restart, stop,
//! discard and time advances on the children of a supervisor (with a random strategy),
//! checked after every step against a small reference model: each child's state, restart
//! count and handled messages, which siblings the strategy restarted, and the registry's
//! graph.
//!
//! The cases follow from `MODO_SEED` (a fixed default otherwise), printed at the start:
//! rerun a failure with `MODO_SEED=<seed> cargo test --test proptest_lifecycle`.

use std::time::Duration;

use modo::prelude::{
    Addr, Context, Handler, Service, ServiceSpec, ServiceState, Supervisor, System,
};
use modo::supervisor::RestartPolicy;
use proptest::prelude::{Just, Strategy, any, prop_oneof};
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};

const DEFAULT_SEED: u64 = 0x6d6f_646f_5f73_6d31;
const CASES: u32 = 256;

fn seed() -> u64 {
    let seed = std::env::var("MODO_SEED")
        .ok()
        .map(|s| {
            let s = s.trim().to_owned();
            match s.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => s.parse(),
            }
            .unwrap_or_else(|e| panic!("MODO_SEED={s:?} is not a u64: {e}"))
        })
        .unwrap_or(DEFAULT_SEED);
    println!("MODO_SEED={seed}");
    seed
}

/// A child whose whole state is the sum of what it was told; a restart starts it from 0
/// (it is built by a factory).
#[derive(Default)]
struct Summer {
    sum: u64,
}

struct Add(u64);
struct Sum;

impl Service for Summer {}

impl Handler<Add> for Summer {
    type Reply = ();
    async fn handle(&mut self, Add(n): Add, _ctx: &mut Context<Self>) {
        self.sum += n;
    }
}

impl Handler<Sum> for Summer {
    type Reply = u64;
    async fn handle(&mut self, _: Sum, _ctx: &mut Context<Self>) -> u64 {
        self.sum
    }
}

#[derive(Debug, Clone)]
enum Op {
    Spawn,
    Tell(usize, u8),
    Ask(usize),
    Crash(usize),
    Restart(usize),
    Stop(usize),
    Discard(usize),
    Advance(u16),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Spawn),
        4 => (any::<usize>(), any::<u8>()).prop_map(|(i, v)| Op::Tell(i, v)),
        2 => any::<usize>().prop_map(Op::Ask),
        3 => any::<usize>().prop_map(Op::Crash),
        2 => any::<usize>().prop_map(Op::Restart),
        1 => any::<usize>().prop_map(Op::Stop),
        1 => any::<usize>().prop_map(Op::Discard),
        1 => (1u16..3_000).prop_map(Op::Advance),
    ]
}

fn strategy() -> impl Strategy<Value = modo::Strategy> {
    prop_oneof![
        Just(modo::Strategy::OneForOne),
        Just(modo::Strategy::OneForAll),
        Just(modo::Strategy::RestForOne),
    ]
}

/// What the model expects of one child.
struct Expected {
    addr: Addr<Summer>,
    sum: u64,
    restarts: u32,
}

fn check(cond: bool, what: impl FnOnce() -> String) -> Result<(), TestCaseError> {
    if cond {
        Ok(())
    } else {
        Err(TestCaseError::fail(what()))
    }
}

async fn run_case(strategy: modo::Strategy, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let system = System::new();
    let sup = system
        .spawn(
            Supervisor::builder()
                .strategy(strategy)
                .max_restarts(u32::MAX)
                .build(),
        )
        .await
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let mut model: Vec<Expected> = Vec::new();

    for (step, op) in ops.into_iter().enumerate() {
        let pick = |i: usize, n: usize| i % n;
        match op {
            Op::Spawn => {
                let addr = sup
                    .supervise_with(
                        ServiceSpec::from_factory(Summer::default),
                        RestartPolicy::Transient,
                    )
                    .await
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                model.push(Expected {
                    addr,
                    sum: 0,
                    restarts: 0,
                });
            }
            _ if model.is_empty() => continue,
            Op::Tell(i, v) => {
                let at = pick(i, model.len());
                let c = &mut model[at];
                c.addr.tell(Add(u64::from(v))).await.ok();
                c.sum += u64::from(v);
            }
            Op::Ask(i) => {
                let c = &model[pick(i, model.len())];
                let got = c
                    .addr
                    .ask(Sum)
                    .await
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                check(got == c.sum, || {
                    format!("step {step}: sum {got}, model {}", c.sum)
                })?;
            }
            Op::Crash(i) => {
                let at = pick(i, model.len());
                // Let what was told be handled first: the crash overtakes queued messages.
                model[at].addr.ask(Sum).await.ok();
                let affected: Vec<usize> = match strategy {
                    modo::Strategy::OneForAll => (0..model.len()).collect(),
                    modo::Strategy::RestForOne => (at..model.len()).collect(),
                    _ => vec![at],
                };
                model[at].addr.crash("chaos");
                for &k in &affected {
                    model[k].restarts += 1;
                    model[k].sum = 0;
                    let want = model[k].restarts;
                    let waited = model[k]
                        .addr
                        .wait_until(|a| a.restart_count() >= want && a.is_started());
                    // Paused time: if the model is wrong, this fails at once instead of hanging.
                    if tokio::time::timeout(Duration::from_secs(3_600), waited)
                        .await
                        .is_err()
                    {
                        return Err(TestCaseError::fail(format!(
                            "step {step}: child {k} never reached {want} restarts (has {})",
                            model[k].addr.restart_count()
                        )));
                    }
                }
            }
            Op::Restart(i) => {
                let at = pick(i, model.len());
                let c = &mut model[at];
                c.addr
                    .restart()
                    .await
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                c.restarts += 1;
                c.sum = 0;
            }
            Op::Stop(i) => {
                // A transient child stopped from outside ends for good.
                let c = model.remove(pick(i, model.len()));
                c.addr
                    .stop()
                    .await
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                let ended = c.addr.wait_until(|a| a.is_terminated());
                if tokio::time::timeout(Duration::from_secs(3_600), ended)
                    .await
                    .is_err()
                {
                    return Err(TestCaseError::fail(format!(
                        "step {step}: stopped child alive"
                    )));
                }
            }
            Op::Discard(i) => {
                let c = model.remove(pick(i, model.len()));
                sup.discard(&c.addr.service_ref())
                    .await
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                check(c.addr.is_terminated(), || {
                    format!("step {step}: discarded child alive")
                })?;
            }
            Op::Advance(ms) => tokio::time::advance(Duration::from_millis(u64::from(ms))).await,
        }

        // After every step: every child as the model says, and the registry agrees.
        let children = sup
            .children()
            .await
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        check(children.len() == model.len(), || {
            format!(
                "step {step}: {} children, model {}",
                children.len(),
                model.len()
            )
        })?;
        let graph = system.registry().graph().await;
        check(graph.children(sup.id()).len() == model.len(), || {
            format!(
                "step {step}: graph has {} children",
                graph.children(sup.id()).len()
            )
        })?;
        for (k, c) in model.iter().enumerate() {
            check(children[k].id() == c.addr.id(), || {
                format!("step {step}: child {k} order")
            })?;
            check(c.addr.state() == ServiceState::Running, || {
                format!("step {step}: child {k} is {}", c.addr.state())
            })?;
            check(c.addr.restart_count() == c.restarts, || {
                format!(
                    "step {step}: child {k} restarted {} times, model {}",
                    c.addr.restart_count(),
                    c.restarts
                )
            })?;
            let node = graph.node(c.addr.id());
            check(node.is_some_and(|n| n.restart_count == c.restarts), || {
                format!("step {step}: registry node of child {k}: {node:?}")
            })?;
        }
    }
    system
        .shutdown()
        .await
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    check(system.live_actors() == 0, || {
        "actors left after shutdown".into()
    })?;
    check(system.dead_letters().total == 0, || "dead letters".into())
}

#[test]
fn random_lifecycles_match_the_model() {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed().to_le_bytes());
    let config = Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes));
    let case = (strategy(), proptest::collection::vec(op(), 1..40));
    runner
        .run(&case, |(strategy, ops)| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .start_paused(true)
                .build()
                .expect("runtime");
            rt.block_on(run_case(strategy, ops))
        })
        .unwrap_or_else(|e| panic!("{e}"));
}
