//! The sandbox's own certificate authority: a CA kept in the state dir (so clients that
//! trusted `ca.pem` keep working across restarts) and a fresh leaf for 127.0.0.1 and localhost.

use std::path::Path;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::SandboxError;
use crate::store::write_private;

const CA_NAME: &str = "kiosk-agent sandbox CA";

fn ca_params() -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("no SANs to parse");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, CA_NAME);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    p
}

/// The CA's PEM (for `ca.pem`) and a rustls server config for the sandbox's hosts.
pub fn server_config(state_dir: &Path, hosts: &[String]) -> Result<(String, Arc<rustls::ServerConfig>), SandboxError> {
    let tls = |e: &dyn std::fmt::Display| SandboxError::Tls(e.to_string());
    let key_path = state_dir.join("ca-key.pem");
    let cert_path = state_dir.join("ca-cert.pem");
    let (ca_key, ca_pem) = match (std::fs::read_to_string(&key_path), std::fs::read_to_string(&cert_path)) {
        (Ok(k), Ok(c)) => (KeyPair::from_pem(&k).map_err(|e| tls(&e))?, c),
        _ => {
            let key = KeyPair::generate().map_err(|e| tls(&e))?;
            let cert = ca_params().self_signed(&key).map_err(|e| tls(&e))?;
            write_private(&key_path, key.serialize_pem().as_bytes()).map_err(|e| tls(&e))?;
            write_private(&cert_path, cert.pem().as_bytes()).map_err(|e| tls(&e))?;
            (key, cert.pem())
        }
    };
    let issuer = Issuer::new(ca_params(), &ca_key);
    let leaf_key = KeyPair::generate().map_err(|e| tls(&e))?;
    let mut leaf = CertificateParams::new(hosts.to_vec()).map_err(|e| tls(&e))?;
    leaf.distinguished_name.push(DnType::CommonName, "kiosk-agent sandbox");
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    // Valid from two days ago, as a real server's recent certificate is: a kiosk whose clock is
    // further behind meets what it would meet in the field (the handshake refuses it).
    let iso =
        crate::smileid::timestamp::UnixMillis(crate::smileid::timestamp::UnixMillis::now().0 - 2 * 86_400_000).to_iso();
    let part = |r: std::ops::Range<usize>| iso[r].parse().unwrap_or(1);
    leaf.not_before = rcgen::date_time_ymd(part(0..4), part(5..7) as u8, part(8..10) as u8);
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).map_err(|e| tls(&e))?;
    let ca_der = rustls::pki_types::pem::PemObject::from_pem_slice(ca_pem.as_bytes())
        .map_err(|e: rustls::pki_types::pem::Error| tls(&e))?;
    let chain: Vec<CertificateDer<'static>> = vec![leaf_cert.der().clone(), ca_der];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls(&e))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| tls(&e))?;
    Ok((ca_pem, Arc::new(config)))
}
