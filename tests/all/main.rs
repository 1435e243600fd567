//! The integration tests, built as one binary. Everything runs against the
//! embedded App Store Connect simulator on loopback.

mod cli;
mod integrations;
mod nasty_artifacts;
mod parsers;
mod reliability;
mod secrets;
mod sim_routes;
mod support;
mod upload;
mod wait;
