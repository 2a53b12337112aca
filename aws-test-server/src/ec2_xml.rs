//! EC2 Query protocol answers: the success envelope, error XML, an image's XML and the escaping
//! and id checks every EC2 handler shares.

use crate::AmiSpec;
use crate::http::{Outcome, full, response};
use std::fmt::Write;

const NS: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";
const REQUEST_ID: &str = "11111111-2222-3333-4444-555555555555";

/// XML character data for `s`: the five markup characters as entities, CR as `&#xD;` (a raw CR
/// would reach an XML reader as LF: line-end normalization), and the characters XML 1.0 cannot
/// carry as text (C0 controls other than TAB, LF and CR; U+FFFE, U+FFFF) as character
/// references such as `&#x1B;` (the Rust SDK decodes them to the character). Everything else,
/// bidi controls, DEL and C1 controls included, is legal XML text and written as it is.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#xD;"),
            '\t' | '\n' => out.push(c),
            c if u32::from(c) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {
                let _ = write!(out, "&#x{:X};", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

/// `<Response><Errors><Error>...` with `status`.
pub(crate) fn error(status: u16, code: &str, message: &str) -> Outcome {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{}</Code><Message>{}</Message></Error></Errors><RequestID>{REQUEST_ID}</RequestID></Response>",
        esc(code),
        esc(message)
    );
    Outcome::Respond(response(
        status,
        &[("content-type", "text/xml;charset=UTF-8".into())],
        full(body),
    ))
}

/// `MissingParameter`: "The request must contain the parameter {what}".
pub(crate) fn missing(what: &str) -> Outcome {
    error(
        400,
        "MissingParameter",
        &format!("The request must contain the parameter {what}"),
    )
}

pub(crate) fn is_well_formed_ami_id(id: &str) -> bool {
    id.strip_prefix("ami-")
        .is_some_and(|h| (8..=17).contains(&h.len()) && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// One `<item>` of `imagesSet`.
#[allow(dead_code)]
pub(crate) fn image_xml(out: &mut String, ami: &AmiSpec, image_state: &str, alias: Option<&str>) {
    image_xml_dated(out, ami, image_state, alias, (None, None), &[]);
}

/// One `<item>` of `imagesSet` with its `creationDate` (default 2024-01-01) and
/// `deprecationTime`, when set, and its Marketplace `productCodes`.
pub(crate) fn image_xml_dated(
    out: &mut String,
    ami: &AmiSpec,
    image_state: &str,
    alias: Option<&str>,
    (creation, deprecation): (Option<&str>, Option<&str>),
    product_codes: &[String],
) {
    let _ = write!(
        out,
        "<item><imageId>{id}</imageId><imageLocation>{owner}/{name}</imageLocation><imageState>{st}</imageState><imageOwnerId>{owner}</imageOwnerId>{alias}<creationDate>{created}</creationDate>{deprecation}<isPublic>{public}</isPublic><architecture>x86_64</architecture><imageType>machine</imageType><name>{name}</name>{description}<rootDeviceType>{rdt}</rootDeviceType><rootDeviceName>{rdn}</rootDeviceName><blockDeviceMapping>",
        id = esc(&ami.id),
        owner = esc(&ami.owner_id),
        name = esc(&ami.name),
        public = ami.public,
        rdt = esc(&ami.root_device_type),
        rdn = esc(&ami.root_device_name),
        st = esc(image_state),
        created = esc(creation.unwrap_or("2024-01-01T00:00:00.000Z")),
        deprecation = deprecation
            .map(|d| format!("<deprecationTime>{}</deprecationTime>", esc(d)))
            .unwrap_or_default(),
        description = ami
            .description
            .as_deref()
            .map(|d| format!("<description>{}</description>", esc(d)))
            .unwrap_or_default(),
        alias = alias
            .map(|a| format!("<imageOwnerAlias>{}</imageOwnerAlias>", esc(a)))
            .unwrap_or_default(),
    );
    for m in &ami.mappings {
        let _ = write!(
            out,
            "<item><deviceName>{}</deviceName>",
            esc(&m.device_name)
        );
        if let Some(v) = &m.virtual_name {
            let _ = write!(out, "<virtualName>{}</virtualName>", esc(v));
        }
        if let Some(snap) = &m.snapshot_id {
            let _ = write!(
                out,
                "<ebs><snapshotId>{}</snapshotId><volumeSize>{}</volumeSize><deleteOnTermination>true</deleteOnTermination><volumeType>gp3</volumeType><encrypted>{}</encrypted></ebs>",
                esc(snap),
                m.volume_size.unwrap_or(8),
                m.encrypted
            );
        }
        out.push_str("</item>");
    }
    out.push_str("</blockDeviceMapping><virtualizationType>hvm</virtualizationType>");
    if !product_codes.is_empty() {
        out.push_str("<productCodes>");
        for c in product_codes {
            let _ = write!(
                out,
                "<item><productCode>{}</productCode><type>marketplace</type></item>",
                esc(c)
            );
        }
        out.push_str("</productCodes>");
    }
    if !ami.tags.is_empty() {
        out.push_str("<tagSet>");
        for (k, v) in &ami.tags {
            let _ = write!(
                out,
                "<item><key>{}</key><value>{}</value></item>",
                esc(k),
                esc(v)
            );
        }
        out.push_str("</tagSet>");
    }
    out.push_str("<hypervisor>xen</hypervisor><enaSupport>true</enaSupport></item>");
}

/// A 200 answer `<{action}Response xmlns=... ><requestId>...</requestId>{inner}</...>`.
pub(crate) fn ok(action: &str, inner: &str) -> Outcome {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{action}Response xmlns=\"{NS}\"><requestId>{REQUEST_ID}</requestId>{inner}</{action}Response>"
    );
    Outcome::Respond(response(
        200,
        &[("content-type", "text/xml;charset=UTF-8".into())],
        full(body),
    ))
}

#[cfg(test)]
mod tests {
    use super::esc;

    #[test]
    fn esc_writes_what_xml_1_0_cannot_carry_as_references() {
        assert_eq!(
            esc("a<b>&\"'\r\n\t\u{1b}[2K\u{7}\u{202e}\u{9b}\u{7f}"),
            "a&lt;b&gt;&amp;&quot;&apos;&#xD;\n\t&#x1B;[2K&#x7;\u{202e}\u{9b}\u{7f}"
        );
    }
}
