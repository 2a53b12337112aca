//! An AMI chosen by a third party cannot forge a report through what AWS says about it (issue
//! 25): its description and `Name` tag, an owner alias, a device name and virtual name of a
//! mapping, and an EC2 error message quoting a name carry the issue's ESC `[2K`, CR, LF, U+202E,
//! BEL (and, separately, the C1 CSI, DEL, NEL, a zero-width space, TAB) from the loopback
//! server; `amiscan scan` (text and JSON), `sweep` (text and JSON Lines) and `audit` (text and
//! JSON) are run as a user would, and their stdout and stderr hold no raw control, bidi or
//! invisible character, have exactly as many lines as with benign strings in the same places
//! (so no line is forged), and their JSON gives the exact strings back. The image name stays
//! within AWS's character set for names. ESC and BEL travel as `&#x1B;` / `&#x7;` (XML 1.0 has
//! no other way to carry them), which the SDK decodes.
#![cfg(feature = "aws")]

use crate::ebs_support::{amiscan_command, test_env};
use amiscan::model::escape::is_hidden;
use aws_test_server::{
    AmiSpec, EbsErrorSpec, Ec2ErrorSpec, ImageSpec, InstanceSpec, MappingSpec, ServerConfig,
    SnapshotSpec, TestServer,
};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const ME: &str = "111122223333";
const THIRD: &str = "444455556666";
const REGION: &str = "us-east-1";
const MINE: &str = "ami-0e000000000000001";
const THEIRS: &str = "ami-0e000000000000002";
const SNAP: &str = "snap-0e000000000000001";
const SNAP_THEIRS: &str = "snap-0e000000000000002";
/// A data volume holding secrets, behind the device name AWS reports.
const SNAP_DATA: &str = "snap-0e000000000000003";
/// Within AWS's character set for image names (letters, digits, `( ) [ ] . / - ' @ _` and space).
const NAME: &str = "web (prod) [v1.2] it's/ours@x_y-z";

/// Everything XML 1.0 can carry that a terminal would obey or hide: C1 CSI `[2K` (erase line),
/// CR, LF, a forged summary line, U+202E, DEL, NEL, a zero-width space, TAB.
const CARRIED: &str = "build 7\u{9b}2K\r\n0 image(s) in 1 region(s): 1 scanned; 1 clean\u{202e}gpj.exe\u{7f}\u{85}\u{200b}\tend";
/// The issue's sequence: ESC `[2K`, CR, LF, U+202E and BEL.
const ESCAPED: &str = "build 7\u{1b}[2K\r\nsummary: no findings; scan complete\u{202e}gpj.exe\u{7}";

fn images() -> &'static PathBuf {
    static I: OnceLock<PathBuf> = OnceLock::new();
    I.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("hostile-aws-images");
        let _ = std::fs::remove_dir_all(&dir);
        crate::common::build_images(&dir);
        dir
    })
}

fn mapping(device: &str, snap: Option<&str>, virtual_name: Option<&str>) -> MappingSpec {
    MappingSpec {
        device_name: device.into(),
        snapshot_id: snap.map(str::to_string),
        volume_size: None,
        encrypted: false,
        virtual_name: virtual_name.map(str::to_string),
    }
}

/// The strings AWS returns in the places a third party (or the owner of a shared image) chooses.
struct Words {
    name: String,
    description: &'static str,
    tag: &'static str,
    device: String,
    data_device: String,
    virtual_name: String,
    alias: String,
}

fn words(hostile: &'static str) -> Words {
    Words {
        name: NAME.into(),
        description: hostile,
        tag: hostile,
        device: format!("/dev/sdb{hostile}"),
        data_device: format!("/dev/sdf{hostile}"),
        virtual_name: format!("ephemeral0{hostile}"),
        alias: format!("market{hostile}"),
    }
}

/// One image of ours (a clean root volume and an instance-store mapping) and a third party's
/// public one, an instance of each, every chosen string from `w`.
fn server(w: &Words) -> TestServer {
    let clean = images().join("clean-gpt.img");
    let leaky = images().join("leaky-gpt.img");
    let s = TestServer::start(ServerConfig {
        snapshots: vec![
            SnapshotSpec::new(SNAP, &clean),
            SnapshotSpec::new(SNAP_THEIRS, &clean),
            SnapshotSpec::new(SNAP_DATA, &leaky),
        ],
        ..Default::default()
    })
    .unwrap();
    let ami = |id: &str, snap: &str, owner: &str, public: bool| AmiSpec {
        id: id.into(),
        name: w.name.clone(),
        owner_id: owner.into(),
        public,
        root_device_type: "ebs".into(),
        root_device_name: "/dev/xvda".into(),
        mappings: vec![
            mapping("/dev/xvda", Some(snap), None),
            mapping(&w.data_device, Some(SNAP_DATA), None),
            mapping(&w.device, None, Some(&w.virtual_name)),
        ],
        description: Some(w.description.into()),
        tags: vec![("Name".into(), w.tag.into()), ("team".into(), w.tag.into())],
    };
    s.add_image(ImageSpec::new(REGION, ami(MINE, SNAP, ME, false)));
    let mut theirs = ImageSpec::new(REGION, ami(THEIRS, SNAP_THEIRS, THIRD, true));
    theirs.owner_alias = Some(w.alias.clone());
    s.add_image(theirs);
    for (n, image) in [MINE, THEIRS].iter().enumerate() {
        s.add_instance(InstanceSpec {
            region: REGION.into(),
            instance_id: format!("i-0f00000000000000{n}"),
            image_id: (*image).into(),
            state: "running".into(),
            owner_id: ME.into(),
        });
    }
    s
}

/// `amiscan ARGS` against `server`: exit code, stdout, stderr (each must be UTF-8).
fn amiscan(server: &TestServer, args: &[&str]) -> (i32, String, String) {
    let home = tempfile::tempdir().unwrap();
    let out = amiscan_command(server, home.path(), args).output().unwrap();
    let stdout = String::from_utf8(out.stdout).expect("stdout is UTF-8");
    let stderr = String::from_utf8(out.stderr).expect("stderr is UTF-8");
    assert!(!stderr.contains("panicked"), "{stderr}");
    (out.status.code().unwrap_or(-1), stdout, stderr)
}

/// No control, bidi or invisible character but amiscan's own line ends.
fn assert_printable(what: &str, text: &str) {
    if let Some(c) = text.chars().find(|&c| c != '\n' && is_hidden(c)) {
        panic!("{what}: raw {c:?} reaches the output:\n{text}");
    }
}

/// The commands, each with what it prints.
const COMMANDS: &[&[&str]] = &[
    &["scan", MINE],
    &["scan", MINE, "--format", "json"],
    &["scan", MINE, "--format", "sarif"],
    &["scan", MINE, "--format", "asff", "--asff-account", ME],
    &[
        "sweep",
        "--regions",
        REGION,
        "--format",
        "text",
        "--parallel",
        "1",
    ],
    &[
        "sweep",
        "--regions",
        REGION,
        "--format",
        "jsonl",
        "--parallel",
        "1",
    ],
    &["audit", "--regions", REGION, "--format", "text"],
    &["audit", "--regions", REGION, "--format", "json"],
    // Refused (the data volume has findings): nothing changes on the server.
    &["publish", MINE, "--public"],
    &["publish", MINE, "--public", "--format", "json"],
];

/// Run every command against `s`; `(args, code, stdout, stderr)`.
fn run_all(s: &TestServer) -> Vec<(Vec<String>, i32, String, String)> {
    COMMANDS
        .iter()
        .map(|args| {
            let dir = tempfile::tempdir().unwrap();
            let state = dir.path().join("state.json");
            let mut a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            if a[0] == "sweep" || a[0] == "audit" {
                a.extend(["--state".into(), state.to_str().unwrap().into()]);
            }
            let refs: Vec<&str> = a.iter().map(String::as_str).collect();
            let (code, out, err) = amiscan(s, &refs);
            (a, code, out, err)
        })
        .collect()
}

fn json_lines(out: &str) -> Vec<Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect()
}

/// Every command against `hostile` strings and against benign ones in the same places.
fn check(chosen: &'static str, name: Option<String>) {
    let mut hostile = words(chosen);
    let mut benign = words("plain");
    if let Some(n) = name {
        benign.name = "x".repeat(n.chars().count());
        hostile.name = n;
    }
    let hs = server(&hostile);
    // The SDK hands amiscan the exact strings: what follows is amiscan's doing.
    let session = crate::ebs_support::session(&hs);
    let ec2 = session.ec2_client().clone();
    let answer = session
        .run(async move {
            ec2.describe_images()
                .image_ids(MINE)
                .send()
                .await
                .map_err(|e| amiscan::aws::AwsError::Runtime(format!("{e:?}")))
        })
        .unwrap();
    let img = &answer.images()[0];
    assert_eq!(img.description(), Some(chosen));
    assert_eq!(img.name(), Some(hostile.name.as_str()));
    let tag = img.tags().iter().find(|t| t.key() == Some("Name")).unwrap();
    assert_eq!(tag.value(), Some(chosen));
    let devices: Vec<_> = img
        .block_device_mappings()
        .iter()
        .map(|m| m.device_name().unwrap_or(""))
        .collect();
    assert_eq!(
        devices,
        ["/dev/xvda", &hostile.data_device, &hostile.device]
    );
    drop(session);
    let h = run_all(&hs);
    let b = run_all(&server(&benign));
    for ((args, code, out, err), (_, bcode, bout, berr)) in h.iter().zip(&b) {
        let what = args.join(" ");
        assert_printable(&format!("{what} stdout"), out);
        assert_printable(&format!("{what} stderr"), err);
        assert_eq!(code, bcode, "{what}: {out}{err}\n--- benign:\n{bout}{berr}");
        // Every line is amiscan's: as many as with benign strings in the same places.
        assert_eq!(
            out.lines().count(),
            bout.lines().count(),
            "{what}:\n{out}\n--- benign:\n{bout}"
        );
        assert_eq!(
            err.lines().count(),
            berr.lines().count(),
            "{what}:\n{err}\n--- benign:\n{berr}"
        );
        assert!(
            !out.lines().chain(err.lines()).any(|l| l.contains("gpj.exe")
                && !l.contains("\\u{202e}gpj.exe")
                && !l.contains("\\u202egpj.exe")
                && !l.contains("%E2%80%AEgpj.exe")),
            "{what}: a forged line or a raw name:\n{out}{err}"
        );
    }
    let by = |cmd: &str, format: &str| {
        h.iter()
            .find(|(a, ..)| a[0] == cmd && a.iter().any(|x| x == format))
            .unwrap()
    };
    // scan, text: the instance-store mapping is reported, escaped, on one line.
    let (_, code, out, _) = &h[0];
    assert_eq!(*code, 1, "findings on the data volume: {out}");
    let visible_data = amiscan::model::escape::visible(hostile.data_device.as_bytes());
    assert!(out.contains(&format!("({visible_data})")), "{out}");
    let visible_device = amiscan::model::escape::visible(hostile.device.as_bytes());
    assert!(
        out.lines().any(|l| l.contains(&visible_device)
            && l.contains(&amiscan::model::escape::visible(
                hostile.virtual_name.as_bytes()
            ))),
        "{out}"
    );
    // scan, JSON: the same warning with the exact strings.
    let (_, _, out, _) = by("scan", "json");
    let v: Value = serde_json::from_str(out).unwrap();
    let warnings = v["targets"][0]["warnings"].as_array().unwrap();
    assert!(
        warnings.iter().any(|w| {
            let m = w["message"].as_str().unwrap();
            m.starts_with(&hostile.device) && m.contains(&hostile.virtual_name)
        }),
        "{v:#}"
    );
    // The findings' volumes, named after the device AWS reported, keep the exact string.
    let findings = v["targets"][0]["findings"].as_array().unwrap();
    assert!(!findings.is_empty(), "{v:#}");
    assert!(
        findings
            .iter()
            .all(|f| f["volume"].as_str().unwrap().contains(chosen)),
        "{v:#}"
    );
    let (_, _, out, _) = by("scan", "sarif");
    let v: Value = serde_json::from_str(out).unwrap();
    // SARIF URIs percent-encode the exact bytes.
    let uri =
        v["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            .as_str()
            .unwrap();
    assert!(uri.contains("%E2%80%AEgpj.exe"), "{uri}");
    let (_, _, out, _) = by("scan", "asff");
    let v: Value = serde_json::from_str(out).unwrap();
    let asff = v.as_array().unwrap();
    assert_eq!(asff.len(), findings.len(), "{v:#}");
    assert!(
        asff.iter().all(|f| f["ProductFields"]["amiscan/Volume"]
            .as_str()
            .unwrap()
            .contains(chosen)),
        "{v:#}"
    );
    // sweep, JSON Lines: one line per image and the summary, the exact name.
    let (_, code, out, _) = by("sweep", "jsonl");
    assert_eq!(*code, 1, "{out}");
    let lines = json_lines(out);
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(lines[0]["type"], "image");
    assert_eq!(lines[0]["image_id"], MINE);
    assert_eq!(lines[0]["name"], hostile.name.as_str());
    assert_eq!(lines[1]["type"], "summary");
    let brief = lines[0]["findings"].as_array().unwrap();
    assert_eq!(brief.len(), findings.len(), "{out}");
    assert!(
        brief
            .iter()
            .all(|f| f["location"].as_str().unwrap().contains(chosen)),
        "{out}"
    );
    // audit, JSON: the third party's alias round-trips exactly.
    let (_, _, out, _) = by("audit", "json");
    let v: Value = serde_json::from_str(out).unwrap();
    let inst = v[0]["instances"].as_array().unwrap();
    assert_eq!(inst.len(), 2, "{v:#}");
    let theirs = inst.iter().find(|i| i["image_id"] == THEIRS).unwrap();
    assert_eq!(theirs["image_owner_alias"], hostile.alias.as_str(), "{v:#}");
    // The JSON itself shows no raw bidi or invisible character (checked above) though it
    // carries them: the reader gets them back.
    assert!(out.contains("\\u202e"), "{out}");
}

#[test]
fn c1_csi_cr_lf_bidi_and_zero_width_from_aws_never_reach_a_report_raw() {
    check(CARRIED, None);
}

#[test]
fn the_issues_escape_sequence_from_aws_never_reaches_a_report_raw() {
    check(ESCAPED, None);
}

/// AWS refuses such a name; a server that is not AWS (or a future AWS) is no reason to print it.
#[test]
fn an_image_name_outside_awss_character_set_is_escaped_too() {
    check(ESCAPED, Some(format!("web{ESCAPED}")));
}

#[test]
fn an_aws_error_message_quoting_a_name_is_one_escaped_line() {
    for chosen in [CARRIED, ESCAPED] {
        let s = server(&words("plain"));
        let message = format!("Image '{NAME}{chosen}' is not available");
        s.set_ec2_error(Some(Ec2ErrorSpec {
            status: 400,
            code: "InvalidAMIID.Unavailable".into(),
            message: message.clone(),
        }));
        let (code, out, err) = amiscan(&s, &["scan", MINE]);
        assert_printable("scan stdout", &out);
        assert_printable("scan stderr", &err);
        assert_ne!(code, 0);
        assert_eq!(out, "");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains(&amiscan::model::escape::visible(message.as_bytes())),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.json");
        let (code, out, err) = amiscan(
            &s,
            &[
                "sweep",
                "--regions",
                REGION,
                "--format",
                "jsonl",
                "--state",
                state.to_str().unwrap(),
            ],
        );
        assert_printable("sweep stdout", &out);
        assert_printable("sweep stderr", &err);
        assert_ne!(code, 0, "{out}{err}");
        let lines = json_lines(&out);
        let summary = lines.iter().find(|l| l["type"] == "summary").unwrap();
        let errors = summary["region_errors"].as_array().unwrap();
        assert!(
            errors
                .iter()
                .any(|e| e.as_str().unwrap().contains(&message)),
            "{out}"
        );
        let (_, out, err) = {
            let (c, o, e) = amiscan(
                &s,
                &[
                    "sweep",
                    "--regions",
                    REGION,
                    "--state",
                    state.to_str().unwrap(),
                ],
            );
            (c, o, e)
        };
        assert_printable("sweep text stdout", &out);
        assert_printable("sweep text stderr", &err);
        assert!(
            out.lines()
                .any(|l| l.starts_with("region not swept: ") && l.contains("\\u{202e}gpj.exe")),
            "{out}"
        );
    }
}

#[test]
fn an_ebs_error_message_from_aws_is_escaped_in_every_report() {
    for chosen in [CARRIED, ESCAPED] {
        let message = format!("snapshot of '{NAME}{chosen}' cannot be read");
        let mut snap = SnapshotSpec::new(SNAP, &images().join("clean-gpt.img"));
        snap.list_error = Some(EbsErrorSpec {
            status: 400,
            error_type: "ValidationException".into(),
            message: message.clone(),
            reason: Some("INVALID_SNAPSHOT_ID".into()),
        });
        let s = TestServer::start(ServerConfig {
            snapshots: vec![snap],
            ..Default::default()
        })
        .unwrap();
        s.add_image(ImageSpec::new(
            REGION,
            AmiSpec {
                id: MINE.into(),
                name: NAME.into(),
                owner_id: ME.into(),
                public: false,
                root_device_type: "ebs".into(),
                root_device_name: "/dev/xvda".into(),
                mappings: vec![mapping("/dev/xvda", Some(SNAP), None)],
                description: None,
                tags: vec![],
            },
        ));
        let shown = amiscan::model::escape::visible(message.as_bytes());
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.json");
        let state = state.to_str().unwrap();
        let run = |args: &[&str]| {
            let (code, out, err) = amiscan(&s, args);
            let what = args.join(" ");
            assert_printable(&format!("{what} stdout"), &out);
            assert_printable(&format!("{what} stderr"), &err);
            assert_ne!(code, 0, "{what}: the volume was not read:\n{out}{err}");
            (out, err)
        };
        // scan, text: the error once, on one line of the report.
        let (out, _) = run(&["scan", MINE]);
        let with = out.lines().filter(|l| l.contains(&shown)).count();
        assert_eq!(with, 1, "{out}");
        assert!(!out.lines().any(|l| l.starts_with("0 image(s)")), "{out}");
        // scan, JSON: the exact message.
        let (out, _) = run(&["scan", MINE, "--format", "json"]);
        let v: Value = serde_json::from_str(&out).unwrap();
        assert!(
            v["targets"][0]["errors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["message"].as_str().unwrap().contains(&message)),
            "{v:#}"
        );
        // sweep, text: one line for the image (with the escaped message) and the summary.
        let sweep = [
            "sweep",
            "--regions",
            REGION,
            "--parallel",
            "1",
            "--state",
            state,
        ];
        let (out, _) = run(&sweep);
        let image_lines: Vec<_> = out.lines().filter(|l| l.starts_with(REGION)).collect();
        assert_eq!(image_lines.len(), 1, "{out}");
        assert!(image_lines[0].contains(&shown), "{out}");
        // The image's line, a blank line, the summary: nothing else.
        assert_eq!(out.lines().count(), 3, "{out}");
        assert!(
            out.lines()
                .nth(2)
                .unwrap()
                .starts_with("1 image(s) in 1 region(s)")
        );
        // sweep, JSON Lines: the image's error round-trips.
        let mut jsonl = sweep.to_vec();
        jsonl.extend(["--format", "jsonl"]);
        let (out, _) = run(&jsonl);
        let lines = json_lines(&out);
        assert_eq!(lines.len(), 2, "{out}");
        assert!(
            lines[0]["error"].as_str().unwrap().contains(&message),
            "{out}"
        );
    }
}

#[test]
fn the_progress_bars_on_a_terminal_show_device_names_from_aws_escaped() {
    let hostile = words(CARRIED);
    let s = server(&hostile);
    let home = tempfile::tempdir().unwrap();
    // `script` gives amiscan a terminal, so it draws its progress bars (indicatif's own
    // control sequences: ESC is amiscan's there, U+202E, U+009B and NEL never are).
    let cmd = format!(
        "{} scan {MINE} --region {REGION} --endpoint-url {}",
        env!("CARGO_BIN_EXE_amiscan"),
        s.endpoint_url()
    );
    let out = test_env(
        Command::new("script").args(["-qefc", &cmd, "/dev/null"]),
        home.path(),
    )
    .env("SHELL", "/bin/sh")
    .env("PATH", "/usr/bin:/bin")
    .env("TERM", "xterm")
    .env("COLUMNS", "4000")
    .output()
    .expect("script (util-linux) runs");
    let tty = String::from_utf8(out.stdout).expect("UTF-8");
    assert_eq!(out.status.code(), Some(1), "{tty:?}");
    let visible_data = amiscan::model::escape::visible(hostile.data_device.as_bytes());
    let bar_prefix = visible_data.trim_start_matches("/dev/");
    assert!(
        tty.contains(&format!("{bar_prefix}:p2 ext4")),
        "no progress bar was drawn for the data volume: {tty:?}"
    );
    for c in ['\u{202e}', '\u{9b}', '\u{85}', '\u{200b}', '\u{7f}'] {
        assert!(!tty.contains(c), "raw {c:?} on the terminal: {tty:?}");
    }
}
