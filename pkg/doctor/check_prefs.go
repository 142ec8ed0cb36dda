package doctor

import (
	"fmt"
	"strings"

	"github.com/ssmkit/ssmkit/pkg/prefs"
)

func (t *target) prefs() *Prefs {
	if t.f.Prefs == nil || t.f.Prefs.Err != nil {
		return &Prefs{}
	}
	return t.f.Prefs
}

func prefsFix(doc string) string {
	return fmt.Sprintf("Terraform: terraform/modules/session-preferences (document_name = %q), or `aws ssm update-document --name %s --content file://prefs.json --document-version '$LATEST'`", doc, doc)
}

func (t *target) prefsDocument() Check {
	p := t.f.Prefs
	switch {
	case p == nil:
		return skip("the preferences were not read")
	case p.Err != nil && !p.Found:
		return skip("cannot read %s: %s", p.Document, shortErr(p.Err))
	case p.Err != nil:
		return failf(prefsFix(p.Document), "%s", p.Err.Error())
	case !p.Found:
		return pass(p.Document + " does not exist: Session Manager's defaults apply (20 minute idle timeout, no logging)")
	case len(p.UnknownSessionInputs) > 0:
		return warnf(prefsFix(p.Document), "%s has unknown inputs: %s", p.Document, strings.Join(p.UnknownSessionInputs, ", "))
	}
	return pass(p.Document+" parses", "document: "+p.Document)
}

func (t *target) prefsIdle() Check {
	p := t.f.Prefs
	if p == nil || p.Err != nil {
		return skip("the preferences could not be read")
	}
	if p.IdleTimeout == "" {
		return pass("idle timeout: the default 20 minutes")
	}
	if msg, bad := p.Invalid[prefs.KeyIdleSessionTimeout]; bad {
		return failf(prefsFix(p.Document)+" with idle_session_timeout in range", "%s %s", prefs.KeyIdleSessionTimeout, msg)
	}
	return pass("idle timeout: " + p.IdleTimeout + " minutes")
}

func (t *target) prefsMax() Check {
	p := t.f.Prefs
	if p == nil || p.Err != nil {
		return skip("the preferences could not be read")
	}
	if p.MaxDuration == "" {
		return pass("no maximum session duration")
	}
	if msg, bad := p.Invalid[prefs.KeyMaxSessionDuration]; bad {
		return failf(prefsFix(p.Document)+" with max_session_duration in range", "%s %s", prefs.KeyMaxSessionDuration, msg)
	}
	return pass("maximum session duration: " + p.MaxDuration + " minutes")
}
