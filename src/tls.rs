//! TLS shared by every role: the process's one crypto provider (aws-lc-rs) and the trust
//! anchors of a private CA an operator hands us (`--ca-file`, `amqp.ca_file`).

use std::path::Path;
use std::sync::Arc;

use amqprs::tls::TlsAdaptor;
use anyhow::{bail, Context};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

/// Installs aws-lc-rs as the process-wide rustls provider. Libraries that build their TLS
/// configuration without naming a provider (amqprs, reqwest) then all use this one; call it
/// before anything else. Calling it again does nothing.
pub fn install_crypto_provider() {
    // Err only means a provider is installed already, which is what we want.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// The certificates of a PEM file, refusing a file that holds none.
pub fn read_ca_file(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("cannot read CA file {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("CA file {} is not valid PEM", path.display()))?;
    if certs.is_empty() {
        bail!("CA file {} holds no certificate", path.display());
    }
    Ok(certs)
}

/// Trust anchors: only the CA file's certificates when one is given (a private CA pins the
/// peer to it), otherwise the Mozilla roots.
pub fn root_store(ca_file: Option<&Path>) -> anyhow::Result<RootCertStore> {
    let Some(path) = ca_file else {
        return Ok(RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        });
    };
    let mut store = RootCertStore::empty();
    for cert in read_ca_file(path)? {
        store
            .add(cert)
            .with_context(|| format!("CA file {} holds an unusable certificate", path.display()))?;
    }
    Ok(store)
}

/// A TLS connector for an AMQP connection to `host`, verified against `ca_file` (or the
/// Mozilla roots). amqprs's own builder unwraps on a bad CA file; this one reports it.
pub fn amqp_adaptor(host: &str, ca_file: Option<&Path>) -> anyhow::Result<TlsAdaptor> {
    let config = ClientConfig::builder()
        .with_root_certificates(root_store(ca_file)?)
        .with_no_client_auth();
    Ok(TlsAdaptor::new(
        tokio_rustls::TlsConnector::from(Arc::new(config)),
        host.to_string(),
    ))
}

/// Adds the CA file's certificates to an HTTP client's trust anchors (on top of the system's).
pub fn trust_ca_file(
    mut builder: reqwest::ClientBuilder,
    ca_file: Option<&Path>,
) -> anyhow::Result<reqwest::ClientBuilder> {
    if let Some(path) = ca_file {
        for cert in read_ca_file(path)? {
            let cert = reqwest::Certificate::from_der(cert.as_ref()).with_context(|| {
                format!("CA file {} holds an unusable certificate", path.display())
            })?;
            builder = builder.add_root_certificate(cert);
        }
    }
    Ok(builder)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_that_is_missing_empty_or_not_pem_is_an_error_not_a_panic() {
        install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let err = amqp_adaptor("broker", Some(&missing)).err().unwrap();
        assert!(
            format!("{err:#}").contains("cannot read CA file"),
            "{err:#}"
        );

        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let err = amqp_adaptor("broker", Some(&empty)).err().unwrap();
        assert!(
            format!("{err:#}").contains("holds no certificate"),
            "{err:#}"
        );

        let junk = dir.path().join("junk.pem");
        std::fs::write(
            &junk,
            "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let err = amqp_adaptor("broker", Some(&junk)).err().unwrap();
        assert!(format!("{err:#}").contains("unusable"), "{err:#}");

        let key = rcgen::KeyPair::generate().unwrap();
        let ca = rcgen::CertificateParams::new(vec!["ca".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let good = dir.path().join("ca.pem");
        std::fs::write(&good, ca.pem()).unwrap();
        assert_eq!(root_store(Some(&good)).unwrap().len(), 1);
        assert!(amqp_adaptor("broker", Some(&good)).is_ok());
        assert!(trust_ca_file(reqwest::Client::builder(), Some(&good)).is_ok());
    }
}
