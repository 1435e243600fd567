//! The integration tests, built as one binary. Everything runs against the
//! embedded App Store Connect simulator on loopback.

mod cancellation;
mod cli;
mod fault_matrix;
mod integrations;
mod layout;
mod nasty_artifacts;
mod parsers;
mod pipeline_file;
mod reliability;
mod secrets;
mod sim_routes;
mod soak;
mod support;
mod upload;
mod wait;
