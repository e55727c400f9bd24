//! The Graph token: a second resource from the same refresh token.

use std::time::Duration;

use std::collections::HashMap;
use std::sync::Arc;

use super::tests::{ALICE, enrol_expired, grant, rig};
use crate::oauth::TokenEndpoint;
use crate::secret::Secret;
use crate::store::testutil::{FakeEndpoint, answer, name};
use crate::token::TokenError;

#[tokio::test]
async fn graph_token_comes_from_the_refresh_token_and_keeps_the_mail_token_on_disk() {
    let r = rig("graph-token", Duration::ZERO, "");
    enrol_expired(&r.store, ALICE, "pw");
    let graph = Arc::new(FakeEndpoint::default());
    graph.push(Ok(answer(
        "GRAPH-1",
        Some("RT-g1"),
        Duration::from_secs(3600),
    )));
    graph.push(Ok(answer(
        "GRAPH-2",
        Some("RT-g2"),
        Duration::from_secs(3600),
    )));
    r.svc.set_graph_endpoints(HashMap::from([(
        "ms".to_owned(),
        graph.clone() as Arc<dyn TokenEndpoint>,
    )]));

    let missing = r.svc.graph_access(ALICE, None).await.unwrap_err();
    assert!(
        matches!(missing, TokenError::Temporary { .. }),
        "{missing:?}"
    );

    let mail = grant(&r.svc, ALICE, "pw").await.unwrap();
    assert_eq!(mail.access_token.expose(), "AT-1");
    let t = r.svc.graph_access(ALICE, None).await.unwrap();
    assert_eq!(t.expose(), "GRAPH-1");
    assert_eq!(*graph.seen.lock().unwrap(), ["RT-1"]);
    let cached = r.svc.graph_access(ALICE, None).await.unwrap();
    assert_eq!(cached.expose(), "GRAPH-1");
    assert_eq!(graph.refresh_count(), 1, "cached");

    let fresh = r.svc.graph_access(ALICE, Some(&t)).await.unwrap();
    assert_eq!(fresh.expose(), "GRAPH-2");
    assert_eq!(
        *graph.seen.lock().unwrap(),
        ["RT-1", "RT-g1"],
        "rotated token saved"
    );

    let disk = r.store.unlock(&name(ALICE), &Secret::from("pw")).unwrap();
    assert_eq!(disk.tokens.refresh_token.expose(), "RT-g2");
    assert_eq!(
        disk.tokens
            .access_token
            .as_ref()
            .map(|t| t.expose().as_str()),
        Some("AT-1"),
        "the disk keeps the mail token"
    );
    let mail_again = grant(&r.svc, ALICE, "pw").await.unwrap();
    assert_eq!(mail_again.access_token.expose(), "AT-1");
}
