//! `amiscan audit`: the AMI posture of an account, per region — owned public images and whether
//! a sweep found them clean, image block public access, Allowed AMIs (and that `audit-mode`
//! protects nothing), and where the AMIs of running instances come from (with `--org-role`, an
//! image of another audited account is `own-org`).

use super::ec2ops::{self, AllowedImages, ImageInfo};
use super::org::{AccountSelection, member_accounts};
use super::state::{CachedScan, key};
use super::store::StateStore;
use super::sweep::{resolve_regions, session_for};
use super::{AwsError, AwsOptions};
use crate::model::Severity;
pub use crate::model::fleet::{ImageClass, InstanceAudit, PublicImage, RegionAudit};
use std::collections::{BTreeMap, BTreeSet};

/// What to audit.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// Regions; `None` = every enabled region.
    pub regions: Option<Vec<String>>,
    /// Accounts whose AMIs are trusted (`--trusted-accounts`).
    pub trusted_accounts: Vec<String>,
    /// The sweep state, to say whether public images were scanned clean.
    pub state: std::sync::Arc<StateStore>,
    /// The accounts to audit (`--org-role`, `--accounts`), each on its own.
    pub accounts: AccountSelection,
    /// What counts as clean.
    pub fail_on: Severity,
    /// The catalog version sweep results must have.
    pub catalog_version: String,
}

pub(crate) fn classify(
    account: Option<&str>,
    owner: Option<&str>,
    alias: Option<&str>,
    public: Option<bool>,
    allowed: &AllowedImages,
    trusted: &[String],
) -> ImageClass {
    if matches!(alias, Some("amazon" | "aws-marketplace")) {
        ImageClass::Verified
    } else if owner.is_some() && owner == account {
        ImageClass::SelfOwned
    } else if allowed.state != "disabled" && allowed.allows(owner, alias) {
        ImageClass::Allowed
    } else if owner.is_some_and(|o| trusted.iter().any(|t| t == o)) {
        ImageClass::Trusted
    } else if owner.is_none() && public.is_none() {
        ImageClass::Unknown
    } else if public == Some(true) {
        ImageClass::PublicUnverified
    } else {
        ImageClass::SharedPrivately
    }
}

fn audit_region(
    aws: &AwsOptions,
    (account, org): (Option<&str>, &BTreeSet<String>),
    region: &str,
    opts: &AuditOptions,
    state: &BTreeMap<String, CachedScan>,
) -> Result<RegionAudit, AwsError> {
    let s = session_for(aws, region)?;
    let mut a = RegionAudit {
        account: account.map(str::to_string),
        region: region.to_string(),
        block_public_access: String::new(),
        allowed_images: AllowedImages::default(),
        public_images: Vec::new(),
        instances: Vec::new(),
        warnings: Vec::new(),
        errors: Vec::new(),
    };
    let ec2 = s.ec2_client().clone();
    let r = region.to_string();
    let owned = s.run({
        let ec2 = ec2.clone();
        async move {
            ec2ops::list_images(&ec2, &r, &["self".to_string()], &[("is-public", "true")]).await
        }
    });
    match owned {
        Ok(imgs) => {
            for i in imgs {
                let hit = state.get(&key(&i.snapshot_ids, &opts.catalog_version));
                let (scan, max) = match hit {
                    None => ("not-scanned", None),
                    Some(c) if c.max_severity().is_some_and(|m| m >= opts.fail_on) => {
                        ("findings", c.max_severity())
                    }
                    Some(c) => ("clean", c.max_severity()),
                };
                if scan != "clean" {
                    a.warnings.push(format!(
                        "{} is public and {}",
                        i.id,
                        if scan == "findings" {
                            "has findings: make it private"
                        } else {
                            "was never scanned clean: run amiscan sweep"
                        }
                    ));
                }
                a.public_images.push(PublicImage {
                    image_id: i.id,
                    name: i.name,
                    scan: scan.into(),
                    max_severity: max,
                });
            }
        }
        Err(e) => a.errors.push(e.to_string()),
    }
    match s.run({
        let ec2 = ec2.clone();
        async move { ec2ops::block_public_access(&ec2).await }
    }) {
        Ok(b) => {
            if b != "block-new-sharing" {
                a.warnings.push(format!(
                    "image block public access is {b}: any AMI can be made public"
                ));
            }
            a.block_public_access = b;
        }
        Err(e) => {
            a.block_public_access = "unknown".into();
            a.errors.push(e.to_string());
        }
    }
    match s.run({
        let ec2 = ec2.clone();
        async move { ec2ops::allowed_images_settings(&ec2).await }
    }) {
        Ok(al) => {
            match al.state.as_str() {
                "audit-mode" => a.warnings.push(
                    "Allowed AMIs is in audit-mode: it only marks images, it does not stop launching any"
                        .into(),
                ),
                "disabled" => a
                    .warnings
                    .push("Allowed AMIs is disabled: any visible AMI can be launched".into()),
                _ => {}
            }
            a.allowed_images = AllowedImages::from(&al);
        }
        Err(e) => a.errors.push(e.to_string()),
    }
    let instances = match s.run({
        let ec2 = ec2.clone();
        async move { ec2ops::list_instances(&ec2).await }
    }) {
        Ok(v) => v,
        Err(e) => {
            a.errors.push(e.to_string());
            return Ok(a);
        }
    };
    let mut ids: Vec<String> = instances.iter().map(|i| i.image_id.clone()).collect();
    ids.sort();
    ids.dedup();
    let r = region.to_string();
    let visible: Vec<ImageInfo> = s
        .run({
            let ec2 = ec2.clone();
            async move { ec2ops::images_by_id(&ec2, &r, &ids).await }
        })
        .unwrap_or_else(|e| {
            a.errors.push(e.to_string());
            Vec::new()
        });
    let gone: Vec<String> = instances
        .iter()
        .filter(|i| !visible.iter().any(|v| v.id == i.image_id))
        .map(|i| i.id.clone())
        .collect();
    let meta = if gone.is_empty() {
        Vec::new()
    } else {
        s.run({
            let ec2 = ec2.clone();
            async move { ec2ops::instance_image_metadata(&ec2, &gone).await }
        })
        .unwrap_or_else(|e| {
            a.errors.push(e.to_string());
            Vec::new()
        })
    };
    for i in instances {
        let (owner, alias, public, image_visible) =
            match visible.iter().find(|v| v.id == i.image_id) {
                Some(v) => (
                    v.owner_id.clone(),
                    v.owner_alias.clone(),
                    Some(v.public),
                    true,
                ),
                None => match meta.iter().find(|m| m.instance_id == i.id) {
                    Some(m) => (m.owner_id.clone(), m.owner_alias.clone(), m.public, false),
                    None => (None, None, None, false),
                },
            };
        let class = classify(
            i.owner_id.as_deref(),
            owner.as_deref(),
            alias.as_deref(),
            public,
            &a.allowed_images,
            &opts.trusted_accounts,
        );
        // An image another account of the audited organisation owns is the organisation's.
        let class = if !matches!(class, ImageClass::Verified | ImageClass::SelfOwned)
            && owner.as_ref().is_some_and(|o| org.contains(o))
        {
            ImageClass::OwnOrg
        } else {
            class
        };
        if class == ImageClass::PublicUnverified {
            a.warnings.push(format!(
                "{} runs {}, a public AMI of an unverified owner ({})",
                i.id,
                i.image_id,
                owner.as_deref().unwrap_or("unknown")
            ));
        }
        a.instances.push(InstanceAudit {
            instance_id: i.id,
            state: i.state,
            image_id: i.image_id,
            image_owner_id: owner,
            image_owner_alias: alias,
            image_visible,
            class,
        });
    }
    Ok(a)
}

/// Audit every region of every account. A region whose clients cannot be made, or an account
/// whose regions cannot be listed, is an error entry, not a stop.
pub fn audit(
    aws: &AwsOptions,
    opts: &AuditOptions,
) -> Result<Vec<RegionAudit>, super::sweep::SweepError> {
    let loaded = opts.state.load_all()?;
    let accounts = member_accounts(aws, &opts.accounts)?;
    let org: BTreeSet<String> = accounts
        .iter()
        .filter_map(|a| a.account_id.clone())
        .collect();
    let mut out = Vec::new();
    let failed = |account: Option<&str>, region: String, e: String| RegionAudit {
        account: account.map(str::to_string),
        region,
        block_public_access: "unknown".into(),
        allowed_images: AllowedImages::default(),
        public_images: Vec::new(),
        instances: Vec::new(),
        warnings: Vec::new(),
        errors: vec![e],
    };
    for acct in &accounts {
        let id = acct.account_id.as_deref();
        let regions = match resolve_regions(&acct.options, opts.regions.as_deref()) {
            Ok(r) => r,
            // With several accounts, one that cannot be reached is reported, not a stop.
            Err(e) if id.is_some() => {
                out.push(failed(id, "*".into(), e.to_string()));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        for r in regions {
            match audit_region(&acct.options, (id, &org), &r, opts, &loaded.entries) {
                Ok(a) => out.push(a),
                Err(e) => out.push(failed(id, r, e.to_string())),
            }
        }
    }
    // Unreadable state objects are said once: the audit cannot vouch for their images.
    if let Some(first) = out.first_mut() {
        first
            .errors
            .extend(loaded.errors.iter().map(|e| format!("state: {e}")));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_in_order_of_trust() {
        let allowed = AllowedImages {
            state: "enabled".into(),
            image_providers: vec![vec!["444455556666".into()]],
        };
        let t = vec!["777788889999".to_string()];
        let c = |o: Option<&str>, al: Option<&str>, p: Option<bool>| {
            classify(Some("111122223333"), o, al, p, &allowed, &t)
        };
        assert_eq!(
            c(Some("137112412989"), Some("amazon"), Some(true)),
            ImageClass::Verified
        );
        assert_eq!(
            c(Some("111122223333"), None, Some(false)),
            ImageClass::SelfOwned
        );
        assert_eq!(
            c(Some("444455556666"), None, Some(true)),
            ImageClass::Allowed
        );
        assert_eq!(
            c(Some("777788889999"), None, Some(true)),
            ImageClass::Trusted
        );
        assert_eq!(
            c(Some("222233334444"), None, Some(false)),
            ImageClass::SharedPrivately
        );
        assert_eq!(
            c(Some("222233334444"), None, Some(true)),
            ImageClass::PublicUnverified
        );
        assert_eq!(c(None, None, None), ImageClass::Unknown);
    }
}
