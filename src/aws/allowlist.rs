//! `amiscan allowlist apply`: bring a region's Allowed AMIs settings to the given criteria and
//! state (`audit-mode` or `enabled`) with the calls [`settings_diff`] lists — exactly those, in
//! that order, and none with `dry_run`. The decision whether to enable at all (the simulation
//! shows blocked launch sources) is the caller's.

use super::AwsError;
use super::ec2ops::{allowed_images_settings, api_error};
pub use super::governance_analysis::{
    ProposeOptions, blocked_by, org_policy, propose, settings_diff, simulate,
};
use crate::model::governance::{ImageCriterion, SettingsChange};
use aws_sdk_ec2::types::{
    AllowedImagesSettingsEnabledState, CreationDateConditionRequest,
    DeprecationTimeConditionRequest, ImageCriterionRequest,
};

fn request(c: &ImageCriterion) -> ImageCriterionRequest {
    let days = |d: u32| i32::try_from(d).unwrap_or(i32::MAX);
    ImageCriterionRequest::builder()
        .set_image_providers(Some(c.image_providers.clone()).filter(|v| !v.is_empty()))
        .set_image_names(Some(c.image_names.clone()).filter(|v| !v.is_empty()))
        .set_marketplace_product_codes(
            Some(c.marketplace_product_codes.clone()).filter(|v| !v.is_empty()),
        )
        .set_creation_date_condition(c.creation_date_condition.as_ref().map(|d| {
            CreationDateConditionRequest::builder()
                .maximum_days_since_created(days(d.maximum_days_since_created))
                .build()
        }))
        .set_deprecation_time_condition(c.deprecation_time_condition.as_ref().map(|d| {
            DeprecationTimeConditionRequest::builder()
                .maximum_days_since_deprecated(days(d.maximum_days_since_deprecated))
                .build()
        }))
        .build()
}

/// Compute the changes for one region and, unless `dry_run`, make them. Returns the changes
/// (made or to be made).
pub async fn apply_region(
    ec2: &aws_sdk_ec2::Client,
    account: &str,
    region: &str,
    criteria: &[ImageCriterion],
    mode: &str,
    dry_run: bool,
) -> Result<Vec<SettingsChange>, AwsError> {
    let current = allowed_images_settings(ec2).await?;
    let changes = settings_diff(account, region, &current, criteria, mode);
    if dry_run {
        return Ok(changes);
    }
    for c in &changes {
        if c.action == "ReplaceImageCriteriaInAllowedImagesSettings" {
            ec2.replace_image_criteria_in_allowed_images_settings()
                .set_image_criteria(Some(criteria.iter().map(request).collect()))
                .send()
                .await
                .map_err(|e| {
                    api_error(
                        "ReplaceImageCriteriaInAllowedImagesSettings",
                        "ec2:ReplaceImageCriteriaInAllowedImagesSettings",
                        &e,
                    )
                })?;
        } else {
            ec2.enable_allowed_images_settings()
                .allowed_images_settings_state(AllowedImagesSettingsEnabledState::from(mode))
                .send()
                .await
                .map_err(|e| {
                    api_error(
                        "EnableAllowedImagesSettings",
                        "ec2:EnableAllowedImagesSettings",
                        &e,
                    )
                })?;
        }
    }
    Ok(changes)
}
