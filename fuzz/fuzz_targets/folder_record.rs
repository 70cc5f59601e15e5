//! Folder entry decoding: a record from a folder member is untrusted bytes. Decoding must never
//! panic, and a record it accepts must encode and decode back to the same record.
#![no_main]

use ferry_core::folder::version::FileVersion;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = FileVersion::decode(data) {
        let again = FileVersion::decode(&v.encode()).expect("an encoded record decodes");
        assert_eq!(again, v);
        let _ = v.content_hash();
    }
});
