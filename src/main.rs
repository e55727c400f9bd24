use clap::Parser;

fn main() -> anyhow::Result<()> {
    let cli = mailgate::cli::Cli::parse();
    mailgate::cli::run(cli)
}
