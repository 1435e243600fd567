//! Typed App Store Connect calls: one client, one error mapping, one retry policy.
//!
//! `client` is the transport; `resources` holds one small function per endpoint
//! the capabilities need, building Apple's request documents.

pub mod beta;
pub mod client;
pub mod error;
pub mod models;
pub mod ratelimit;
pub mod resources;
pub mod retry;

pub use client::{Client, Idempotency};
pub use error::{ApiError, ApiErrorKind};
