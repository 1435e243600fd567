//! The integration tests, built as one binary. Everything runs against the
//! embedded App Store Connect simulator on loopback.

mod cli;
mod integrations;
mod layout;
mod pipeline_file;
mod rerun;
mod sim_routes;
mod support;
mod upload;
mod wait;
