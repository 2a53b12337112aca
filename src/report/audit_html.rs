//! `amiscan audit --format html`: one self-contained page (inline CSS, a small inline script,
//! SVG laid out by [`super::governance_html::graph_svg`]; nothing fetched from the network), in
//! the style of the inventory page. Per account and region: what to act on first (the audit's
//! warnings, then its errors), the posture (image block public access, Allowed AMIs state and
//! providers), the account's public images with their sweep result, then a graph — the AMIs of
//! the instances on the left, coloured by where they come from (gone ones dashed), the instances
//! on the right, an edge per instance; an instance on a public image of an unverified owner is
//! marked. The script only adds a summary and what it measured of the rendered page
//! (`data-drawn-nodes`, `data-visible-warnings` on `body`); the page is complete without it.
//!
//! Every string comes from AWS and is escaped for HTML after invisible characters were made
//! visible ([`super::governance_html::esc`]).

use super::governance_html::{Graph, Node, STYLE, esc, graph_svg, page_script};
use crate::model::fleet::{ImageClass, RegionAudit};
use std::fmt::Write as _;
use std::io::Write;

const AUDIT_STYLE: &str = "ol.warnings li{color:#8a1c1c}.error{color:#b00020}\
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}\
tr.findings td{background:#f8d0d0}tr.clean td{background:#dff3df}\
.image.verified rect,.image.self rect,.image.own-org rect{fill:#dff3df}.image.allowed rect,.image.trusted rect{fill:#e6eefb}\
.image.shared-privately rect{fill:#fff1cc}.image.public-unverified rect{fill:#f8d0d0}";

/// The AMIs of the region's instances (first-seen order) and the instances on each.
fn graph(r: &RegionAudit) -> String {
    let mut amis: Vec<&str> = Vec::new();
    let mut uses: Vec<Vec<usize>> = Vec::new();
    for (n, i) in r.instances.iter().enumerate() {
        match amis.iter().position(|a| *a == i.image_id) {
            Some(k) => {
                if let Some(u) = uses.get_mut(k) {
                    u.push(n);
                }
            }
            None => {
                amis.push(&i.image_id);
                uses.push(vec![n]);
            }
        }
    }
    let left = amis
        .iter()
        .filter_map(|a| r.instances.iter().find(|i| i.image_id == *a))
        .map(|i| {
            let cl = i.class.as_str();
            let owner = i
                .image_owner_alias
                .as_deref()
                .or(i.image_owner_id.as_deref())
                .unwrap_or("?");
            Node {
                id: esc(&i.image_id),
                class: format!(
                    "node image {cl}{}",
                    if i.image_visible { "" } else { " gone" }
                ),
                attrs: format!(" data-class=\"{cl}\""),
                title: Some(esc(&format!("{} owner {owner} {cl}", i.image_id))),
                label: esc(&format!("{} [{cl}] {owner}", i.image_id)),
                mark: false,
            }
        })
        .collect();
    let right = r
        .instances
        .iter()
        .map(|i| Node {
            id: esc(&i.instance_id),
            class: "node workload".into(),
            attrs: " data-kind=\"instance\"".into(),
            title: None,
            label: esc(&format!("instance {} ({})", i.instance_id, i.state)),
            mark: i.class == ImageClass::PublicUnverified,
        })
        .collect();
    graph_svg(&Graph { left, right, uses })
}

/// The audit as one self-contained HTML page.
pub fn write_audit_html(
    regions: &[RegionAudit],
    generated_at: &str,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>amiscan audit</title><style>{STYLE}{AUDIT_STYLE}</style></head><body><h1>AMI posture audit</h1><p>Generated {} — <span id=\"summary\"></span></p>",
        esc(generated_at)
    );
    for r in regions {
        let account = r.account.as_deref().unwrap_or("caller");
        let _ = write!(
            h,
            "<section class=\"region\" data-account=\"{a}\" data-region=\"{g}\"><h2>Account {a}, {g}</h2>",
            a = esc(account),
            g = esc(&r.region)
        );
        let _ = write!(
            h,
            "<h3>To act on ({})</h3><ol class=\"warnings\">",
            r.warnings.len()
        );
        for w in &r.warnings {
            let _ = write!(h, "<li>{}</li>", esc(w));
        }
        h.push_str("</ol>");
        for e in &r.errors {
            let _ = write!(h, "<p class=\"error\">error: {}</p>", esc(e));
        }
        let providers: Vec<String> = r
            .allowed_images
            .image_providers
            .iter()
            .map(|c| c.join(" + "))
            .collect();
        let _ = write!(
            h,
            "<h3>Posture</h3><table class=\"posture\"><tr><th>Image block public access</th><td data-field=\"block-public-access\">{}</td></tr><tr><th>Allowed AMIs</th><td data-field=\"allowed-images\">{}</td></tr><tr><th>Allowed providers (criteria)</th><td>{}</td></tr></table>",
            esc(&r.block_public_access),
            esc(&r.allowed_images.state),
            esc(&providers.join(" | "))
        );
        let _ = write!(
            h,
            "<h3>Public images ({})</h3><table class=\"public-images\"><tr><th>AMI</th><th>name</th><th>scan</th><th>most severe</th></tr>",
            r.public_images.len()
        );
        for p in &r.public_images {
            let _ = write!(
                h,
                "<tr class=\"{scan}\"><td>{}</td><td>{}</td><td>{scan}</td><td>{}</td></tr>",
                esc(&p.image_id),
                esc(p.name.as_deref().unwrap_or("")),
                p.max_severity.map_or("", |s| s.as_str()),
                scan = esc(&p.scan),
            );
        }
        let _ = write!(
            h,
            "</table><h3>Instances and their AMIs ({})</h3>{}</section>",
            r.instances.len(),
            graph(r)
        );
    }
    let _ = write!(
        h,
        "<script>{}</script></body></html>",
        page_script(
            "ol.warnings li",
            ["AMIs", "instances", "to act on"],
            "warnings"
        )
    );
    out.write_all(h.as_bytes())?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fleet::{AllowedImages, InstanceAudit};

    #[test]
    fn an_instance_on_an_unverified_public_image_is_marked_and_strings_are_escaped() {
        let inst = |id: &str, image: &str, class| InstanceAudit {
            instance_id: id.into(),
            state: "running".into(),
            image_id: image.into(),
            image_owner_id: Some("999988887777".into()),
            image_owner_alias: None,
            image_visible: true,
            class,
        };
        let r = RegionAudit {
            account: None,
            region: "us-east-1".into(),
            block_public_access: "unblocked".into(),
            allowed_images: AllowedImages::default(),
            public_images: Vec::new(),
            instances: vec![
                inst("i-1", "ami-a", ImageClass::PublicUnverified),
                inst("i-2", "ami-a", ImageClass::PublicUnverified),
                inst("i-3", "ami-b", ImageClass::SelfOwned),
            ],
            warnings: vec!["<script>alert(1)</script>".into()],
            errors: Vec::new(),
        };
        let mut out = Vec::new();
        write_audit_html(&[r], "now", &mut out).unwrap();
        let page = String::from_utf8(out).unwrap();
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert_eq!(page.matches("<g class=\"node image").count(), 2);
        assert_eq!(page.matches("<g class=\"node workload").count(), 3);
        assert_eq!(page.matches("<circle class=\"risk\"").count(), 2);
        assert_eq!(
            page.matches("<path class=\"edge\" data-image=\"ami-a\"")
                .count(),
            2
        );
    }
}
