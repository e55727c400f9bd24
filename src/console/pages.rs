//! One askama template per page (`templates/console/`), all extending one
//! layout. Askama checks the templates at compile time and escapes every
//! value for HTML; the only value inserted unescaped is the QR code's SVG,
//! which [`qr_svg`] builds from numbers alone.

use askama::Template;

/// What every page's layout shows.
pub struct Frame {
    pub title: &'static str,
    pub gateway: String,
    /// The session's CSRF token when signed in (shows nav and sign-out).
    pub nav_csrf: Option<String>,
    pub flash: Option<String>,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "console/message.html")]
pub struct Message {
    pub f: Frame,
}

#[derive(Template)]
#[template(path = "console/login.html")]
pub struct Login {
    pub f: Frame,
    pub csrf: String,
}

/// One row of the accounts table, already in words.
pub struct Row {
    pub name: String,
    pub url_name: String,
    pub mailbox: String,
    pub kind: &'static str,
    pub provider: String,
    pub state: &'static str,
    pub expiry: String,
    pub refresh_age: String,
    pub last_login: String,
    pub last_error: String,
    pub sessions: usize,
    /// "sends through Graph since …" when `submit = "auto"` switched it.
    pub graph: String,
    /// Has stored tokens (can be re-authorised and signed out).
    pub enrolled: bool,
}

impl Row {
    /// The CSS class of the state's badge (its colour; the text stays).
    pub fn badge(&self) -> &'static str {
        match self.state {
            "active" => "st-active",
            "needs login" => "st-needs",
            "refresh failing" => "st-failing",
            _ => "st-locked",
        }
    }
}

#[derive(Template)]
#[template(path = "console/accounts.html")]
pub struct Accounts {
    pub f: Frame,
    pub csrf: String,
    pub rows: Vec<Row>,
    pub q: String,
    pub state: String,
    pub sort: String,
    pub states: &'static [&'static str],
    pub sorts: &'static [&'static str],
}

#[derive(Template)]
#[template(path = "console/enrol.html")]
pub struct Enrol {
    pub f: Frame,
    pub csrf: String,
    pub account: String,
    pub providers: Vec<String>,
}

#[derive(Template)]
#[template(path = "console/flow.html")]
pub struct Flow {
    pub f: Frame,
    pub account: String,
    pub waiting: bool,
    pub uri: String,
    pub user_code: String,
    pub qr: String,
    pub enrolled: bool,
    pub password: Option<String>,
    pub generated: bool,
    /// The Microsoft Graph consent check's finding, when one ran.
    pub graph: Option<String>,
}

#[derive(Template)]
#[template(path = "console/links.html")]
pub struct Links {
    pub f: Frame,
    pub csrf: String,
    pub new_link: Option<String>,
    /// (account, expires, used)
    pub links: Vec<(String, String, &'static str)>,
}

#[derive(Template)]
#[template(path = "console/self.html")]
pub struct SelfService {
    pub f: Frame,
    pub token: String,
    pub account: Option<String>,
}

/// One table of the health page: the first cell of a row names it.
pub struct Section {
    pub id: &'static str,
    pub title: &'static str,
    /// Column headings; empty for a two-column name/value table.
    pub head: &'static [&'static str],
    pub rows: Vec<Vec<String>>,
}

#[derive(Template)]
#[template(path = "console/health.html")]
pub struct Health {
    pub f: Frame,
    pub sections: Vec<Section>,
}

#[derive(Template)]
#[template(path = "console/events.html")]
pub struct Events {
    pub f: Frame,
    /// (when, who, what, account, from)
    pub events: Vec<(String, String, String, String, String)>,
}

/// An inline SVG QR code of `text` (`<svg id="qr">`), or an empty string
/// when the text does not fit in a QR code.
pub fn qr_svg(text: &str) -> String {
    let Ok(code) = qrcode::QrCode::new(text.as_bytes()) else {
        return String::new();
    };
    let width = code.width();
    let colors = code.to_colors();
    let mut path = String::new();
    for (i, c) in colors.iter().enumerate() {
        if *c == qrcode::Color::Dark {
            path.push_str(&format!("M{} {}h1v1h-1z", i % width + 4, i / width + 4));
        }
    }
    let size = width + 8;
    format!(
        "<svg id=\"qr\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {size} {size}\" width=\"220\" height=\"220\" role=\"img\" aria-label=\"QR code of the sign-in link\"><rect width=\"{size}\" height=\"{size}\" fill=\"#fff\"/><path d=\"{path}\" fill=\"#000\"/></svg>"
    )
}

/// Unix seconds as `YYYY-MM-DD HH:MM` UTC.
pub fn utc(secs: u64) -> String {
    crate::base::civil::utc_minutes(i64::try_from(secs).unwrap_or(i64::MAX))
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS` UTC.
pub fn utc_seconds(secs: u64) -> String {
    crate::base::civil::utc_seconds(i64::try_from(secs).unwrap_or(i64::MAX))
}

/// A duration in the largest whole unit: `45 s`, `12 min`, `3 h`, `2 d`.
pub fn ago(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_durations_read_plainly() {
        assert_eq!(utc(0), "1970-01-01 00:00");
        assert_eq!(utc(1_795_000_000), "2026-11-18 11:06");
        assert_eq!(utc_seconds(1_795_000_000), "2026-11-18 11:06:40");
        assert_eq!(utc_seconds(86_399), "1970-01-01 23:59:59");
        assert_eq!(ago(59), "59 s");
        assert_eq!(ago(600), "10 min");
        assert_eq!(ago(3 * 86_400), "3 d");
    }

    #[test]
    fn values_are_escaped_and_the_qr_code_is_an_svg() {
        let page = Message {
            f: Frame {
                title: "T",
                gateway: "<script>".to_owned(),
                nav_csrf: None,
                flash: None,
                error: Some("a\"b".to_owned()),
            },
        }
        .render()
        .unwrap();
        assert!(
            !page.contains("<script>") && page.contains("script&#62;"),
            "{page}"
        );
        assert!(!page.contains("a\"b") && page.contains("a&#34;b"), "{page}");
        assert!(qr_svg("https://example.test/device").starts_with("<svg id=\"qr\""));
    }
}
