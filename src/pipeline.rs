//! placeholder
#[derive(Debug, clap::Args)]
pub struct BuildArgs {}
#[derive(Debug, clap::Args)]
pub struct InspectArgs {}
pub fn build_command(_: &BuildArgs, _: u8) -> anyhow::Result<u8> {
    anyhow::bail!("todo")
}
pub fn inspect_command(_: &InspectArgs) -> anyhow::Result<u8> {
    anyhow::bail!("todo")
}
