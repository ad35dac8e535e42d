//! Errors the simulator itself can fail with (start-up, control client).

use std::path::PathBuf;

/// What went wrong while starting, running or talking to the simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot read the Admin API schema at {path}: {source}")]
    SchemaRead {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("the Admin API schema at {path} does not validate: {message}")]
    SchemaInvalid { path: PathBuf, message: String },

    #[error("cannot bind the simulator to a loopback port: {0}")]
    Bind(std::io::Error),

    #[error("the control API request failed: {0}")]
    Control(#[from] reqwest::Error),

    #[error("the control API answered {status}: {body}")]
    ControlStatus { status: u16, body: String },

    #[error("bad command-line argument: {0}")]
    Usage(String),
}
