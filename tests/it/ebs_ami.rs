//! AMI → snapshots through EC2 DescribeImages on the loopback test server, and the errors.
#![cfg(feature = "aws")]

use crate::ebs_support::*;
use amiscan::aws::AwsError;
use amiscan::source::Source;
use aws_test_server::{AmiSpec, Ec2ErrorSpec, MappingSpec, ServerConfig, SnapshotSpec, TestServer};

const AMI: &str = "ami-0123456789abcdef0";
const STORE_AMI: &str = "ami-0fedcba9876543210";

fn ebs_mapping(dev: &str, snap: &str, size: u64, encrypted: bool) -> MappingSpec {
    MappingSpec {
        device_name: dev.into(),
        snapshot_id: Some(snap.into()),
        volume_size: Some(size),
        encrypted,
        virtual_name: None,
    }
}

fn ephemeral(dev: &str, name: &str) -> MappingSpec {
    MappingSpec {
        device_name: dev.into(),
        snapshot_id: None,
        volume_size: None,
        encrypted: false,
        virtual_name: Some(name.into()),
    }
}

fn server() -> (TestServer, Vec<tempfile::NamedTempFile>, Vec<Vec<u8>>) {
    let (root, root_data) = image(6, 0);
    let (data_vol, data_bytes) = image(3, 77);
    let cfg = ServerConfig {
        snapshots: vec![
            SnapshotSpec::new("snap-0aaaaaaaaaaaaaaa1", root.path()),
            SnapshotSpec::new("snap-0bbbbbbbbbbbbbbb2", data_vol.path()),
        ],
        amis: vec![
            AmiSpec {
                id: AMI.into(),
                name: "web <prod> & co".into(),
                owner_id: "123456789012".into(),
                public: false,
                root_device_type: "ebs".into(),
                root_device_name: "/dev/xvda".into(),
                mappings: vec![
                    ebs_mapping("/dev/xvda", "snap-0aaaaaaaaaaaaaaa1", 8, false),
                    ephemeral("/dev/sdb", "ephemeral0"),
                    ebs_mapping("/dev/sdf", "snap-0bbbbbbbbbbbbbbb2", 100, true),
                ],
                description: None,
                tags: vec![],
            },
            AmiSpec {
                id: STORE_AMI.into(),
                name: "old-instance-store".into(),
                owner_id: "123456789012".into(),
                public: true,
                root_device_type: "instance-store".into(),
                root_device_name: "/dev/sda1".into(),
                mappings: vec![ephemeral("/dev/sdb", "ephemeral0")],
                description: None,
                tags: vec![],
            },
        ],
        ..Default::default()
    };
    (
        TestServer::start(cfg).unwrap(),
        vec![root, data_vol],
        vec![root_data, data_bytes],
    )
}

#[test]
fn resolves_every_ebs_mapping_and_lists_the_skipped_ones() {
    let (server, _files, datas) = server();
    let session = session(&server);
    let ami = session.resolve_ami(AMI).unwrap();
    assert_eq!(ami.id, AMI);
    assert_eq!(ami.name.as_deref(), Some("web <prod> & co"));
    assert_eq!(ami.owner_id.as_deref(), Some("123456789012"));
    assert!(!ami.public);
    assert_eq!(ami.root_device_type.as_deref(), Some("ebs"));
    assert_eq!(ami.volumes.len(), 2);
    let v0 = &ami.volumes[0];
    assert_eq!(
        (
            v0.device_name.as_str(),
            v0.snapshot_id.as_str(),
            v0.volume_size_gib,
            v0.encrypted,
            v0.root
        ),
        ("/dev/xvda", "snap-0aaaaaaaaaaaaaaa1", Some(8), false, true)
    );
    let v1 = &ami.volumes[1];
    assert_eq!(
        (
            v1.device_name.as_str(),
            v1.snapshot_id.as_str(),
            v1.volume_size_gib,
            v1.encrypted,
            v1.root
        ),
        ("/dev/sdf", "snap-0bbbbbbbbbbbbbbb2", Some(100), true, false)
    );
    assert_eq!(ami.skipped.len(), 1);
    assert_eq!(ami.skipped[0].device_name, "/dev/sdb");
    assert!(ami.skipped[0].reason.contains("ephemeral0"));

    // End to end: each volume's snapshot opens and reads back its image.
    for (v, data) in ami.volumes.iter().zip(&datas) {
        let src = session.open_snapshot(&v.snapshot_id, fast_opts()).unwrap();
        let mut buf = vec![0u8; data.len()];
        src.read_at(0, &mut buf).unwrap();
        assert!(buf == *data, "{}", v.snapshot_id);
    }
}

#[test]
fn unknown_and_malformed_amis_are_not_found() {
    let (server, _files, _) = server();
    let session = session(&server);
    let e = session.resolve_ami("ami-00000000000000000").unwrap_err();
    assert!(matches!(e, AwsError::AmiNotFound { .. }), "{e}");
    assert!(e.to_string().contains("ami-00000000000000000"));
    let e = session.resolve_ami("ami-nothex").unwrap_err();
    assert!(matches!(e, AwsError::AmiNotFound { .. }), "{e}");
}

#[test]
fn an_instance_store_ami_is_refused() {
    let (server, _files, _) = server();
    let session = session(&server);
    let e = session.resolve_ami(STORE_AMI).unwrap_err();
    assert!(
        matches!(&e, AwsError::InstanceStore { root_device_type, .. } if root_device_type == "instance-store"),
        "{e}"
    );
}

#[test]
fn access_denied_names_the_action() {
    let (server, _files, _) = server();
    server.set_ec2_error(Some(Ec2ErrorSpec {
        status: 403,
        code: "UnauthorizedOperation".into(),
        message: "You are not authorized to perform this operation.".into(),
    }));
    let session = session(&server);
    let e = session.resolve_ami(AMI).unwrap_err();
    assert!(
        matches!(&e, AwsError::AccessDenied { action, .. } if *action == "ec2:DescribeImages"),
        "{e}"
    );
    assert!(e.to_string().contains("ec2:DescribeImages"));
}
