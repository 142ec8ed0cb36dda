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

// prefsModule is the Terraform alternative of a preferences fix.
func prefsModule(doc string) string {
	return fmt.Sprintf("Terraform: terraform/modules/session-preferences (document_name = %q)", doc)
}

// prefsRewrite is the advice for a document that cannot be edited in
// place.
func prefsRewrite(doc string) string {
	return fmt.Sprintf("write a valid document with `ssmkit prefs apply --document %s -f prefs.json` (`ssmkit prefs show --document %s` prints the defaults to start from), or %s",
		doc, doc, prefsModule(doc))
}

func (t *target) prefsDocument() Check {
	p := t.f.Prefs
	switch {
	case p == nil:
		return skip("the preferences were not read")
	case p.Err != nil && !p.Found:
		return skip("cannot read %s: %s", p.Document, shortErr(p.Err))
	case p.Err != nil:
		return failf(prefsRewrite(p.Document), "%s", p.Err.Error())
	case !p.Found:
		return pass(p.Document + " does not exist: Session Manager's defaults apply (20 minute idle timeout, no logging)")
	case len(p.UnknownSessionInputs) > 0:
		return warnf(prefsRewrite(p.Document), "%s has unknown inputs: %s (ssmkit does not know them: a typo?)", p.Document, strings.Join(p.UnknownSessionInputs, ", "))
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
		return failf("", "%s %s", prefs.KeyIdleSessionTimeout, msg).
			run(prefsModule(p.Document)+" idle_session_timeout", cmd("ssmkit", "prefs", "set", "--document", p.Document, "--idle-timeout", "20"))
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
		return failf("", "%s %s", prefs.KeyMaxSessionDuration, msg).
			run(prefsModule(p.Document)+" max_session_duration", cmd("ssmkit", "prefs", "set", "--document", p.Document, "--max-duration", "0"))
	}
	return pass("maximum session duration: " + p.MaxDuration + " minutes")
}
