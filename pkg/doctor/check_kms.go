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
		return failf(prefsFix(t.prefs().Document)+" with an existing kms_key_arn", "KMS key %s does not exist", k.ID)
	case k.State == "PendingDeletion":
		return failf(fmt.Sprintf("aws kms cancel-key-deletion --key-id %s && aws kms enable-key --key-id %s", k.ID, k.ID), "KMS key %s is pending deletion", k.ID)
	case !k.Enabled:
		return failf(fmt.Sprintf("aws kms enable-key --key-id %s", k.ID), "KMS key %s is %s: encrypted sessions fail", k.ID, k.State).with("KeyState=" + k.State)
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
	var bad []string
	var vars []string
	if t.role != nil {
		if d := policy.Evaluate([]policy.Document{*k.Policy}, policy.Request{Action: "kms:Decrypt", Principal: "AWS:" + t.role.ARN}).Decision; d == policy.ImplicitDeny || d == policy.ExplicitDeny {
			bad = append(bad, "role "+t.role.Name+" (kms:Decrypt)")
			vars = append(vars, fmt.Sprintf("kms_key_instance_role_arns = [%q]", t.role.ARN))
		}
	}
	if c := t.f.Caller; c != nil && c.ARN != "" {
		p := principalARN(c.ARN)
		if d := policy.Evaluate([]policy.Document{*k.Policy}, policy.Request{Action: "kms:GenerateDataKey", Principal: "AWS:" + p}).Decision; d == policy.ImplicitDeny || d == policy.ExplicitDeny {
			bad = append(bad, "you, "+p+" (kms:GenerateDataKey)")
			vars = append(vars, fmt.Sprintf("kms_key_operator_arns = [%q]", p))
		}
	}
	if len(bad) > 0 {
		return failf("Terraform: terraform/modules/session-preferences with "+strings.Join(vars, ", "), "the policy of key %s does not let %s use it", k.ID, strings.Join(bad, " or "))
	}
	return pass("the key policy lets the instance role and you use the key (directly or through IAM policies)")
}
