//! The pipeline recipes of deploy/ run as their CI systems would run them, offline: the files
//! parse (YAML with PyYAML, the Packer HCL with python-hcl2), the Image Builder component has
//! the documented document shape, and the shell commands each recipe runs are executed with the
//! built `amiscan` on PATH: against the demo image (findings: the recipe fails with exit 1) and a
//! clean image (passes). The Packer gate runs `amiscan publish` against the loopback AWS server.
//!
//! The Python modules come from `$AMISCAN_CI_PYTHON` (the venv .ci/run makes), else `python3`.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn python() -> String {
    std::env::var("AMISCAN_CI_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// A recipe file as JSON: `yaml` or `hcl`.
fn load(rel: &str, kind: &str) -> Value {
    let code = match kind {
        "yaml" => {
            "import sys, json, yaml; json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout)"
        }
        _ => "import sys, json, hcl2; json.dump(hcl2.load(open(sys.argv[1])), sys.stdout)",
    };
    let out = Command::new(python())
        .args(["-c", code])
        .arg(repo().join(rel))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{rel} does not parse (or PyYAML / python-hcl2 is missing: see .ci/run): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A directory with `amiscan` (the built binary) for PATH.
fn path_with_amiscan(dir: &Path) -> String {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let link = bin.join("amiscan");
    if !link.exists() {
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_amiscan"), &link).unwrap();
    }
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// Run `script` with bash (`flags` as the CI system sets them) in `cwd`; the exit code.
fn bash(flags: &[&str], script: &str, env: &BTreeMap<String, String>, cwd: &Path) -> i32 {
    let out = Command::new("bash")
        .args(flags)
        .arg("-c")
        .arg(script)
        .envs(env)
        .current_dir(cwd)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    // Shown when a test fails.
    eprintln!("{}{err}", String::from_utf8_lossy(&out.stdout));
    assert!(!err.contains("command not found"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    out.status.code().unwrap_or(-1)
}

fn demo() -> PathBuf {
    repo().join("testdata/demo.img")
}

fn clean() -> PathBuf {
    crate::common::built_images("testimages").join("clean-gpt.img")
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// Replace `${{ expr }}` by what `lookup` says.
fn github_expr(text: &str, lookup: &dyn Fn(&str) -> String) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("${{") {
        out.push_str(&rest[..i]);
        let end = rest[i..].find("}}").unwrap() + i;
        out.push_str(&lookup(rest[i + 3..end].trim()));
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

fn run_github_action(target: &Path) -> (i32, tempfile::TempDir) {
    let action = load("deploy/github-action/action.yml", "yaml");
    assert_eq!(action["runs"]["using"], "composite");
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().to_path_buf();
    let gh_output = tmp.join("github_output");
    std::fs::write(&gh_output, "").unwrap();
    let mut inputs: BTreeMap<String, String> = action["inputs"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v["default"].as_str().unwrap_or("").to_string()))
        .collect();
    inputs.insert("target".into(), target.display().to_string());
    let action_path = repo().join("deploy/github-action");
    for step in action["runs"]["steps"].as_array().unwrap() {
        if let Some(uses) = step["uses"].as_str() {
            assert!(
                uses.starts_with("github/codeql-action/upload-sarif@"),
                "{uses}"
            );
            let sarif = tmp.join(&inputs["sarif-file"]);
            let v: Value = serde_json::from_slice(&std::fs::read(&sarif).unwrap()).unwrap();
            assert_eq!(v["version"], "2.1.0");
            continue;
        }
        assert_eq!(step["shell"], "bash");
        let outputs = std::fs::read_to_string(&gh_output).unwrap();
        let lookup = |e: &str| -> String {
            if let Some(i) = e.strip_prefix("inputs.") {
                inputs[i].clone()
            } else if e == "github.action_path" {
                action_path.display().to_string()
            } else if let Some(o) = e.strip_prefix("steps.scan.outputs.") {
                outputs
                    .lines()
                    .find_map(|l| l.strip_prefix(&format!("{o}=")))
                    .unwrap_or("")
                    .to_string()
            } else {
                panic!("unknown expression {e}")
            }
        };
        let mut env: BTreeMap<String, String> = step["env"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), github_expr(s(v), &lookup)))
            .collect();
        env.insert("PATH".into(), path_with_amiscan(&tmp));
        env.insert("GITHUB_OUTPUT".into(), gh_output.display().to_string());
        env.insert(
            "GITHUB_PATH".into(),
            tmp.join("github_path").display().to_string(),
        );
        env.insert("RUNNER_TEMP".into(), tmp.display().to_string());
        let code = bash(
            &["--noprofile", "--norc", "-eo", "pipefail"],
            s(&step["run"]),
            &env,
            &tmp,
        );
        if code != 0 {
            return (code, dir);
        }
    }
    (0, dir)
}

#[test]
fn the_github_action_uploads_sarif_and_fails_on_findings() {
    let (code, tmp) = run_github_action(&demo());
    assert_eq!(code, 1);
    assert!(
        !tmp.path().join("github_path").exists(),
        "amiscan on PATH was installed again"
    );
    let (code, _) = run_github_action(&clean());
    assert_eq!(code, 0);
}

fn run_gitlab(target: &Path) -> (i32, tempfile::TempDir) {
    let ci = load("deploy/gitlab/amiscan.gitlab-ci.yml", "yaml");
    let job = &ci["amiscan"];
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().to_path_buf();
    let mut env: BTreeMap<String, String> = job["variables"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), s(v).to_string()))
        .collect();
    env.insert("AMISCAN_TARGET".into(), target.display().to_string());
    env.insert("CI_PROJECT_DIR".into(), repo().display().to_string());
    env.insert("PATH".into(), path_with_amiscan(&tmp));
    let lines: Vec<&str> = ["before_script", "script"]
        .iter()
        .flat_map(|k| job[*k].as_array().unwrap().iter().map(s))
        .collect();
    // GitLab's shell runner runs the lines in one shell, stopping at the first that fails.
    (
        bash(&["-eo", "pipefail"], &lines.join("\n"), &env, &tmp),
        dir,
    )
}

#[test]
fn the_gitlab_job_keeps_the_report_and_fails_on_findings() {
    let (code, tmp) = run_gitlab(&demo());
    assert_eq!(code, 1);
    let v: Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("gl-amiscan.sarif")).unwrap())
            .unwrap();
    assert!(
        v["runs"][0]["results"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
    );
    let ci = load("deploy/gitlab/amiscan.gitlab-ci.yml", "yaml");
    assert_eq!(ci["amiscan"]["artifacts"]["when"], "always");
    assert_eq!(run_gitlab(&clean()).0, 0);
}

/// The component document shape of the Image Builder documentation: name, description,
/// schemaVersion 1.0, parameters (one-key maps with type string), phases build / validate /
/// test, steps with unique names, a known action, and ExecuteBash commands; every `{{ X }}`
/// used is a declared parameter.
fn check_component(c: &Value) -> BTreeMap<String, String> {
    for k in ["name", "description"] {
        assert!(c[k].as_str().is_some_and(|v| !v.is_empty()), "no {k}");
    }
    assert!(c["schemaVersion"] == 1.0 || c["schemaVersion"] == "1.0");
    let mut params = BTreeMap::new();
    for p in c["parameters"].as_array().unwrap() {
        let m = p.as_object().unwrap();
        assert_eq!(m.len(), 1);
        let (name, spec) = m.iter().next().unwrap();
        assert_eq!(spec["type"], "string");
        params.insert(name.clone(), s(&spec["default"]).to_string());
    }
    const ACTIONS: [&str; 10] = [
        "ExecuteBash",
        "ExecuteBinary",
        "ExecuteDocument",
        "ExecutePowerShell",
        "Reboot",
        "S3Download",
        "S3Upload",
        "WebDownload",
        "UpdateOS",
        "SetRegistry",
    ];
    let mut names = std::collections::BTreeSet::new();
    for phase in c["phases"].as_array().unwrap() {
        assert!(["build", "validate", "test"].contains(&s(&phase["name"])));
        for step in phase["steps"].as_array().unwrap() {
            let name = s(&step["name"]);
            assert!(
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            );
            assert!(names.insert(name.to_string()), "duplicate step {name}");
            assert!(ACTIONS.contains(&s(&step["action"])));
            if step["action"] == "ExecuteBash" {
                let cmds = step["inputs"]["commands"].as_array().unwrap();
                assert!(!cmds.is_empty() && cmds.iter().all(Value::is_string));
                for cmd in cmds.iter().map(s) {
                    for used in cmd.split("{{").skip(1) {
                        let p = used.split("}}").next().unwrap().trim();
                        assert!(params.contains_key(p), "undeclared parameter {p}");
                    }
                }
            }
        }
    }
    params
}

fn run_component(target: &Path) -> i32 {
    let c = load("deploy/image-builder/amiscan-gate.yml", "yaml");
    let mut params = check_component(&c);
    params.insert("Target".into(), target.display().to_string());
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path();
    let env = BTreeMap::from([("PATH".to_string(), path_with_amiscan(tmp))]);
    for phase in c["phases"].as_array().unwrap() {
        for step in phase["steps"].as_array().unwrap() {
            let mut script: String = step["inputs"]["commands"]
                .as_array()
                .unwrap()
                .iter()
                .map(s)
                .collect::<Vec<_>>()
                .join("\n");
            for (k, v) in &params {
                script = script.replace(&format!("{{{{ {k} }}}}"), v);
            }
            let code = bash(&[], &script, &env, tmp);
            if code != 0 {
                return code;
            }
        }
    }
    0
}

#[test]
fn the_image_builder_component_has_the_document_shape_and_gates() {
    assert_eq!(run_component(&demo()), 1);
    assert_eq!(run_component(&clean()), 0);
}

/// The shell-local post-processor of the Packer snippet: its environment and inline script.
#[cfg(feature = "aws")]
fn packer_gate() -> (Vec<(String, String)>, String) {
    let h = load("deploy/packer/amiscan-gate.pkr.hcl", "hcl");
    let unquote = |v: &Value| s(v).trim_matches('"').to_string();
    let mut vars = BTreeMap::new();
    for v in h["variable"].as_array().unwrap() {
        for (name, spec) in v.as_object().unwrap() {
            vars.insert(
                name.trim_matches('"').to_string(),
                unquote(&spec["default"]),
            );
        }
    }
    vars.insert("share_with".into(), "444455556666".into());
    let build = &h["build"][0];
    let chain = &build["post-processors"][0]["post-processor"];
    let kinds: Vec<&str> = chain
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p.as_object().unwrap().keys().map(|k| k.trim_matches('"')))
        .collect();
    assert_eq!(kinds, ["manifest", "shell-local"]);
    let sl = &chain[1]["\"shell-local\""];
    let expand = |t: &str| {
        // python-hcl2 keeps a string's quotes and escapes: remove one quote at each end.
        let t = t
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .unwrap_or(t);
        let mut t = t.replace("\\\"", "\"").replace("$${", "\u{0}");
        for (k, v) in &vars {
            t = t.replace(&format!("${{var.{k}}}"), v);
        }
        t.replace('\u{0}', "${")
    };
    let env = sl["environment_vars"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let e = expand(s(e));
            let (k, v) = e.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect();
    let script = sl["inline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| expand(s(l)))
        .collect::<Vec<_>>();
    (env, script.join("\n"))
}

#[cfg(feature = "aws")]
#[test]
fn the_packer_gate_publishes_only_a_clean_ami() {
    use aws_test_server::{
        AmiSpec, ImageSpec, MappingSpec, ServerConfig, SnapshotSpec, TestServer,
    };
    let leaky = crate::common::built_images("testimages").join("leaky-gpt.img");
    let server = TestServer::start(ServerConfig {
        snapshots: vec![
            SnapshotSpec::new("snap-0b00000000000000a", &leaky),
            SnapshotSpec::new("snap-0b00000000000000b", &clean()),
        ],
        ..Default::default()
    })
    .unwrap();
    for (ami, snap) in [
        ("ami-0b00000000000000a", "snap-0b00000000000000a"),
        ("ami-0b00000000000000b", "snap-0b00000000000000b"),
    ] {
        server.add_image(ImageSpec::new(
            "us-east-1",
            AmiSpec {
                id: ami.into(),
                name: format!("packer-{ami}"),
                owner_id: "111122223333".into(),
                public: false,
                root_device_type: "ebs".into(),
                root_device_name: "/dev/xvda".into(),
                mappings: vec![MappingSpec {
                    device_name: "/dev/xvda".into(),
                    snapshot_id: Some(snap.into()),
                    volume_size: None,
                    encrypted: false,
                    virtual_name: None,
                }],
                description: None,
                tags: vec![],
            },
        ));
    }
    let (vars, script) = packer_gate();
    for (ami, want) in [("ami-0b00000000000000a", 1), ("ami-0b00000000000000b", 0)] {
        let tmp = tempfile::tempdir().unwrap();
        // What the manifest post-processor writes: an older run first, then this one.
        let manifest = serde_json::json!({
            "builds": [
                {"name": "base", "builder_type": "amazon-ebs", "build_time": 1, "files": null,
                 "artifact_id": "us-east-1:ami-0000000000000dead", "packer_run_uuid": "old", "custom_data": null},
                {"name": "base", "builder_type": "amazon-ebs", "build_time": 2, "files": null,
                 "artifact_id": format!("us-east-1:{ami}"), "packer_run_uuid": "new", "custom_data": null}
            ],
            "last_run_uuid": "new"
        });
        std::fs::write(
            tmp.path().join("packer-manifest.json"),
            manifest.to_string(),
        )
        .unwrap();
        let mut env: BTreeMap<String, String> = vars.iter().cloned().collect();
        env.insert("PATH".into(), path_with_amiscan(tmp.path()));
        env.insert("HOME".into(), tmp.path().display().to_string());
        env.insert("AWS_ENDPOINT_URL".into(), server.endpoint_url());
        env.insert("AWS_ACCESS_KEY_ID".into(), "AKIDPACKERTEST".into());
        env.insert("AWS_SECRET_ACCESS_KEY".into(), "packer-test-secret".into());
        env.insert("AWS_EC2_METADATA_DISABLED".into(), "true".into());
        assert_eq!(bash(&[], &script, &env, tmp.path()), want, "{ami}");
        let shared = server.image("us-east-1", ami).unwrap().shared_with;
        let expect: Vec<String> = if want == 0 {
            vec!["444455556666".into()]
        } else {
            vec![]
        };
        assert_eq!(shared, expect, "{ami}");
    }
}
