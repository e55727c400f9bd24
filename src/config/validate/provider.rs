//! `[[providers]]`: Microsoft presets (tenant, national cloud) and generic
//! providers with explicit URLs. Only identity platform v2.0 endpoints are
//! built; anything not https is refused except 127.0.0.1 test providers.

use std::time::Duration;

use oauth2::url::{Host, Url};

use super::{Entry, Keywords};
use crate::config::raw::RawProvider;
use crate::config::validate::ConfigError;
use crate::config::{Cloud, GraphSettings, Provider};

const MS_SCOPES: [&str; 3] = ["IMAP.AccessAsUser.All", "POP.AccessAsUser.All", "SMTP.Send"];

const CLOUDS: Keywords<Cloud> = Keywords {
    what: "cloud",
    fix: "use \"global\", \"us-government\" or \"china\"",
    choices: &[
        ("global", Cloud::Global),
        ("us-government", Cloud::UsGovernment),
        ("china", Cloud::China),
    ],
};

pub(super) fn provider(e: &Entry<'_>, p: &RawProvider) -> Result<Provider, ConfigError> {
    let (authority, resource, graph_host) = match p.kind.as_str() {
        "microsoft" => {
            let (authority, resource, graph) = microsoft(e, p)?;
            (Some(authority), Some(resource), graph)
        }
        "generic" => (None, None, GLOBAL_GRAPH),
        other => {
            return Err(e.err(
                "kind",
                format!("unknown provider kind {other:?}"),
                "use \"microsoft\" or \"generic\"",
            ));
        }
    };
    let url = |given: &Option<String>, suffix: &str, k: &str| {
        endpoint(e, k, given.as_deref(), authority.as_deref(), suffix)
    };
    let (scopes, app_scopes) = scopes(e, p, resource)?;
    if p.client_id.trim().is_empty() {
        return Err(e.err(
            "client_id",
            "is empty",
            "set the application (client) id of your app registration",
        ));
    }
    if p.client_certificate.is_some() != p.client_key.is_some() {
        return Err(e.err(
            "client_certificate",
            "client_certificate and client_key go together",
            "give both PEM files, or neither",
        ));
    }
    Ok(Provider {
        name: p.name.clone(),
        client_id: p.client_id.clone(),
        client_secret: p.client_secret.clone(),
        client_certificate: p.client_certificate.as_deref().map(|c| e.path(c)),
        client_key: p.client_key.as_deref().map(|c| e.path(c)),
        authorize_url: url(&p.authorize_url, "authorize", "authorize_url")?,
        token_url: url(&p.token_url, "token", "token_url")?,
        device_code_url: url(&p.device_code_url, "devicecode", "device_code_url")?,
        scopes,
        app_scopes,
        redirect_port: p.redirect_port.unwrap_or(0),
        refresh_margin: super::limits::secs(
            e,
            "refresh_margin_secs",
            p.refresh_margin_secs,
            crate::config::bounds::REFRESH_MARGIN,
            Duration::from_secs(15 * 60),
        )?,
        keep_warm_interval: super::limits::secs(
            e,
            "keep_warm_interval_secs",
            p.keep_warm_interval_secs,
            crate::config::bounds::KEEP_WARM_INTERVAL,
            Duration::from_secs(24 * 3600),
        )?,
        machine_key_wrap: p.machine_key_wrap.unwrap_or(false),
        graph: graph(e, p, graph_host)?,
    })
}

/// The public cloud's Microsoft Graph host.
const GLOBAL_GRAPH: &str = "https://graph.microsoft.com";

/// Graph settings: the cloud's host unless `graph_endpoint` says otherwise
/// (a national cloud, a test server), scopes derived from it.
fn graph(e: &Entry<'_>, p: &RawProvider, host: &str) -> Result<GraphSettings, ConfigError> {
    let endpoint = match &p.graph_endpoint {
        Some(url) => endpoint(e, "graph_endpoint", Some(url), None, "")?,
        None => host.to_owned(),
    };
    let mut graph = GraphSettings::for_endpoint(&endpoint);
    if let Some(s) = &p.graph_scopes {
        graph.scopes = s.clone();
    }
    if let Some(s) = &p.graph_app_scopes {
        graph.app_scopes = s.clone();
    }
    if let Some(size) = p.graph_max_message_size {
        if !(1024..=crate::config::bounds::GRAPH_MAX_MESSAGE).contains(&size) {
            return Err(e.err(
                "graph_max_message_size",
                format!("{size} is out of range"),
                "give a size in bytes between 1024 and 157286400 (150 MB)",
            ));
        }
        graph.max_message_size = size;
    }
    if let Some(volume) = p.graph_upload_per_5min {
        let bound = crate::config::bounds::GRAPH_UPLOAD_PER_5MIN;
        if !(graph.max_message_size..=bound).contains(&volume) {
            return Err(e.err(
                "graph_upload_per_5min",
                format!("{volume} is out of range"),
                &format!(
                    "give a size in bytes between graph_max_message_size ({}) and {bound}: \
                     a message must fit in one window",
                    graph.max_message_size
                ),
            ));
        }
        graph.upload_per_5min = volume;
    }
    Ok(graph)
}

/// Identity platform v2.0 presets: the endpoint base for the tenant in its
/// national cloud, the cloud's mail resource for scopes, and its Graph host.
fn microsoft(
    e: &Entry<'_>,
    p: &RawProvider,
) -> Result<(String, &'static str, &'static str), ConfigError> {
    let cloud = e.keyword("cloud", p.cloud.as_deref().unwrap_or("global"), &CLOUDS)?;
    let (login, mail, graph) = match cloud {
        Cloud::Global => (
            "https://login.microsoftonline.com",
            "https://outlook.office.com",
            GLOBAL_GRAPH,
        ),
        Cloud::UsGovernment => (
            "https://login.microsoftonline.us",
            "https://outlook.office365.us",
            "https://graph.microsoft.us",
        ),
        Cloud::China => (
            "https://login.partner.microsoftonline.cn",
            "https://partner.outlook.cn",
            "https://microsoftgraph.chinacloudapi.cn",
        ),
    };
    let tenant = p.tenant.as_deref().unwrap_or("organizations");
    if tenant.is_empty() || tenant.contains(['/', '?', '#', ' ']) {
        return Err(e.err(
            "tenant",
            format!("{tenant:?} is not a tenant"),
            "use organizations, common, consumers, a tenant id or a domain",
        ));
    }
    let authority = p.authority.as_deref().unwrap_or(login);
    Ok((
        format!("{}/{tenant}/oauth2/v2.0", authority.trim_end_matches('/')),
        mail,
        graph,
    ))
}

/// An endpoint URL: as given, else under the preset authority; https only,
/// except for loopback test providers (see [`idp_url`]).
fn endpoint(
    e: &Entry<'_>,
    key: &str,
    given: Option<&str>,
    authority: Option<&str>,
    suffix: &str,
) -> Result<String, ConfigError> {
    let u = match (given, authority) {
        (Some(u), _) => u.to_owned(),
        (None, Some(a)) => format!("{a}/{suffix}"),
        (None, None) => {
            return Err(e.err(
                key,
                "missing for a generic provider",
                "give the full https:// URL",
            ));
        }
    };
    if let Err(problem) = idp_url(&u) {
        return Err(e.err(
            key,
            format!("{u:?} {problem}"),
            "use https:// (plain http only to a literal loopback address such as 127.0.0.1 or [::1])",
        ));
    }
    Ok(u)
}

/// Judges a parsed URL, never its text: `http://127.0.0.1@evil.example/`
/// starts like a loopback URL but its host is `evil.example`, and
/// `http://localhost.evil.example/` is any host its owner likes. Tokens and
/// client secrets travel to this URL, so plain http is allowed only where
/// they cannot leave the machine: a literal loopback IP address (no name,
/// since a name is whatever the resolver says). User info is refused
/// everywhere: an identity provider never needs it, and it only serves to
/// disguise the host.
fn idp_url(text: &str) -> Result<(), &'static str> {
    let url = Url::parse(text).map_err(|_| "is not a URL")?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("carries a user name or password before the host");
    }
    let loopback = match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(_)) => false,
        None => return Err("has no host"),
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        "http" => Err("is plain http to a host other than a loopback address"),
        _ => Err("is not an https URL"),
    }
}

/// Delegated scopes (for enrolment) and app-only scopes: as given, else the
/// Microsoft presets for the cloud's mail `resource`.
fn scopes(
    e: &Entry<'_>,
    p: &RawProvider,
    resource: Option<&str>,
) -> Result<(Vec<String>, Vec<String>), ConfigError> {
    let scopes = match (&p.scopes, resource) {
        (Some(s), _) => s.clone(),
        (None, Some(r)) => MS_SCOPES
            .iter()
            .map(|s| format!("{r}/{s}"))
            .chain(["offline_access".to_owned()])
            .collect(),
        (None, None) => {
            return Err(e.err(
                "scopes",
                "missing for a generic provider",
                "list the scopes, including offline_access if the provider needs it",
            ));
        }
    };
    let app_scopes = match (&p.app_scopes, resource) {
        (Some(s), _) => s.clone(),
        (None, Some(r)) => vec![format!(
            "{}/.default",
            r.replace("outlook.office.com", "outlook.office365.com")
        )],
        (None, None) => Vec::new(),
    };
    Ok((scopes, app_scopes))
}

/// The `client_id` shipped in config/mailgate.toml: valid, so that the
/// shipped config starts, but no application exists behind it.
pub const PLACEHOLDER_CLIENT_ID: &str = "00000000-0000-0000-0000-000000000000";

/// For a provider still carrying [`PLACEHOLDER_CLIENT_ID`]: what to do in
/// Microsoft Entra ID and where the id goes. One line of ASCII, because it
/// is also the text of a protocol answer.
pub fn unregistered_app(p: &Provider) -> Option<String> {
    (p.client_id.trim() == PLACEHOLDER_CLIENT_ID).then(|| {
        format!(
            "provider {name}: client_id is the shipped placeholder, register the app first: \
             in Microsoft Entra ID open App registrations > New registration, add the redirect URI \
             http://localhost (Mobile and desktop applications), set Allow public client flows \
             to Yes, add the delegated permissions IMAP.AccessAsUser.All, POP.AccessAsUser.All \
             and SMTP.Send (Office 365 Exchange Online), then put its Application (client) ID \
             in client_id of the [[providers]] entry named \"{name}\"",
            name = p.name
        )
    })
}
