//! The IAM policy parser/validator on arbitrary text, for every policy type, and the compiler on
//! every document it produces (valid or lenient). Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate::policy::{parse_policy, CompiledPolicy, PolicySet, PolicyType};

const TYPES: [PolicyType; 7] = [
    PolicyType::Identity,
    PolicyType::Resource,
    PolicyType::Trust,
    PolicyType::Boundary,
    PolicyType::Session,
    PolicyType::Scp,
    PolicyType::Rcp,
];

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for ty in TYPES {
        let parsed = parse_policy(&text, ty);
        for f in &parsed.findings {
            let _ = f.to_string();
        }
        for doc in parsed.document.iter().chain(parsed.lenient.iter()) {
            let compiled = CompiledPolicy::compile("fuzz", ty, doc);
            for s in &compiled.statements {
                let _ = s.condition_keys().count();
            }
            let set = PolicySet::new(vec![std::sync::Arc::new(compiled)]);
            let _ = set.is_empty();
        }
    }
});
