# amiscan as the last step of a Packer build: the manifest post-processor records the new AMI,
# then `amiscan publish` scans it and shares it only when the scan is complete and finds nothing
# at or above the threshold. Otherwise the AMI stays private and the build fails.
#
# Paste the `post-processors` block into your `build` block (it follows an amazon-ebs source).
# The credentials need ec2:DescribeImages, ebs:ListSnapshotBlocks, ebs:GetSnapshotBlock and
# ec2:ModifyImageAttribute on the new image (deploy/README.md).

variable "share_with" {
  type        = string
  description = "Comma-separated account ids the AMI is shared with once it scans clean."
}

variable "fail_on" {
  type    = string
  default = "high"
}

build {
  sources = ["source.amazon-ebs.base"]

  post-processors {
    post-processor "manifest" {
      output     = "packer-manifest.json"
      strip_path = true
    }
    post-processor "shell-local" {
      environment_vars = [
        "AMISCAN_SHARE_WITH=${var.share_with}",
        "AMISCAN_FAIL_ON=${var.fail_on}",
      ]
      inline = [
        "set -eu",
        "run=$(python3 -c 'import json; m = json.load(open(\"packer-manifest.json\")); print(m[\"last_run_uuid\"])')",
        "artifact=$(python3 -c 'import json, sys; m = json.load(open(\"packer-manifest.json\")); print([b for b in m[\"builds\"] if b[\"packer_run_uuid\"] == sys.argv[1]][-1][\"artifact_id\"])' \"$run\")",
        "region=$${artifact%%:*}; ami=$${artifact#*:}",
        "amiscan publish \"$ami\" --region \"$region\" --accounts \"$AMISCAN_SHARE_WITH\" --fail-on \"$AMISCAN_FAIL_ON\"",
      ]
    }
  }
}
