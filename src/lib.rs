//! flightdeck: ship Apple platform builds through the App Store Connect API
//! from any CI, with no Mac.
//!
//! Data flows one way:
//!
//! ```text
//! env + flags + flightdeck.yml ─► config::Settings, spec::Pipeline ─► plan::Plan
//!   ─► auth::TokenSource ─► api::Client ─► upload / wait / testflight / feedback / webhooks
//!   ─► typed results ─► commands::report ─► outcome::Outcome
//!   ─► ci::Reporter (GitHub | GitLab | Bitrise | terminal) + exit code
//! ```
//!
//! `cli` and `commands` are the command layer: no other module imports them
//! (see docs/architecture.md).

pub mod api;
pub mod app;
pub mod artifact;
pub mod audience;
pub mod auth;
pub mod ci;
pub mod cli;
pub mod commands;
pub mod config;
pub mod context;
pub mod doctor;
pub mod error;
pub mod feedback;
#[doc(hidden)]
pub mod fuzzing;
pub mod init;
pub mod outcome;
pub mod plan;
pub mod relay;
pub mod secret;
pub mod spec;
pub mod testflight;
pub mod upload;
pub mod wait;
pub mod webhooks;
