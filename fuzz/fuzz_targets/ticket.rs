//! Ticket parsing: any text a user pastes or a link carries. It must answer with a ticket or an
//! error, never panic, and a ticket it accepts must print and parse back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(ticket) = text.parse::<ferry_core::Ticket>() {
        let again: ferry_core::Ticket = ticket.to_string().parse().expect("a printed ticket parses");
        assert_eq!(again.to_string(), ticket.to_string());
    }
});
