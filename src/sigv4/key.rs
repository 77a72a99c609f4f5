//! Signing keys: derivation and a bounded cache of pre-keyed HMAC states.

use std::sync::Arc;

use dashmap::DashMap;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// A derived SigV4 signing key, held as a pre-keyed HMAC-SHA256 state so each verification
/// costs one HMAC over the string to sign.
#[derive(Clone)]
pub struct SigningKey(HmacSha256);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(***)")
    }
}

impl SigningKey {
    pub(crate) fn mac(&self) -> &HmacSha256 {
        &self.0
    }
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    match HmacSha256::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(data);
            mac.finalize().into_bytes().into()
        }
        Err(_) => [0; 32],
    }
}

/// Derives `kSigning` for (secret, date, region, service).
pub fn derive_signing_key(secret: &str, date: &str, region: &str, service: &str) -> SigningKey {
    let mut k_secret = zeroize::Zeroizing::new(Vec::with_capacity(4 + secret.len()));
    k_secret.extend_from_slice(b"AWS4");
    k_secret.extend_from_slice(secret.as_bytes());
    let k_date = hmac(&k_secret, date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    let k_signing = zeroize::Zeroizing::new(hmac(&k_service, b"aws4_request"));
    SigningKey(
        HmacSha256::new_from_slice(k_signing.as_ref()).unwrap_or_else(|_| {
            // Unreachable: HMAC takes any key length. Fall back to an unusable zero key.
            HmacSha256::new(&Default::default())
        }),
    )
}

struct Entry {
    generation: u64,
    key: Arc<SigningKey>,
}

/// Bounded cache: `<access key>/<date>/<region>/<service>` → signing key, tagged with the config
/// generation it was derived under so a rotated secret is never served from the cache.
pub struct SigningKeyCache {
    map: DashMap<Box<str>, Entry, foldhash::fast::RandomState>,
    capacity: usize,
}

impl std::fmt::Debug for SigningKeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyCache")
            .field("len", &self.map.len())
            .finish()
    }
}

impl SigningKeyCache {
    /// A cache holding at most `capacity` keys (cleared wholesale when full: keys are per day,
    /// so the working set is small and rebuilt cheaply).
    pub fn new(capacity: usize) -> Self {
        Self {
            map: DashMap::with_hasher(foldhash::fast::RandomState::default()),
            capacity: capacity.max(1),
        }
    }

    /// Returns the key for `id` (`<access key>/<date>/<region>/<service>`), deriving it with
    /// `derive` on a miss. The flag says whether it was a hit.
    pub fn get_or_derive(
        &self,
        id: &str,
        generation: u64,
        derive: impl FnOnce() -> SigningKey,
    ) -> (Arc<SigningKey>, bool) {
        if let Some(e) = self.map.get(id) {
            if e.generation == generation {
                return (e.key.clone(), true);
            }
        }
        let key = Arc::new(derive());
        if self.map.len() >= self.capacity {
            self.map.clear();
        }
        self.map.insert(
            id.into(),
            Entry {
                generation,
                key: key.clone(),
            },
        );
        (key, false)
    }

    /// Number of cached keys.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_aws_documented_signing_key() {
        // From the IAM user guide example (secret wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY).
        let key = derive_signing_key(
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "20150830",
            "us-east-1",
            "iam",
        );
        let sig = crate::sigv4::sign(&key, b"AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/iam/aws4_request\nf536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59");
        assert_eq!(
            hex::encode(sig),
            "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
        );
    }

    #[test]
    fn cache_hits_and_generation_invalidation() {
        let cache = SigningKeyCache::new(2);
        let mut derived = 0;
        let mut d = || {
            derived += 1;
            derive_signing_key("s", "20150830", "us-east-1", "s3")
        };
        assert!(!cache.get_or_derive("AK/20150830/us-east-1/s3", 1, &mut d).1);
        assert!(cache.get_or_derive("AK/20150830/us-east-1/s3", 1, &mut d).1);
        assert!(!cache.get_or_derive("AK/20150830/us-east-1/s3", 2, &mut d).1);
        cache.get_or_derive("B", 2, &mut d);
        cache.get_or_derive("C", 2, &mut d);
        assert!(cache.len() <= 2);
        assert_eq!(derived, 4);
    }
}
