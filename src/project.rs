//! TEMPORARY stub
use std::path::Path;
#[derive(Debug, thiserror::Error)]
#[error("project")]
pub struct ProjectError;
#[derive(Debug, Clone, serde::Serialize)]
pub struct BuildSystem {
    pub requires: Vec<String>,
    pub build_backend: String,
    pub backend_path: Vec<String>,
    pub source: u8,
}
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProjectMeta {
    pub name: Option<String>,
    pub version: Option<String>,
    pub build_system: BuildSystem,
}
pub fn read_project(_: &Path) -> Result<ProjectMeta, ProjectError> {
    Err(ProjectError)
}
