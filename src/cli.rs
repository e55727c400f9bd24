//! Command line: `serve`, `check-config`, `login`, `accounts`, `logout`,
//! `hash-password`. Parsing only; each command's work lives in its module.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "mailgate", version, about = "Password logins in, XOAUTH2 out: an IMAP/POP3/SMTP authentication proxy")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the proxy.
    Serve {
        #[arg(long, short, default_value = "config/mailgate.toml")]
        config: PathBuf,
    },
    /// Parse and validate a config file, then exit.
    CheckConfig {
        #[arg(long, short, default_value = "config/mailgate.toml")]
        config: PathBuf,
    },
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { config } | Command::CheckConfig { config } => {
            let cfg = crate::config::Config::load(&config)?;
            println!("{}: {} listener(s), {} provider(s)", config.display(), cfg.listeners.len(), cfg.providers.len());
            Ok(())
        }
    }
}
