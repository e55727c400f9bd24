//! Command line: `serve`, `check-config`, `login`, `accounts`, `logout`,
//! `hash-password`, `store migrate`. This layer parses arguments, calls the module that does
//! the work (the [`admin`](crate::admin) service for every account action),
//! and formats the answer for a terminal; it decides nothing itself.

mod run;
mod text;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::logging::LogFormat;

pub use run::{CliError, run};

#[derive(Debug, Parser)]
#[command(
    name = "mailgate",
    version,
    about = "Password logins in, XOAUTH2 out: an IMAP/POP3/SMTP authentication proxy"
)]
pub struct Cli {
    /// Log filter (tracing EnvFilter syntax); overrides MAILGATE_LOG.
    #[arg(long, global = true)]
    pub log: Option<String>,
    /// Log line format: readable text, or one JSON object per line for log shippers.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args, Clone)]
pub struct ConfigArg {
    /// The TOML config file.
    #[arg(long, short, default_value = "config/mailgate.toml")]
    pub config: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the proxy until SIGINT/SIGTERM.
    Serve(ConfigArg),
    /// Parse and validate a config file, then exit (non-zero on error).
    CheckConfig(ConfigArg),
    /// Enrol or re-authorise an account: sign in with the provider and set the local password.
    Login(LoginArgs),
    /// List enrolled accounts with their state, token expiry and last use.
    Accounts(ConfigArg),
    /// Remove an account's stored tokens.
    Logout {
        /// The account (login name) to remove.
        account: String,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Read a password on standard input and print its Argon2id PHC string (for app-only accounts).
    HashPassword,
    /// Token store maintenance.
    #[command(subcommand)]
    Store(StoreCommand),
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Copy the sealed records from one store to the other (idempotent; the newer record wins).
    Migrate {
        #[arg(long, value_enum)]
        from: Backend,
        #[arg(long, value_enum)]
        to: Backend,
        /// Only list what would be copied.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        config: ConfigArg,
    },
}

/// A token store backend on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// The state directory's files.
    File,
    /// The database in the config's [store] table.
    Postgres,
}

#[derive(Debug, Args, Clone)]
pub struct LoginArgs {
    /// The login name legacy clients will use (usually the mailbox address).
    pub account: String,
    #[command(flatten)]
    pub config: ConfigArg,
    /// Provider to enrol with, when the config has more than one.
    #[arg(long)]
    pub provider: Option<String>,
    /// Use the device code flow (the default when there is no display).
    #[arg(long, conflicts_with = "browser")]
    pub device: bool,
    /// Use the browser flow (authorization code + PKCE, redirect to 127.0.0.1).
    #[arg(long)]
    pub browser: bool,
    /// Do not try to open a browser; only print the URL.
    #[arg(long)]
    pub no_open: bool,
    /// Read the local password from standard input instead of generating one.
    #[arg(long)]
    pub password_stdin: bool,
    /// The mailbox for XOAUTH2 `user=` when it differs from the account name.
    #[arg(long)]
    pub mailbox: Option<String>,
}
