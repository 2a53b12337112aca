//! `amiscan inventory --format html`: one self-contained page (inline CSS, a small inline script,
//! SVG laid out here; nothing fetched from the network). Per account and region: the
//! dependencies at risk and the drift first, then a graph — images on the left (coloured by scan
//! result, marked when gone or deprecated), the workloads on them on the right, an edge per use.
//! The script only adds a summary, highlighting, and what it measured of the rendered page
//! (`data-drawn-nodes`, `data-visible-at-risk` on `body`); the page is complete without it.
//!
//! Every string comes from AWS or the image and is escaped for HTML after invisible characters
//! were made visible ([`crate::model::escape::visible_str`]).

use crate::model::escape::visible_str;
use crate::model::governance::{InventoryImage, RegionInventory};
use std::fmt::Write as _;
use std::io::Write;

/// Row height and column geometry of the graph, in SVG user units.
const ROW: usize = 30;
const IMG_X: usize = 10;
const IMG_W: usize = 430;
const WL_X: usize = 580;
const WL_W: usize = 440;

/// HTML text (also for attribute values in double quotes).
pub fn esc(s: &str) -> String {
    let v = visible_str(s);
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub(crate) const STYLE: &str = "body{font:14px system-ui,sans-serif;margin:24px;color:#222}h1{font-size:20px}\
h2{font-size:17px;margin-top:32px}ol{padding-left:20px}li{margin:4px 0}\
.at-risk li{color:#8a1c1c}.fix{color:#444;font-size:12px}.drift li{color:#7a4b00}\
svg text{font:12px monospace}.node rect{stroke:#555;fill:#f4f4f4}\
.image.clean rect{fill:#dff3df}.image.findings rect{fill:#f8d0d0}.image.gone rect{fill:#ddd;stroke-dasharray:4 2}\
.image.deprecated rect{stroke:#c77700;stroke-width:2}.edge{stroke:#88a;fill:none}.edge.hl{stroke:#d00;stroke-width:3}\
.risk{fill:#b00020}#summary{font-weight:bold}";

/// The page's script: counts the image and workload boxes and the items of `list` (a CSS
/// selector) into the `#summary` line (`N {what[0]}, M {what[1]}, K {what[2]}`), highlights an
/// image's edges on click, and records what it measured of the rendered page on `body`:
/// `data-drawn-nodes`, `data-visible-{attr}` (the items of `list` with a size), `data-ready`.
pub(crate) fn page_script(list: &str, what: [&str; 3], attr: &str) -> String {
    let [a, b, c] = what;
    format!(
        "(function(){{var i=document.querySelectorAll('g.node.image').length,\
w=document.querySelectorAll('g.node.workload').length,r=document.querySelectorAll('{list}').length;\
document.getElementById('summary').textContent=i+' {a}, '+w+' {b}, '+r+' {c}';\
document.querySelectorAll('g.node.image').forEach(function(n){{n.addEventListener('click',function(){{\
document.querySelectorAll('.edge').forEach(function(e){{e.classList.toggle('hl',e.getAttribute('data-image')===n.getAttribute('data-id'))}});}});}});\
var vis=0;document.querySelectorAll('{list}').forEach(function(li){{var b=li.getBoundingClientRect();if(b.width>0&&b.height>0)vis++;}});\
var drawn=0;document.querySelectorAll('g.node').forEach(function(g){{var b=g.getBBox();if(b.width>0&&b.height>0)drawn++;}});\
document.body.setAttribute('data-visible-{attr}',vis);document.body.setAttribute('data-drawn-nodes',drawn);\
document.body.setAttribute('data-ready','1');}})();"
    )
}

fn image_label(i: &InventoryImage) -> String {
    let mut s = i.image_id.clone();
    if let Some(n) = &i.name {
        let short: String = n.chars().take(28).collect();
        let _ = write!(s, " {short}");
    }
    s
}

/// One box of a two-column graph. Every string in it is already escaped for HTML.
pub(crate) struct Node {
    /// `id` of the box (`data-id`).
    pub(crate) id: String,
    /// The `class` attribute.
    pub(crate) class: String,
    /// More attributes, each with its leading space (` data-kind="instance"`).
    pub(crate) attrs: String,
    /// A `<title>` (tooltip), if any.
    pub(crate) title: Option<String>,
    /// The text in the box.
    pub(crate) label: String,
    /// A red dot at the right end (a workload at risk, an instance on an unverified image).
    pub(crate) mark: bool,
}

/// Boxes on the left (images), boxes on the right (what uses them), and for each left box the
/// right boxes it is used by.
pub(crate) struct Graph {
    pub(crate) left: Vec<Node>,
    pub(crate) right: Vec<Node>,
    pub(crate) uses: Vec<Vec<usize>>,
}

fn node_svg(svg: &mut String, n: &Node, x: usize, w: usize, y: usize) {
    let _ = write!(
        svg,
        "<g class=\"{}\" data-id=\"{}\"{}>{}<rect x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"22\" rx=\"4\"/>{}<text x=\"{}\" y=\"{}\">{}</text></g>",
        n.class,
        n.id,
        n.attrs,
        n.title
            .as_deref()
            .map(|t| format!("<title>{t}</title>"))
            .unwrap_or_default(),
        if n.mark {
            format!(
                "<circle class=\"risk\" cx=\"{}\" cy=\"{}\" r=\"5\"/>",
                x + w - 10,
                y + 11
            )
        } else {
            String::new()
        },
        x + 6,
        y + 15,
        n.label,
    );
}

/// The graph as inline SVG: left boxes in order, each followed by the rows of the right boxes
/// it is the first to use, an edge per use. Right boxes no left box uses are not drawn.
pub(crate) fn graph_svg(g: &Graph) -> String {
    let mut svg = String::new();
    let mut y_left: Vec<usize> = Vec::new();
    let mut y_right: Vec<Option<usize>> = vec![None; g.right.len()];
    let mut row = 0usize;
    for uses in &g.uses {
        let start = row;
        for &w in uses {
            if y_right.get(w).is_some_and(Option::is_none) {
                if let Some(slot) = y_right.get_mut(w) {
                    *slot = Some(row);
                }
                row += 1;
            }
        }
        let rows = (row - start).max(1);
        y_left.push(start + (rows - 1) / 2);
        row = start + rows;
    }
    let height = (row.max(1)) * ROW + 20;
    let _ = write!(
        svg,
        "<svg class=\"graph\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" viewBox=\"0 0 {} {height}\">",
        WL_X + WL_W + 10,
        WL_X + WL_W + 10
    );
    for (n, (l, uses)) in g.left.iter().zip(&g.uses).enumerate() {
        let y = y_left.get(n).copied().unwrap_or(0) * ROW + 10;
        for &w in uses {
            if let Some(Some(wy)) = y_right.get(w) {
                let wy = wy * ROW + 10;
                let _ = write!(
                    svg,
                    "<path class=\"edge\" data-image=\"{}\" d=\"M{} {} C{} {} {} {} {} {}\"/>",
                    l.id,
                    IMG_X + IMG_W,
                    y + 11,
                    IMG_X + IMG_W + 70,
                    y + 11,
                    WL_X - 70,
                    wy + 11,
                    WL_X,
                    wy + 11
                );
            }
        }
    }
    for (n, l) in g.left.iter().enumerate() {
        let y = y_left.get(n).copied().unwrap_or(0) * ROW + 10;
        node_svg(&mut svg, l, IMG_X, IMG_W, y);
    }
    for (n, r) in g.right.iter().enumerate() {
        let Some(Some(wy)) = y_right.get(n) else {
            continue;
        };
        node_svg(&mut svg, r, WL_X, WL_W, wy * ROW + 10);
    }
    svg.push_str("</svg>");
    svg
}

fn graph(r: &RegionInventory) -> String {
    let left = r
        .images
        .iter()
        .map(|i| {
            let mut class = format!("node image {}", esc(&i.scan.status));
            if !i.exists {
                class.push_str(" gone");
            }
            if i.deprecated {
                class.push_str(" deprecated");
            }
            let (id, cl, scan) = (esc(&i.image_id), i.class.as_str(), esc(&i.scan.status));
            Node {
                attrs: format!(" data-class=\"{cl}\" data-scan=\"{scan}\""),
                title: Some(format!("{id} {cl} scan {scan}")),
                label: esc(&format!("{} [{}]", image_label(i), cl)),
                id,
                class,
                mark: false,
            }
        })
        .collect();
    let right = r
        .workloads
        .iter()
        .map(|w| {
            let risky = r.at_risk.iter().any(|a| a.workload == w.id);
            Node {
                id: esc(&w.id),
                class: format!("node workload{}", if risky { " at-risk" } else { "" }),
                attrs: format!(" data-kind=\"{}\"", w.kind.as_str()),
                title: None,
                label: esc(&format!(
                    "{} {}{}",
                    w.kind.as_str(),
                    w.id,
                    w.name
                        .as_deref()
                        .map(|n| format!(" ({n})"))
                        .unwrap_or_default()
                )),
                mark: risky,
            }
        })
        .collect();
    graph_svg(&Graph {
        left,
        right,
        uses: r.images.iter().map(|i| i.used_by.clone()).collect(),
    })
}

/// The inventory as one self-contained HTML page.
pub fn write_inventory_html(
    regions: &[RegionInventory],
    generated_at: &str,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>amiscan inventory</title><style>{STYLE}</style></head><body><h1>AMI inventory</h1><p>Generated {} — <span id=\"summary\"></span></p>",
        esc(generated_at)
    );
    for r in regions {
        let _ = write!(
            h,
            "<section class=\"region\" data-account=\"{a}\" data-region=\"{g}\"><h2>Account {a}, {g}</h2>",
            a = esc(&r.account),
            g = esc(&r.region)
        );
        let _ = write!(
            h,
            "<h3>Dependencies at risk ({})</h3><ol class=\"at-risk\">",
            r.at_risk.len()
        );
        for a in &r.at_risk {
            let _ = write!(
                h,
                "<li><b>{} {}</b> → {} [{}]: {}<div class=\"fix\">fix: {}</div></li>",
                a.kind.as_str(),
                esc(&a.workload),
                esc(&a.image_id),
                esc(&a.reasons.join(", ")),
                esc(&a.why.join("; ")),
                esc(&a.fix)
            );
        }
        let _ = write!(
            h,
            "</ol><h3>Drift ({})</h3><ol class=\"drift\">",
            r.drift.len()
        );
        for d in &r.drift {
            let _ = write!(
                h,
                "<li>{} : {} is {} version(s) behind {} ({} days old), used by {}</li>",
                esc(&d.lineage),
                esc(&d.image_id),
                d.versions_behind,
                esc(&d.latest_image_id),
                d.age_days.map_or("?".into(), |a| a.to_string()),
                esc(&d.workloads.join(", "))
            );
        }
        let _ = write!(h, "</ol><h3>Images and workloads</h3>{}", graph(r));
        for e in &r.errors {
            let _ = write!(h, "<p class=\"error\">error: {}</p>", esc(e));
        }
        h.push_str("</section>");
    }
    let _ = write!(
        h,
        "<script>{}</script></body></html>",
        page_script(
            "ol.at-risk li",
            ["images", "workloads", "at risk"],
            "at-risk"
        )
    );
    out.write_all(h.as_bytes())?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_markup_and_shows_invisible_characters() {
        assert_eq!(
            super::esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert!(!super::esc("a\u{202e}b").contains('\u{202e}'));
    }
}
