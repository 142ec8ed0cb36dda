package datachannel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ssmkit/ssmkit/pkg/protocol/encryption"
	"github.com/ssmkit/ssmkit/pkg/protocol/version"
	"github.com/ssmkit/ssmkit/pkg/protocol/wire"
	"github.com/ssmkit/ssmkit/pkg/ssmdoc"
)

// Customer messages the agent sends in HandshakeComplete (§5.5).
const (
	kmsCustomerMessage       = "This session is encrypted using AWS KMS."
	outputUpgradeMessage     = "Please update session manager plugin version (minimum required version 1.2.312.0) for fully support of separate StdOut/StdErr output.\r\n"
	clientWithoutOutputSplit = "1.2.295"
)

func (c *Channel) isReady() bool {
	select {
	case <-c.readyCh:
		return true
	default:
		return false
	}
}

func (c *Channel) markReady() { c.readyOnce.Do(func() { close(c.readyCh) }) }

// Info returns what the handshake established so far.
func (c *Channel) Info() SessionInfo {
	c.infoMu.Lock()
	defer c.infoMu.Unlock()
	return c.info
}

// Handshake completes the session set-up (§5). The client role waits for
// the agent's HandshakeComplete, or for the first shell output of an agent
// that skips the handshake (§5.6). The agent role runs the handshake when
// the session needs one and returns at once otherwise. Either way, Read and
// Write may be used afterwards.
func (c *Channel) Handshake(ctx context.Context) (SessionInfo, error) {
	if c.cfg.Role == RoleAgent {
		if err := c.agentHandshake(ctx); err != nil {
			err = fmt.Errorf("%w: %w", ErrHandshake, err)
			c.finish(err)
			return SessionInfo{}, err
		}
		return c.Info(), nil
	}
	select {
	case <-c.readyCh:
		return c.Info(), nil
	case <-c.doneCh:
		return SessionInfo{}, c.closedErr()
	case <-ctx.Done():
		return SessionInfo{}, fmt.Errorf("waiting for the session handshake: %w", ctx.Err())
	}
}

// clientNoHandshake: the first Output arrived before any handshake, so this
// is a plain shell (§5.6).
func (c *Channel) clientNoHandshake() {
	c.infoMu.Lock()
	started := c.hsStarted
	if !started {
		c.info.SessionType = ssmdoc.SessionTypeStandardStream
	}
	c.infoMu.Unlock()
	if !started {
		c.markReady()
	}
}

// clientHandleRequest answers the agent's HandshakeRequest (§5.4).
func (c *Channel) clientHandleRequest(payload []byte) error {
	var req wire.HandshakeRequest
	if err := wire.DecodeJSON(payload, &req); err != nil {
		return fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	c.infoMu.Lock()
	c.hsStarted = true
	c.info.Handshake = true
	c.info.AgentVersion = req.AgentVersion
	c.infoMu.Unlock()

	resp := wire.HandshakeResponse{ClientVersion: c.cfg.ClientVersion}
	var pending *encryption.Cipher
	for _, a := range req.RequestedClientActions {
		pa := wire.ProcessedAction{ActionType: a.ActionType, ActionStatus: wire.ActionSuccess}
		var err error
		switch a.ActionType {
		case wire.ActionSessionType:
			err = c.clientSessionType(a.ActionParameters)
		case wire.ActionKMSEncryption:
			var result []byte
			pending, result, err = c.clientKMS(a.ActionParameters)
			pa.ActionResult = result
		default:
			pa.ActionStatus = wire.ActionUnsupported
			pa.Error = "Unsupported action " + string(a.ActionType)
		}
		if err != nil {
			pa.ActionStatus = wire.ActionFailed
			pa.Error = fmt.Sprintf("Failed to process action %s: %v", a.ActionType, err)
		}
		if pa.Error != "" {
			resp.Errors = append(resp.Errors, pa.Error)
		}
		resp.ProcessedClientActions = append(resp.ProcessedClientActions, pa)
	}
	body, err := wire.EncodeJSON(resp)
	if err != nil {
		return err
	}
	if err := c.sendStreamFrom(wire.PayloadHandshakeResponse, [][]byte{body}, len(body), true); err != nil {
		return err
	}
	if pending != nil {
		// Encryption starts once the response is built (§6.1).
		c.cipher.Store(pending)
		c.infoMu.Lock()
		c.info.Encrypted = true
		c.infoMu.Unlock()
	}
	if len(resp.Errors) > 0 {
		c.logf("handshake action failed: %v", resp.Errors)
	}
	return nil
}

func (c *Channel) clientSessionType(params json.RawMessage) error {
	var st wire.SessionTypeRequest
	if err := wire.DecodeJSON(params, &st); err != nil {
		return err
	}
	c.infoMu.Lock()
	defer c.infoMu.Unlock()
	switch st.SessionType {
	case ssmdoc.SessionTypeStandardStream, ssmdoc.SessionTypeInteractiveCommands, ssmdoc.SessionTypeNonInteractiveCommands:
		c.info.SessionType = st.SessionType
	case ssmdoc.SessionTypePort:
		c.info.SessionType = st.SessionType
		if len(st.Properties) > 0 && string(st.Properties) != "null" {
			c.info.Properties = append([]byte(nil), st.Properties...)
		}
	default:
		//lint:ignore ST1005 the text the official client sends, kept byte for byte
		return fmt.Errorf("Unknown session type %s", st.SessionType)
	}
	return nil
}

// clientKMS generates the session's data key (§6.1) and returns the
// ActionResult.
func (c *Channel) clientKMS(params json.RawMessage) (*encryption.Cipher, []byte, error) {
	var kr wire.KMSEncryptionRequest
	if err := wire.DecodeJSON(params, &kr); err != nil {
		return nil, nil, err
	}
	if c.cfg.KeyService == nil {
		return nil, nil, errors.New("the session requires KMS encryption but no KMS client is configured")
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.HandshakeTimeout)
	defer cancel()
	ci, blob, err := encryption.ClientKeyExchange(ctx, c.cfg.KeyService, kr.KMSKeyID, c.cfg.SessionID, c.cfg.TargetID, kr.Challenge)
	if err != nil {
		return nil, nil, err
	}
	result, err := wire.EncodeJSON(wire.KMSEncryptionResponse{
		KMSCipherTextKey:         blob,
		ChallengeAcknowledgement: kr.Challenge != "",
	})
	if err != nil {
		return nil, nil, err
	}
	return ci, result, nil
}

// clientHandleChallenge answers EncChallengeRequest (§6.3).
func (c *Channel) clientHandleChallenge(payload []byte) error {
	var ch wire.EncChallenge
	if err := wire.DecodeJSON(payload, &ch); err != nil {
		return fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	ci := c.cipher.Load()
	if ci == nil {
		return fmt.Errorf("%w: encryption challenge before key exchange", ErrHandshake)
	}
	answer, err := encryption.AnswerChallenge(ci, ch.Challenge)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	body, err := wire.EncodeJSON(wire.EncChallenge{Challenge: answer})
	if err != nil {
		return err
	}
	return c.sendStreamFrom(wire.PayloadEncChallengeResponse, [][]byte{body}, len(body), true)
}

// clientHandleComplete finishes the client's handshake (§5.5).
func (c *Channel) clientHandleComplete(payload []byte) error {
	var hc wire.HandshakeComplete
	if err := wire.DecodeJSON(payload, &hc); err != nil {
		return fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	c.infoMu.Lock()
	c.info.CustomerMessage = hc.CustomerMessage
	c.info.HandshakeTime = hc.HandshakeTimeToComplete
	st := c.info.SessionType
	c.infoMu.Unlock()
	if st == "" {
		return fmt.Errorf("%w: unable to determine SessionType", ErrHandshake)
	}
	if c.cfg.HandshakeSettle > 0 {
		c.inputAfter.Store(c.cfg.now().Add(c.cfg.HandshakeSettle).UnixNano())
	}
	c.markReady()
	return nil
}

// agentTakeResponse hands the HandshakeResponse to the waiting handshake.
func (c *Channel) agentTakeResponse(payload []byte) (processResult, error) {
	var resp wire.HandshakeResponse
	if err := wire.DecodeJSON(payload, &resp); err != nil {
		return processed, fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	select {
	case c.respCh <- resp:
	default: // a duplicate; the first one counts
	}
	return processed, nil
}

func (c *Channel) agentTakeChallenge(payload []byte) (processResult, error) {
	var ch wire.EncChallenge
	if err := wire.DecodeJSON(payload, &ch); err != nil {
		return processed, fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	select {
	case c.chalCh <- ch:
	default:
	}
	return processed, nil
}

// agentHandshake runs the agent's side of §5 (and §6 with KMS).
func (c *Channel) agentHandshake(ctx context.Context) error {
	s := c.cfg.Agent
	c.infoMu.Lock()
	c.info.SessionType = s.SessionType
	c.info.AgentVersion = c.cfg.AgentVersion
	if s.SessionType == ssmdoc.SessionTypePort {
		c.info.Properties = s.Properties
	}
	c.infoMu.Unlock()
	if !s.handshakeRequired() {
		c.markReady()
		return nil
	}
	c.infoMu.Lock()
	c.info.Handshake = true
	c.infoMu.Unlock()

	start := c.cfg.now()
	props := json.RawMessage(nil)
	if s.SessionType == ssmdoc.SessionTypePort && len(s.Properties) > 0 {
		props = s.Properties
	}
	stParams, err := wire.EncodeJSON(wire.SessionTypeRequest{SessionType: s.SessionType, Properties: props})
	if err != nil {
		return err
	}
	req := wire.HandshakeRequest{
		AgentVersion:           c.cfg.AgentVersion,
		RequestedClientActions: []wire.RequestedAction{{ActionType: wire.ActionSessionType, ActionParameters: stParams}},
	}
	challenge := ""
	if s.encrypted() {
		if c.cfg.KeyService == nil {
			return errors.New("the session requires KMS encryption but no KMS client is configured")
		}
		challenge = encryption.NewRandomChallenge()
		kp, err := wire.EncodeJSON(wire.KMSEncryptionRequest{KMSKeyID: s.KMSKeyID, Challenge: challenge})
		if err != nil {
			return err
		}
		req.RequestedClientActions = append(req.RequestedClientActions, wire.RequestedAction{ActionType: wire.ActionKMSEncryption, ActionParameters: kp})
	}
	body, err := wire.EncodeJSON(req)
	if err != nil {
		return err
	}
	if err := c.sendStream(wire.PayloadHandshakeRequest, body); err != nil {
		return err
	}

	var resp wire.HandshakeResponse
	select {
	case resp = <-c.respCh:
	case <-time.After(c.cfg.HandshakeTimeout):
		return errors.New("timed out waiting for the client's handshake response; update the session manager client")
	case <-c.doneCh:
		return c.closedErr()
	case <-ctx.Done():
		return ctx.Err()
	}
	c.infoMu.Lock()
	c.info.ClientVersion = resp.ClientVersion
	c.infoMu.Unlock()

	var kmsResult *wire.KMSEncryptionResponse
	for _, a := range resp.ProcessedClientActions {
		if a.ActionStatus != wire.ActionSuccess {
			return fmt.Errorf("%s failed on client with status %d error: %s", a.ActionType, a.ActionStatus, a.Error)
		}
		if a.ActionType == wire.ActionKMSEncryption {
			var r wire.KMSEncryptionResponse
			if err := wire.DecodeJSON(a.ActionResult, &r); err != nil {
				return err
			}
			kmsResult = &r
		}
	}
	customer := ""
	if s.SessionType == ssmdoc.SessionTypeNonInteractiveCommands && s.SeparateOutput &&
		version.AgentCompare(resp.ClientVersion, clientWithoutOutputSplit) <= 0 {
		customer = outputUpgradeMessage
	}
	if s.encrypted() {
		if kmsResult == nil {
			return errors.New("client did not perform KMS encryption")
		}
		kctx, cancel := context.WithTimeout(ctx, c.cfg.HandshakeTimeout)
		ci, err := encryption.AgentKeyExchange(kctx, c.cfg.KeyService, s.KMSKeyID, c.cfg.SessionID, c.cfg.TargetID,
			challenge, kmsResult.ChallengeAcknowledgement, kmsResult.KMSCipherTextKey, encryption.RequireChallenge(s.RequireChallenge))
		cancel()
		if err != nil {
			return err
		}
		c.cipher.Store(ci)
		chal, original, err := encryption.NewChallenge(ci)
		if err != nil {
			return err
		}
		cb, err := wire.EncodeJSON(wire.EncChallenge{Challenge: chal})
		if err != nil {
			return err
		}
		if err := c.sendStream(wire.PayloadEncChallengeRequest, cb); err != nil {
			return err
		}
		var answer wire.EncChallenge
		select {
		case answer = <-c.chalCh:
		case <-time.After(c.cfg.HandshakeTimeout):
			return errors.New("timed out waiting for the client's encryption challenge response")
		case <-c.doneCh:
			return c.closedErr()
		case <-ctx.Done():
			return ctx.Err()
		}
		if err := encryption.VerifyChallenge(ci, answer.Challenge, original); err != nil {
			return err
		}
		customer += kmsCustomerMessage
		c.infoMu.Lock()
		c.info.Encrypted = true
		c.infoMu.Unlock()
	}
	elapsed := c.cfg.now().Sub(start)
	hc, err := wire.EncodeJSON(wire.HandshakeComplete{HandshakeTimeToComplete: elapsed, CustomerMessage: customer})
	if err != nil {
		return err
	}
	// Ready before sending Complete: the client may answer at once.
	c.infoMu.Lock()
	c.info.CustomerMessage = customer
	c.info.HandshakeTime = elapsed
	c.infoMu.Unlock()
	c.markReady()
	return c.sendStream(wire.PayloadHandshakeComplete, hc)
}
