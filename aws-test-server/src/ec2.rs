//! EC2 Query protocol: `DescribeImages` and EC2 error XML.

use crate::http::{Outcome, full, get, response};
use crate::{AmiSpec, State, lock};
use std::fmt::Write;
use std::sync::atomic::Ordering;

const NS: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";
const REQUEST_ID: &str = "11111111-2222-3333-4444-555555555555";

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// `<Response><Errors><Error>...` with `status`.
fn error(status: u16, code: &str, message: &str) -> Outcome {
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

fn is_well_formed_ami_id(id: &str) -> bool {
    id.strip_prefix("ami-")
        .is_some_and(|h| (8..=17).contains(&h.len()) && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn image_xml(out: &mut String, ami: &AmiSpec) {
    let _ = write!(
        out,
        "<item><imageId>{id}</imageId><imageLocation>{owner}/{name}</imageLocation><imageState>available</imageState><imageOwnerId>{owner}</imageOwnerId><creationDate>2024-01-01T00:00:00.000Z</creationDate><isPublic>{public}</isPublic><architecture>x86_64</architecture><imageType>machine</imageType><name>{name}</name><rootDeviceType>{rdt}</rootDeviceType><rootDeviceName>{rdn}</rootDeviceName><blockDeviceMapping>",
        id = esc(&ami.id),
        owner = esc(&ami.owner_id),
        name = esc(&ami.name),
        public = ami.public,
        rdt = esc(&ami.root_device_type),
        rdn = esc(&ami.root_device_name),
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
    out.push_str("</blockDeviceMapping><virtualizationType>hvm</virtualizationType><hypervisor>xen</hypervisor><enaSupport>true</enaSupport></item>");
}

/// Handle one Query request.
pub(crate) async fn handle(state: &State, form: &[(String, String)]) -> Outcome {
    let latency = lock(&state.faults).latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match get(form, "Action") {
        Some("DescribeImages") => {}
        Some(other) => {
            return error(
                400,
                "InvalidAction",
                &format!("The action {other} is not valid for this web service."),
            );
        }
        None => {
            return error(
                400,
                "MissingAction",
                "The request must contain the parameter Action",
            );
        }
    }
    state.describe_images_calls.fetch_add(1, Ordering::SeqCst);
    if let Some(e) = lock(&state.ec2_error).clone() {
        return error(e.status, &e.code, &e.message);
    }
    // ImageId.1 .. ImageId.N, in index order.
    let mut ids: Vec<(u32, &str)> = form
        .iter()
        .filter_map(|(k, v)| {
            let n = k.strip_prefix("ImageId.")?.parse().ok()?;
            Some((n, v.as_str()))
        })
        .collect();
    ids.sort_unstable();
    if let Some((_, bad)) = ids.iter().find(|(_, id)| !is_well_formed_ami_id(id)) {
        return error(
            400,
            "InvalidAMIID.Malformed",
            &format!("Invalid id: \"{bad}\" (expecting \"ami-...\")"),
        );
    }
    let amis = lock(&state.amis).clone();
    let mut found = Vec::new();
    for (_, id) in &ids {
        match amis.iter().find(|a| a.id == *id) {
            Some(a) => found.push(a.clone()),
            None => {
                return error(
                    400,
                    "InvalidAMIID.NotFound",
                    &format!("The image id '[{id}]' does not exist"),
                );
            }
        }
    }
    let mut body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DescribeImagesResponse xmlns=\"{NS}\"><requestId>{REQUEST_ID}</requestId><imagesSet>"
    );
    for ami in &found {
        image_xml(&mut body, ami);
    }
    body.push_str("</imagesSet></DescribeImagesResponse>");
    Outcome::Respond(response(
        200,
        &[("content-type", "text/xml;charset=UTF-8".into())],
        full(body),
    ))
}
