//! `TlsClient` against a rustls server in-process on a loopback listener.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::TlsClient;

const LIMIT: Duration = Duration::from_secs(60);

struct Peer {
    listener: TcpListener,
    acceptor: TlsAcceptor,
    client: Arc<rustls::ClientConfig>,
}

async fn peer() -> Peer {
    peer_with(rustls::DEFAULT_VERSIONS).await
}

async fn peer_with(versions: &[&'static rustls::SupportedProtocolVersion]) -> Peer {
    peer_named(versions, vec!["localhost".to_owned()]).await
}

async fn peer_named(
    versions: &[&'static rustls::SupportedProtocolVersion],
    names: Vec<String>,
) -> Peer {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(names)
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let cert_der = CertificateDer::from(cert.der().to_vec());
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(versions)
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert_der.clone()], key_der)
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert_der).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Peer {
        listener: TcpListener::bind("127.0.0.1:0").await.unwrap(),
        acceptor: TlsAcceptor::from(Arc::new(server)),
        client: Arc::new(client),
    }
}

impl Peer {
    /// Connects a client and accepts it; both handshakes done.
    async fn pair(&self) -> (TlsClient, TlsStream<TcpStream>) {
        let addr = self.listener.local_addr().unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let client = async {
            let tcp = TcpStream::connect(addr).await.unwrap();
            TlsClient::connect(Arc::clone(&self.client), name, tcp)
                .await
                .unwrap()
        };
        let server = async {
            let (tcp, _) = self.listener.accept().await.unwrap();
            self.acceptor.accept(tcp).await.unwrap()
        };
        timeout(LIMIT, async { tokio::join!(client, server) })
            .await
            .unwrap()
    }
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add((i >> 11) as u8) ^ seed)
        .collect()
}

#[tokio::test]
async fn thirty_two_mib_both_ways_arrive_intact() {
    const LEN: usize = 32 << 20;
    let peer = peer().await;
    let (client, server) = peer.pair().await;
    let up = pattern(LEN, 0x5a);
    let down = pattern(LEN, 0xa5);
    let (mut client_rx, mut client_tx) = tokio::io::split(client);
    let (mut server_rx, mut server_tx) = tokio::io::split(server);
    let work = async {
        let send_up = async {
            // Uneven write sizes, so records and writes do not line up.
            for chunk in up.chunks(50_001) {
                client_tx.write_all(chunk).await.unwrap();
            }
            client_tx.shutdown().await.unwrap();
        };
        let send_down = async {
            server_tx.write_all(&down).await.unwrap();
            server_tx.shutdown().await.unwrap();
        };
        let recv_up = async {
            let mut got = Vec::with_capacity(LEN);
            // Ok(0) here means the client's close_notify arrived.
            server_rx.read_to_end(&mut got).await.unwrap();
            got
        };
        let recv_down = async {
            let mut got = Vec::with_capacity(LEN);
            client_rx.read_to_end(&mut got).await.unwrap();
            got
        };
        tokio::join!(send_up, send_down, recv_up, recv_down)
    };
    let ((), (), got_up, got_down) = timeout(LIMIT, work).await.unwrap();
    assert!(got_up == up, "client to server bytes differ");
    assert!(got_down == down, "server to client bytes differ");
}

#[tokio::test]
async fn tls12_carries_data_both_ways_and_resumes() {
    let peer = peer_with(&[&rustls::version::TLS12]).await;
    for expected in [rustls::HandshakeKind::Full, rustls::HandshakeKind::Resumed] {
        let (mut client, mut server) = peer.pair().await;
        assert_eq!(client.handshake_kind(), Some(expected));
        let up = pattern(300_000, 1);
        let down = pattern(300_000, 2);
        let exchange = async {
            let client_side = async {
                client.write_all(&up).await.unwrap();
                client.flush().await.unwrap();
                let mut got = vec![0u8; down.len()];
                client.read_exact(&mut got).await.unwrap();
                got
            };
            let server_side = async {
                server.write_all(&down).await.unwrap();
                server.flush().await.unwrap();
                let mut got = vec![0u8; up.len()];
                server.read_exact(&mut got).await.unwrap();
                got
            };
            tokio::join!(client_side, server_side)
        };
        let (got_down, got_up) = timeout(LIMIT, exchange).await.unwrap();
        assert!(got_down == down && got_up == up, "bytes differ");
    }
}

#[tokio::test]
async fn a_fatal_alert_is_an_error_naming_it() {
    let peer = peer().await;
    let (mut client, server) = peer.pair().await;
    let alerted = async {
        // A record that does not decrypt makes the server send bad_record_mac.
        let (mut tcp, mut conn) = server.into_inner();
        let mut forged: &[u8] = &[[0x17, 3, 3, 0, 32].as_slice(), &[0u8; 32]].concat();
        conn.read_tls(&mut forged).unwrap();
        conn.process_new_packets().unwrap_err();
        let mut wire = Vec::new();
        conn.write_tls(&mut wire).unwrap();
        tcp.write_all(&wire).await.unwrap();
        let mut got = [0u8; 16];
        client.read(&mut got).await.unwrap_err()
    };
    let err = timeout(LIMIT, alerted).await.unwrap();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    assert!(err.to_string().contains("alert"), "{err}");
}

#[tokio::test]
async fn a_certificate_message_larger_than_the_read_buffer_is_joined() {
    // About 55 KB of names: the Certificate message spans four records,
    // all kept in the incoming buffer until rustls has joined them.
    let mut names = vec!["localhost".to_owned()];
    names.extend((0..2200).map(|i| format!("host{i:05}.example.test")));
    let peer = peer_named(rustls::DEFAULT_VERSIONS, names).await;
    let (mut client, mut server) = peer.pair().await;
    let exchange = async {
        server.write_all(b"* OK\r\n").await.unwrap();
        server.flush().await.unwrap();
        let mut got = [0u8; 6];
        client.read_exact(&mut got).await.unwrap();
        got
    };
    assert_eq!(&timeout(LIMIT, exchange).await.unwrap(), b"* OK\r\n");
}

#[tokio::test]
async fn second_connection_resumes_through_the_same_config() {
    let peer = peer().await;
    for expected in [rustls::HandshakeKind::Full, rustls::HandshakeKind::Resumed] {
        let (mut client, mut server) = peer.pair().await;
        assert_eq!(client.handshake_kind(), Some(expected));
        // The tickets come after the handshake: read past them.
        let exchange = async {
            server.write_all(b"* OK\r\n").await.unwrap();
            server.shutdown().await.unwrap();
            let mut got = Vec::new();
            client.read_to_end(&mut got).await.unwrap();
            got
        };
        assert_eq!(timeout(LIMIT, exchange).await.unwrap(), b"* OK\r\n");
    }
}

#[tokio::test]
async fn close_notify_ends_reads_cleanly_and_bare_eof_is_an_error() {
    let peer = peer().await;
    let (mut client, mut server) = peer.pair().await;
    let clean = async {
        server.write_all(b"bye").await.unwrap();
        server.shutdown().await.unwrap();
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        got
    };
    assert_eq!(timeout(LIMIT, clean).await.unwrap(), b"bye");

    let (mut client, mut server) = peer.pair().await;
    let bare = async {
        server.write_all(b"bye").await.unwrap();
        server.flush().await.unwrap();
        let (tcp, _) = server.into_inner();
        drop(tcp);
        let mut got = [0u8; 16];
        let n = client.read(&mut got).await.unwrap();
        assert_eq!(&got[..n], b"bye");
        client.read(&mut got).await.unwrap_err()
    };
    let err = timeout(LIMIT, bare).await.unwrap();
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
}

#[tokio::test]
async fn tiny_caller_buffers_see_every_byte_in_order() {
    const LEN: usize = 100_000;
    let peer = peer().await;
    let (mut client, mut server) = peer.pair().await;
    let down = pattern(LEN, 7);
    let work = async {
        let send = async {
            server.write_all(&down).await.unwrap();
            server.shutdown().await.unwrap();
        };
        let recv = async {
            let mut got = Vec::with_capacity(LEN);
            let mut buf = [0u8; 7];
            for size in (1..=7).cycle().take(LEN + 1) {
                let n = client.read(&mut buf[..size]).await.unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            got
        };
        tokio::join!(send, recv).1
    };
    let got = timeout(LIMIT, work).await.unwrap();
    assert!(got == down, "bytes differ");
}

#[tokio::test]
async fn an_idle_connection_holds_no_buffers() {
    let peer = peer().await;
    let (mut client, mut server) = peer.pair().await;
    let exchange = async {
        server.write_all(&[1u8; 40_000]).await.unwrap();
        server.flush().await.unwrap();
        let mut got = vec![0u8; 40_000];
        client.read_exact(&mut got).await.unwrap();
        // Nothing more to read: the next read parks and lets go.
        let mut one = [0u8; 1];
        let parked = timeout(Duration::from_millis(50), client.read(&mut one)).await;
        assert!(parked.is_err(), "read should have waited");
    };
    timeout(LIMIT, exchange).await.unwrap();
    assert!(client.incoming.is_empty() && client.incoming.capacity() == 0);
    assert_eq!(client.plain.capacity(), 0);
    assert!(client.out.is_empty());
}
