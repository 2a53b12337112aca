//! EC2 Query protocol: routing by `Action`, the call log, and the faults injected before an
//! answer (latency, a `DescribeImages` error). The answers are made in `ec2_fleet.rs` and
//! `ec2_xml.rs`.

use crate::ec2_xml::error;
use crate::http::{Outcome, get};
use crate::query_xml::{MISSING_ACTION, invalid_action};
use crate::{State, lock};
use std::sync::atomic::Ordering;

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
    let region = crate::fleet::region_or_default(region);
    let Some(action) = get(form, "Action") else {
        return error(400, "MissingAction", MISSING_ACTION);
    };
    let account = {
        let mut f = lock(&state.fleet);
        f.record(region, action.into(), form.to_vec());
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
        "CreateLaunchTemplate" => {
            crate::governance::create_launch_template(state, form, region, &account)
        }
        "CreateLaunchTemplateVersion" => {
            crate::governance::create_launch_template_version(state, form, region, &account)
        }
        "ModifyLaunchTemplate" => {
            crate::governance::modify_launch_template(state, form, region, &account)
        }
        "DescribeLaunchTemplates" => {
            crate::governance::describe_launch_templates(state, form, region, &account)
        }
        "DescribeLaunchTemplateVersions" => {
            crate::governance::describe_launch_template_versions(state, form, region, &account)
        }
        "EnableImageDeprecation" => {
            crate::governance::enable_image_deprecation(state, form, region, &account)
        }
        "DisableImageDeprecation" => {
            crate::governance::disable_image_deprecation(state, form, region, &account)
        }
        "ReplaceImageCriteriaInAllowedImagesSettings" => {
            crate::governance::replace_image_criteria(state, form, region)
        }
        "EnableAllowedImagesSettings" => {
            crate::governance::enable_allowed_images(state, form, region)
        }
        "DisableAllowedImagesSettings" => {
            crate::governance::disable_allowed_images(state, form, region)
        }
        "CreateTags" => crate::ec2_sharing::create_tags(&ctx),
        "ModifySnapshotAttribute" => crate::ec2_sharing::modify_snapshot_attribute(&ctx),
        other => error(400, "InvalidAction", &invalid_action(other)),
    }
}
