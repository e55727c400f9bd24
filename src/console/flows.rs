//! Enrolments started from the browser. The device code flow fits a web
//! page: [`crate::admin::Admin::start_enrolment`] returns the code and the
//! verification link at once, and `finish` then waits for the user in a
//! background task owned here, while the page polls. The table is bounded
//! ([`MAX_PENDING`]); each task ends when the device code expires (the
//! flow's own bound), and a finished entry is kept only [`KEEP_FINISHED`].
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

/// Enrolments waiting for a sign-in at once.
pub const MAX_PENDING: usize = 8;
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

struct Entry {
    state: View,
    since: Instant,
}

/// Called with the outcome when an enrolment ends (the self-service links
/// mark theirs used on success).
pub type OnDone = Box<dyn FnOnce(bool) + Send>;

#[derive(Default)]
pub struct Flows {
    table: Mutex<HashMap<String, Entry>>,
}

impl Flows {
    /// Starts a device-code enrolment; its id, or why not in plain words.
    pub async fn start(
        self: &Arc<Self>,
        admin: Admin,
        request: EnrolRequest,
        on_done: Option<OnDone>,
    ) -> Result<String, String> {
        self.sweep();
        let waiting = |t: &HashMap<String, Entry>| {
            t.values()
                .filter(|e| matches!(e.state, View::Waiting { .. }))
                .count()
        };
        if waiting(&self.lock()) >= MAX_PENDING {
            return Err(format!(
                "{MAX_PENDING} enrolments are already waiting for a sign-in; finish or let them expire first"
            ));
        }
        let id = super::session::token().ok_or("the system random generator failed")?;
        let account = request.account.clone();
        let pending = admin
            .start_enrolment(request)
            .await
            .map_err(|e| e.to_string())?;
        let SignInPrompt::Device(prompt) = pending.prompt() else {
            return Err("only the device code flow can run from the console".to_owned());
        };
        let state = View::Waiting {
            account: account.clone(),
            user_code: prompt.user_code().to_owned(),
            verification_uri: prompt.verification_uri().to_owned(),
        };
        self.lock().insert(
            id.clone(),
            Entry {
                state,
                since: Instant::now(),
            },
        );
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
            if let Some(entry) = flows.lock().get_mut(&task_id) {
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
        let entry = t.get_mut(id)?;
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
        self.lock().contains_key(id)
    }

    fn sweep(&self) {
        let now = Instant::now();
        self.lock().retain(|_, e| {
            matches!(e.state, View::Waiting { .. }) || now.duration_since(e.since) < KEEP_FINISHED
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }
}
