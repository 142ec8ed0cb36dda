package doctor

import (
	"fmt"
	"strings"

	policy "github.com/ssmkit/ssmkit/pkg/iampolicy"
)

func (t *target) kmsEnabled() Check {
	k := t.f.Key
	switch {
	case k == nil:
		return skip("KMS encryption is not configured")
	case k.Err != nil:
		return skip("cannot describe key %s: %s", k.ID, shortErr(k.Err))
	case !k.Exists:
		return failf("", "KMS key %s does not exist", k.ID).
			run(fmt.Sprintf("name an existing key: `ssmkit prefs set --document %s --kms-key KEY` (or \"\" to turn KMS encryption off), or Terraform: terraform/modules/session-preferences kms_key_arn", t.prefs().Document))
	case k.State == "PendingDeletion":
		return failf("", "KMS key %s is pending deletion", k.ID).
			run("", cmd("aws", "kms", "cancel-key-deletion", "--key-id", k.KeyID), cmd("aws", "kms", "enable-key", "--key-id", k.KeyID))
	case !k.Enabled:
		return failf("", "KMS key %s is %s: encrypted sessions fail", k.ID, k.State).with("KeyState="+k.State).
			run("", cmd("aws", "kms", "enable-key", "--key-id", k.KeyID))
	}
	return pass("KMS key "+k.ID+" is enabled", "KeyState="+k.State)
}

func (t *target) kmsPolicy() Check {
	k := t.f.Key
	switch {
	case k == nil:
		return skip("KMS encryption is not configured")
	case k.Err != nil || !k.Exists:
		return skip("the key is missing or unreadable (see kms.key-enabled)")
	case k.Policy == nil:
		return skip("cannot read the key policy: %s", errText(k.PolicyErr))
	}
	var bad, vars []string
	var grants []any
	denied := func(action, principal string) bool {
		d := policy.Evaluate([]policy.Document{*k.Policy}, policy.Request{Action: action, Principal: "AWS:" + principal}).Decision
		return d == policy.ImplicitDeny || d == policy.ExplicitDeny
	}
	if t.role != nil && t.role.ARN != "" && denied("kms:Decrypt", t.role.ARN) {
		bad = append(bad, "role "+t.role.Name+" (kms:Decrypt)")
		vars = append(vars, fmt.Sprintf("kms_key_instance_role_arns = [%q]", t.role.ARN))
		grants = append(grants, keyStatement("ssmkit-instance-role-"+t.role.Name, t.role.ARN, "kms:Decrypt"))
	}
	if c := t.f.Caller; c != nil && c.ARN != "" {
		if p := principalARN(c.ARN); p != "" && denied("kms:GenerateDataKey", p) {
			bad = append(bad, "you, "+p+" (kms:GenerateDataKey)")
			vars = append(vars, fmt.Sprintf("kms_key_operator_arns = [%q]", p))
			grants = append(grants, keyStatement("ssmkit-operator-"+roleName(p), p, "kms:GenerateDataKey"))
		}
	}
	if len(bad) > 0 {
		return failf("", "the policy of key %s does not let %s use it", k.ID, strings.Join(bad, " or ")).
			run("Terraform: terraform/modules/session-preferences with "+strings.Join(vars, ", "),
				cmd("aws", "kms", "put-key-policy", "--key-id", k.KeyID, "--policy-name", "default", "--policy", policy.With(*k.Policy, grants...)))
	}
	return pass("the key policy lets the instance role and you use the key (directly or through IAM policies)")
}

// keyStatement is a key policy statement that lets principal perform
// action on the key.
func keyStatement(sid, principal, action string) map[string]any {
	return map[string]any{"Sid": sanitizeSid(sid), "Effect": "Allow", "Principal": map[string]string{"AWS": principal}, "Action": action, "Resource": "*"}
}

// sanitizeSid keeps the characters a statement ID may hold.
func sanitizeSid(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}
