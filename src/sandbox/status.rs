//! What was enforced, as data, and the messages the sandbox's init sends
//! to the parent.
//!
//! The init process runs inside the sandbox and reports over a pipe, one JSON
//! object per line. Before the build's own code runs, everything on that pipe
//! comes from sdist-box's code; after it, the init only sends `Exited`. The
//! build never holds the pipe's descriptor.

use serde::{Deserialize, Serialize};

use super::plan::Layer;

/// Whether a layer is in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LayerState {
    Enforced,
    Partial,
    NotEnforced,
}

/// One layer's state and, in words, what it does here or why it is missing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerStatus {
    pub layer: Layer,
    pub state: LayerState,
    pub detail: String,
}

/// Everything the sandbox actually enforced for one run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enforcement {
    pub layers: Vec<LayerStatus>,
    pub landlock_abi: Option<i32>,
    /// uid of the build inside the sandbox.
    pub inner_uid: u32,
    /// Host uid the build's processes run as.
    pub host_uid: u32,
}

impl Enforcement {
    pub fn state(&self, layer: Layer) -> LayerState {
        self.layers
            .iter()
            .find(|l| l.layer == layer)
            .map(|l| l.state)
            .unwrap_or(LayerState::NotEnforced)
    }

    /// Required layers that are not fully enforced.
    pub fn missing<'a>(&'a self, required: &'a [Layer]) -> impl Iterator<Item = &'a LayerStatus> {
        self.layers
            .iter()
            .filter(move |l| required.contains(&l.layer) && l.state != LayerState::Enforced)
    }
}

/// A message from the sandbox's init to the parent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "msg", rename_all = "kebab-case")]
pub enum InitMessage {
    /// Set-up failed at `step`; nothing of the build ran.
    Failed {
        step: String,
        error: String,
        layer: Option<Layer>,
    },
    /// Every layer is in place; the command starts on `go`. With a
    /// listener, the parent takes it (pidfd_getfd) before saying `go`.
    Ready {
        enforcement: Enforcement,
        listener_fd: Option<i32>,
    },
    /// The command ended (every other process of the sandbox ends with init).
    Exited {
        code: Option<i32>,
        signal: Option<i32>,
        peak_processes: u64,
        max_rss_kib: u64,
        exec_error: Option<String>,
        /// How full the sandbox's sized file systems ended.
        #[serde(default)]
        filesystems: Vec<FsUse>,
    },
}

/// How one of the sandbox's sized file systems ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FsUse {
    pub target: std::path::PathBuf,
    pub size_bytes: u64,
    pub used_bytes: u64,
}

impl FsUse {
    /// Full, for a build's purposes: less than 1 MiB (or 1%) left.
    pub fn full(&self) -> bool {
        let left = self.size_bytes.saturating_sub(self.used_bytes);
        left < (1 << 20).min(self.size_bytes / 100).max(64 << 10)
    }
}
