//! A certificate authority made for one test, and a server certificate it signs.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::Result;
use crate::error::IoContext;

/// A fresh CA and a certificate for `127.0.0.1` and `localhost` signed by it,
/// written as PEM files into a folder.
///
/// The folder also works as a containers-image certificate folder
/// (`skopeo --dest-cert-dir`): it holds the CA as `ca.crt` and the server files
/// under other extensions, so skopeo reads only the CA.
#[derive(Debug, Clone)]
pub struct TestCa {
    dir: PathBuf,
    ca_pem: String,
}

impl TestCa {
    /// Generates the CA and server certificate into `dir` (which must exist).
    pub fn generate(dir: &Path) -> Result<Self> {
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "containerization test CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate()?;
        let mut server_params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?;
        server_params
            .distinguished_name
            .push(DnType::CommonName, "127.0.0.1");
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = server_params.signed_by(&server_key, &issuer)?;

        let ca_pem = ca_cert.pem();
        let ca = Self {
            dir: dir.to_path_buf(),
            ca_pem,
        };
        for (path, pem) in [
            (ca.ca_cert_path(), ca.ca_pem.clone()),
            (ca.server_cert_path(), server_cert.pem()),
            (ca.server_key_path(), server_key.serialize_pem()),
        ] {
            std::fs::write(&path, pem).at("cannot write", path)?;
        }
        Ok(ca)
    }

    /// The CA certificate, PEM-encoded.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The folder holding the files: usable as a certificate folder for skopeo.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The CA certificate file (`ca.crt`).
    pub fn ca_cert_path(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    /// The server certificate file.
    pub fn server_cert_path(&self) -> PathBuf {
        self.dir.join("server.pem")
    }

    /// The server's private key file.
    pub fn server_key_path(&self) -> PathBuf {
        self.dir.join("server-key.pem")
    }
}
