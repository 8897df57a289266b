//! `sdist-box profiles`: the built-in profiles.

use super::exit;
use crate::policy::{self, Profile};

/// `sdist-box profiles`.
pub fn profiles_command() -> anyhow::Result<u8> {
    for (name, _) in policy::profile::BUILTIN {
        let p = Profile::load(name)?;
        println!("{name:<10} {}", p.description);
    }
    println!(
        "\nUse one with --profile NAME, or your own with --profile FILE.toml \
(start from profiles/site-example.toml; every setting: docs/profiles.md)."
    );
    Ok(exit::OK)
}
