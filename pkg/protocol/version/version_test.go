package version

import "testing"

func TestClientGreater(t *testing.T) {
	cases := []struct {
		a, b string
		want bool
	}{
		{"3.3.987.0", "3.0.196.0", true},
		{"3.0.196.0", "3.0.196.0", false},
		{"3.0.195.9", "3.0.196.0", false},
		{"3.1.2000", "3.0.196.0", false}, // part counts differ: unsupported
		{"3.x.1.0", "3.0.196.0", false},
		{"3.1.1512.0", "3.1.1511.0", true},
		{"10.0.0.0", "9.9.9.9", true},
	}
	for _, c := range cases {
		if got := ClientGreater(c.a, c.b); got != c.want {
			t.Errorf("ClientGreater(%q, %q) = %v", c.a, c.b, got)
		}
	}
}

func TestAgentCompare(t *testing.T) {
	cases := []struct {
		a, b string
		want int
	}{
		{"1.2.677.0", "1.1.70", 1},
		{"1.1.70", "1.1.70", 0},
		{"1.1.70.0", "1.1.70", 1}, // more parts with equal prefix is higher
		{"1.1.69", "1.1.70", -1},
		{"", "1.1.70", -1},
		{"1.2.295", "1.2.295", 0},
		{"1.2.296.0", "1.2.295", 1},
		{"1.2.331.0", "1.2.331.0", 0},
		{"1.10.0", "1.9.0", 1},
	}
	for _, c := range cases {
		if got := AgentCompare(c.a, c.b); got != c.want {
			t.Errorf("AgentCompare(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

func TestGates(t *testing.T) {
	if !ClientUsesMux("3.3.1142.0") || ClientUsesMux("3.0.196.0") || ClientUsesMux("3.0.150.0") {
		t.Fatal("ClientUsesMux")
	}
	if !ClientMuxKeepAliveOff("3.3.1142.0") || ClientMuxKeepAliveOff("3.1.1511.0") {
		t.Fatal("ClientMuxKeepAliveOff")
	}
	if !AgentUsesMux("1.2.677.0") || AgentUsesMux("1.1.69") || AgentUsesMux("") {
		t.Fatal("AgentUsesMux")
	}
	if !AgentMuxKeepAliveOff("1.2.677.0") || AgentMuxKeepAliveOff("1.2.331.0") {
		t.Fatal("AgentMuxKeepAliveOff")
	}
	if !ClientSendsTerminateFlag("2.3.723.0") || ClientSendsTerminateFlag("2.3.722.0") {
		t.Fatal("ClientSendsTerminateFlag")
	}
	if !Valid("3.3.1142.0") || Valid("3.3.1142") || Valid("a.b.c.d") {
		t.Fatal("Valid")
	}
}
