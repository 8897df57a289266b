//! placeholder
#[derive(Debug, clap::Args)]
pub struct DoctorArgs {}
pub fn doctor_command(_: &DoctorArgs) -> anyhow::Result<u8> {
    anyhow::bail!("todo")
}
