//! Enrolments started from the browser. The device code flow fits a web
//! page: [`crate::admin::Admin::start_enrolment`] returns the code and the
//! verification link at once, and `finish` then waits for the user in a
//! background task owned here, while the page polls. Each task ends when
//! the device code expires (the flow's own bound), and a finished entry is
//! kept only [`KEEP_FINISHED`].
//!
//! Waiting enrolments are bounded per [`Origin`]: the admin's
//! ([`MAX_PENDING`]) and the self-service links' ([`MAX_SELF_PENDING`],
//! at most one per link) are counted apart, so whoever holds links cannot
//! fill the table and lock the admin out of enrolling from the browser. A
//! slot is taken before the identity provider is asked for a device code,
//! so parallel requests cannot overshoot the bound either.
//!
//! A generated local password is handed to the page exactly once and then
//! dropped from memory: a reload says it was already shown.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::admin::Admin;
use crate::enrol::{EnrolRequest, GraphConsent, SignInPrompt};
use crate::secret::Secret;

/// The admin's enrolments waiting for a sign-in at once.
pub const MAX_PENDING: usize = 8;
/// Self-service enrolments waiting for a sign-in at once (all links).
pub const MAX_SELF_PENDING: usize = 4;
/// How long a finished enrolment's page stays available.
pub const KEEP_FINISHED: Duration = Duration::from_secs(15 * 60);

/// What the enrolment page shows.
#[derive(Debug)]
pub enum View {
    Waiting {
        account: String,
        user_code: String,
        verification_uri: String,
    },
    Enrolled {
        account: String,
        /// The generated password, on the first view only.
        password: Option<Secret<String>>,
        generated: bool,
        /// What the Microsoft Graph consent check found, when one ran.
        graph: Option<String>,
    },
    Failed {
        account: String,
        reason: String,
    },
}

/// Who started an enrolment, for the bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A signed-in admin.
    Admin,
    /// The holder of the self-service link with this token.
    Link(String),
}

struct Entry {
    state: View,
    since: Instant,
    origin: Origin,
}

/// The enrolments: those with a page, and those still asking the identity
/// provider for their device code (slot taken, no page yet).
#[derive(Default)]
struct Table {
    entries: HashMap<String, Entry>,
    starting: HashMap<String, Origin>,
}

impl Table {
    /// The origins of every enrolment still waiting (or starting).
    fn waiting(&self) -> impl Iterator<Item = &Origin> {
        self.entries
            .values()
            .filter(|e| matches!(e.state, View::Waiting { .. }))
            .map(|e| &e.origin)
            .chain(self.starting.values())
    }

    /// Whether one more enrolment from `origin` may wait; why not in
    /// plain words.
    fn admit(&self, origin: &Origin) -> Result<(), String> {
        match origin {
            Origin::Admin => {
                let n = self.waiting().filter(|o| **o == Origin::Admin).count();
                if n >= MAX_PENDING {
                    return Err(format!(
                        "{MAX_PENDING} enrolments are already waiting for a sign-in; finish or let them expire first"
                    ));
                }
            }
            Origin::Link(_) => {
                if self.waiting().any(|o| o == origin) {
                    return Err("An enrolment through this link is already waiting for your sign-in: finish it (or wait until its code expires) first.".to_owned());
                }
                let n = self
                    .waiting()
                    .filter(|o| matches!(o, Origin::Link(_)))
                    .count();
                if n >= MAX_SELF_PENDING {
                    return Err("Too many self-service enrolments are waiting right now; try again in a few minutes.".to_owned());
                }
            }
        }
        Ok(())
    }
}

/// Called with the outcome when an enrolment ends (the self-service links
/// mark theirs used on success).
pub type OnDone = Box<dyn FnOnce(bool) + Send>;

#[derive(Default)]
pub struct Flows {
    table: Mutex<Table>,
}

impl Flows {
    /// Starts a device-code enrolment for `origin`; its id, or why not in
    /// plain words.
    pub async fn start(
        self: &Arc<Self>,
        admin: Admin,
        request: EnrolRequest,
        origin: Origin,
        on_done: Option<OnDone>,
    ) -> Result<String, String> {
        self.sweep();
        let id = super::session::token().ok_or("the system random generator failed")?;
        {
            let mut t = self.lock();
            t.admit(&origin)?;
            t.starting.insert(id.clone(), origin.clone());
        }
        let account = request.account.clone();
        let started = admin.start_enrolment(request).await;
        let mut t = self.lock();
        t.starting.remove(&id);
        let pending = started.map_err(|e| e.to_string())?;
        let SignInPrompt::Device(prompt) = pending.prompt() else {
            return Err("only the device code flow can run from the console".to_owned());
        };
        let state = View::Waiting {
            account: account.clone(),
            user_code: prompt.user_code().to_owned(),
            verification_uri: prompt.verification_uri().to_owned(),
        };
        t.entries.insert(
            id.clone(),
            Entry {
                state,
                since: Instant::now(),
                origin,
            },
        );
        drop(t);
        let flows = Arc::clone(self);
        let task_id = id.clone();
        tokio::spawn(async move {
            let state = match admin.finish_enrolment(pending).await {
                Ok(enrolled) => View::Enrolled {
                    account,
                    generated: enrolled.generated_password.is_some(),
                    password: enrolled.generated_password,
                    graph: (enrolled.graph != GraphConsent::NotNeeded)
                        .then(|| enrolled.graph.to_string()),
                },
                Err(error) => View::Failed {
                    account,
                    reason: error.to_string(),
                },
            };
            let ok = matches!(state, View::Enrolled { .. });
            if let Some(entry) = flows.lock().entries.get_mut(&task_id) {
                entry.state = state;
                entry.since = Instant::now();
            }
            if let Some(done) = on_done {
                done(ok);
            }
        });
        Ok(id)
    }

    /// The page of enrolment `id`; takes the generated password out.
    pub fn view(&self, id: &str) -> Option<View> {
        let mut t = self.lock();
        let entry = t.entries.get_mut(id)?;
        Some(match &mut entry.state {
            View::Waiting {
                account,
                user_code,
                verification_uri,
            } => View::Waiting {
                account: account.clone(),
                user_code: user_code.clone(),
                verification_uri: verification_uri.clone(),
            },
            View::Enrolled {
                account,
                password,
                generated,
                graph,
            } => View::Enrolled {
                account: account.clone(),
                password: password.take(),
                generated: *generated,
                graph: graph.clone(),
            },
            View::Failed { account, reason } => View::Failed {
                account: account.clone(),
                reason: reason.clone(),
            },
        })
    }

    /// Whether enrolment `id` is still kept.
    pub fn exists(&self, id: &str) -> bool {
        self.lock().entries.contains_key(id)
    }

    fn sweep(&self) {
        let now = Instant::now();
        self.lock().entries.retain(|_, e| {
            matches!(e.state, View::Waiting { .. }) || now.duration_since(e.since) < KEEP_FINISHED
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting(t: &mut Table, id: &str, origin: Origin) {
        let state = View::Waiting {
            account: "a@x.test".to_owned(),
            user_code: "C".to_owned(),
            verification_uri: "https://example.test/device".to_owned(),
        };
        let since = Instant::now();
        t.entries.insert(
            id.to_owned(),
            Entry {
                state,
                since,
                origin,
            },
        );
    }

    fn link(n: usize) -> Origin {
        Origin::Link(format!("link-{n}"))
    }

    #[test]
    fn links_have_their_own_smaller_bound_and_one_waiting_flow_each() {
        let mut t = Table::default();
        for n in 0..MAX_SELF_PENDING {
            assert_eq!(t.admit(&link(n)), Ok(()));
            waiting(&mut t, &format!("s{n}"), link(n));
            assert!(t.admit(&link(n)).is_err(), "one per link");
        }
        let full = t.admit(&link(MAX_SELF_PENDING)).unwrap_err();
        assert!(full.contains("Too many"), "{full}");
        // The admin still has every one of their own slots.
        for n in 0..MAX_PENDING {
            assert_eq!(t.admit(&Origin::Admin), Ok(()), "admin slot {n}");
            t.starting.insert(format!("a{n}"), Origin::Admin);
        }
        assert!(t.admit(&Origin::Admin).is_err());
        // A finished self-service flow frees its link and its slot.
        if let Some(e) = t.entries.get_mut("s0") {
            e.state = View::Failed {
                account: "a@x.test".to_owned(),
                reason: "expired".to_owned(),
            };
        }
        assert_eq!(t.admit(&link(0)), Ok(()));
        assert_eq!(t.admit(&link(MAX_SELF_PENDING)), Ok(()));
        // Admin flows never take self-service slots.
        assert_eq!(t.admit(&link(0)), Ok(()));
    }

    #[test]
    fn a_starting_flow_holds_its_slot() {
        let mut t = Table::default();
        t.starting.insert("s".to_owned(), link(7));
        assert!(t.admit(&link(7)).is_err());
        assert_eq!(t.admit(&link(8)), Ok(()));
    }
}
