sudo apt-get update
sudo apt-get install -y awscli jq
aws --version
export AWS_ACCESS_KEY_ID=AKIAMKFMVKAX2ONYVXBO
aws s3 ls
unset AWS_ACCESS_KEY_ID
ssh-keygen -t ed25519 -C alice@ip-10-0-1-23
cat ~/.ssh/id_ed25519.pub
sudo systemctl restart ssh
exit
