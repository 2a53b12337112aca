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

use amiscan::model::escape::is_hidden;
use aws_test_server::{
    AmiSpec, Ec2ErrorSpec, ImageSpec, InstanceSpec, MappingSpec, ServerConfig, SnapshotSpec,
    TestServer,
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
    description: &'static str,
    tag: &'static str,
    device: String,
    virtual_name: String,
    alias: String,
}

fn words(hostile: &'static str) -> Words {
    Words {
        description: hostile,
        tag: hostile,
        device: format!("/dev/sdb{hostile}"),
        virtual_name: format!("ephemeral0{hostile}"),
        alias: format!("market{hostile}"),
    }
}

/// One image of ours (a clean root volume and an instance-store mapping) and a third party's
/// public one, an instance of each, every chosen string from `w`.
fn server(w: &Words) -> TestServer {
    let clean = images().join("clean-gpt.img");
    let s = TestServer::start(ServerConfig {
        snapshots: vec![
            SnapshotSpec::new(SNAP, &clean),
            SnapshotSpec::new(SNAP_THEIRS, &clean),
        ],
        ..Default::default()
    })
    .unwrap();
    let ami = |id: &str, snap: &str, owner: &str, public: bool| AmiSpec {
        id: id.into(),
        name: NAME.into(),
        owner_id: owner.into(),
        public,
        root_device_type: "ebs".into(),
        root_device_name: "/dev/xvda".into(),
        mappings: vec![
            mapping("/dev/xvda", Some(snap), None),
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
    let out = Command::new(env!("CARGO_BIN_EXE_amiscan"))
        .args(args)
        .arg("--region")
        .arg(REGION)
        .arg("--endpoint-url")
        .arg(server.endpoint_url())
        .env_clear()
        .env("HOME", home.path())
        .env("AWS_ACCESS_KEY_ID", "AKIDTESTTESTTEST")
        .env("AWS_SECRET_ACCESS_KEY", "test-secret")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
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
    &["sweep", "--regions", REGION, "--format", "text", "--parallel", "1"],
    &["sweep", "--regions", REGION, "--format", "jsonl", "--parallel", "1"],
    &["audit", "--regions", REGION, "--format", "text"],
    &["audit", "--regions", REGION, "--format", "json"],
];

/// Run every command against `s`; `(args, code, stdout, stderr)`.
fn run_all(s: &TestServer) -> Vec<(Vec<String>, i32, String, String)> {
    COMMANDS
        .iter()
        .map(|args| {
            let dir = tempfile::tempdir().unwrap();
            let state = dir.path().join("state.json");
            let mut a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            if a[0] != "scan" {
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
fn check(chosen: &'static str) {
    let hostile = words(chosen);
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
    assert_eq!(img.name(), Some(NAME));
    let tag = img.tags().iter().find(|t| t.key() == Some("Name")).unwrap();
    assert_eq!(tag.value(), Some(chosen));
    let device = img.block_device_mappings()[1].device_name();
    assert_eq!(device, Some(hostile.device.as_str()));
    drop(session);
    let h = run_all(&hs);
    let b = run_all(&server(&words("plain")));
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
                && !l.contains("\\u202egpj.exe")),
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
    assert_eq!(*code, 0, "{out}");
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
    // sweep, JSON Lines: one line per image and the summary, the exact name.
    let (_, code, out, _) = by("sweep", "jsonl");
    assert_eq!(*code, 0, "{out}");
    let lines = json_lines(out);
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(lines[0]["type"], "image");
    assert_eq!(lines[0]["image_id"], MINE);
    assert_eq!(lines[0]["name"], NAME);
    assert_eq!(lines[1]["type"], "summary");
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
    check(CARRIED);
}

#[test]
fn the_issues_escape_sequence_from_aws_never_reaches_a_report_raw() {
    check(ESCAPED);
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
