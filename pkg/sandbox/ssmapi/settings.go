package ssmapi

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// DefaultHostManagementSetting is the service setting id of Default Host
// Management Configuration, which the sandbox serves itself.
const DefaultHostManagementSetting = "/ssm/managed-instance/default-ec2-instance-management-role"

// defaultHostManagementValue is the setting's value before anyone sets it.
const defaultHostManagementValue = "$None"

// serviceSetting is a stored service setting value.
type serviceSetting struct {
	value    string
	modified time.Time
	user     string
}

// isServiceSettingOp reports whether op is one of the service-setting calls.
func isServiceSettingOp(op string) bool {
	return op == "GetServiceSetting" || op == "UpdateServiceSetting" || op == "ResetServiceSetting"
}

// settingID normalises a setting id given as a path or as an ARN.
func settingID(id string) string {
	if i := strings.Index(id, ":servicesetting"); i >= 0 && strings.HasPrefix(id, "arn:") {
		return id[i+len(":servicesetting"):]
	}
	return id
}

// serveServiceSetting serves the setting calls for the default host
// management setting and proxies the others to moto with the body intact.
func (h *Handler) serveServiceSetting(w http.ResponseWriter, r *http.Request, op string) {
	body, err := readBody(w, r)
	if err != nil {
		h.writeErr(w, err)
		return
	}
	q := &request{ctx: r.Context(), r: r, body: body}
	var in struct {
		SettingId    string
		SettingValue *string
	}
	if err := q.decode(&in); err != nil {
		h.writeErr(w, err)
		return
	}
	if settingID(in.SettingId) != DefaultHostManagementSetting {
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		h.proxy.ServeHTTP(w, r)
		return
	}
	owner, _ := h.caller(r)
	h.mu.Lock()
	st, set := h.settings[DefaultHostManagementSetting]
	switch op {
	case "UpdateServiceSetting":
		if in.SettingValue == nil {
			h.mu.Unlock()
			h.writeErr(w, errorf("ValidationException", "SettingValue is required"))
			return
		}
		st = serviceSetting{value: *in.SettingValue, modified: h.now(), user: owner}
		h.settings[DefaultHostManagementSetting] = st
		h.mu.Unlock()
		writeJSON(w, map[string]any{})
		return
	case "ResetServiceSetting":
		delete(h.settings, DefaultHostManagementSetting)
		set = false
		st = serviceSetting{modified: h.now(), user: owner}
	}
	h.mu.Unlock()
	status, value := "Customized", st.value
	if !set {
		status, value = "Default", defaultHostManagementValue
	}
	out := map[string]any{
		"SettingId":    DefaultHostManagementSetting,
		"SettingValue": value,
		"Status":       status,
		"ARN": fmt.Sprintf("arn:aws:ssm:%s:%s:servicesetting%s",
			h.opts.Region, h.opts.AccountID, DefaultHostManagementSetting),
	}
	if !st.modified.IsZero() {
		out["LastModifiedDate"] = epoch(st.modified)
		out["LastModifiedUser"] = st.user
	}
	writeJSON(w, map[string]any{"ServiceSetting": out})
}
