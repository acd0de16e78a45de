//! The Worker as a service: the root of its tree.

use std::borrow::Cow;

use super::LABEL;
use crate::{
    ChildAction, Context, CrashReason, Dependency, Down, DownReason, HookResult, Service,
    ServiceRef,
};

/// The Worker as a service: the root of the tree, its services as children. It watches them,
/// and stops once every one of them has stopped for good: a batch program ends by itself.
pub(super) struct Root {
    pub(super) services: Vec<Dependency>,
    /// Children not yet stopped for good.
    pub(super) running: usize,
}

impl Service for Root {
    fn label(&self) -> Cow<'static, str> {
        Cow::Borrowed(LABEL)
    }

    fn dependencies(&mut self) -> Vec<Dependency> {
        std::mem::take(&mut self.services)
    }

    async fn on_started(&mut self, ctx: &mut Context<Self>) -> HookResult {
        let children = ctx.children().to_vec();
        // The observer serves the tree; it is not one of the services the Worker waits for.
        #[cfg(feature = "observer")]
        let children: Vec<ServiceRef> = children
            .into_iter()
            .filter(|c| c.downcast::<crate::observe::Observer>().is_none())
            .collect();
        self.running = children.len();
        for child in &children {
            ctx.watch(child);
        }
        Ok(())
    }

    async fn on_down(&mut self, down: Down, ctx: &mut Context<Self>) -> HookResult {
        // A crash is escalated (see `on_child_crashed`); a clean end is counted.
        if let DownReason::Stopped = down.reason() {
            self.running = self.running.saturating_sub(1);
            if self.running == 0 {
                ctx.log()
                    .mundane("Every service has stopped: the Worker is done");
                ctx.stop();
            }
        }
        Ok(())
    }

    /// A crashed root service crashes the Worker: the rest of the tree stops and the program
    /// exits non-zero (Mode re-raises the crash).
    async fn on_child_crashed(
        &mut self,
        child: &ServiceRef,
        reason: &CrashReason,
        ctx: &mut Context<Self>,
    ) -> ChildAction {
        ctx.log()
            .error(format_args!("{} crashed: {reason}", child.label()));
        ChildAction::Escalate
    }
}
