use clap::Parser;
use mailgate::cli::Cli;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    mailgate::logging::init(cli.log.as_deref(), cli.log_format)?;
    mailgate::cli::run(cli.command)?;
    Ok(())
}
