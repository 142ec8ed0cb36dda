package ssmapi

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestPrivateDNSInAnswer(t *testing.T) {
	const answer = `<DescribeVpcEndpointsResponse><vpcEndpointSet>` +
		`<item><vpcEndpointId>vpce-1</vpcEndpointId><subnetIdSet><item>subnet-1</item></subnetIdSet><privateDnsEnabled>false</privateDnsEnabled></item>` +
		`<item><vpcEndpointId>vpce-2</vpcEndpointId><privateDnsEnabled>false</privateDnsEnabled></item>` +
		`<item><vpcEndpointId>vpce-3</vpcEndpointId><vpcEndpointType>Gateway</vpcEndpointType></item>` +
		`<item><vpcEndpointId>vpce-4</vpcEndpointId><privateDnsEnabled>true</privateDnsEnabled></item>` +
		`</vpcEndpointSet></DescribeVpcEndpointsResponse>`
	h := &Handler{}
	h.privateDNS.set("1", "vpce-2", true)
	h.privateDNS.set("1", "vpce-3", true) // a gateway endpoint has no such element: nothing to change
	h.privateDNS.set("1", "vpce-4", false)
	h.privateDNS.set("2", "vpce-1", true) // another account's endpoint of the same ID
	got := h.privateDNSInAnswer("1", answer)
	want := strings.NewReplacer(
		"<vpcEndpointId>vpce-2</vpcEndpointId><privateDnsEnabled>false", "<vpcEndpointId>vpce-2</vpcEndpointId><privateDnsEnabled>true",
		"<vpcEndpointId>vpce-4</vpcEndpointId><privateDnsEnabled>true", "<vpcEndpointId>vpce-4</vpcEndpointId><privateDnsEnabled>false",
	).Replace(answer)
	if got != want {
		t.Errorf("rewritten answer:\n%s\nwant\n%s", got, want)
	}
	if got := (&Handler{}).privateDNSInAnswer("1", answer); got != answer {
		t.Errorf("an answer with nothing recorded changed:\n%s", got)
	}
}

func TestLogKeysInAnswer(t *testing.T) {
	h := &Handler{}
	h.logKeys.set("", "plain", "arn:aws:kms:us-east-1:1:key/k")
	h.logKeys.set("", "was-encrypted", "")
	req, _ := http.NewRequest(http.MethodPost, "http://x/", nil)
	req.Header.Set("X-Amz-Target", logsTargetPrefix+"DescribeLogGroups")
	body := `{"logGroups":[{"logGroupName":"plain","arn":"a"},{"logGroupName":"was-encrypted","kmsKeyId":"k2"},{"logGroupName":"other"}]}`
	resp := &http.Response{StatusCode: 200, Request: req, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(body))}
	h.logKeysInAnswer(resp)
	out, _ := io.ReadAll(resp.Body)
	var got struct {
		LogGroups []map[string]string `json:"logGroups"`
	}
	if err := json.Unmarshal(out, &got); err != nil || len(got.LogGroups) != 3 {
		t.Fatalf("answer %s: %v", out, err)
	}
	if got.LogGroups[0]["kmsKeyId"] != "arn:aws:kms:us-east-1:1:key/k" || got.LogGroups[1]["kmsKeyId"] != "" || got.LogGroups[2]["kmsKeyId"] != "" {
		t.Errorf("answer %s", out)
	}
	if resp.ContentLength != int64(len(out)) {
		t.Errorf("Content-Length %d for %d bytes", resp.ContentLength, len(out))
	}
}
