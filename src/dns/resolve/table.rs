//! An upstream that answers from a table in memory, for the resolver's unit
//! tests and the fuzz harness: the real pipeline and cache in front of it,
//! no network behind it. Compiled only for tests (`testkit`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::rdata::{A, CNAME};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};

use super::answer::UpstreamAnswer;
use super::upstream::{Asked, Upstream};

/// Answers from (lower-case FQDN, type) -> records; anything else is
/// NXDOMAIN. Counts and keeps the questions it is asked.
#[derive(Default)]
pub struct TableUpstream {
    pub records: HashMap<(String, RecordType), Vec<Record>>,
    pub asked: Arc<Mutex<Vec<String>>>,
    pub count: Arc<AtomicUsize>,
}

impl Upstream for TableUpstream {
    fn ask<'a>(&'a self, name: &'a Name, record_type: RecordType) -> Asked<'a> {
        Box::pin(async move {
            let mut name = name.clone();
            name.set_fqdn(true);
            let key = (name.to_ascii().to_ascii_lowercase(), record_type);
            self.count.fetch_add(1, Ordering::SeqCst);
            if let Ok(mut asked) = self.asked.lock() {
                asked.push(key.0.clone());
            }
            match self.records.get(&key) {
                Some(records) => {
                    UpstreamAnswer::new(ResponseCode::NoError, records.clone(), vec![])
                }
                None => UpstreamAnswer::new(ResponseCode::NXDomain, vec![], vec![]),
            }
        })
    }
}

/// A name a test writes itself; panics (with the name) if it is not one.
pub fn name(text: &str) -> Name {
    match Name::from_ascii(text) {
        Ok(name) => name,
        Err(error) => panic!("the test's own name {text} must parse: {error}"),
    }
}

/// `owner` A 192.0.2.`last`, TTL 300.
pub fn a(owner: &str, last: u8) -> Record {
    Record::from_rdata(name(owner), 300, RData::A(A::new(192, 0, 2, last)))
}

/// `owner` CNAME `target`, TTL 300.
pub fn cname(owner: &str, target: &str) -> Record {
    Record::from_rdata(name(owner), 300, RData::CNAME(CNAME(name(target))))
}
