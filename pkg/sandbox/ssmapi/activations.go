package ssmapi

import (
	"crypto/rand"
	"encoding/hex"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Hybrid activations (moto 5.2.1 has none of these calls): CreateActivation,
// DescribeActivations and DeleteActivation; RegisterManagedInstance, the
// call `amazon-ssm-agent -register -code … -id …` makes, which turns an
// activation into an mi- node; and DeregisterManagedInstance.

// Activation limits AWS applies.
const (
	defaultActivationExpiry = 24 * time.Hour
	maxActivationExpiry     = 30 * 24 * time.Hour
	maxRegistrationLimit    = 1000
)

// activation is one hybrid activation.
type activation struct {
	id, code            string
	account             string
	description         string
	defaultInstanceName string
	iamRole             string
	limit, count        int
	created, expires    time.Time
	tags                []tag
}

type tag struct{ Key, Value string }

// activationOut is one DescribeActivations entry.
type activationOut struct {
	ActivationId        string
	Description         string `json:",omitempty"`
	DefaultInstanceName string `json:",omitempty"`
	IamRole             string
	RegistrationLimit   int
	RegistrationsCount  int
	ExpirationDate      float64
	Expired             bool
	CreatedDate         float64
	Tags                []tag `json:",omitempty"`
}

// activationCode returns a fresh 20-character activation code.
func activationCode() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return strings.ToUpper(hex.EncodeToString(b[:]))[:20]
}

// createActivation implements CreateActivation.
func (h *Handler) createActivation(q *request) (any, error) {
	var in struct {
		Description         string
		DefaultInstanceName string
		IamRole             string
		RegistrationLimit   int
		ExpirationDate      *float64
		Tags                []tag
	}
	if err := q.decode(&in); err != nil {
		return nil, err
	}
	if in.IamRole == "" {
		return nil, errorf("ValidationException", "1 validation error detected: Value null at 'iamRole' failed to satisfy constraint: Member must not be null")
	}
	if in.RegistrationLimit == 0 {
		in.RegistrationLimit = 1
	}
	if in.RegistrationLimit < 1 || in.RegistrationLimit > maxRegistrationLimit {
		return nil, errorf("ValidationException", "RegistrationLimit must be between 1 and %d", maxRegistrationLimit)
	}
	now := h.now()
	expires := now.Add(defaultActivationExpiry)
	if in.ExpirationDate != nil {
		expires = time.UnixMilli(int64(*in.ExpirationDate * 1000))
		if !expires.After(now) || expires.Sub(now) > maxActivationExpiry {
			return nil, errorf("ValidationException", "ExpirationDate must be in the future and at most 30 days from now")
		}
	}
	a := &activation{id: uuid.NewString(), code: activationCode(), account: h.account(q.ctx), description: in.Description,
		defaultInstanceName: in.DefaultInstanceName, iamRole: in.IamRole, limit: in.RegistrationLimit,
		created: now, expires: expires, tags: in.Tags}
	h.mu.Lock()
	h.activations[a.id] = a
	h.mu.Unlock()
	h.logf("CreateActivation %s (role %s, limit %d)", a.id, a.iamRole, a.limit)
	return map[string]any{"ActivationId": a.id, "ActivationCode": a.code}, nil
}

// describeActivations implements DescribeActivations.
func (h *Handler) describeActivations(q *request) (any, error) {
	var in struct {
		Filters []struct {
			FilterKey    string
			FilterValues []string
		}
		MaxResults int
		NextToken  string
	}
	if err := q.decode(&in); err != nil {
		return nil, err
	}
	for _, f := range in.Filters {
		switch f.FilterKey {
		case "ActivationIds", "DefaultInstanceName", "IamRole":
		default:
			return nil, errorf("InvalidFilter", "unsupported filter key %q (want ActivationIds, DefaultInstanceName or IamRole)", f.FilterKey)
		}
	}
	if in.MaxResults != 0 && (in.MaxResults < 1 || in.MaxResults > 50) {
		return nil, errorf("ValidationException", "MaxResults must be between 1 and 50")
	}
	account, now := h.account(q.ctx), h.now()
	h.mu.Lock()
	var list []activationOut
	for _, a := range h.activations {
		if a.account != account {
			continue
		}
		ok := true
		for _, f := range in.Filters {
			v := map[string]string{"ActivationIds": a.id, "DefaultInstanceName": a.defaultInstanceName, "IamRole": a.iamRole}[f.FilterKey]
			ok = ok && anyEqual([]string{v}, f.FilterValues)
		}
		if ok {
			list = append(list, activationOut{ActivationId: a.id, Description: a.description, DefaultInstanceName: a.defaultInstanceName,
				IamRole: a.iamRole, RegistrationLimit: a.limit, RegistrationsCount: a.count, ExpirationDate: epoch(a.expires),
				Expired: !now.Before(a.expires), CreatedDate: epoch(a.created), Tags: a.tags})
		}
	}
	h.mu.Unlock()
	sort.Slice(list, func(i, j int) bool {
		if list[i].CreatedDate != list[j].CreatedDate {
			return list[i].CreatedDate < list[j].CreatedDate
		}
		return list[i].ActivationId < list[j].ActivationId
	})
	page, next, err := paginate(list, in.MaxResults, 50, in.NextToken)
	if err != nil {
		return nil, err
	}
	out := map[string]any{"ActivationList": page}
	if next != "" {
		out["NextToken"] = next
	}
	return out, nil
}

// deleteActivation implements DeleteActivation: nodes already registered
// stay managed, as on AWS.
func (h *Handler) deleteActivation(q *request) (any, error) {
	var in struct{ ActivationId string }
	if err := q.decode(&in); err != nil {
		return nil, err
	}
	account := h.account(q.ctx)
	h.mu.Lock()
	a := h.activations[in.ActivationId]
	if a != nil && a.account == account {
		delete(h.activations, in.ActivationId)
	}
	h.mu.Unlock()
	if a == nil || a.account != account {
		return nil, errorf("InvalidActivationId", "The activation ID %s is not valid. Verify the activation ID and try again.", in.ActivationId)
	}
	return map[string]any{}, nil
}

// registerManagedInstance implements RegisterManagedInstance, the call the
// agent makes when it is registered with an activation code and id: a new
// mi- node in the activation's account, with the activation's role and
// default name.
func (h *Handler) registerManagedInstance(q *request) (any, error) {
	var in struct {
		ActivationCode string
		ActivationId   string
		PublicKey      string
		PublicKeyType  string
		Fingerprint    string
	}
	if err := q.decode(&in); err != nil {
		return nil, err
	}
	now := h.now()
	h.mu.Lock()
	a := h.activations[in.ActivationId]
	switch {
	case a == nil || !equalSecret(a.code, in.ActivationCode):
		h.mu.Unlock()
		return nil, errorf("InvalidActivation", "The activation is not valid. Verify the activation code and ID and try again.")
	case !now.Before(a.expires):
		h.mu.Unlock()
		return nil, errorf("InvalidActivation", "The activation has expired.")
	case a.count >= a.limit:
		h.mu.Unlock()
		return nil, errorf("InvalidActivation", "The activation has reached its registration limit of %d.", a.limit)
	}
	a.count++
	account, role, name, activationID := a.account, a.iamRole, a.defaultInstanceName, a.id
	h.mu.Unlock()
	id := "mi-" + strings.ReplaceAll(uuid.NewString(), "-", "")[:17]
	if err := h.opts.Instances.UpdateInstance(q.ctx, InstanceInfo{InstanceID: id, AccountID: account, Name: name,
		IAMRole: role, ResourceType: "ManagedInstance", ActivationID: activationID, RegistrationDate: now, LastPing: now}); err != nil {
		return nil, err
	}
	h.logf("RegisterManagedInstance %s with activation %s", id, activationID)
	return map[string]any{"InstanceId": id}, nil
}

// deregisterManagedInstance implements DeregisterManagedInstance: the node
// leaves DescribeInstanceInformation and its agent loses the service.
func (h *Handler) deregisterManagedInstance(q *request) (any, error) {
	var in struct{ InstanceId string }
	if err := q.decode(&in); err != nil {
		return nil, err
	}
	if !strings.HasPrefix(in.InstanceId, "mi-") {
		return nil, errorf("InvalidInstanceId", "%s is not a managed node registered with an activation (mi-…)", in.InstanceId)
	}
	ok, err := h.opts.Instances.RemoveInstance(q.ctx, h.account(q.ctx), in.InstanceId)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errorf("InvalidInstanceId", "Instance Id %s is not valid", in.InstanceId)
	}
	h.opts.Gateway.RemoveInstance(in.InstanceId)
	if h.opts.OnDeregister != nil {
		h.opts.OnDeregister(in.InstanceId)
	}
	h.logf("DeregisterManagedInstance %s", in.InstanceId)
	return map[string]any{}, nil
}
