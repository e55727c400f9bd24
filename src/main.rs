use clap::Parser;
use mailgate::cli::Cli;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    mailgate::logging::init(cli.log.as_deref());
    mailgate::cli::run(cli.command)?;
    Ok(())
}
