package awsapi

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/ssocreds"
	"github.com/aws/smithy-go"
)

// regionFix is the shared wording for every missing-region situation.
const regionFix = "set --region or AWS_REGION, or add region to your profile"

var (
	// iamActionRE finds the action in IAM denial messages, e.g.
	// "... is not authorized to perform: ssm:StartSession on resource: ...".
	iamActionRE = regexp.MustCompile(`perform: ([A-Za-z0-9-]+:[A-Za-z0-9*]+)`)
	// targetRE finds an EC2 instance or hybrid managed node ID.
	targetRE = regexp.MustCompile(`\b(?:i|mi)-[0-9a-f]{8,17}\b`)
)

// iamPrefix maps SDK service IDs to IAM action prefixes for the services
// whose operation names are also their IAM action names.
var iamPrefix = map[string]string{
	"SSM":             "ssm",
	"EC2":             "ec2",
	"IAM":             "iam",
	"STS":             "sts",
	"KMS":             "kms",
	"CloudWatch Logs": "logs",
}

// Hint returns a one-line fix for err, or "" when ssmkit knows nothing
// useful to add. It recognises AWS API error codes (from any wrapped
// smithy.APIError), credential and profile resolution failures, a missing
// region, and endpoints that refuse connections. Hints never quote the
// error's message beyond IAM action names and instance IDs.
func Hint(err error) string {
	if err == nil {
		return ""
	}

	var profileErr config.SharedConfigProfileNotExistError
	if errors.As(err, &profileErr) {
		return fmt.Sprintf("profile %q is not in your AWS config files: check --profile and AWS_PROFILE, or run `aws configure --profile %s`",
			profileErr.Profile, profileErr.Profile)
	}
	var missingRegion *aws.MissingRegionError
	if errors.As(err, &missingRegion) || strings.Contains(err.Error(), "Missing Region") {
		return regionFix
	}
	var ssoErr *ssocreds.InvalidTokenError
	if errors.As(err, &ssoErr) {
		return "your AWS SSO session has expired: run `aws sso login` (with --profile if you use one) and retry"
	}

	if status, ok := bareHTTPStatus(err); ok {
		if status == http.StatusNotFound {
			return "the endpoint answered HTTP 404 with no AWS error, so it does not serve this API at that address: " +
				"check --endpoint-url (and AWS_ENDPOINT_URL or the service's AWS_ENDPOINT_URL_<SERVICE>) and --region"
		}
		return fmt.Sprintf("the endpoint answered HTTP %d with no AWS error: check --endpoint-url (and AWS_ENDPOINT_URL), --region, and any proxy in between", status)
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		if h := apiHint(err, apiErr); h != "" {
			return h
		}
	}

	if isCredentialsError(err) {
		return "no usable AWS credentials: choose a profile with --profile or AWS_PROFILE, set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run `aws sso login`"
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return "the AWS endpoint refused the connection: is the endpoint (or `ssmkit sandbox`) running? check --endpoint-url and AWS_ENDPOINT_URL"
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return fmt.Sprintf("cannot resolve %s: check your network, --region and --endpoint-url", dnsErr.Name)
	}
	return ""
}

func apiHint(err error, apiErr smithy.APIError) string {
	msg := apiErr.ErrorMessage()
	switch apiErr.ErrorCode() {
	case "AccessDeniedException", "AccessDenied", "UnauthorizedOperation":
		return accessDeniedHint(err, msg)

	case "TargetNotConnected":
		target := targetRE.FindString(msg)
		if target == "" {
			return "the SSM Agent on the target is not connected (instance stopped, agent offline, no instance profile, or no network path to SSM): run `ssmkit doctor <target>`"
		}
		return fmt.Sprintf("the SSM Agent on %s is not connected (instance stopped, agent offline, no instance profile, or no network path to SSM): run `ssmkit doctor %s`", target, target)

	case "InvalidInstanceId":
		target := targetRE.FindString(msg)
		if target == "" {
			target = "<target>"
		}
		return fmt.Sprintf("the target is not a running managed node in this account and region: check the ID and --region, then run `ssmkit doctor %s`", target)

	case "InvalidDocument":
		return "the SSM document does not exist in this region or is not shared with this account: check the document name and --region"

	case "ExpiredToken", "ExpiredTokenException":
		return "your AWS credentials have expired: refresh them (for SSO profiles run `aws sso login`) and retry"

	case "UnrecognizedClientException", "InvalidClientTokenId", "AuthFailure", "InvalidAccessKeyId":
		return "AWS does not recognise your access key: check the profile's credentials are current, and that AWS_SESSION_TOKEN is set when using temporary keys"

	case "SignatureDoesNotMatch", "InvalidSignatureException":
		if strings.Contains(strings.ToLower(msg), "expired") {
			return "the request signature expired: check that the system clock is correct"
		}
		return "the secret access key does not match the access key ID: check your credentials"

	case "ThrottlingException", "Throttling", "ThrottledException", "TooManyRequestsException", "RequestLimitExceeded":
		return "AWS is throttling these requests: wait and retry, or act on fewer targets at once"
	}
	return ""
}

func accessDeniedHint(err error, msg string) string {
	if strings.Contains(msg, "explicit deny") {
		if m := iamActionRE.FindStringSubmatch(msg); m != nil {
			return fmt.Sprintf("%s is explicitly denied (a deny statement, permissions boundary or SCP): ask an administrator, or use another --profile", m[1])
		}
		return "the action is explicitly denied (a deny statement, permissions boundary or SCP): ask an administrator, or use another --profile"
	}
	if m := iamActionRE.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("your credentials lack the IAM permission %s: allow it in the role or user's policy, or use another --profile", m[1])
	}
	var opErr *smithy.OperationError
	if errors.As(err, &opErr) {
		if prefix, ok := iamPrefix[opErr.ServiceID]; ok {
			return fmt.Sprintf("your credentials lack an IAM permission (probably %s:%s): allow it in the role or user's policy, or use another --profile", prefix, opErr.OperationName)
		}
	}
	return "your credentials lack an IAM permission for this call: check the role or user's policy, or use another --profile"
}

// isCredentialsError reports whether err comes from resolving credentials
// rather than from the API call. The SDK reports those only as text.
func isCredentialsError(err error) bool {
	msg := err.Error()
	for _, s := range []string{
		"failed to retrieve credentials",
		"failed to refresh cached credentials",
		"get identity:",
		"no EC2 IMDS role found",
		"static credentials are empty",
	} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// Summarize renders err as one line, replacing the SDK's verbose operation
// error ("operation error SSM: StartSession, https response error
// StatusCode: 400, RequestID: …, api error TargetNotConnected: …") with
// "SSM StartSession: TargetNotConnected: …". Context that callers wrapped
// around the SDK error is kept.
func Summarize(err error) string {
	if err == nil {
		return ""
	}
	msg := err.Error()
	var opErr *smithy.OperationError
	if errors.As(err, &opErr) {
		msg = strings.Replace(msg, opErr.Error(), summarizeOperation(opErr), 1)
	}
	return oneLine(msg)
}

func summarizeOperation(opErr *smithy.OperationError) string {
	prefix := opErr.ServiceID + " " + opErr.OperationName + ": "
	if status, ok := bareHTTPStatus(opErr); ok {
		return prefix + fmt.Sprintf("HTTP %d %s (the response held no AWS error)", status, http.StatusText(status))
	}
	var apiErr smithy.APIError
	if errors.As(opErr.Err, &apiErr) {
		if m := apiErr.ErrorMessage(); m != "" {
			return prefix + apiErr.ErrorCode() + ": " + m
		}
		return prefix + apiErr.ErrorCode()
	}
	var netErr *net.OpError
	if errors.As(opErr.Err, &netErr) {
		return prefix + netErr.Error()
	}
	if opErr.Err == nil {
		return strings.TrimSuffix(prefix, ": ")
	}
	return prefix + opErr.Err.Error()
}

// oneLine joins the lines of s with "; " so that an error always prints on
// a single line.
func oneLine(s string) string {
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' })
	for i := range fields {
		fields[i] = strings.TrimSpace(fields[i])
	}
	out := fields[:0]
	for _, f := range fields {
		if f != "" {
			out = append(out, f)
		}
	}
	return strings.Join(out, "; ")
}

// unknownErrorCode is what the SDK's deserializers name an error response
// that carries no AWS error (an empty or foreign body).
const unknownErrorCode = "UnknownError"

// bareHTTPStatus returns the HTTP status of an error response that held no
// AWS error, which the SDK reports as "UnknownError: UnknownError": a
// wrong endpoint, path or proxy rather than an AWS refusal.
func bareHTTPStatus(err error) (int, bool) {
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != unknownErrorCode {
		return 0, false
	}
	var resp interface{ HTTPStatusCode() int }
	if !errors.As(err, &resp) || resp.HTTPStatusCode() == 0 {
		return 0, false
	}
	return resp.HTTPStatusCode(), true
}
