package ssmapi

import (
	"context"
	"fmt"
	"testing"
)

// TestMemoryInstancesPerAccount: each account sees its own instances (an
// empty account is the default one), sorted by ID, and an instance of one
// account cannot be changed or removed through another.
func TestMemoryInstancesPerAccount(t *testing.T) {
	ctx := context.Background()
	m := NewMemoryInstances()
	for i, acct := range []string{"", "111111111111", DefaultAccountID, "111111111111"} {
		if err := m.UpdateInstance(ctx, InstanceInfo{InstanceID: fmt.Sprintf("i-%d", 9-i), AccountID: acct, AgentVersion: "3.3.0.0"}); err != nil {
			t.Fatal(err)
		}
	}
	m.Put(InstanceInfo{InstanceID: "i-0", AccountID: "222222222222"})
	ids := func(acct string) string {
		t.Helper()
		list, err := m.ManagedInstances(ctx, acct)
		if err != nil {
			t.Fatal(err)
		}
		s := ""
		for _, ii := range list {
			if ii.AccountID != accountOf(acct) {
				t.Errorf("account %q lists %s of account %s", acct, ii.InstanceID, ii.AccountID)
			}
			s += ii.InstanceID + " "
		}
		return s
	}
	for acct, want := range map[string]string{"": "i-7 i-9 ", DefaultAccountID: "i-7 i-9 ", "111111111111": "i-6 i-8 ", "222222222222": "i-0 ", "333333333333": ""} {
		if got := ids(acct); got != want {
			t.Errorf("ManagedInstances(%q) = %q, want %q", acct, got, want)
		}
	}
	if ok, _ := m.RemoveInstance(ctx, "111111111111", "i-9"); ok {
		t.Error("removed i-9 through an account it is not in")
	}
	if err := m.SetLastPing("i-9", "111111111111", m.byAccount[DefaultAccountID]["i-9"].LastPing); err == nil {
		t.Error("set the last ping of i-9 through an account it is not in")
	}
	if ok, _ := m.RemoveInstance(ctx, "", "i-9"); !ok {
		t.Error("i-9 not removed from the default account")
	}
	if got := ids(DefaultAccountID); got != "i-7 " {
		t.Errorf("after removing i-9: %q", got)
	}
}
