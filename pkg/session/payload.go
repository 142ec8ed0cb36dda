package session

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/ssmkit/ssmkit/pkg/protocol/datachannel"
)

// EnvMaxPayload names the environment variable that sets the largest
// payload ssmkit sends per data channel message, in bytes (default 32768,
// datachannel.DefaultMaxPayloadSize; the official peers send 1024). It
// works in every mode, including as the AWS CLI's session-manager-plugin,
// where no flag can be passed. Whatever it says, a session falls back to
// 1024 bytes by itself when the service refuses a message as too big.
const EnvMaxPayload = "SSMKIT_MAX_PAYLOAD"

// maxAllowedPayload bounds EnvMaxPayload.
const maxAllowedPayload = 1 << 20

// maxPayload resolves Options.MaxPayloadSize: itself when set, else
// $SSMKIT_MAX_PAYLOAD, else 0 (the data channel's default).
func (o Options) maxPayload() (int, error) {
	if o.MaxPayloadSize != 0 {
		if o.MaxPayloadSize < 1 || o.MaxPayloadSize > maxAllowedPayload {
			return 0, fmt.Errorf("maximum payload %d: want 1 to %d bytes", o.MaxPayloadSize, maxAllowedPayload)
		}
		return o.MaxPayloadSize, nil
	}
	v := strings.TrimSpace(os.Getenv(EnvMaxPayload))
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxAllowedPayload {
		return 0, fmt.Errorf("%s=%q: want a number of bytes from 1 to %d (default %d)", EnvMaxPayload, v, maxAllowedPayload, datachannel.DefaultMaxPayloadSize)
	}
	return n, nil
}
