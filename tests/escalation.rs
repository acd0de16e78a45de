//! A crash nobody handles is not lost: by default a parent escalates a child's crash (it
//! crashes too, with a reason naming the child), up to a supervisor, which applies its
//! strategy, or to the root, which ends. `on_child_crashed` chooses otherwise.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use modo::prelude::*;
use modo::supervisor::Supervisor;

/// A plain parent with one child (default `on_child_crashed`: escalate).
struct Plain {
    child: Option<Leaf>,
}

impl Service for Plain {
    fn dependencies(&mut self) -> Vec<Dependency> {
        self.child
            .take()
            .into_iter()
            .map(Dependency::from)
            .collect()
    }
}

/// A plain parent that removes a crashed child and goes on.
struct Forgiving;

impl Service for Forgiving {
    fn dependencies(&mut self) -> Vec<Dependency> {
        vec![Leaf::default().into()]
    }

    async fn on_child_crashed(
        &mut self,
        _child: &ServiceRef,
        _reason: &CrashReason,
        _ctx: &mut Context<Self>,
    ) -> ChildAction {
        ChildAction::Remove
    }
}

/// The leaf: panics on `Boom`; counts its starts.
#[derive(Default, Clone)]
struct Leaf {
    starts: Arc<AtomicU32>,
}

impl Service for Leaf {
    async fn on_start(&mut self, _ctx: &mut Context<Self>) -> HookResult {
        self.starts.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

struct Boom;

impl Handler<Boom> for Leaf {
    type Reply = ();
    async fn handle(&mut self, _: Boom, _ctx: &mut Context<Self>) {
        panic!("leaf blew up");
    }
}

struct Kids;

impl Handler<Kids> for Plain {
    type Reply = Vec<ServiceRef>;
    async fn handle(&mut self, _: Kids, ctx: &mut Context<Self>) -> Vec<ServiceRef> {
        ctx.children().to_vec()
    }
}

impl Handler<Kids> for Forgiving {
    type Reply = Vec<ServiceRef>;
    async fn handle(&mut self, _: Kids, ctx: &mut Context<Self>) -> Vec<ServiceRef> {
        ctx.children().to_vec()
    }
}

fn leaf_of(kids: Vec<ServiceRef>) -> Addr<Leaf> {
    kids[0].downcast::<Leaf>().expect("a leaf")
}

#[tokio::test]
async fn an_unsupervised_crash_walks_up_to_the_root_which_ends() {
    let system = System::new();
    // root -> middle -> leaf, all plain.
    struct Root;
    impl Service for Root {
        fn dependencies(&mut self) -> Vec<Dependency> {
            vec![
                Plain {
                    child: Some(Leaf::default()),
                }
                .into(),
            ]
        }
    }
    impl Handler<Kids> for Root {
        type Reply = Vec<ServiceRef>;
        async fn handle(&mut self, _: Kids, ctx: &mut Context<Self>) -> Vec<ServiceRef> {
            ctx.children().to_vec()
        }
    }
    let root = system.spawn(Root).await.unwrap();
    let middle = root.ask(Kids).await.unwrap()[0]
        .downcast::<Plain>()
        .unwrap();
    let leaf = leaf_of(middle.ask(Kids).await.unwrap());

    leaf.tell(Boom).await.unwrap();
    root.wait_until_stopped().await;
    assert_eq!(root.state(), ServiceState::Crashed);
    assert!(root.is_terminated(), "a crashed root ends");
    let reason = root.crash_reason().expect("the root's reason");
    assert_eq!(
        reason.to_string(),
        "child Plain crashed: child Leaf crashed: panicked in handler of Boom: leaf blew up"
    );
    assert!(reason.is_panic());
    match &reason {
        CrashReason::Child { child, .. } => assert_eq!(&**child, "Plain"),
        other => panic!("{other:?}"),
    }
    assert!(middle.is_terminated() && leaf.is_terminated());
    assert_eq!(system.live_actors(), 0);
    system.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_escalated_crash_stops_at_the_first_supervisor() {
    let system = System::new();
    let sup = system.spawn(Supervisor::builder().build()).await.unwrap();
    let starts = Arc::new(AtomicU32::new(0));
    let middle = sup
        .supervise({
            let starts = starts.clone();
            move || Plain {
                child: Some(Leaf {
                    starts: starts.clone(),
                }),
            }
        })
        .await
        .unwrap();
    let leaf = leaf_of(middle.ask(Kids).await.unwrap());
    assert_eq!(starts.load(Ordering::SeqCst), 1);

    leaf.tell(Boom).await.unwrap();
    // The middle escalates; its supervisor restarts it, and with it its child.
    middle
        .wait_until(|m| m.restart_count() == 1 && m.state() == ServiceState::Running)
        .await;
    assert_eq!(sup.state(), ServiceState::Running);
    assert_eq!(leaf.state(), ServiceState::Running);
    assert_eq!(leaf.restart_count(), 1);
    assert_eq!(starts.load(Ordering::SeqCst), 2);
    system.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_parent_can_choose_to_remove_a_crashed_child_instead() {
    let system = System::new();
    let parent = system.spawn(Forgiving).await.unwrap();
    let leaf = parent.ask(Kids).await.unwrap()[0]
        .downcast::<Leaf>()
        .unwrap();
    leaf.tell(Boom).await.unwrap();
    leaf.wait_until_stopped().await;
    // The crash notice is ahead of this ask on the parent's control lane.
    assert!(parent.ask(Kids).await.unwrap().is_empty());
    assert_eq!(parent.state(), ServiceState::Running);
    assert!(leaf.is_terminated());
    system.shutdown().await.unwrap();
}
