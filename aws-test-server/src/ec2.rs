//! EC2 Query protocol: routing by `Action`, the call log, and EC2 answer and error XML.

use crate::http::{Outcome, full, get, response};
use crate::{AmiSpec, State, lock};
use std::fmt::Write;
use std::sync::atomic::Ordering;

const NS: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";
const REQUEST_ID: &str = "11111111-2222-3333-4444-555555555555";

pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
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

pub(crate) fn is_well_formed_ami_id(id: &str) -> bool {
    id.strip_prefix("ami-")
        .is_some_and(|h| (8..=17).contains(&h.len()) && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// One `<item>` of `imagesSet`.
pub(crate) fn image_xml(out: &mut String, ami: &AmiSpec, image_state: &str, alias: Option<&str>) {
    let _ = write!(
        out,
        "<item><imageId>{id}</imageId><imageLocation>{owner}/{name}</imageLocation><imageState>{st}</imageState><imageOwnerId>{owner}</imageOwnerId>{alias}<creationDate>2024-01-01T00:00:00.000Z</creationDate><isPublic>{public}</isPublic><architecture>x86_64</architecture><imageType>machine</imageType><name>{name}</name><rootDeviceType>{rdt}</rootDeviceType><rootDeviceName>{rdn}</rootDeviceName><blockDeviceMapping>",
        id = esc(&ami.id),
        owner = esc(&ami.owner_id),
        name = esc(&ami.name),
        public = ami.public,
        rdt = esc(&ami.root_device_type),
        rdn = esc(&ami.root_device_name),
        st = esc(image_state),
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
    out.push_str("</blockDeviceMapping><virtualizationType>hvm</virtualizationType><hypervisor>xen</hypervisor><enaSupport>true</enaSupport></item>");
}

/// Handle one Query request from `region` signed with access key `akid`.
pub(crate) async fn handle(
    state: &State,
    form: &[(String, String)],
    region: &str,
    akid: &str,
) -> Outcome {
    let latency = lock(&state.faults).latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let region = if region.is_empty() {
        crate::fleet::DEFAULT_REGION
    } else {
        region
    };
    let Some(action) = get(form, "Action") else {
        return error(
            400,
            "MissingAction",
            "The request must contain the parameter Action",
        );
    };
    let account = {
        let mut f = lock(&state.fleet);
        // Bounded: a test server keeps at most this many calls.
        if f.calls.len() < 100_000 {
            f.calls.push(crate::Ec2Call {
                region: region.into(),
                action: action.into(),
                params: form.to_vec(),
            });
        }
        f.account_of(akid)
    };
    let ctx = crate::ec2_fleet::Ctx {
        state,
        form,
        region,
        account: &account,
    };
    match action {
        "DescribeImages" => {
            state.describe_images_calls.fetch_add(1, Ordering::SeqCst);
            if let Some(e) = lock(&state.ec2_error).clone() {
                return error(e.status, &e.code, &e.message);
            }
            crate::ec2_fleet::describe_images(&ctx)
        }
        "DescribeRegions" => crate::ec2_fleet::describe_regions(&ctx),
        "DescribeInstances" => crate::ec2_fleet::describe_instances(&ctx),
        "DescribeInstanceImageMetadata" => crate::ec2_fleet::describe_instance_image_metadata(&ctx),
        "GetAllowedImagesSettings" => crate::ec2_fleet::get_allowed_images_settings(&ctx),
        "GetImageBlockPublicAccessState" => {
            crate::ec2_fleet::get_image_block_public_access_state(&ctx)
        }
        "CopyImage" => crate::ec2_fleet::copy_image(&ctx),
        "DescribeImageAttribute" => crate::ec2_fleet::describe_image_attribute(&ctx),
        "ModifyImageAttribute" => crate::ec2_fleet::modify_image_attribute(&ctx),
        "DeregisterImage" => crate::ec2_fleet::deregister_image(&ctx),
        "DeleteSnapshot" => crate::ec2_fleet::delete_snapshot(&ctx),
        other => error(
            400,
            "InvalidAction",
            &format!("The action {other} is not valid for this web service."),
        ),
    }
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
