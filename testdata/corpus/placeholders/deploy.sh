#!/bin/sh
# Fill in before running.
set -eu
curl -fsS -u admin:<password> https://nexus.internal/service/rest/v1/status
curl -H "Authorization: Bearer xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" https://api.internal/v1/deploy
docker login -u deploy -p <password> registry.gitlab.com
kubeadm join 10.0.0.10:6443 --token xxxxxx.xxxxxxxxxxxxxxxx --discovery-token-unsafe-skip-ca-verification
export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE
export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
