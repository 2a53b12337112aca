//! The XML answers of the AWS Query services other than EC2 — STS, SNS, Auto Scaling — which
//! share one envelope: `<{Action}Response xmlns=NS>[<{Action}Result>…</{Action}Result>]
//! <ResponseMetadata><RequestId>…</RequestId></ResponseMetadata></{Action}Response>` and, for an
//! error, `<ErrorResponse xmlns=NS><Error><Type>Sender|Receiver</Type><Code>…</Code>
//! <Message>…</Message></Error><RequestId>…</RequestId></ErrorResponse>`, as `text/xml`. (EC2's
//! Query answers have their own shapes: `ec2_xml.rs`.) Also the messages every Query service
//! gives for a missing or unknown `Action`.

use crate::ec2_xml::esc;
use crate::http::{Outcome, full, response};

/// One Query service: its XML namespace and the request id its answers carry.
pub(crate) struct QueryService {
    /// `xmlns` of every answer.
    pub(crate) ns: &'static str,
    /// `RequestId` of every answer.
    pub(crate) request_id: &'static str,
}

impl QueryService {
    /// `200` with `<{action}Response>`, holding `<{action}Result>{result}</…>` when given.
    pub(crate) fn ok(&self, action: &str, result: Option<&str>) -> Outcome {
        let result = result
            .map(|r| format!("<{action}Result>{r}</{action}Result>"))
            .unwrap_or_default();
        self.answer(
            200,
            format!(
                "<{action}Response xmlns=\"{}\">{result}<ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></{action}Response>",
                self.ns, self.request_id
            ),
        )
    }

    /// `status` with an `ErrorResponse` of `kind` (`Sender` or `Receiver`), `code`, `message`.
    pub(crate) fn error(&self, status: u16, kind: &str, code: &str, message: &str) -> Outcome {
        self.answer(
            status,
            format!(
                "<ErrorResponse xmlns=\"{}\"><Error><Type>{kind}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
                self.ns,
                esc(code),
                esc(message),
                self.request_id
            ),
        )
    }

    fn answer(&self, status: u16, body: String) -> Outcome {
        Outcome::Respond(response(
            status,
            &[("content-type", "text/xml".into())],
            full(body),
        ))
    }
}

/// The message of a Query request without `Action` (`MissingAction`).
pub(crate) const MISSING_ACTION: &str = "The request must contain the parameter Action";

/// The message of an unknown `Action` (`InvalidAction`).
pub(crate) fn invalid_action(action: &str) -> String {
    format!("The action {action} is not valid for this web service.")
}
