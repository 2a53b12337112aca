ls -la
export AWS_ACCESS_KEY_ID=AKIAM5IJGSWRTWL4O6MD
aws sts get-caller-identity
