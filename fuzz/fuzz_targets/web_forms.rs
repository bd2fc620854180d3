//! Every form and query the status page reads, through the deserialiser
//! axum's `Form` and `Query` use, and the checks the handlers run on them.
//! The first four bytes are "now" (seconds since 1970), the rest the body.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (now, body) = match data.split_first_chunk::<4>() {
        Some((now, body)) => (u32::from_le_bytes(*now), body),
        None => (1_760_000_000, data),
    };
    lollipop::web::pages::fuzz::read_forms(body, now);
});
