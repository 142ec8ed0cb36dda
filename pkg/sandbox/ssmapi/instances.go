package ssmapi

import (
	"context"
	"encoding/base64"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ssmkit/ssmkit/pkg/sandbox/mgs"
	"github.com/ssmkit/ssmkit/pkg/sandbox/sigv4"
)

// InstanceInfo is what the registry knows about a managed instance. Empty
// fields are filled from the control channel (AgentVersion, PlatformType)
// or left out of DescribeInstanceInformation.
type InstanceInfo struct {
	InstanceID string
	// AccountID is the account whose view lists the instance: the
	// verified caller's account selects the view (empty means
	// DefaultAccountID).
	AccountID string
	// Name is the instance's display name (e.g. its Name tag).
	Name            string
	ComputerName    string
	IPAddress       string
	AgentVersion    string
	AgentName       string
	PlatformType    string // Linux, Windows or MacOS (any case)
	PlatformName    string
	PlatformVersion string
	// ResourceType is EC2Instance or ManagedInstance; empty means guess
	// from the id (mi-… is a ManagedInstance).
	ResourceType      string
	IAMRole           string
	AssociationStatus string
	// ActivationID is the hybrid activation an mi- node registered with.
	ActivationID     string
	RegistrationDate time.Time
	// LastPing is the last UpdateInstanceInformation (or other sign of
	// life the registry saw); the control channel's is also considered.
	LastPing time.Time
	Tags     map[string]string
}

// Instances is the managed-instance registry the sandbox keeps (emulated
// agents, moto EC2 instances, real agents that called
// UpdateInstanceInformation).
type Instances interface {
	// ManagedInstances lists the managed instances of one account, by ID.
	ManagedInstances(ctx context.Context, accountID string) ([]InstanceInfo, error)
	// UpdateInstance registers an instance or updates what is known about
	// it. Empty fields of info leave the stored values unchanged.
	UpdateInstance(ctx context.Context, info InstanceInfo) error
	// RemoveInstance deregisters an instance of an account; it reports
	// whether the instance was registered.
	RemoveInstance(ctx context.Context, accountID, instanceID string) (bool, error)
}

// accountOf normalises an empty account to DefaultAccountID.
func accountOf(id string) string {
	if id == "" {
		return DefaultAccountID
	}
	return id
}

// MemoryInstances is an in-memory Instances. The zero value is not usable;
// create it with NewMemoryInstances.
type MemoryInstances struct {
	mu sync.Mutex
	// byAccount holds each account's instances by ID: a listing costs what
	// that account holds, as in AWS, not what every account of the
	// sandbox holds (a fleet of 10 accounts × 1,000 instances).
	byAccount map[string]map[string]InstanceInfo
}

// NewMemoryInstances returns an empty registry.
func NewMemoryInstances() *MemoryInstances {
	return &MemoryInstances{byAccount: make(map[string]map[string]InstanceInfo)}
}

// ManagedInstances implements Instances.
func (m *MemoryInstances) ManagedInstances(_ context.Context, accountID string) ([]InstanceInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	reg := m.byAccount[accountOf(accountID)]
	out := make([]InstanceInfo, 0, len(reg))
	for _, v := range reg {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].InstanceID < out[j].InstanceID })
	return out, nil
}

// account returns the instances of accountID, creating the map if asked.
// m.mu must be held.
func (m *MemoryInstances) account(accountID string, create bool) map[string]InstanceInfo {
	a := accountOf(accountID)
	reg := m.byAccount[a]
	if reg == nil && create {
		reg = make(map[string]InstanceInfo)
		m.byAccount[a] = reg
	}
	return reg
}

// UpdateInstance implements Instances.
func (m *MemoryInstances) UpdateInstance(_ context.Context, info InstanceInfo) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	reg := m.account(info.AccountID, true)
	cur, ok := reg[info.InstanceID]
	if !ok {
		cur = InstanceInfo{InstanceID: info.InstanceID, AccountID: accountOf(info.AccountID)}
	}
	merge := func(dst *string, src string) {
		if src != "" {
			*dst = src
		}
	}
	merge(&cur.Name, info.Name)
	merge(&cur.ComputerName, info.ComputerName)
	merge(&cur.IPAddress, info.IPAddress)
	merge(&cur.AgentVersion, info.AgentVersion)
	merge(&cur.AgentName, info.AgentName)
	merge(&cur.PlatformType, info.PlatformType)
	merge(&cur.PlatformName, info.PlatformName)
	merge(&cur.PlatformVersion, info.PlatformVersion)
	merge(&cur.ResourceType, info.ResourceType)
	merge(&cur.IAMRole, info.IAMRole)
	merge(&cur.AssociationStatus, info.AssociationStatus)
	merge(&cur.ActivationID, info.ActivationID)
	if !info.RegistrationDate.IsZero() && cur.RegistrationDate.IsZero() {
		cur.RegistrationDate = info.RegistrationDate
	}
	if info.LastPing.After(cur.LastPing) {
		cur.LastPing = info.LastPing
	}
	if info.Tags != nil {
		cur.Tags = make(map[string]string, len(info.Tags))
		for k, v := range info.Tags {
			cur.Tags[k] = v
		}
	}
	reg[info.InstanceID] = cur
	return nil
}

// RemoveInstance implements Instances.
func (m *MemoryInstances) RemoveInstance(_ context.Context, accountID, instanceID string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	reg := m.account(accountID, false)
	_, ok := reg[instanceID]
	delete(reg, instanceID)
	return ok, nil
}

// SetLastPing sets an instance's last sign of life, earlier or later than
// the stored one (an agent that went silent long ago).
func (m *MemoryInstances) SetLastPing(instanceID, accountID string, t time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	reg := m.account(accountID, false)
	cur, ok := reg[instanceID]
	if !ok {
		return fmt.Errorf("instance %s is not registered", instanceID)
	}
	cur.LastPing = t
	reg[instanceID] = cur
	return nil
}

// Put stores info as is (replacing any earlier record).
func (m *MemoryInstances) Put(info InstanceInfo) {
	m.mu.Lock()
	defer m.mu.Unlock()
	info.AccountID = accountOf(info.AccountID)
	m.account(info.AccountID, true)[info.InstanceID] = info
}

// instanceView is a managed instance joined with its control-channel state.
type instanceView struct {
	InstanceInfo
	pingStatus string
}

// account is the account whose view a request sees: the verified caller's
// (sigv4.CallerFrom), else the handler's own.
func (h *Handler) account(ctx context.Context) string {
	if c := sigv4.CallerFrom(ctx); c != nil && c.AccountID != "" {
		return c.AccountID
	}
	return h.opts.AccountID
}

// instances joins the caller's account view of the registry with the
// gateway's control channels. Instances that only opened a control channel
// (container-mode agents) are included too, in the account whose
// credentials opened it.
func (h *Handler) instances(ctx context.Context) ([]instanceView, error) {
	account := h.account(ctx)
	reg, err := h.opts.Instances.ManagedInstances(ctx, account)
	if err != nil {
		return nil, err
	}
	cc := make(map[string]mgs.InstanceInfo)
	for _, i := range h.opts.Gateway.Instances() {
		if accountOf(i.AccountID) == account {
			cc[i.InstanceID] = i
		}
	}
	out := make([]instanceView, 0, len(reg)+len(cc))
	seen := make(map[string]bool, len(reg))
	for _, ri := range reg {
		seen[ri.InstanceID] = true
		out = append(out, joinInstance(ri, cc[ri.InstanceID]))
	}
	for id, ci := range cc {
		if !seen[id] {
			out = append(out, joinInstance(InstanceInfo{InstanceID: id}, ci))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].InstanceID < out[j].InstanceID })
	return out, nil
}

// joinInstance fills registry gaps from the control channel.
func joinInstance(ri InstanceInfo, ci mgs.InstanceInfo) instanceView {
	v := instanceView{InstanceInfo: ri, pingStatus: mgs.PingStatusConnectionLost}
	if ci.InstanceID != "" {
		v.pingStatus = ci.PingStatus
		if ci.LastPingDateTime.After(v.LastPing) {
			v.LastPing = ci.LastPingDateTime
		}
		if ci.AgentVersion != "" {
			v.AgentVersion = ci.AgentVersion
		}
		if v.PlatformType == "" {
			v.PlatformType = ci.PlatformType
		}
	}
	v.PlatformType = canonicalPlatform(v.PlatformType)
	if v.ResourceType == "" {
		v.ResourceType = "EC2Instance"
		if strings.HasPrefix(v.InstanceID, "mi-") {
			v.ResourceType = "ManagedInstance"
		}
	}
	if v.AgentName == "" {
		v.AgentName = "amazon-ssm-agent"
	}
	return v
}

// canonicalPlatform maps the agent's lowercase platform to the API's enum.
func canonicalPlatform(p string) string {
	switch strings.ToLower(p) {
	case "linux":
		return "Linux"
	case "windows":
		return "Windows"
	case "macos", "darwin":
		return "MacOS"
	}
	return p
}

// instanceInformation is one entry of DescribeInstanceInformation.
type instanceInformation struct {
	InstanceId        string
	PingStatus        string
	LastPingDateTime  *float64 `json:",omitempty"`
	AgentVersion      string   `json:",omitempty"`
	IsLatestVersion   bool
	PlatformType      string   `json:",omitempty"`
	PlatformName      string   `json:",omitempty"`
	PlatformVersion   string   `json:",omitempty"`
	IPAddress         string   `json:",omitempty"`
	ComputerName      string   `json:",omitempty"`
	Name              string   `json:",omitempty"`
	IamRole           string   `json:",omitempty"`
	RegistrationDate  *float64 `json:",omitempty"`
	ResourceType      string
	ActivationId      string `json:",omitempty"`
	AssociationStatus string `json:",omitempty"`
	SourceId          string
	SourceType        string
}

// filterSet is a parsed set of instance filters (all must match).
type filterSet []struct {
	key    string
	values []string
}

// match reports whether v passes every filter.
func (fs filterSet) match(v instanceView) bool {
	for _, f := range fs {
		var got []string
		switch {
		case f.key == "InstanceIds":
			got = []string{v.InstanceID}
		case f.key == "AgentVersion":
			got = []string{v.AgentVersion}
		case f.key == "PingStatus":
			got = []string{v.pingStatus}
		case f.key == "PlatformTypes" || f.key == "PlatformType":
			got = []string{v.PlatformType}
		case f.key == "ResourceType":
			got = []string{v.ResourceType}
		case f.key == "AssociationStatus":
			got = []string{v.AssociationStatus}
		case f.key == "IamRole":
			got = []string{v.IAMRole}
		case f.key == "ActivationIds":
			got = []string{v.ActivationID}
		case f.key == "tag-key":
			for k := range v.Tags {
				got = append(got, k)
			}
		case strings.HasPrefix(f.key, "tag:"):
			if val, ok := v.Tags[strings.TrimPrefix(f.key, "tag:")]; ok {
				got = []string{val}
			}
		}
		if !anyEqual(got, f.values) {
			return false
		}
	}
	return true
}

func anyEqual(got, want []string) bool {
	for _, g := range got {
		for _, w := range want {
			if g == w {
				return true
			}
		}
	}
	return false
}

// validInstanceFilterKey lists the keys DescribeInstanceInformation accepts.
func validInstanceFilterKey(k string) bool {
	switch k {
	case "InstanceIds", "AgentVersion", "PingStatus", "PlatformTypes", "ResourceType",
		"AssociationStatus", "IamRole", "ActivationIds", "tag-key":
		return true
	}
	return strings.HasPrefix(k, "tag:") && len(k) > 4
}

// describeInstanceInformation implements DescribeInstanceInformation.
func (h *Handler) describeInstanceInformation(q *request) (any, error) {
	var in struct {
		InstanceInformationFilterList []struct {
			Key      string   `json:"key"`
			ValueSet []string `json:"valueSet"`
		}
		Filters []struct {
			Key    string
			Values []string
		}
		MaxResults int
		NextToken  string
	}
	if err := q.decode(&in); err != nil {
		return nil, err
	}
	var fs filterSet
	add := func(k string, vals []string) error {
		if !validInstanceFilterKey(k) {
			return errorf("InvalidInstanceInformationFilterValue", "unsupported filter key %q", k)
		}
		if len(vals) == 0 {
			return errorf("InvalidInstanceInformationFilterValue", "filter %q has no values", k)
		}
		fs = append(fs, struct {
			key    string
			values []string
		}{k, vals})
		return nil
	}
	for _, f := range in.InstanceInformationFilterList {
		if strings.HasPrefix(f.Key, "tag") {
			return nil, errorf("InvalidFilterKey", "tag filters are only allowed in Filters")
		}
		if err := add(f.Key, f.ValueSet); err != nil {
			return nil, err
		}
	}
	for _, f := range in.Filters {
		if err := add(f.Key, f.Values); err != nil {
			return nil, err
		}
	}
	if in.MaxResults != 0 && (in.MaxResults < 5 || in.MaxResults > 50) {
		return nil, errorf("ValidationException", "MaxResults must be between 5 and 50")
	}
	all, err := h.instances(q.ctx)
	if err != nil {
		return nil, err
	}
	var list []instanceInformation
	for _, v := range all {
		if !fs.match(v) {
			continue
		}
		ii := instanceInformation{
			InstanceId:        v.InstanceID,
			PingStatus:        v.pingStatus,
			AgentVersion:      v.AgentVersion,
			IsLatestVersion:   v.AgentVersion != "",
			PlatformType:      v.PlatformType,
			PlatformName:      v.PlatformName,
			PlatformVersion:   v.PlatformVersion,
			IPAddress:         v.IPAddress,
			ComputerName:      v.ComputerName,
			Name:              v.Name,
			IamRole:           v.IAMRole,
			ResourceType:      v.ResourceType,
			ActivationId:      v.ActivationID,
			AssociationStatus: v.AssociationStatus,
			SourceId:          v.InstanceID,
			SourceType:        "AWS::EC2::Instance",
		}
		if v.ResourceType == "ManagedInstance" {
			ii.SourceType = "AWS::SSM::ManagedInstance"
		}
		if !v.LastPing.IsZero() {
			e := epoch(v.LastPing)
			ii.LastPingDateTime = &e
		}
		if !v.RegistrationDate.IsZero() {
			e := epoch(v.RegistrationDate)
			ii.RegistrationDate = &e
		}
		list = append(list, ii)
	}
	page, next, err := paginate(list, in.MaxResults, 50, in.NextToken)
	if err != nil {
		return nil, err
	}
	out := map[string]any{"InstanceInformationList": page}
	if next != "" {
		out["NextToken"] = next
	}
	return out, nil
}

// paginate returns one page of items from the opaque token's offset.
func paginate[T any](items []T, maxResults, defaultMax int, token string) ([]T, string, error) {
	if maxResults <= 0 {
		maxResults = defaultMax
	}
	off := 0
	if token != "" {
		b, err := base64.RawURLEncoding.DecodeString(token)
		n, err2 := strconv.Atoi(strings.TrimPrefix(string(b), "o:"))
		if err != nil || err2 != nil || !strings.HasPrefix(string(b), "o:") || n < 0 || n > len(items) {
			return nil, "", errorf("InvalidNextToken", "the NextToken is not valid")
		}
		off = n
	}
	end := min(off+maxResults, len(items))
	page := items[off:end]
	if page == nil {
		page = []T{}
	}
	next := ""
	if end < len(items) {
		next = base64.RawURLEncoding.EncodeToString([]byte("o:" + strconv.Itoa(end)))
	}
	return page, next, nil
}

// updateInstanceInformation implements UpdateInstanceInformation: how a real
// agent becomes a managed instance (REAL-AGENT.md).
func (h *Handler) updateInstanceInformation(q *request) (any, error) {
	var in struct {
		InstanceId      string
		AgentName       string
		AgentVersion    string
		AgentStatus     string
		PlatformType    string
		PlatformName    string
		PlatformVersion string
		IPAddress       string
		ComputerName    string
	}
	if err := q.decode(&in); err != nil {
		return nil, err
	}
	if in.InstanceId == "" {
		return nil, errorf("ValidationException", "InstanceId is required")
	}
	now := h.now()
	err := h.opts.Instances.UpdateInstance(q.ctx, InstanceInfo{
		InstanceID:       in.InstanceId,
		AccountID:        h.account(q.ctx),
		AgentName:        in.AgentName,
		AgentVersion:     in.AgentVersion,
		PlatformType:     canonicalPlatform(in.PlatformType),
		PlatformName:     in.PlatformName,
		PlatformVersion:  in.PlatformVersion,
		IPAddress:        in.IPAddress,
		ComputerName:     in.ComputerName,
		RegistrationDate: now,
		LastPing:         now,
	})
	if err != nil {
		return nil, err
	}
	return map[string]any{}, nil
}

// listInstanceAssociations implements ListInstanceAssociations: the sandbox
// has no State Manager associations.
func (h *Handler) listInstanceAssociations(q *request) (any, error) {
	var in struct{ InstanceId string }
	if err := q.decode(&in); err != nil {
		return nil, err
	}
	return map[string]any{"Associations": []any{}}, nil
}

// getConnectionStatus implements GetConnectionStatus.
func (h *Handler) getConnectionStatus(q *request) (any, error) {
	var in struct{ Target string }
	if err := q.decode(&in); err != nil {
		return nil, err
	}
	if in.Target == "" {
		return nil, errorf("ValidationException", "Target is required")
	}
	status := "notconnected"
	all, err := h.instances(q.ctx)
	if err != nil {
		return nil, err
	}
	for _, i := range all {
		if i.InstanceID == in.Target && i.pingStatus == mgs.PingStatusOnline {
			status = "connected"
		}
	}
	return map[string]any{"Target": in.Target, "Status": status}, nil
}
