//! Copying the wheel out of the sandbox's output directory: one regular
//! file, this sdist's by name and metadata, size-bounded, hashed as copied,
//! placed where no other input's wheel is.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use anyhow::Context;
use sha2::{Digest, Sha256};

use super::failure::{Failure, errored, refused};
use super::publish::{PartWheel, Staged};
use crate::files::open_untrusted;
use crate::report::{Status, WheelInfo};
use crate::{names, outputs};

/// A wheel file name: `{dist}-{version}(-{build})?-{py}-{abi}-{plat}.whl`
/// as [`names::WheelFilename`] parses it (one path component, a
/// conservative character set).
pub fn valid_wheel_name(name: &str) -> bool {
    names::WheelFilename::parse(name).is_ok()
}

pub(super) const MAX_WHEEL_BYTES: u64 = 2 << 30;

/// Take the wheel `build_wheel` named out of the sandbox's output
/// directory `out` into `dest_dir`, if it is this sdist's: its file name
/// parses and is `release`'s (checked before a byte is copied); copied
/// (bounded, hashed) to a locked part file beside its destination, where
/// the sandbox cannot reach; read back and checked to hold `release`'s own
/// metadata ([`crate::wheelcheck::belongs_to`]); refused if a wheel of the
/// same release from another input is there ([`outputs::may_place`]).
/// Returns the wheel as it will be named and as read, for the checks, and
/// the part, which `publish` places after the report that vouches for it.
pub(super) fn copy_wheel_out(
    out: &Path,
    name: &str,
    dest_dir: &Path,
    max_bytes: u64,
    release: &names::Release,
    producer: &outputs::Producer,
) -> Result<(WheelInfo, crate::wheelcheck::WheelContents, Staged), Failure> {
    let failed = |e: anyhow::Error| Failure::new(Status::BuildFailed, e);
    let wheel = names::WheelFilename::parse(name).map_err(|e| {
        failed(anyhow::Error::new(e).context("build_wheel returned a name that is not a wheel's"))
    })?;
    if !wheel.release.same(release) {
        return Err(failed(anyhow::anyhow!(
            "build_wheel returned `{name}`, a wheel of {}, but this sdist is {release}: the wheel of an sdist is of its project and version",
            wheel.release
        )));
    }
    let (part, sha256, size) =
        copy_out(&out.join(name), name, dest_dir, max_bytes).map_err(failed)?;
    let contents =
        crate::wheelcheck::read_wheel(part.path(), &Default::default()).map_err(|e| {
            failed(anyhow::Error::new(e).context(format!("cannot read the wheel `{name}`")))
        })?;
    crate::wheelcheck::belongs_to(&contents, name, release).map_err(|e| failed(e.into()))?;
    outputs::may_place(dest_dir, &wheel, producer).map_err(|e| match e {
        outputs::PlaceError::Collision { .. } => refused(e),
        _ => errored(e),
    })?;
    let info = WheelInfo {
        filename: name.to_string(),
        path: dest_dir.join(name),
        sha256,
        size_bytes: size,
    };
    let staged = Staged {
        part,
        wheel,
        producer: producer.clone(),
    };
    Ok((info, contents, staged))
}

/// Copy the file the sandbox left at `source` (named `name`) into a
/// part file in `dest_dir`: no links, at most `max_bytes`, hashed as
/// copied, fsynced. Returns the part, its sha256 and size.
fn copy_out(
    source: &Path,
    name: &str,
    dest_dir: &Path,
    max_bytes: u64,
) -> anyhow::Result<(PartWheel, String, u64)> {
    let (file, meta) = open_untrusted(source).with_context(|| {
        format!("the backend named `{name}` but did not leave it as a regular file")
    })?;
    if meta.size() > max_bytes {
        anyhow::bail!(
            "the wheel `{name}` is larger than the output-size limit ({max_bytes} bytes)"
        );
    }
    let cannot = || {
        format!(
            "cannot copy the wheel `{name}` into `{}`",
            dest_dir.display()
        )
    };
    let mut part = PartWheel::create(dest_dir).with_context(cannot)?;
    let mut hasher = Sha256::new();
    let mut reader = file.take(max_bytes + 1);
    let mut buf = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        part.file().write_all(&buf[..n]).with_context(cannot)?;
        size += n as u64;
    }
    if size > max_bytes {
        anyhow::bail!("the wheel `{name}` grew past {max_bytes} bytes while copied");
    }
    part.file().sync_all().with_context(cannot)?;
    fs::set_permissions(part.path(), fs::Permissions::from_mode(0o644))?;
    Ok((part, hex::encode(hasher.finalize()), size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wheel_names() {
        assert!(valid_wheel_name("six-1.16.0-py2.py3-none-any.whl"));
        assert!(valid_wheel_name(
            "markupsafe-2.1.5-cp311-cp311-linux_x86_64.whl"
        ));
        assert!(valid_wheel_name("pkg-1.0-1-py3-none-any.whl"));
        assert!(!valid_wheel_name("../evil-1.0-py3-none-any.whl"));
        assert!(!valid_wheel_name("a/b-1.0-py3-none-any.whl"));
        assert!(!valid_wheel_name("pkg-1.0.tar.gz"));
        assert!(!valid_wheel_name("pkg-1.0-py3-none.whl"));
        assert!(!valid_wheel_name(".hidden-1.0-py3-none-any.whl"));
        assert!(!valid_wheel_name("pkg-1.0-py3-none-any\n.whl"));
    }
}
