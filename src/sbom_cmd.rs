//! `amiscan sbom`: open the target, collect its packages, write CycloneDX or SPDX JSON.

use crate::cli::{SbomArgs, SbomFormat};
use amiscan::model::Exit;
use amiscan::sbom::{Sbom, SbomOptions};
use anyhow::Context;
use std::io::Write;

pub(crate) fn sbom(args: &SbomArgs) -> anyhow::Result<u8> {
    let opts = SbomOptions {
        dpkg_licenses: !args.no_dpkg_licenses,
        ..SbomOptions::default()
    };
    let sbom = collect(args, &opts)?;
    let now = amiscan::report::time::now_rfc3339();
    let doc = match args.format {
        SbomFormat::Cyclonedx => amiscan::sbom::cyclonedx::document(&sbom, &now),
        SbomFormat::Spdx => amiscan::sbom::spdx::document(&sbom, &now),
    };
    let mut out: Box<dyn Write> = match &args.output {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    };
    serde_json::to_writer_pretty(&mut out, &doc)?;
    writeln!(out)?;
    out.flush()?;
    for e in &sbom.errors {
        eprintln!(
            "amiscan: not read: {}",
            amiscan::model::escape::visible_str(e)
        );
    }
    Ok(if sbom.errors.is_empty() {
        Exit::Clean.code()
    } else {
        Exit::Incomplete.code()
    })
}

/// The SBOM of a local image, or of an AMI or snapshot through EBS.
fn collect(args: &SbomArgs, opts: &SbomOptions) -> anyhow::Result<Sbom> {
    let target = args.target.as_str();
    let path = std::path::Path::new(target);
    #[cfg(feature = "aws")]
    if !path.exists()
        && let Some(t) = amiscan::aws::scan::EbsTarget::parse(target)
    {
        let o = crate::fleet_cmd::aws_options(&args.aws.conn);
        let session = amiscan::aws::AwsSession::new(&o).context("cannot set up AWS clients")?;
        let ebs = crate::fleet_cmd::ebs_options(&args.aws.conn);
        let (sbom, snapshots) = amiscan::aws::sbom::sbom_ebs_target(&session, &t, &ebs, opts)
            .with_context(|| format!("cannot read {target}"))?;
        for s in &snapshots {
            eprintln!(
                "amiscan: {}: {} of {} blocks fetched ({} bytes)",
                s.snapshot_id, s.blocks_fetched, s.blocks_listed, s.bytes_fetched
            );
        }
        return Ok(sbom);
    }
    #[cfg(not(feature = "aws"))]
    if !path.exists() && (target.starts_with("ami-") || target.starts_with("snap-")) {
        anyhow::bail!("{target}: this amiscan was built without the `aws` feature");
    }
    #[cfg(not(feature = "aws"))]
    let _ = &args.aws;
    amiscan::sbom::collect_image(path, opts).with_context(|| format!("cannot open {target}"))
}
