//! Collection-name validation: a name from a peer must either be refused or resolve to a
//! relative path made only of normal components, which cannot leave the target folder.
#![no_main]

use std::path::Component;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(name) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(path) = ferry_core::names::validate_name(name) {
        assert!(path.is_relative(), "{name:?} became {path:?}");
        assert!(
            path.components().all(|c| matches!(c, Component::Normal(_))),
            "{name:?} became {path:?}"
        );
        let target = std::path::Path::new("/target");
        assert!(target.join(&path).starts_with(target));
    }
});
