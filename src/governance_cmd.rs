//! The governance subcommands (`inventory`, `allowlist propose|check|apply`): options from the
//! command line, the library calls ([`amiscan::aws::inventory`], [`amiscan::aws::allowlist`]),
//! the writers ([`amiscan::report::governance`]) and the exit code.

use crate::cli::{AllowlistArgs, InventoryArgs};
use amiscan::detect::Detector;

#[cfg(feature = "aws")]
mod imp {
    use crate::cli::{
        AllowMode, AllowlistAction, AllowlistArgs, CriteriaArgs, Format, GovScopeArgs,
        InventoryArgs, InventoryFormat,
    };
    use crate::fleet_cmd::{account_selection, aws_options};
    use amiscan::aws::allowlist::{self, ProposeOptions};
    use amiscan::aws::inventory::{self, InventoryOptions};
    use amiscan::detect::Detector;
    use amiscan::model::Exit;
    use amiscan::model::governance::{ImageCriterion, RegionInventory};
    use amiscan::report::governance as w;
    use anyhow::Context;
    use std::io::Write;

    fn state_path(p: Option<&std::path::Path>) -> anyhow::Result<std::path::PathBuf> {
        match p {
            Some(p) => Ok(p.to_path_buf()),
            None => amiscan::aws::state::default_path()
                .context("no state file: pass --state (neither XDG_STATE_HOME nor HOME is set)"),
        }
    }

    fn collect(
        scope: &GovScopeArgs,
        det: &Detector,
        regions: Option<Vec<String>>,
    ) -> anyhow::Result<Vec<RegionInventory>> {
        let opts = InventoryOptions {
            regions: regions.or_else(|| scope.regions.clone()),
            trusted_accounts: scope.trusted_accounts.clone(),
            state_path: state_path(scope.state.as_deref())?,
            fail_on: scope.fail_on,
            catalog_version: det.catalog_version().to_string(),
            lineage_tag: scope.lineage_tag.clone(),
            accounts: account_selection(&scope.org),
        };
        Ok(inventory::inventory(&aws_options(&scope.aws), &opts)?)
    }

    fn criteria(
        c: &CriteriaArgs,
        regions: &[RegionInventory],
    ) -> anyhow::Result<Vec<ImageCriterion>> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "PascalCase", deny_unknown_fields)]
        struct File {
            image_criteria: Vec<ImageCriterion>,
        }
        if let Some(p) = &c.criteria {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read {}", p.display()))?;
            let f: File = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a criteria file", p.display()))?;
            return Ok(f.image_criteria);
        }
        Ok(allowlist::propose(
            regions,
            &ProposeOptions {
                image_names: c.image_names.clone(),
                max_days_since_created: c.max_days_since_created,
                max_days_since_deprecated: c.max_days_since_deprecated,
                marketplace_product_codes: c.marketplace_product_codes.clone(),
            },
        ))
    }

    fn mode_str(m: AllowMode) -> &'static str {
        match m {
            AllowMode::Audit => "audit-mode",
            AllowMode::Enabled => "enabled",
        }
    }

    fn incomplete(regions: &[RegionInventory]) -> bool {
        regions.iter().any(|r| !r.errors.is_empty())
    }

    fn now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }

    /// `amiscan inventory`.
    pub fn inventory(args: &InventoryArgs, det: &Detector) -> anyhow::Result<u8> {
        let regions = collect(&args.scope, det, None)?;
        let mut out: Box<dyn Write> = match &args.output {
            Some(p) => Box::new(std::io::BufWriter::new(
                std::fs::File::create(p)
                    .with_context(|| format!("cannot create {}", p.display()))?,
            )),
            None => Box::new(std::io::stdout().lock()),
        };
        match args.format {
            InventoryFormat::Json => {
                w::write_inventory_json(&regions, &amiscan::report::time::now_rfc3339(), &mut out)?
            }
            InventoryFormat::Text => w::write_inventory_text(&regions, &mut out)?,
            InventoryFormat::Html => amiscan::report::governance_html::write_inventory_html(
                &regions,
                &amiscan::report::time::now_rfc3339(),
                &mut out,
            )?,
        }
        out.flush()?;
        Ok(if regions.iter().any(|r| !r.at_risk.is_empty()) {
            Exit::Findings
        } else if incomplete(&regions) {
            Exit::Incomplete
        } else {
            Exit::Clean
        }
        .code())
    }

    /// `amiscan allowlist ...`.
    pub fn allowlist(args: &AllowlistArgs, det: &Detector) -> anyhow::Result<u8> {
        let mut out = std::io::stdout().lock();
        match &args.action {
            AllowlistAction::Propose {
                format,
                org_policy,
                policy_mode,
                criteria: c,
                scope,
            } => {
                let regions = collect(scope, det, None)?;
                let crit = criteria(c, &regions)?;
                match format {
                    Format::Json => w::write_criteria_json(&crit, &mut out)?,
                    Format::Text => {
                        writeln!(out, "proposed Allowed AMIs criteria (EC2 ImageCriteria):")?;
                        w::write_criteria_json(&crit, &mut out)?;
                        let blocked = allowlist::simulate(&regions, &crit, now());
                        writeln!(out, "enforcing them would block:")?;
                        w::write_blocked_text(&blocked, &mut out)?;
                    }
                }
                if let Some(p) = org_policy {
                    let v = allowlist::org_policy(&crit, mode_str(*policy_mode));
                    std::fs::write(p, serde_json::to_string_pretty(&v)? + "\n")
                        .with_context(|| format!("cannot write {}", p.display()))?;
                }
                Ok(if incomplete(&regions) {
                    Exit::Incomplete
                } else {
                    Exit::Clean
                }
                .code())
            }
            AllowlistAction::Check { criteria: c, scope } => {
                let regions = collect(scope, det, None)?;
                let crit = criteria(c, &regions)?;
                let blocked = allowlist::simulate(&regions, &crit, now());
                w::write_blocked_text(&blocked, &mut out)?;
                Ok(if !blocked.is_empty() {
                    Exit::Findings
                } else if incomplete(&regions) {
                    Exit::Incomplete
                } else {
                    Exit::Clean
                }
                .code())
            }
            AllowlistAction::Alert {
                event,
                criteria: file,
                trusted_accounts,
                sns_topic,
                security_hub,
                dry_run,
                aws,
            } => {
                use amiscan::aws::launch_alert::{self, AlertOptions};
                use std::io::Read;
                let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
                let mut text = Vec::new();
                let limit = launch_alert::MAX_EVENT_BYTES as u64 + 1;
                if event.as_os_str() == "-" {
                    std::io::stdin().lock().take(limit).read_to_end(&mut text)?;
                } else {
                    std::fs::File::open(event)
                        .and_then(|f| f.take(limit).read_to_end(&mut text))
                        .with_context(|| format!("cannot read {}", event.display()))?;
                }
                let file = file
                    .clone()
                    .or_else(|| env("AMISCAN_ALERT_CRITERIA").map(Into::into));
                let crit = match &file {
                    Some(p) => Some(criteria(
                        &CriteriaArgs {
                            criteria: Some(p.clone()),
                            image_names: Vec::new(),
                            max_days_since_created: None,
                            max_days_since_deprecated: None,
                            marketplace_product_codes: Vec::new(),
                        },
                        &[],
                    )?),
                    None => None,
                };
                let trusted = if trusted_accounts.is_empty() {
                    env("AMISCAN_TRUSTED_ACCOUNTS")
                        .map(|v| v.split(',').map(|s| s.trim().to_string()).collect())
                        .unwrap_or_default()
                } else {
                    trusted_accounts.clone()
                };
                let opts = AlertOptions {
                    criteria: crit,
                    trusted_accounts: trusted,
                    sns_topic: sns_topic.clone().or_else(|| env("AMISCAN_SNS_TOPIC")),
                    security_hub: *security_hub
                        || env("AMISCAN_SECURITY_HUB").as_deref() == Some("1"),
                    dry_run: *dry_run,
                };
                let aws = aws_options(aws);
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                let stamp = amiscan::report::time::now_rfc3339();
                let outcome = rt.block_on(async {
                    let conf = inventory::load_config(&aws).await?;
                    launch_alert::handle(&conf, &text, &opts, (now(), &stamp))
                        .await
                        .map_err(anyhow::Error::from)
                })?;
                serde_json::to_writer_pretty(&mut out, &outcome)?;
                writeln!(out)?;
                Ok(if outcome.findings.is_empty() {
                    Exit::Clean
                } else {
                    Exit::Findings
                }
                .code())
            }
            AllowlistAction::Apply {
                mode,
                dry_run,
                force,
                criteria: c,
                scope,
            } => {
                if scope.org.org_role.is_some() {
                    anyhow::bail!(
                        "allowlist apply works in one account and region: for the organisation, attach the policy of `allowlist propose --org-policy`"
                    );
                }
                let region = scope
                    .aws
                    .region
                    .clone()
                    .context("allowlist apply works on one region: pass --region")?;
                let regions = collect(scope, det, Some(vec![region.clone()]))?;
                if incomplete(&regions) && !force {
                    for r in &regions {
                        for e in &r.errors {
                            eprintln!("amiscan: {e}");
                        }
                    }
                    anyhow::bail!(
                        "the inventory of {region} is incomplete: the simulation cannot be trusted (--force to apply anyway)"
                    );
                }
                let crit = criteria(c, &regions)?;
                if crit.is_empty() {
                    anyhow::bail!("no criteria: applying them would block every image");
                }
                let blocked = allowlist::simulate(&regions, &crit, now());
                w::write_blocked_text(&blocked, &mut out)?;
                let m = mode_str(*mode);
                if *mode == AllowMode::Enabled && !blocked.is_empty() && !force {
                    writeln!(
                        out,
                        "refusing to enable: {} launch source(s) would be blocked (fix them, or --force)",
                        blocked.len()
                    )?;
                    return Ok(Exit::Findings.code());
                }
                let account = regions
                    .first()
                    .map(|r| r.account.clone())
                    .unwrap_or_else(|| "unknown".into());
                let aws = aws_options(&scope.aws);
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                let changes = rt.block_on(async {
                    let conf = inventory::load_config(&aws).await?;
                    let (ec2, _) = inventory::region_clients(&conf, &region);
                    allowlist::apply_region(&ec2, &account, &region, &crit, m, *dry_run).await
                })?;
                w::write_changes_text(&changes, *dry_run, &mut out)?;
                Ok(Exit::Clean.code())
            }
        }
    }
}

/// `amiscan inventory`.
#[cfg(feature = "aws")]
pub fn inventory(args: &InventoryArgs, det: &Detector) -> anyhow::Result<u8> {
    imp::inventory(args, det)
}

/// `amiscan allowlist`.
#[cfg(feature = "aws")]
pub fn allowlist(args: &AllowlistArgs, det: &Detector) -> anyhow::Result<u8> {
    imp::allowlist(args, det)
}

/// `amiscan inventory` (built without AWS).
#[cfg(not(feature = "aws"))]
pub fn inventory(args: &InventoryArgs, det: &Detector) -> anyhow::Result<u8> {
    let _ = (args, det);
    anyhow::bail!("this amiscan was built without the `aws` feature")
}

/// `amiscan allowlist` (built without AWS).
#[cfg(not(feature = "aws"))]
pub fn allowlist(args: &AllowlistArgs, det: &Detector) -> anyhow::Result<u8> {
    let _ = (args, det);
    anyhow::bail!("this amiscan was built without the `aws` feature")
}
