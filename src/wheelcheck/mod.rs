//! Wheel checks: after the build, what in the wheel a reviewer should look
//! at before anyone installs it — `.pth` files (their import lines run at
//! every interpreter start), commands it installs and the ones that shadow
//! common tools, native binaries and whether they were compiled in this
//! build or shipped prebuilt in the sdist, files outside the project's own
//! top-level names, and whether `RECORD` matches the archive. Before any
//! of that, [`belongs_to`] decides whether the wheel is the sdist's own at
//! all (one `.dist-info`, named for its project and version, with a
//! `WHEEL` and a `METADATA` that say so): a wheel that is not fails the
//! build instead of being reported on.
//!
//! Invariants: the wheel was written by the package's build, so it is
//! attacker data. Member names are only ever compared and displayed, never
//! used as paths; every read is bounded (entry count, central-directory
//! size, bytes per member and in total, text kept in memory); the sdist
//! tree is walked without following links. [`check`] and [`findings`] are
//! functions of the wheel file and an extracted sdist tree only (unit-
//! tested on wheels made in the tests); the build's wheel-check stage, the
//! pipeline's one call, is given the sdist as shipped (a second extraction
//! made before any package code ran), because the build wrote into its
//! own. Nothing here decides an exit code: `--fail-on` does, from the
//! findings' severities.

mod check;
mod commands;
mod findings;
mod identity;
mod members;
mod model;
mod native;
mod pth;
mod reader;
mod record;
mod sdist;

pub use check::{check, check_contents, stage_detail, summary_line};
pub use commands::{parse_entry_points, shadowed_command};
pub use findings::findings;
pub use identity::{NotItsWheel, belongs_to};
pub use model::{
    EntryPoint, Member, NativeBinary, OutsideFile, Provenance, PthFile, RecordCheck, RecordProblem,
    TopLevelSource, WheelCheck, WheelContents,
};
pub use reader::{Limits, WheelError, read_wheel};
pub use record::{RecordRow, check_record, parse_record, urlsafe_b64};

#[cfg(test)]
pub(crate) mod tests;
