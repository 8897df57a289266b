//! placeholder
#[derive(Debug, thiserror::Error)]
#[error("project")]
pub struct ProjectError;
