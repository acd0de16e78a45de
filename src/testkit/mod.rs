//! A test kit for your own services (feature `testkit`): break a service on purpose with
//! [`Faults`].
pub use crate::actor::Faults;
