//! A TLS client certificate as mutual TLS hands it over (DER), through `tls::ClientCert::from_der`
//! — the subject and common name become the condition keys `tollgate:ClientCertSubject` and
//! `tollgate:ClientCertCommonName`. Must never panic; a parsed certificate's common name, when
//! there is one, is part of its subject.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate::tls::ClientCert;

fuzz_target!(|data: &[u8]| {
    if let Some(cert) = ClientCert::from_der(data) {
        if let Some(cn) = &cert.common_name {
            assert!(cert.subject.contains(cn.as_str()), "{cert:?}");
        }
    }
});
