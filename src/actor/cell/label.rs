//! A service's label as its cell keeps it, and the `[^--Label]` prefix of its log lines.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use super::Core;

/// A service's label: its type's name (the default: no allocation) or one it chose.
#[derive(Clone)]
pub(crate) enum Label {
    Static(&'static str),
    Shared(Arc<str>),
}

impl Label {
    /// The label as the `Arc<str>` errors carry (allocates for a static label: errors are
    /// the rare path).
    pub(crate) fn arc(&self) -> Arc<str> {
        match self {
            Label::Static(s) => Arc::from(*s),
            Label::Shared(s) => s.clone(),
        }
    }
}

impl From<Cow<'static, str>> for Label {
    fn from(label: Cow<'static, str>) -> Self {
        match label {
            Cow::Borrowed(s) => Label::Static(s),
            Cow::Owned(s) => Label::Shared(Arc::from(s)),
        }
    }
}

impl std::ops::Deref for Label {
    type Target = str;

    fn deref(&self) -> &str {
        match self {
            Label::Static(s) => s,
            Label::Shared(s) => s,
        }
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self)
    }
}

impl fmt::Debug for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// Displays `[^--Label]`.
pub(crate) struct Prefix<'a>(pub(super) &'a Core);

impl fmt::Display for Prefix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[^")?;
        for _ in 0..self.0.depth() {
            f.write_str("-")?;
        }
        write!(f, "{}]", self.0.shortlabel)
    }
}
