use clap::Parser;
use mailgate::cli::{Cli, Command};

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    mailgate::logging::init(cli.log.as_deref());
    let runtime = tokio::runtime::Runtime::new()?;
    match cli.command {
        Command::Serve(c) => {
            let config = mailgate::config::Config::load(&c.config)?;
            runtime.block_on(mailgate::serve::run(config, c.config))?;
        }
        Command::CheckConfig(c) => {
            let config = mailgate::config::Config::load(&c.config)?;
            for warning in config.warnings() {
                eprintln!("warning: {warning}");
            }
            println!(
                "{}: ok ({} listener(s), {} provider(s), {} account rule(s); state dir {})",
                c.config.display(),
                config.listeners.len(),
                config.providers.len(),
                config.accounts.len(),
                config.state_dir.display()
            );
        }
        Command::Login(args) => {
            let config = mailgate::config::Config::load(&args.config.config)?;
            runtime.block_on(mailgate::enrol::login(&config, &args))?;
        }
        Command::Accounts(c) => {
            let config = mailgate::config::Config::load(&c.config)?;
            mailgate::admin::accounts(&config, &mut std::io::stdout())?;
        }
        Command::Logout { account, config } => {
            let config = mailgate::config::Config::load(&config.config)?;
            mailgate::admin::logout(&config, &account)?;
        }
        Command::HashPassword => {
            mailgate::admin::hash_password(&mut std::io::stdin().lock(), &mut std::io::stdout())?
        }
    }
    Ok(())
}
