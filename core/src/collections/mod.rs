//! Collections build graphs; none executes anything itself.
//!
//! [`delayed`] wraps op calls into lazy values. Arrays, dataframes and bags
//! arrive with their own issues.

pub mod delayed;
