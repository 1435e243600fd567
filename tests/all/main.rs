//! The integration tests, built as one binary. Everything runs against the
//! embedded App Store Connect simulator on loopback.

mod audience;
mod cancellation;
mod cli;
mod credentials;
mod doctor;
mod fault_matrix;
mod feedback;
mod forward_faults;
mod init;
mod integrations;
mod issue_standins;
mod layout;
mod nasty_artifacts;
mod parsers;
mod pipeline_file;
mod portable;
mod relay;
mod reliability;
mod rerun;
mod secrets;
mod sim_routes;
mod soak;
mod standins;
mod support;
mod upload;
mod wait;
