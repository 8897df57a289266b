//! Native code in a wheel, recognised by its magic bytes.

use super::model::{Member, NativeBinary, Provenance, WheelContents, unsafe_name};
use super::sdist::SdistIndex;

/// Recognise native code by its first bytes, or by its name when short.
pub(super) fn native_format(m: &Member) -> Option<&'static str> {
    if m.magic.starts_with(b"\x7fELF") {
        return Some("elf");
    }
    if matches!(
        m.magic.as_slice(),
        [0xfe, 0xed, 0xfa, 0xce]
            | [0xfe, 0xed, 0xfa, 0xcf]
            | [0xce, 0xfa, 0xed, 0xfe]
            | [0xcf, 0xfa, 0xed, 0xfe]
    ) {
        return Some("mach-o");
    }
    let lower = m.name.to_ascii_lowercase();
    if m.magic.starts_with(b"MZ") && [".dll", ".pyd", ".exe"].iter().any(|e| lower.ends_with(e)) {
        return Some("pe");
    }
    let file = lower.rsplit('/').next().unwrap_or("");
    if file.ends_with(".so")
        || file.contains(".so.")
        || file.ends_with(".dylib")
        || file.ends_with(".pyd")
    {
        return Some("shared-library-name");
    }
    None
}

/// The wheel's native binaries, each compiled here or prebuilt (shipped
/// as is in the sdist).
pub(super) fn native_code(contents: &WheelContents, sdist: &SdistIndex) -> Vec<NativeBinary> {
    let mut native = Vec::new();
    for m in &contents.members {
        if m.is_dir || unsafe_name(&m.name).is_some() {
            continue;
        }
        let Some(format) = native_format(m) else {
            continue;
        };
        let sdist_path = sdist.find(m.size, &m.sha256);
        native.push(NativeBinary {
            path: m.name.clone(),
            format,
            sha256: hex::encode(m.sha256),
            size_bytes: m.size,
            provenance: if sdist_path.is_some() {
                Provenance::Prebuilt
            } else {
                Provenance::Compiled
            },
            sdist_path,
        });
    }
    native
}
