#!/usr/bin/env bash
# check-tools.sh — fail, saying how to install each one, when a tool the test suite needs is
# missing. CI runs it before `make test` (.ci/run), so a machine without moto or terraform fails
# instead of skipping those tests; SSMKIT_CI=1 (set by .ci/run) makes every test that would
# skip for a missing tool fail as well.
#
# Checks: go; moto (with the web stack moto.server needs) importable by the real python
# ($SSMKIT_PYTHON, or sys.executable of python3 — never a pyenv shim); terraform >= 1.11;
# the hashicorp/aws provider in a filesystem mirror ($SSMKIT_TF_PLUGIN_DIR or /opt/tf-plugins,
# or SSMKIT_TF_REGISTRY=1 to download it); the AWS CLI; ssh, scp and git.
set -uo pipefail

missing=0
miss() {
  echo "check-tools: MISSING $1" >&2
  echo "  to install: $2" >&2
  missing=$((missing + 1))
}
ok() { echo "check-tools: ok $1"; }

if command -v go >/dev/null 2>&1; then
  ok "go ($(go env GOVERSION))"
else
  miss "go" "install Go 1.26 from the Go project and put /usr/local/go/bin on PATH"
fi

python="${SSMKIT_PYTHON:-}"
if [[ -z "$python" ]] && command -v python3 >/dev/null 2>&1; then
  python=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null || true)
fi
if [[ -z "$python" ]]; then
  miss "python3 (moto runs on it)" "install Python 3 (apt-get install python3 python3-pip), then python3 -m pip install 'moto[server]==5.2.1'"
else
  absent=$("$python" -c 'import importlib.util as u; print(" ".join(m for m in ("moto", "werkzeug", "flask", "flask_cors") if u.find_spec(m) is None))' 2>/dev/null) || absent="(python failed)"
  if [[ -n "$absent" ]]; then
    miss "moto for $python (cannot import: $absent)" "$python -m pip install 'moto[server]==5.2.1' (or set SSMKIT_PYTHON to an interpreter that has it)"
  else
    ok "moto $("$python" -c 'import moto; print(moto.__version__)' 2>/dev/null) ($python)"
  fi
fi

tf_install="install Terraform >= 1.11 (HashiCorp's release zip or apt repository) as terraform on PATH"
if command -v terraform >/dev/null 2>&1; then
  tfv=$(terraform version -json 2>/dev/null | sed -n 's/.*"terraform_version": *"\([0-9.]*\)".*/\1/p')
  if [[ -z "$tfv" ]]; then
    miss "a terraform that answers 'terraform version -json'" "$tf_install"
  elif [[ "$(printf '%s\n1.11.0\n' "$tfv" | sort -V | head -1)" != "1.11.0" ]]; then
    miss "terraform >= 1.11 (found $tfv)" "$tf_install"
  else
    ok "terraform $tfv"
  fi
else
  miss "terraform" "$tf_install"
fi

mirror="${SSMKIT_TF_PLUGIN_DIR:-/opt/tf-plugins}"
if [[ -d "$mirror/registry.terraform.io/hashicorp/aws" ]]; then
  ok "hashicorp/aws provider mirror ($mirror)"
elif [[ "${SSMKIT_TF_REGISTRY:-}" == 1 ]]; then
  ok "hashicorp/aws provider from the registry (SSMKIT_TF_REGISTRY=1)"
else
  miss "the hashicorp/aws provider mirror ($mirror/registry.terraform.io/hashicorp/aws)" \
    "on a machine that reaches the registry: 'terraform providers mirror $mirror' in a configuration that requires hashicorp/aws 5.100.0, then copy $mirror here (or set SSMKIT_TF_PLUGIN_DIR)"
fi

if command -v aws >/dev/null 2>&1; then
  ok "aws CLI ($(aws --version 2>&1 | cut -d' ' -f1))"
else
  miss "the AWS CLI (aws)" "apt-get install awscli, or python3 -m pip install awscli"
fi

for tool in ssh scp git; do
  if command -v "$tool" >/dev/null 2>&1; then
    ok "$tool"
  else
    miss "$tool (the ssh tests drive the real OpenSSH client and git)" "apt-get install openssh-client git"
  fi
done

if ((missing > 0)); then
  echo "check-tools: $missing missing; the tests that need them would fail (SSMKIT_CI=1)" >&2
  exit 1
fi
