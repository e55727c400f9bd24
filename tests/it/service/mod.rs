//! Running as a service, through the real binary: the systemd unit passes
//! `systemd-analyze verify`, the sd_notify protocol against a socket the
//! test listens on, the open-file limit, the log formats and filters, and
//! the shipped placeholder `client_id`.

mod limits;
mod logs;
mod notify;
mod placeholder;
mod unit;

use std::path::Path;

use crate::support::config::{ConfigBuilder, IdpUrls, Listener, Upstream, free_port};
use crate::support::scratch::Scratch;

/// A config with the never-contacted provider and one IMAP listener on a
/// free port (its upstream is a closed port); returns the config path and
/// the listener's port.
fn imap_config(scratch: &Scratch) -> (std::path::PathBuf, u16) {
    let port = free_port();
    let text = ConfigBuilder::new()
        .state_dir(&scratch.state())
        .provider_unused()
        .listener(Listener::local(
            "imap",
            port,
            Upstream::new(free_port(), "none"),
        ))
        .toml();
    (scratch.write(&text), port)
}

/// Same, with a provider whose `client_id` is the shipped placeholder and
/// whose endpoints all point at `idp_port`.
fn placeholder_config(scratch: &Scratch, idp_port: u16) -> (std::path::PathBuf, u16) {
    let port = free_port();
    let base = format!("http://127.0.0.1:{idp_port}");
    let urls = IdpUrls {
        authorize: format!("{base}/authorize"),
        token: format!("{base}/token"),
        device: format!("{base}/devicecode"),
    };
    let text = ConfigBuilder::new()
        .state_dir(&scratch.state())
        .provider_generic(
            "entra",
            mailgate::config::PLACEHOLDER_CLIENT_ID,
            &urls,
            &["mail", "offline_access"],
            "",
        )
        .listener(Listener::local(
            "imap",
            port,
            Upstream::new(free_port(), "none"),
        ))
        .toml();
    (scratch.write(&text), port)
}

/// The repository root (the shipped files live there).
fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}
