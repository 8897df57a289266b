//! Library use: build one sdist from another Rust program, as `sdist-box
//! build` does, and get the report as a typed value.
//!
//! The API is one builder ([`Build`]), one call ([`Build::run`]) and one
//! result ([`BuildReport`]). `run` returns `Err` only when the options
//! themselves are unusable (a profile that does not load, an events file
//! that cannot be created); everything that happens to the package (built,
//! refused, failed, blocked) is in the report's `outcome` and `findings`.
//!
//! The sandbox's pid 1 is this program's own executable started again
//! under another name, so a program that builds must call
//! [`crate::maybe_run_sandbox_init`] first thing in `main` (or point
//! [`Build::init_program`] at an installed `sdist-box` binary).
//!
//! ```no_run
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     sdist_box::maybe_run_sandbox_init();
//!     let report = sdist_box::Build::new("pkg-1.0.tar.gz")
//!         .out_dir("dist")
//!         .profile("default")
//!         .run()?;
//!     match &report.wheel {
//!         Some(wheel) => println!("built {}", wheel.path.display()),
//!         None => println!("not built: {:?}", report.outcome.reason),
//!     }
//!     for finding in &report.findings {
//!         println!("{}", finding.message);
//!     }
//!     Ok(())
//! }
//! ```
//!
//! A real build, as run by `cargo test --doc` (offline, from the test
//! wheelhouse that `scripts/setup-tests` makes):
//!
//! ```rust,standalone_crate
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # sdist_box::maybe_run_sandbox_init();
//! # let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
//! # let wheelhouse = root.join("tests/.cache/wheelhouse");
//! # if !wheelhouse.is_dir() {
//! #     assert!(std::env::var_os("SDIST_BOX_REQUIRE_ALL").is_none(), "no test wheelhouse");
//! #     eprintln!("skipped: no test wheelhouse (run scripts/setup-tests)");
//! #     return Ok(());
//! # }
//! # let out = tempfile::tempdir()?;
//! # let cache = tempfile::tempdir()?;
//! use sdist_box::{Build, Status};
//!
//! let report = Build::new(root.join("examples/hello_box-0.1.0.tar.gz"))
//!     .out_dir(out.path())
//!     .cache_dir(cache.path())
//!     .find_links(&wheelhouse)
//!     .no_index(true)
//!     .env("SOURCE_DATE_EPOCH", "315532800")
//!     .run()?;
//!
//! assert_eq!(report.outcome.status, Status::Built, "{:?}", report.outcome.reason);
//! let wheel = report.wheel.as_ref().expect("a wheel");
//! assert!(wheel.path.starts_with(out.path()));
//! assert!(wheel.filename.starts_with("hello_box-0.1.0-"));
//! assert!(report.findings.is_empty(), "{:?}", report.findings);
//! # Ok(())
//! # }
//! ```

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::archive::Limits as ArchiveLimits;
use crate::build::{self, BuildRequest, Streams};
use crate::buildenv::{self, IndexOptions};
use crate::policy::Profile;
use crate::report::BuildReport;
use crate::stages::EventSink;

/// Why [`Build::run`] could not start a build at all.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The profile named or given as a file does not load.
    #[error(transparent)]
    Profile(#[from] crate::policy::profile::ProfileError),
    /// The events destination could not be opened.
    #[error("events: {0:#}")]
    Events(anyhow::Error),
}

enum ProfileChoice {
    Named(String),
    Given(Box<Profile>),
}

enum EventsChoice {
    None,
    Spec(String),
    Sink(EventSink),
}

/// The options of one build; [`Build::run`] runs it.
pub struct Build {
    sdist: PathBuf,
    out_dir: PathBuf,
    profile: ProfileChoice,
    env: Vec<(String, String)>,
    python: Option<OsString>,
    sha256: Option<String>,
    find_links: Vec<PathBuf>,
    no_index: bool,
    cache_dir: Option<PathBuf>,
    work_dir: Option<PathBuf>,
    prepare_metadata: bool,
    archive_limits: ArchiveLimits,
    echo: bool,
    streams: Streams,
    trace_files: bool,
    events: EventsChoice,
    pre_build: Option<String>,
    pre_build_timeout: Duration,
    init_program: Option<PathBuf>,
}

impl Build {
    /// A build of `sdist` with the defaults of `sdist-box build`: the
    /// `default` profile, output in `dist`, build environments in
    /// `$SDIST_BOX_CACHE` or `~/.cache/sdist-box`, both event streams.
    pub fn new(sdist: impl Into<PathBuf>) -> Build {
        Build {
            sdist: sdist.into(),
            out_dir: PathBuf::from("dist"),
            profile: ProfileChoice::Named("default".into()),
            env: Vec::new(),
            python: None,
            sha256: None,
            find_links: Vec::new(),
            no_index: false,
            cache_dir: None,
            work_dir: None,
            prepare_metadata: true,
            archive_limits: ArchiveLimits::default(),
            echo: false,
            streams: Streams::All,
            trace_files: false,
            events: EventsChoice::None,
            pre_build: None,
            pre_build_timeout: Duration::from_secs(300),
            init_program: None,
        }
    }

    /// Where the wheel, its report and the build log go.
    pub fn out_dir(mut self, dir: impl Into<PathBuf>) -> Build {
        self.out_dir = dir.into();
        self
    }

    /// A built-in profile's name or a profile file's path (loaded by `run`).
    pub fn profile(mut self, name_or_path: impl Into<String>) -> Build {
        self.profile = ProfileChoice::Named(name_or_path.into());
        self
    }

    /// A profile the program made or changed itself.
    pub fn profile_value(mut self, profile: Profile) -> Build {
        self.profile = ProfileChoice::Given(Box::new(profile));
        self
    }

    /// Set a variable in the build's environment (like `--env`).
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Build {
        self.env.push((name.into(), value.into()));
        self
    }

    /// The interpreter to build with (default: `python3` on `PATH`).
    pub fn python(mut self, python: impl Into<OsString>) -> Build {
        self.python = Some(python.into());
        self
    }

    /// Refuse the sdist unless its SHA-256 is `hex`.
    pub fn sha256(mut self, hex: impl Into<String>) -> Build {
        self.sha256 = Some(hex.into());
        self
    }

    /// Look for build-requirement wheels in `dir` too (repeatable).
    pub fn find_links(mut self, dir: impl AsRef<Path>) -> Build {
        self.find_links.push(dir.as_ref().to_path_buf());
        self
    }

    /// Use no package index for build requirements (with `find_links`).
    pub fn no_index(mut self, yes: bool) -> Build {
        self.no_index = yes;
        self
    }

    /// Where build environments are cached.
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Build {
        self.cache_dir = Some(dir.into());
        self
    }

    /// Where the temporary work directory is made (default `$TMPDIR`).
    pub fn work_dir(mut self, dir: impl Into<PathBuf>) -> Build {
        self.work_dir = Some(dir.into());
        self
    }

    /// Whether `prepare_metadata_for_build_wheel` is called (default yes).
    pub fn prepare_metadata(mut self, yes: bool) -> Build {
        self.prepare_metadata = yes;
        self
    }

    /// Limits on what the archive may unpack to.
    pub fn archive_limits(mut self, limits: ArchiveLimits) -> Build {
        self.archive_limits = limits;
        self
    }

    /// Copy the build's output to stderr as it happens.
    pub fn echo_output(mut self, yes: bool) -> Build {
        self.echo = yes;
        self
    }

    /// Which event streams explain the build (default: both).
    pub fn streams(mut self, streams: Streams) -> Build {
        self.streams = streams;
        self
    }

    /// Also record every file open in the sandbox (slower).
    pub fn trace_files(mut self, yes: bool) -> Build {
        self.trace_files = yes;
        self
    }

    /// Stage events to `FILE` or `fd:N`, as `--events` does.
    pub fn events(mut self, spec: impl Into<String>) -> Build {
        self.events = EventsChoice::Spec(spec.into());
        self
    }

    /// Stage events, one JSON line each, to any writer.
    pub fn events_to(mut self, out: impl Write + Send + 'static) -> Build {
        self.events = EventsChoice::Sink(EventSink::new(out, "a writer of the caller's"));
        self
    }

    /// Run `command` (with `sh -c`) before any package code, as `--pre-build`.
    pub fn pre_build(mut self, command: impl Into<String>, timeout: Duration) -> Build {
        self.pre_build = Some(command.into());
        self.pre_build_timeout = timeout;
        self
    }

    /// The `sdist-box` executable to run as the sandbox's init, for a
    /// program that does not call [`crate::maybe_run_sandbox_init`].
    pub fn init_program(mut self, exe: impl Into<PathBuf>) -> Build {
        self.init_program = Some(exe.into());
        self
    }

    /// Build. `Err` only when the options are unusable; how the build went
    /// is in the report.
    pub fn run(self) -> Result<BuildReport, Error> {
        let mut profile = match self.profile {
            ProfileChoice::Named(name) => Profile::load(&name).map_err(Error::Profile)?,
            ProfileChoice::Given(p) => *p,
        };
        for (k, v) in self.env {
            profile.environment.set.insert(k, v);
        }
        let events = match self.events {
            EventsChoice::None => None,
            EventsChoice::Spec(spec) => Some(EventSink::open(&spec).map_err(Error::Events)?),
            EventsChoice::Sink(sink) => Some(sink),
        };
        // Paths go into the sandbox's mount table and the build env's
        // scripts: make them absolute.
        let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        let req = BuildRequest {
            sdist: self.sdist,
            out_dir: self.out_dir,
            profile,
            python: self.python,
            sha256: self.sha256,
            index: IndexOptions {
                find_links: self.find_links.iter().map(|p| absolute(p)).collect(),
                no_index: self.no_index,
            },
            cache_dir: absolute(&self.cache_dir.unwrap_or_else(buildenv::default_cache_dir)),
            work_parent: self.work_dir,
            keep_work: false,
            prepare_metadata: self.prepare_metadata,
            archive_limits: self.archive_limits,
            echo: self.echo,
            print_failure_tail: false,
            trace_files: self.trace_files,
            streams: self.streams,
            events,
            pre_build: self.pre_build,
            pre_build_timeout: self.pre_build_timeout,
            input_entry: None,
            init_exe: self.init_program,
            ask: None,
        };
        Ok(build::build(&req))
    }
}
