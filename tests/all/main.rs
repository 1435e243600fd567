//! The integration tests, built as one binary. Everything runs against the
//! embedded App Store Connect simulator on loopback.

mod cli;
mod feedback;
mod integrations;
mod issue_standins;
mod layout;
mod pipeline_file;
mod sim_routes;
mod support;
mod upload;
mod wait;
