//! Whether a wheel is the sdist's own at all: one `.dist-info`, named for its project and version, with a `WHEEL` and a `METADATA` that say so.

use std::collections::BTreeSet;

use super::model::WheelContents;

/// Why a built wheel is not the sdist's own: a build failure, never a
/// finding (installers would refuse such a wheel, or install it as
/// another project).
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum NotItsWheel {
    #[error("the wheel `{wheel}` has no .dist-info directory")]
    NoDistInfo { wheel: String },
    #[error(
        "the wheel `{wheel}` has {count} .dist-info directories ({dirs}); a wheel has one, its own"
    )]
    SeveralDistInfo {
        wheel: String,
        count: usize,
        dirs: String,
    },
    #[error(
        "the wheel `{wheel}` holds the .dist-info directory `{dir}`, which is not that of {release} (`{expected}`)"
    )]
    DistInfoName {
        wheel: String,
        dir: String,
        release: String,
        expected: String,
    },
    #[error("the wheel `{wheel}` has no `{dir}/{file}`")]
    Missing {
        wheel: String,
        dir: String,
        file: &'static str,
    },
    #[error("the wheel `{wheel}`: `{dir}/{file}` {problem}")]
    Invalid {
        wheel: String,
        dir: String,
        file: &'static str,
        problem: String,
    },
    #[error("the wheel `{wheel}`'s METADATA says it is `{found}`, but the sdist is {release}")]
    OtherRelease {
        wheel: String,
        found: String,
        release: String,
    },
}

/// Check that a wheel (already read; its file name already checked to be
/// `release`'s) is `release`'s own: exactly one top-level `.dist-info`
/// directory, named for that project and version; its `WHEEL` (with a
/// `Wheel-Version` 1.x) and `METADATA` (with `Metadata-Version`, and a
/// `Name` and `Version` that are `release`'s, PEP 503/440) there and
/// readable. Returns the `.dist-info` directory's name.
pub fn belongs_to(
    contents: &WheelContents,
    wheel: &str,
    release: &crate::names::Release,
) -> Result<String, NotItsWheel> {
    use crate::names::{Name, Version, shown, split_name_version};
    let wheel = wheel.to_string();
    let dirs: BTreeSet<&str> = contents
        .members
        .iter()
        .filter_map(|m| m.name.split_once('/').map(|(d, _)| d))
        .filter(|d| d.ends_with(".dist-info"))
        .collect();
    let dir = match dirs.len() {
        0 => return Err(NotItsWheel::NoDistInfo { wheel }),
        1 => dirs.first().copied().unwrap_or_default(),
        count => {
            let listed: Vec<String> = dirs.iter().take(5).map(|d| shown(d, 100)).collect();
            return Err(NotItsWheel::SeveralDistInfo {
                wheel,
                count,
                dirs: listed.join(", "),
            });
        }
    };
    let stem = dir.trim_end_matches(".dist-info");
    let named = split_name_version(stem, Some(&release.name));
    if !named.is_some_and(|r| r.version == release.version) {
        return Err(NotItsWheel::DistInfoName {
            wheel,
            dir: shown(dir, 200),
            release: release.to_string(),
            expected: format!("{}-{}.dist-info", release.name.escaped(), release.version),
        });
    }
    let dir = dir.to_string();
    let headers = |file: &'static str| -> Result<Vec<(String, String)>, NotItsWheel> {
        let path = format!("{dir}/{file}");
        let member = contents
            .members
            .iter()
            .find(|m| m.name == path && !m.is_dir)
            .ok_or_else(|| NotItsWheel::Missing {
                wheel: wheel.clone(),
                dir: dir.clone(),
                file,
            })?;
        let text = member.text.as_deref().unwrap_or_default();
        Ok(crate::project::parse_headers(&String::from_utf8_lossy(
            text,
        )))
    };
    let invalid = |file, problem: String| NotItsWheel::Invalid {
        wheel: wheel.clone(),
        dir: dir.clone(),
        file,
        problem,
    };
    let header = crate::project::header;

    let wheel_headers = headers("WHEEL")?;
    let wheel_version = header(&wheel_headers, "wheel-version")
        .ok_or_else(|| invalid("WHEEL", "has no `Wheel-Version`".into()))?;
    let major_one = wheel_version.split_once('.').is_some_and(|(major, minor)| {
        major == "1" && !minor.is_empty() && minor.bytes().all(|b| b.is_ascii_digit())
    });
    if !major_one {
        return Err(invalid(
            "WHEEL",
            format!(
                "has `Wheel-Version: {}`; only 1.x is understood",
                shown(wheel_version, 40)
            ),
        ));
    }

    let metadata = headers("METADATA")?;
    let field = |key: &str, label: &str| {
        header(&metadata, key).ok_or_else(|| invalid("METADATA", format!("has no `{label}`")))
    };
    field("metadata-version", "Metadata-Version")?;
    let name = field("name", "Name")?;
    let version = field("version", "Version")?;
    let name = Name::parse(name).map_err(|e| invalid("METADATA", format!("`Name`: {e}")))?;
    let version =
        Version::parse(version).map_err(|e| invalid("METADATA", format!("`Version`: {e}")))?;
    if !name.same_project(&release.name) || version != release.version {
        return Err(NotItsWheel::OtherRelease {
            wheel,
            found: format!("{name} {version}"),
            release: release.to_string(),
        });
    }
    Ok(dir)
}
