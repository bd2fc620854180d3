//! The domains list parser on arbitrary text, line by line through one parser
//! as a list file is read; every entry must be a normalised name.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lollipop::config::ListFormat;

fuzz_target!(|data: &[u8]| lollipop_fuzz::parse_list(ListFormat::Domains, data));
