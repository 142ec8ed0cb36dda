package version

import "testing"

func TestFeatures(t *testing.T) {
	// The gates issue 11 corrected: port forwarding is older than
	// multiplexing, and 3.0.161.0 forwards ports (one connection at a time).
	if !PortForwarding.SupportedBy("3.0.161.0") || Multiplexing.SupportedBy("3.0.161.0") {
		t.Errorf("3.0.161.0: port forwarding %v, multiplexing %v", PortForwarding.SupportedBy("3.0.161.0"), Multiplexing.SupportedBy("3.0.161.0"))
	}
	if PortForwarding.SupportedBy("2.3.671.0") || !PortForwarding.SupportedBy("2.3.672.0") {
		t.Error("port forwarding gate is not 2.3.672.0")
	}
	if !Multiplexing.SupportedBy("3.0.222.0") || Multiplexing.SupportedBy("3.0.221.9") {
		t.Error("multiplexing gate is not 3.0.222.0")
	}
	if RemoteHost.SupportedBy("3.1.1187.0") || !RemoteHost.SupportedBy("3.1.1188.0") {
		t.Error("remote host gate is not 3.1.1188.0")
	}
	for _, f := range Features {
		if f.SupportedBy("") {
			t.Errorf("%s: an unknown version has it", f.ID)
		}
		if !Valid(f.MinAgent) || f.ID == "" || f.Name == "" {
			t.Errorf("bad feature %+v", f)
		}
	}
	for i := 1; i < len(Features); i++ {
		if AgentCompare(Features[i-1].MinAgent, Features[i].MinAgent) > 0 {
			t.Errorf("Features not oldest first: %s after %s", Features[i].ID, Features[i-1].ID)
		}
	}
	// The multiplexing feature is what the client's wire rule (agent >
	// MuxAgent) turns on: every agent with the feature uses smux.
	if !ClientUsesMux(Multiplexing.MinAgent) {
		t.Errorf("an agent with multiplexing (%s) would not get smux from the client", Multiplexing.MinAgent)
	}
}
