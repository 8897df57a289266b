//! TEMPORARY stub
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
#[derive(Debug, thiserror::Error)]
#[error("buildenv")]
pub struct BuildEnvError;
#[derive(Debug, Clone)]
pub struct Interpreter {
    pub executable: PathBuf,
    pub version: String,
    pub read_paths: Vec<PathBuf>,
}
#[derive(Debug, Clone, Default)]
pub struct IndexOptions {
    pub find_links: Vec<PathBuf>,
    pub no_index: bool,
}
#[derive(Debug, Clone)]
pub struct BuildEnv {
    pub path: PathBuf,
    pub python: PathBuf,
    pub key: String,
    pub requirements: Vec<String>,
    pub reused: bool,
    pub installed: Vec<(String, String)>,
}
pub fn resolve_interpreter(_: Option<&OsStr>) -> Result<Interpreter, BuildEnvError> {
    Err(BuildEnvError)
}
pub fn ensure(
    _: &Interpreter,
    _: &[String],
    _: &IndexOptions,
    _: &Path,
) -> Result<BuildEnv, BuildEnvError> {
    Err(BuildEnvError)
}
pub fn default_cache_dir() -> PathBuf {
    PathBuf::new()
}
