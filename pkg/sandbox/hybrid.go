package sandbox

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/ssmkit/ssmkit/pkg/sandbox/fleet"
	"github.com/ssmkit/ssmkit/pkg/sandbox/ssmapi"
)

// addHybrid brings up an on-premises (hybrid) node the way a real one
// joins: an activation for the sandbox's hybrid service role, the agent's
// RegisterManagedInstance with its code and id (an mi- node), its first
// UpdateInstanceInformation (computer name, address, platform), then its
// control channel. Every call goes through the sandbox's own endpoint,
// signed.
func (s *Sandbox) addHybrid(ctx context.Context, spec InstanceSpec) (*Instance, error) {
	role, err := fleet.EnsureHybridRole(ctx, iam.NewFromConfig(s.awsCfg))
	if err != nil {
		return nil, err
	}
	var act struct{ ActivationId, ActivationCode string }
	if err := s.callSSM(ctx, "CreateActivation", map[string]any{"IamRole": role, "DefaultInstanceName": spec.Name,
		"Description": "ssmkit sandbox hybrid node " + spec.Name, "RegistrationLimit": 1}, &act); err != nil {
		return nil, err
	}
	var reg struct{ InstanceId string }
	if err := s.callSSM(ctx, "RegisterManagedInstance", map[string]any{"ActivationCode": act.ActivationCode, "ActivationId": act.ActivationId,
		"PublicKey": "", "PublicKeyType": "Rsa"}, &reg); err != nil {
		return nil, err
	}
	s.mu.Lock()
	n := len(s.instances)
	s.mu.Unlock()
	inst := &Instance{AgentVersion: spec.AgentVersion, Offline: spec.Offline, Hybrid: true, ActivationID: act.ActivationId}
	if inst.AgentVersion == "" {
		inst.AgentVersion = s.defaultAgentVersion()
	}
	inst.ID, inst.Name = reg.InstanceId, spec.Name
	inst.PrivateIP = fmt.Sprintf("192.168.%d.%d", 10+n/250, 10+n%250) // an on-premises address
	inst.Spec = fleet.Spec{Name: spec.Name, Tags: spec.Tags}
	report := map[string]any{"InstanceId": inst.ID, "AgentName": "amazon-ssm-agent",
		"AgentVersion": inst.AgentVersion, "AgentStatus": "Active", "ComputerName": hybridComputerName(spec.Name),
		"IPAddress": inst.PrivateIP, "PlatformType": "Linux", "PlatformName": "Ubuntu", "PlatformVersion": "22.04"}
	if err := s.callSSM(ctx, "UpdateInstanceInformation", report, nil); err != nil {
		return nil, err
	}
	if spec.Tags != nil {
		if err := s.registry.UpdateInstance(ctx, ssmapi.InstanceInfo{InstanceID: inst.ID, Tags: spec.Tags}); err != nil {
			return nil, err
		}
	}
	if spec.Offline {
		// Registered a day ago, silent since.
		if err := s.registry.SetLastPing(inst.ID, "", time.Now().Add(-26*time.Hour)); err != nil {
			return nil, err
		}
	}
	s.mu.Lock()
	s.instances = append(s.instances, inst)
	s.mu.Unlock()
	if !spec.Offline {
		s.startAgent(inst)
	}
	return inst, nil
}

// hybridComputerName is the host name a hybrid node reports.
func hybridComputerName(name string) string { return name + ".corp.example" }

// callSSM makes one signed AWS JSON 1.1 call to the sandbox's own SSM API
// (for calls the SDK does not model, such as RegisterManagedInstance).
func (s *Sandbox) callSSM(ctx context.Context, op string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url+"/", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "AmazonSSM."+op)
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(ctx, s.credentials(), req, hex.EncodeToString(sum[:]), "ssm", s.opts.Region, time.Now()); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	hc := http.DefaultClient
	if s.tlsCfg != nil {
		hc = &http.Client{Transport: &http.Transport{TLSClientConfig: s.tlsCfg}}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d: %s", op, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
	}
	return nil
}
