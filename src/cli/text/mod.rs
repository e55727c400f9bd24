//! Terminal presentation: passwords read from standard input, the accounts
//! table, and what `login` tells the admin at the end.

use std::io::{self, BufRead, Read, Write};
use std::time::SystemTime;

use super::CliError;
use crate::admin::MAX_PASSWORD_LEN;
use crate::base::AccountName;
use crate::config::LocalTls;
use crate::enrol::Enrolled;
use crate::secret::Secret;
use crate::store::AccountSummary;

/// One line of at most [`MAX_PASSWORD_LEN`] bytes plus its line ending,
/// read without ever buffering more.
fn bounded_line(input: &mut dyn BufRead) -> io::Result<Secret<Vec<u8>>> {
    let mut line = Vec::with_capacity(MAX_PASSWORD_LEN + 2);
    input
        .take(MAX_PASSWORD_LEN as u64 + 2)
        .read_until(b'\n', &mut line)?;
    Ok(Secret::new(line))
}

/// `login --password-stdin`: the line without its one line ending (`\n` or
/// `\r\n`); the service checks what is left.
pub(super) fn password_line(input: &mut dyn BufRead) -> io::Result<Secret<Vec<u8>>> {
    let line = bounded_line(input)?;
    let bytes = line.expose();
    let text = match bytes.strip_suffix(b"\n") {
        Some(rest) => rest.strip_suffix(b"\r").unwrap_or(rest),
        None => bytes,
    };
    Ok(Secret::new(text.to_vec()))
}

/// `hash-password`: UTF-8 text without trailing line-ending characters.
pub(super) fn hash_input(input: &mut dyn BufRead) -> Result<Secret<String>, CliError> {
    let line = bounded_line(input).map_err(CliError::HashInput)?;
    let text = std::str::from_utf8(line.expose()).map_err(|_| CliError::NotUtf8)?;
    Ok(Secret::new(text.trim_end_matches(['\n', '\r']).to_owned()))
}

/// `mailgate accounts`: one aligned row per account, the last column ragged.
pub(super) fn write_table(
    list: &[AccountSummary],
    now: SystemTime,
    out: &mut dyn Write,
) -> io::Result<()> {
    if list.is_empty() {
        return writeln!(out, "no accounts enrolled; run `mailgate login <account>`");
    }
    let rows: Vec<[String; 6]> = list.iter().map(|a| row(a, now)).collect();
    let head = [
        "ACCOUNT",
        "PROVIDER",
        "STATE",
        "TOKEN EXPIRES",
        "LAST USED",
        "LAST ERROR",
    ];
    let mut width = head.map(str::len);
    for row in &rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 6]| {
        let mut s = String::new();
        for (i, cell) in cells.iter().enumerate().take(5) {
            s.push_str(&format!("{cell:<w$}  ", w = width[i]));
        }
        s.push_str(cells[5]);
        s
    };
    writeln!(out, "{}", line(head))?;
    for row in &rows {
        writeln!(out, "{}", line(row.each_ref().map(String::as_str)))?;
    }
    Ok(())
}

/// The mailboxes `submit = "auto"` sends through Graph, one line each,
/// under the accounts table (a shared mailbox may be among them without
/// being enrolled itself).
pub(super) fn write_switched(
    list: &[(AccountName, SystemTime)],
    out: &mut dyn Write,
) -> io::Result<()> {
    for (mailbox, until) in list {
        writeln!(
            out,
            "{}: smtp auth disabled \u{2192} graph until {}",
            mailbox.as_str(),
            utc(*until)
        )?;
    }
    Ok(())
}

fn row(a: &AccountSummary, now: SystemTime) -> [String; 6] {
    let expiry = match a.access_expires_at {
        Some(t) if t <= now => format!("{} (expired)", utc(t)),
        Some(t) => utc(t),
        None => "-".to_owned(),
    };
    [
        a.account.to_string(),
        a.provider.clone(),
        a.state.as_str().to_owned(),
        expiry,
        a.last_used.map_or_else(|| "never".to_owned(), utc),
        a.last_error.clone().unwrap_or_else(|| "-".to_owned()),
    ]
}

/// `YYYY-MM-DD HH:MMZ`.
fn utc(t: SystemTime) -> String {
    let secs = i64::try_from(crate::store::record::to_unix(t)).unwrap_or(i64::MAX);
    format!("{}Z", crate::base::civil::utc_minutes(secs))
}

/// After `login`: where to point the mail client, and the generated password
/// (shown this once only).
pub(super) fn write_enrolled(e: &Enrolled, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "\nEnrolled {} with provider {}.",
        e.account, e.provider
    )?;
    if e.sasl_user != e.account {
        writeln!(out, "Upstream mailbox (XOAUTH2 user): {}", e.sasl_user)?;
    }
    writeln!(out, "Configure the mail client with:")?;
    for s in &e.settings {
        let tls = match s.tls {
            LocalTls::None => "no TLS",
            LocalTls::StartTls => "STARTTLS",
            LocalTls::Implicit => "SSL/TLS",
        };
        writeln!(
            out,
            "  {:<5} server {}  port {}  ({tls})",
            s.protocol.as_str().to_uppercase(),
            s.address.ip(),
            s.address.port()
        )?;
    }
    writeln!(out, "  user name: {}", e.account)?;
    match &e.generated_password {
        Some(p) => writeln!(
            out,
            "  password:  {}\n(The password is shown only this once. Run login again to set a new one.)",
            p.expose()
        )?,
        None => writeln!(out, "  password:  the one given on standard input")?,
    }
    out.flush()
}

#[cfg(test)]
mod tests;
