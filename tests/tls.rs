//! The SDK's HTTP client (`moebi::sdk`) against a local TLS server whose certificate a test CA
//! signed: trusted when the CA is given, refused when it is not or when the name is wrong, and
//! `AWS_CA_BUNDLE`'s file read or refused with a reason.

use std::convert::Infallible;
use std::sync::Arc;

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use moebi::sdk::{https_client, SdkFailure, TrustRoots};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A CA and a server certificate it signed for `localhost`.
struct TestPki {
    ca_pem: String,
    leaf: CertificateDer<'static>,
    leaf_key: PrivateKeyDer<'static>,
}

fn test_pki() -> TestPki {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "moebi test CA");
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    TestPki {
        ca_pem: ca.pem(),
        leaf: leaf.der().clone(),
        leaf_key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
    }
}

/// A TLS server on loopback answering every request as DynamoDB's `ListTables` would.
async fn serve(pki: &TestPki) -> u16 {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![pki.leaf.clone()], pki.leaf_key.clone_key())
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that refuses the certificate ends the handshake: nothing to serve.
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let answer = service_fn(|_| async {
                    Ok::<_, Infallible>(
                        hyper::Response::builder()
                            .header("content-type", "application/x-amz-json-1.0")
                            .body(Full::new(Bytes::from_static(
                                br#"{"TableNames":["moebi"]}"#,
                            )))
                            .unwrap(),
                    )
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), answer)
                    .await;
            });
        }
    });
    port
}

async fn list_tables(roots: &TrustRoots, endpoint: String) -> Result<Vec<String>, SdkFailure> {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .endpoint_url(endpoint)
        .http_client(https_client(roots).unwrap())
        .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
        .build();
    let answer = aws_sdk_dynamodb::Client::from_conf(config)
        .list_tables()
        .send()
        .await?;
    Ok(answer.table_names().to_vec())
}

#[tokio::test]
async fn a_certificate_the_given_ca_signed_is_trusted() {
    let pki = test_pki();
    let port = serve(&pki).await;
    let roots = TrustRoots::none().with_pem(pki.ca_pem.as_bytes()).unwrap();
    let tables = list_tables(&roots, format!("https://localhost:{port}"))
        .await
        .unwrap();
    assert_eq!(tables, ["moebi"]);
    // The compiled-in roots beside the test CA change nothing.
    let roots = TrustRoots::builtin()
        .with_pem(pki.ca_pem.as_bytes())
        .unwrap();
    assert!(list_tables(&roots, format!("https://localhost:{port}"))
        .await
        .is_ok());
}

#[tokio::test]
async fn a_certificate_no_trusted_ca_signed_is_refused() {
    let pki = test_pki();
    let port = serve(&pki).await;
    let err = list_tables(&TrustRoots::builtin(), format!("https://localhost:{port}"))
        .await
        .unwrap_err();
    let text = moebi::report(&err);
    assert!(text.contains("UnknownIssuer"), "{text}");
    // Another CA's certificate is no better.
    let other = test_pki();
    let roots = TrustRoots::none()
        .with_pem(other.ca_pem.as_bytes())
        .unwrap();
    let err = list_tables(&roots, format!("https://localhost:{port}"))
        .await
        .unwrap_err();
    assert!(
        moebi::report(&err).contains("BadSignature"),
        "{}",
        moebi::report(&err)
    );
}

#[tokio::test]
async fn a_certificate_for_another_name_is_refused() {
    let pki = test_pki();
    let port = serve(&pki).await;
    let roots = TrustRoots::none().with_pem(pki.ca_pem.as_bytes()).unwrap();
    // The certificate names localhost, not 127.0.0.1.
    let err = list_tables(&roots, format!("https://127.0.0.1:{port}"))
        .await
        .unwrap_err();
    let text = moebi::report(&err);
    assert!(
        text.contains("certificate not valid for name \"127.0.0.1\""),
        "{text}"
    );
}

#[test]
fn a_bundle_that_holds_no_certificate_is_refused_naming_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ca.pem");
    std::fs::write(&path, "not a certificate\n").unwrap();
    let err = TrustRoots::builtin().with_pem_file(&path).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("AWS_CA_BUNDLE"), "{text}");
    assert!(text.contains("ca.pem: holds no PEM certificate"), "{text}");
    let err = TrustRoots::builtin()
        .with_pem_file(&dir.path().join("missing.pem"))
        .unwrap_err();
    assert!(err.to_string().contains("missing.pem"), "{err}");
    std::fs::write(&path, test_pki().ca_pem).unwrap();
    assert!(TrustRoots::builtin().with_pem_file(&path).is_ok());
}
