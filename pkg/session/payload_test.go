package session

import (
	"strings"
	"testing"
)

func TestMaxPayload(t *testing.T) {
	for _, tt := range []struct {
		opt     int
		env     string
		want    int
		wantErr string
	}{
		{0, "", 0, ""},
		{4096, "", 4096, ""},
		{0, "1024", 1024, ""},
		{0, " 65536 ", 65536, ""},
		{2048, "999999999", 2048, ""}, // the option wins
		{0, "32KiB", 0, "SSMKIT_MAX_PAYLOAD=\"32KiB\""},
		{0, "0", 0, "from 1 to"},
		{0, "2000000", 0, "from 1 to"},
		{-1, "", 0, "want 1 to"},
	} {
		t.Setenv(EnvMaxPayload, tt.env)
		got, err := Options{MaxPayloadSize: tt.opt}.maxPayload()
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("opt %d env %q: err %v, want one containing %q", tt.opt, tt.env, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("opt %d env %q: %d, %v; want %d", tt.opt, tt.env, got, err, tt.want)
		}
	}
}
