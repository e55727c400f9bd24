//! The console's POSTs. Each change goes through [`crate::admin::Admin`],
//! the service the CLI uses, acting for `admin` (or `self-service`) from
//! the client's address, so the audit log says who did what from where.

use std::sync::Arc;

use hyper::StatusCode;

use super::flows::Origin;
use super::form::Form;
use super::pages;
use super::views::login_page;
use super::web::{Answer, Ctx, forbidden, html, redirect, session_cookie};
use crate::enrol::{EnrolRequest, Flow, NewPassword};
use crate::guard::Target;
use crate::secret::Secret;

/// Longest the sign-in waits for parallel attempts' verdicts.
const SIGN_IN_PATIENCE: std::time::Duration = std::time::Duration::from_secs(2);

/// POSTs that need no session: sign-in and self-service enrolment.
pub async fn public_post(ctx: &Ctx<'_>) -> Answer {
    let Ok(form) = Form::parse(&ctx.req.body) else {
        return forbidden(ctx, "The form was too large.");
    };
    if ctx.req.path == "/login" {
        return sign_in(ctx, &form).await;
    }
    let token = ctx.req.path.trim_start_matches("/self/");
    let Ok(account) = ctx.probes.web.links.check(token) else {
        return super::views::public_get(ctx).await;
    };
    let web = Arc::clone(&ctx.probes.web);
    let done_token = token.to_owned();
    let on_done: super::flows::OnDone = Box::new(move |ok| {
        if ok {
            web.links.consume(&done_token);
        }
    });
    let admin = ctx.probes.admin().acting(ctx.actor("self-service"));
    let origin = Origin::Link(token.to_owned());
    match start(
        ctx,
        admin,
        &account,
        form.get("password"),
        None,
        origin,
        Some(on_done),
    )
    .await
    {
        Ok(id) => {
            if let Ok(mut m) = ctx.probes.web.self_flows.lock() {
                if m.len() >= super::links::MAX_LINKS {
                    m.retain(|_, id| ctx.probes.web.flows.exists(id));
                }
                m.insert(token.to_owned(), id);
            }
            redirect(&format!("/self/{token}/flow"), None)
        }
        Err(error) => error_page(ctx, "Enrol your mailbox", &error),
    }
}

async fn sign_in(ctx: &Ctx<'_>, form: &Form) -> Answer {
    let expected = ctx
        .req
        .cookie(super::session::LOGIN_COOKIE)
        .unwrap_or_default();
    if !super::session::same_token(form.get("csrf"), &expected) {
        return forbidden(
            ctx,
            "The sign-in form expired. Reload the page and try again.",
        );
    }
    let Some(guard) = ctx.probes.web.guard() else {
        return login_page(
            ctx,
            Some("The gateway is still starting; try again in a moment."),
        );
    };
    let target = Target::console();
    let ip = ctx.req.peer.ip();
    let attempt = match guard.begin(ip, Some(&target), SIGN_IN_PATIENCE).await {
        Ok(a) => a,
        Err(wait) => {
            let msg = format!(
                "Too many wrong passwords. Try again in {} s.",
                wait.as_secs().max(1)
            );
            return login_page(ctx, Some(&msg));
        }
    };
    let hash = ctx.admin.password_hash.clone().unwrap_or_default();
    let password = Secret::new(form.get("password").to_owned());
    let ok = tokio::task::spawn_blocking(move || verify(&hash, password.expose()))
        .await
        .unwrap_or(false);
    let admin = ctx.probes.admin().acting(ctx.actor("admin"));
    if !ok {
        attempt.failed();
        admin.record("console sign-in refused (wrong password)", None);
        return login_page(ctx, Some("Wrong password."));
    }
    attempt.succeeded();
    let Some(id) = ctx.probes.web.sessions.open() else {
        return login_page(ctx, Some("The system random generator failed."));
    };
    admin.record("signed in to the console", None);
    redirect(
        "/accounts",
        Some(session_cookie(&id, ctx.req.tls, ctx.admin.session_max)),
    )
}

fn verify(hash: &str, password: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(hash).is_ok_and(|h| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// POSTs of a signed-in admin, CSRF already checked.
pub async fn post(ctx: &Ctx<'_>, form: &Form) -> Answer {
    let admin = ctx.probes.admin().acting(ctx.actor("admin"));
    let path = ctx.req.path.as_str();
    match path {
        "/logout" => {
            if let Some((id, _)) = &ctx.session {
                ctx.probes.web.sessions.close(id);
            }
            admin.record("signed out of the console", None);
            redirect(
                "/login",
                Some(super::session::set_cookie(
                    super::session::COOKIE,
                    "",
                    ctx.req.tls,
                    None,
                )),
            )
        }
        "/enrol" => {
            let provider = Some(form.get("provider")).filter(|p| !p.is_empty());
            match start(
                ctx,
                admin,
                form.get("account").trim(),
                form.get("password"),
                provider,
                Origin::Admin,
                None,
            )
            .await
            {
                Ok(id) => redirect(&format!("/enrol/{id}"), None),
                Err(error) => error_page(ctx, "Enrol an account", &error),
            }
        }
        "/links" => new_link(ctx, &admin, form),
        _ => account_action(ctx, &admin, path).await,
    }
}

async fn account_action(_ctx: &Ctx<'_>, admin: &crate::admin::Admin, path: &str) -> Answer {
    let Some(rest) = path.strip_prefix("/accounts/") else {
        return super::web::text(StatusCode::NOT_FOUND, "not found\n");
    };
    let Some((name, action)) = rest.rsplit_once('/') else {
        return super::web::text(StatusCode::NOT_FOUND, "not found\n");
    };
    let name: String = percent_decode(name);
    let flash = match action {
        "signout" => match admin.logout(&name).await {
            Ok(()) => "signed-out",
            Err(crate::admin::AdminError::UnknownAccount(_)) => "unknown",
            Err(_) => "failed",
        },
        "unlock" => match admin.unlock(&name) {
            Ok(true) => "unlocked",
            Ok(false) => "not-locked",
            Err(_) => "failed",
        },
        _ => return super::web::text(StatusCode::NOT_FOUND, "not found\n"),
    };
    redirect(&format!("/accounts?flash={flash}"), None)
}

fn percent_decode(s: &str) -> String {
    form_urlencoded::parse(format!("n={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

async fn start(
    ctx: &Ctx<'_>,
    admin: crate::admin::Admin,
    account: &str,
    password: &str,
    provider: Option<&str>,
    origin: Origin,
    on_done: Option<super::flows::OnDone>,
) -> Result<String, String> {
    if account.is_empty() {
        return Err("Give the mailbox to enrol.".to_owned());
    }
    let request = EnrolRequest {
        account: account.to_owned(),
        provider: provider.map(str::to_owned),
        flow: Flow::Device,
        password: if password.is_empty() {
            NewPassword::Generate
        } else {
            NewPassword::Given(Secret::new(password.as_bytes().to_vec()))
        },
        mailbox: None,
    };
    admin.record("enrolment started", Some(account));
    ctx.probes
        .web
        .flows
        .start(admin, request, origin, on_done)
        .await
}

fn error_page(ctx: &Ctx<'_>, title: &'static str, error: &str) -> Answer {
    let mut f = ctx.frame(title);
    f.error = Some(error.to_owned());
    html(StatusCode::BAD_REQUEST, &pages::Message { f })
}

fn new_link(ctx: &Ctx<'_>, admin: &crate::admin::Admin, form: &Form) -> Answer {
    let account = form.get("account").trim();
    let minutes = form.get("expires_minutes").trim();
    let minutes: u64 = if minutes.is_empty() {
        60
    } else {
        minutes.parse().unwrap_or(0)
    };
    if crate::base::AccountName::parse(account).is_err() {
        return links_page_error(ctx, "Give a valid mailbox address.");
    }
    if minutes == 0 || minutes > super::links::MAX_EXPIRY_MINUTES {
        return links_page_error(ctx, "Give an expiry between 1 minute and a week (10080).");
    }
    let Some(token) = ctx.probes.web.links.create(account, minutes) else {
        return links_page_error(ctx, "The system random generator failed.");
    };
    admin.record(
        &format!("self-service link created (expires in {minutes} min)"),
        Some(account),
    );
    let url = format!("{}/self/{token}", ctx.req.base_url());
    links_page(ctx, Some(url))
}

fn links_page_error(ctx: &Ctx<'_>, error: &str) -> Answer {
    let mut r = links_page_with(ctx, None, Some(error));
    *r.status_mut() = StatusCode::BAD_REQUEST;
    r
}

/// The links page, with a just-created link shown once.
pub fn links_page(ctx: &Ctx<'_>, new_link: Option<String>) -> Answer {
    links_page_with(ctx, new_link, None)
}

fn links_page_with(ctx: &Ctx<'_>, new_link: Option<String>, error: Option<&str>) -> Answer {
    let mut f = ctx.frame("Self-service links");
    f.error = error.map(str::to_owned);
    let links = ctx
        .probes
        .web
        .links
        .list()
        .into_iter()
        .map(|l| {
            (
                l.account,
                pages::utc(l.expires),
                if l.used { "yes" } else { "no" },
            )
        })
        .collect();
    html(
        StatusCode::OK,
        &pages::Links {
            f,
            csrf: ctx.csrf(),
            new_link,
            links,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::percent_decode;
    use crate::console::views::encode;

    #[test]
    fn account_names_survive_the_url_path() {
        for name in [
            "alice@example.test",
            "a+b@x.test",
            "ü ß@x.test",
            "50%@x.test",
        ] {
            let encoded = encode(name);
            assert!(!encoded.contains(['/', ' ', '+', '@']), "{encoded}");
            assert_eq!(percent_decode(&encoded), name);
        }
    }
}
