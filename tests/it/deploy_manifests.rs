//! The deployment files in `deploy/` are valid: the AWS Batch template passes `cfn-lint` and
//! grants exactly the README's policy for sweep and audit plus the state bucket and
//! `sts:AssumeRole`; the Kubernetes manifests pass `kubernetes-validate --strict` (schemas
//! shipped in the package, no cluster); the Dockerfile is multi-stage and runs as non-root.
//! The linters come from PyPI at the versions in `deploy/lint-requirements.txt`, installed into a
//! virtualenv under the target directory on first use (`python3-venv` is installed by `.ci/run`).

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");

fn deploy() -> PathBuf {
    Path::new(MANIFEST_DIR).join("deploy")
}

/// The virtualenv with the pinned linters, made once.
fn venv() -> &'static Path {
    static V: OnceLock<PathBuf> = OnceLock::new();
    V.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("deploy-lint-venv");
        let reqs = deploy().join("lint-requirements.txt");
        let stamp = dir.join("installed-requirements.txt");
        let wanted = std::fs::read_to_string(&reqs).unwrap();
        if std::fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) {
            let _ = std::fs::remove_dir_all(&dir);
            let run = |c: &mut Command| {
                let out = c.output().unwrap();
                assert!(
                    out.status.success(),
                    "{c:?}: {}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            };
            run(Command::new("python3").args(["-m", "venv"]).arg(&dir));
            run(Command::new(dir.join("bin/pip"))
                .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
                .arg(&reqs));
            std::fs::write(&stamp, wanted).unwrap();
        }
        dir
    })
}

fn lint(tool: &str, args: &[&str], files: &[PathBuf]) -> (bool, String) {
    let out = Command::new(venv().join("bin").join(tool))
        .args(args)
        .args(files)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// The statements of the README's IAM policy, by `Sid`.
fn readme_statements() -> Vec<Value> {
    let readme = std::fs::read_to_string(Path::new(MANIFEST_DIR).join("README.md")).unwrap();
    let start = readme.find("### IAM policy").unwrap();
    let block = &readme[start..];
    let json_start = block.find("```json\n").unwrap() + "```json\n".len();
    let json_end = json_start + block[json_start..].find("```").unwrap();
    let policy: Value = serde_json::from_str(&block[json_start..json_end]).unwrap();
    policy["Statement"].as_array().unwrap().clone()
}

#[test]
fn the_batch_template_lints_and_grants_exactly_the_documented_policy() {
    let template_path = deploy().join("aws-batch.json");
    let (ok, out) = lint("cfn-lint", &[], std::slice::from_ref(&template_path));
    assert!(ok, "cfn-lint:\n{out}");
    let t: Value = serde_json::from_str(&std::fs::read_to_string(&template_path).unwrap()).unwrap();
    let res = &t["Resources"];
    for (name, kind) in [
        ("StateBucket", "AWS::S3::Bucket"),
        ("ComputeEnvironment", "AWS::Batch::ComputeEnvironment"),
        ("JobQueue", "AWS::Batch::JobQueue"),
        ("JobDefinition", "AWS::Batch::JobDefinition"),
        ("NightlySweep", "AWS::Events::Rule"),
        ("JobRole", "AWS::IAM::Role"),
    ] {
        assert_eq!(res[name]["Type"], kind, "{name}");
    }
    assert_eq!(
        res["ComputeEnvironment"]["Properties"]["ComputeResources"]["Type"],
        "FARGATE"
    );
    let target = &res["NightlySweep"]["Properties"]["Targets"][0]["BatchParameters"];
    assert_eq!(target["ArrayProperties"]["Size"]["Ref"], "Shards");
    // The job role: the README's statements for sweep and audit, verbatim, plus the state
    // bucket and the member accounts' role; nothing else.
    let granted = res["JobRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap()
        .clone();
    let readme = readme_statements();
    let sweep_and_audit = [
        "ResolveImages",
        "ReadSnapshots",
        "EncryptedSnapshots",
        "Audit",
        "Organizations",
    ];
    for sid in sweep_and_audit {
        let doc = readme.iter().find(|s| s["Sid"] == sid).unwrap_or_else(|| {
            panic!("README policy has no {sid} statement");
        });
        assert!(granted.contains(doc), "{sid} differs from the README");
    }
    let mut extra: Vec<&str> = granted
        .iter()
        .map(|s| s["Sid"].as_str().unwrap())
        .filter(|s| !sweep_and_audit.contains(s))
        .collect();
    extra.sort();
    assert_eq!(extra, ["MemberAccounts", "StateList", "StateObjects"]);
    let actions = |sid: &str| granted.iter().find(|s| s["Sid"] == sid).unwrap()["Action"].clone();
    assert_eq!(
        actions("MemberAccounts"),
        serde_json::json!(["sts:AssumeRole"])
    );
    assert_eq!(
        actions("StateObjects"),
        serde_json::json!(["s3:GetObject", "s3:PutObject"])
    );

    // The linter does reject a broken template (a Fargate job without its platform).
    let mut broken = t.clone();
    broken["Resources"]["JobDefinition"]["Properties"]["Type"] = "kontainer".into();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("broken.json");
    std::fs::write(&p, broken.to_string()).unwrap();
    let (ok, out) = lint("cfn-lint", &[], &[p]);
    assert!(!ok, "cfn-lint accepted a broken template:\n{out}");
}

#[test]
fn the_kubernetes_manifests_validate_and_use_the_shard_index() {
    let dir = deploy().join("kubernetes");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 3, "{files:?}");
    let (ok, out) = lint("kubernetes-validate", &["--strict", "-k", "1.31.0"], &files);
    assert!(ok, "kubernetes-validate:\n{out}");
    assert_eq!(out.matches(" passed for resource ").count(), 3, "{out}");
    let job = std::fs::read_to_string(dir.join("indexed-job.yaml")).unwrap();
    assert!(job.contains("completionMode: Indexed"));
    assert!(job.contains("\"--shards\", \"4\""));
    let cron = std::fs::read_to_string(dir.join("cronjob.yaml")).unwrap();
    assert!(cron.contains("completionMode: Indexed"));
    let sa = std::fs::read_to_string(dir.join("serviceaccount.yaml")).unwrap();
    assert!(sa.contains("eks.amazonaws.com/role-arn:"));
    // A misspelt field fails strict validation.
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("bad.yaml");
    std::fs::write(&p, job.replace("completionMode:", "completionMod:")).unwrap();
    let (ok, out) = lint("kubernetes-validate", &["--strict", "-k", "1.31.0"], &[p]);
    assert!(!ok, "a misspelt field passed:\n{out}");
}

#[test]
fn the_dockerfile_builds_in_one_stage_and_runs_the_binary_as_non_root_in_another() {
    let d = std::fs::read_to_string(deploy().join("Dockerfile")).unwrap();
    let froms: Vec<&str> = d.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(froms.len(), 2, "{d}");
    assert!(froms[0].ends_with(" AS build"));
    let last: Vec<&str> = d.split("FROM ").last().unwrap().lines().collect();
    assert!(
        last.iter()
            .any(|l| l.starts_with("COPY --from=build ") && l.contains("release/amiscan"))
    );
    assert_eq!(
        last.iter().filter(|l| l.starts_with("COPY")).count(),
        1,
        "the binary only"
    );
    assert!(last.contains(&"USER 65532:65532"));
    assert!(
        !last.iter().any(|l| l.starts_with("RUN")),
        "no shell in the final stage"
    );
}
