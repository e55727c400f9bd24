//! Each command: load the config, call the service, print the answer.

use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::Arc;

use super::text;
use super::{Backend, Command, ConfigArg, LoginArgs, StoreCommand};
use crate::admin::{Admin, AdminError, StoreKind};
use crate::config::{Config, ConfigError};
use crate::enrol::{
    EnrolError, EnrolRequest, GraphConsent, NewPassword, SignInPrompt, UNCHECKED_IDENTITY,
    choose_flow, choose_provider,
};
use crate::serve::ServeError;
use crate::store::migrate::Action;

/// Why a command failed. Errors from the layers below pass through
/// unchanged; the rest are the terminal's own.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error(transparent)]
    Admin(#[from] AdminError),
    #[error(transparent)]
    Enrol(#[from] EnrolError),
    #[error(transparent)]
    Runtime(std::io::Error),
    #[error("cannot write output: {0}")]
    Output(#[source] std::io::Error),
    #[error("cannot write to the terminal: {0}")]
    Terminal(#[source] std::io::Error),
    #[error("cannot read the local password from standard input: {0}")]
    LoginInput(#[source] std::io::Error),
    #[error("cannot read the password from standard input: {0}")]
    HashInput(#[source] std::io::Error),
    #[error("the password is not UTF-8 text")]
    NotUtf8,
    /// The provider's `client_id` is the shipped placeholder; the text is the fix.
    #[error("{0}")]
    Unregistered(String),
}

/// Runs one parsed command to completion.
pub fn run(command: Command) -> Result<(), CliError> {
    let runtime = tokio::runtime::Runtime::new().map_err(CliError::Runtime)?;
    let stdin = std::io::stdin();
    let stdout = &mut std::io::stdout();
    match command {
        Command::Serve(c) => {
            let config = Config::load(&c.config)?;
            runtime.block_on(crate::serve::run(config, c.config))?;
        }
        Command::CheckConfig(c) => check_config(&c.config, stdout)?,
        Command::Login(args) => runtime.block_on(login(&args, &mut stdin.lock(), stdout))?,
        Command::Accounts(c) => {
            let admin = admin(&c)?;
            let list = runtime.block_on(admin.accounts())?;
            let now = std::time::SystemTime::now();
            text::write_table(&list, now, stdout).map_err(CliError::Output)?;
            let dir = &admin.config().state_dir;
            let switched = crate::submit::switched::read(dir, now).unwrap_or_else(|error| {
                eprintln!("warning: {}: {error}", crate::submit::switched::FILE);
                Vec::new()
            });
            text::write_switched(&switched, stdout).map_err(CliError::Output)?;
        }
        Command::Logout { account, config } => {
            runtime.block_on(admin(&config)?.logout(&account))?;
        }
        Command::HashPassword => {
            runtime.block_on(hash_password(&mut stdin.lock(), stdout))?;
        }
        Command::Store(StoreCommand::Migrate {
            from,
            to,
            dry_run,
            config,
        }) => {
            let admin = admin(&config)?;
            let done = runtime.block_on(admin.migrate_store(kind(from), kind(to), dry_run))?;
            migrate_report(&done, dry_run, stdout)?;
        }
    }
    Ok(())
}

fn kind(b: Backend) -> StoreKind {
    match b {
        Backend::File => StoreKind::File,
        Backend::Postgres => StoreKind::Postgres,
    }
}

/// One line per account, then the count copied.
fn migrate_report(
    done: &[(crate::base::AccountName, Action)],
    dry_run: bool,
    out: &mut impl Write,
) -> Result<(), CliError> {
    for (account, action) in done {
        writeln!(out, "{} {account}", action.as_str()).map_err(CliError::Output)?;
    }
    let copied = done.iter().filter(|(_, a)| *a == Action::Copied).count();
    let verb = if dry_run { "would copy" } else { "copied" };
    writeln!(out, "{verb} {copied} of {} records", done.len()).map_err(CliError::Output)
}

fn admin(c: &ConfigArg) -> Result<Admin, CliError> {
    Ok(Admin::new(Arc::new(Config::load(&c.config)?)))
}

fn check_config(path: &Path, out: &mut dyn Write) -> Result<(), CliError> {
    let config = Config::load(path)?;
    for warning in config.warnings() {
        eprintln!("warning: {warning}");
    }
    writeln!(
        out,
        "{}: ok ({} listener(s), {} provider(s), {} account rule(s); state dir {})",
        path.display(),
        config.listeners.len(),
        config.providers.len(),
        config.accounts.len(),
        config.state_dir.display()
    )
    .map_err(CliError::Output)
}

/// `mailgate login`: the password comes first (from standard input or
/// generated), then the sign-in prompt, then the client settings.
pub(super) async fn login(
    args: &LoginArgs,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let config = Config::load(&args.config.config)?;
    refuse_unregistered(&config, args)?;
    let admin = Admin::new(Arc::new(config));
    let password = if args.password_stdin {
        NewPassword::Given(text::password_line(input).map_err(CliError::LoginInput)?)
    } else {
        NewPassword::Generate
    };
    let request = EnrolRequest {
        account: args.account.clone(),
        provider: args.provider.clone(),
        flow: choose_flow(args.browser, args.device),
        password,
        mailbox: args.mailbox.clone(),
    };
    let pending = admin.start_enrolment(request).await?;
    match pending.prompt() {
        SignInPrompt::Device(prompt) => prompt.render(out).map_err(CliError::Terminal)?,
        SignInPrompt::Browser(sign_in) => {
            sign_in.show(out, !args.no_open).map_err(EnrolError::from)?
        }
    }
    let enrolled = admin.finish_enrolment(pending).await?;
    if enrolled.signed_in_as.is_none() {
        eprintln!("warning: {UNCHECKED_IDENTITY}");
    }
    text::write_enrolled(&enrolled, out).map_err(CliError::Terminal)?;
    match &enrolled.graph {
        GraphConsent::NotNeeded => Ok(()),
        consent => writeln!(out, "{consent}").map_err(CliError::Output),
    }
}

/// The placeholder `client_id` cannot sign anyone in: say how to register
/// the app before any request reaches the provider. Other provider choice
/// errors are left to the enrolment, which reports them.
fn refuse_unregistered(config: &Config, args: &LoginArgs) -> Result<(), CliError> {
    match choose_provider(config, &args.account, args.provider.as_deref()) {
        Ok(provider) => match provider.unregistered_app() {
            Some(fix) => Err(CliError::Unregistered(fix)),
            None => Ok(()),
        },
        Err(_) => Ok(()),
    }
}

/// `mailgate hash-password`: one line in, one PHC string out.
pub(super) async fn hash_password(
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let password = text::hash_input(input)?;
    let phc = Admin::hash_password(password).await?;
    writeln!(out, "{}", phc.expose()).map_err(CliError::Output)
}
