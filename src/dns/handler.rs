//! The DNS message layer: checks a request (opcode, question count, class,
//! EDNS version), hands the question to the pipeline, and encodes the answer
//! with EDNS (payload clamped to 1232, DO echoed, Extended DNS Error).

use std::sync::Arc;

use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{
    Edns, Header, HeaderCounts, MessageType, Metadata, OpCode, ResponseCode,
};
use hickory_server::proto::rr::rdata::opt::EdnsOption;
use hickory_server::proto::rr::{DNSClass, Record, RecordType};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;

use super::answer::{Answer, ExtendedError};
use super::pipeline::{Client, Pipeline};

/// The largest UDP payload Lollipop sends: the DNS flag day 2020 figure,
/// which avoids IP fragmentation on ordinary networks.
pub const MAX_UDP_PAYLOAD: u16 = 1232;

/// EDNS option code of an Extended DNS Error (RFC 8914).
const EDE_OPTION: u16 = 15;

/// One per listen address, so the pipeline knows which VLAN a query came in on.
#[derive(Clone)]
pub struct DnsHandler {
    pub pipeline: Arc<Pipeline>,
    pub listener: usize,
}

#[async_trait::async_trait]
impl RequestHandler for DnsHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let client_edns = request.edns.as_ref();
        let dnssec_ok = client_edns.is_some_and(|edns| edns.flags().dnssec_ok);
        // RFC 6891: answer with an OPT only if the query had one.
        let mut response_edns = client_edns.map(|edns| {
            let mut out = Edns::new();
            out.set_max_payload(edns.max_payload().clamp(512, MAX_UDP_PAYLOAD));
            out.set_version(0);
            out.set_dnssec_ok(dnssec_ok);
            out
        });

        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.recursion_available = true;

        let answer = if request.metadata.op_code != OpCode::Query {
            Err(ResponseCode::NotImp)
        } else if client_edns.is_some_and(|edns| edns.version() > 0) {
            Err(ResponseCode::BADVERS)
        } else {
            match request.request_info() {
                // Zero or several questions: FORMERR, as RFC 9619 asks.
                Err(_) => Err(ResponseCode::FormErr),
                Ok(info) if info.query.query_class() != DNSClass::IN => Err(ResponseCode::NotImp),
                Ok(info) => {
                    let client = Client {
                        address: request.src().ip(),
                        listener: Some(self.listener),
                    };
                    let name = info.query.name();
                    Ok(self
                        .pipeline
                        .answer(name, info.query.query_type(), client)
                        .await)
                }
            }
        };

        let answer = match answer {
            Ok(answer) => answer,
            Err(code) => {
                metadata.response_code = code;
                Answer {
                    code,
                    answers: Vec::new(),
                    authorities: Vec::new(),
                    upstream: None,
                    extended_error: None,
                    explanation: None,
                }
            }
        };
        metadata.response_code = answer.code;
        if let (Some(edns), Some(error)) = (response_edns.as_mut(), &answer.extended_error) {
            edns.options_mut().insert(extended_error_option(error));
        }

        let keep = |record: &&Record| dnssec_ok || !is_dnssec_only(record.record_type());
        let builder = MessageResponseBuilder::new(&request.queries, response_edns.as_ref());
        let response = builder.build(
            metadata,
            answer.answer_records().filter(keep),
            answer.authority_records().filter(keep),
            std::iter::empty(),
            std::iter::empty(),
        );
        match response_handle.send_response(response).await {
            Ok(info) => info,
            Err(error) => {
                tracing::debug!(%error, src = %request.src(), "could not send a response");
                failed(&request.metadata)
            }
        }
    }
}

/// Records a client that did not set the DO bit should not receive.
fn is_dnssec_only(record_type: RecordType) -> bool {
    matches!(
        record_type,
        RecordType::RRSIG | RecordType::NSEC | RecordType::NSEC3
    )
}

fn extended_error_option(error: &ExtendedError) -> EdnsOption {
    let mut data = Vec::with_capacity(2 + error.text.len());
    data.extend_from_slice(&error.code.to_be_bytes());
    data.extend_from_slice(error.text.as_bytes());
    EdnsOption::Unknown(EDE_OPTION, data)
}

fn failed(request: &Metadata) -> ResponseInfo {
    let mut metadata = Metadata::new(request.id, MessageType::Response, request.op_code);
    metadata.response_code = ResponseCode::ServFail;
    ResponseInfo::from(Header {
        metadata,
        counts: HeaderCounts::default(),
    })
}
