//! What can go wrong while laying out a source's volumes, as typed values: which structure (the
//! start of the image, a GPT header, an MBR, a partition entry, LVM label, metadata, volume
//! group or segment) and where (byte offset, partition id, volume), with the problem the parser
//! reported. The messages are the ones the report has always shown.
//! Limits: the problem inside a third-party parser (`gpt`, `mbrman`) or the LVM text parser is
//! kept as that parser's text.

/// A problem with a partition table or a volume's layout. In [`super::Discovery::errors`] and
/// [`super::Volume::errors`] it makes the scan incomplete; in [`super::Discovery::warnings`] it
/// was worked around.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VolumeError {
    /// The first bytes of the source could not be read.
    #[error("cannot read the start of the image: {reason}")]
    ReadHead {
        /// The source's error.
        reason: String,
    },
    /// A GPT header is of a form amiscan refuses (entry size, entry count).
    #[error("GPT header at byte {offset}: {problem}")]
    GptHeader {
        /// Byte offset of the header in the source.
        offset: u64,
        /// What is wrong with it.
        problem: String,
    },
    /// Neither GPT header could be read.
    #[error("GPT: no valid header could be read ({reason})")]
    GptUnreadable {
        /// The last reader's error.
        reason: String,
    },
    /// A warning: the primary GPT header is missing and the backup one was used.
    #[error(
        "the primary GPT header is missing or corrupt (protective MBR present); partitions read \
         from the backup header at the end of the image"
    )]
    GptPrimaryMissing,
    /// A warning: the primary GPT header is corrupt and the backup one was used.
    #[error("the primary GPT header is corrupt; partitions read from the backup header")]
    GptPrimaryCorrupt,
    /// A GPT entry whose first and last LBA give no size.
    #[error("partition {id}: first LBA {first_lba} / last LBA {last_lba} are inconsistent")]
    PartitionLbas {
        /// `p1`, ...
        id: String,
        /// First LBA as stored.
        first_lba: u64,
        /// Last LBA as stored.
        last_lba: u64,
    },
    /// Neither reading of the MBR (512- or 4096-byte sectors) worked.
    #[error("MBR partition table could not be read: {reason}")]
    MbrUnreadable {
        /// The reader's error.
        reason: String,
    },
    /// The chain of logical partitions of an MBR extended partition is broken.
    #[error(
        "MBR extended partition: the chain of logical partitions could not be read ({reason}); \
         logical partitions are missing from this scan"
    )]
    MbrLogicalChain {
        /// The reader's error.
        reason: String,
    },
    /// An MBR entry in use with no sectors.
    #[error("partition {id}: type {sys:#04x} with zero sectors")]
    PartitionEmpty {
        /// `p1`, ...
        id: String,
        /// The partition type byte.
        sys: u8,
    },
    /// A partition that starts past the end of the image.
    #[error(
        "partition {id} starts at byte {offset}, past the end of the image ({image_len} bytes): \
         the partition table is corrupt or the image is truncated"
    )]
    PartitionPastEnd {
        /// `p1`, ...
        id: String,
        /// Its first byte.
        offset: u64,
        /// Bytes in the image.
        image_len: u64,
    },
    /// A partition that ends past the end of the image (`end` is `None` when it overflows).
    #[error(
        "partition {id} ends at byte {} but the image has only {image_len} bytes: the image is \
         truncated",
        end.map_or_else(|| "(overflow)".to_string(), |e| e.to_string())
    )]
    PartitionTruncated {
        /// `p1`, ...
        id: String,
        /// Its end byte, `None` when offset + size overflows.
        end: Option<u64>,
        /// Bytes in the image.
        image_len: u64,
    },
    /// The LVM label or metadata area of a volume could not be read.
    #[error("volume {volume}: {problem}")]
    LvmLabel {
        /// The volume's id.
        volume: String,
        /// What could not be read.
        problem: String,
    },
    /// The LVM metadata text of a volume does not parse.
    #[error("volume {volume}: LVM metadata: {problem}")]
    LvmMetadata {
        /// The volume's id.
        volume: String,
        /// The parser's error.
        problem: String,
    },
    /// A volume group without a usable extent size.
    #[error("LVM volume group {vg}: missing or invalid extent_size")]
    LvmExtentSize {
        /// The volume group's name.
        vg: String,
    },
    /// A segment of a logical volume that cannot be mapped.
    #[error("logical volume {lv} {segment}: {problem}")]
    LvmSegment {
        /// `vg/lv`.
        lv: String,
        /// The segment's section name (`segment1`).
        segment: String,
        /// Why (unsupported type, missing field, physical volume not found).
        problem: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_the_ones_reports_have_shown() {
        let e = VolumeError::PartitionTruncated {
            id: "p1".into(),
            end: None,
            image_len: 10,
        };
        assert_eq!(
            e.to_string(),
            "partition p1 ends at byte (overflow) but the image has only 10 bytes: the image is truncated"
        );
        assert_eq!(
            VolumeError::PartitionEmpty {
                id: "p2".into(),
                sys: 0x83
            }
            .to_string(),
            "partition p2: type 0x83 with zero sectors"
        );
        assert_eq!(
            VolumeError::GptPrimaryMissing.to_string(),
            "the primary GPT header is missing or corrupt (protective MBR present); partitions read from the backup header at the end of the image"
        );
    }
}
