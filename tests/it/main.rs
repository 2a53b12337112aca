//! amiscan's integration tests, as one test binary (one link of the AWS SDK): a module per area.
//! Most build disk images with the real tools (mkfs, loop mounts, sgdisk, LVM, rpmbuild) and run
//! the real `amiscan` binary on them; the EBS modules drive a loopback AWS server with the real SDK.

mod common;
#[cfg(feature = "aws")]
mod ebs_support;

mod archives_and_modes;
mod btrfs;
mod btrfs_csum;
mod btrfs_devices;
mod btrfs_log;
mod btrfs_shared;
mod catalog_corpus;
mod catalog_image;
mod containers;
mod debian_root;
mod deploy_manifests;
mod ebs_account;
mod ebs_ami;
mod ebs_read_failures;
mod ebs_scan;
mod ebs_source;
mod ext4_corruption;
mod ext4_damage;
mod ext4_features;
mod ext4_htree;
mod ext4_oracle;
mod fleet_workflows;
mod governance;
mod governance_org;
mod hostile_aws;
mod hostile_names;
mod installed_root;
mod launch_alert;
mod live_snapshots;
mod local_images;
mod module_cycles;
mod mutations;
mod named_formats;
mod ntfs;
mod ntfs_data_list;
mod ntfs_index_list;
mod ntfs_mft_list;
mod ntfs_orphans;
mod pipeline_recipes;
mod provenance;
mod publish_guard;
mod quick_scope;
mod read_failures;
mod real_layouts;
mod reports;
mod rpm_database;
mod sbom;
mod server_root;
mod sparse_files;
mod sweep_shards;
mod targets;
mod unreachable;
mod volumes;
mod windows;
mod windows_ami;
mod windows_credentials;
mod windows_ntfs_structures;
mod windows_quick;
mod xfs_oracle;
