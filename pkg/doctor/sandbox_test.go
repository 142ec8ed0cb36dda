package doctor_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	r53types "github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/ssmkit/ssmkit/pkg/awsapi"
	"github.com/ssmkit/ssmkit/pkg/doctor"
	"github.com/ssmkit/ssmkit/pkg/sandbox"
	"github.com/ssmkit/ssmkit/pkg/sandbox/fleet"
)

const loggingPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:PutObject","s3:GetEncryptionConfiguration",
"logs:CreateLogStream","logs:PutLogEvents","logs:DescribeLogGroups","logs:DescribeLogStreams","kms:Decrypt","kms:GenerateDataKey"],"Resource":"*"}]}`

// equivalentPolicy grants the core actions through wildcards, with an
// unrelated explicit deny.
const equivalentPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["SSM:*","ssmmessages:*","ec2messages:*"],"Resource":"*"},
{"Effect":"Deny","Action":"ssm:Delete*","Resource":"*"}]}`

// userAccessPolicy is what terraform/modules/user-access grants (shell
// sessions on instances tagged SessionAccess=true), as its tests render it.
const userAccessPolicy = `{"Version":"2012-10-17","Statement":[
 {"Sid":"StartSessionOnTaggedInstances","Effect":"Allow","Action":"ssm:StartSession",
  "Resource":["arn:aws:ec2:*:*:instance/*","arn:aws:ssm:*:*:managed-instance/*"],
  "Condition":{"StringLike":{"ssm:resourceTag/SessionAccess":["true"]},"BoolIfExists":{"ssm:SessionDocumentAccessCheck":"true"}}},
 {"Sid":"StartSessionWithAllowedDocuments","Effect":"Allow","Action":"ssm:StartSession","Resource":["arn:aws:ssm:*:*:document/SSM-SessionManagerRunShell"]},
 {"Sid":"ManageOwnSessions","Effect":"Allow","Action":["ssm:TerminateSession","ssm:ResumeSession"],"Resource":"arn:aws:ssm:*:*:session/${aws:userid}-*"},
 {"Sid":"FindInstancesAndSessions","Effect":"Allow","Action":["ssm:DescribeSessions","ssm:DescribeInstanceInformation","ec2:DescribeInstances"],"Resource":"*"}]}`

// scenario is one setup the doctor must diagnose: the checks that must
// fail (exactly), the warnings that must be there, and the fixes. Every
// fix command of a failing or warning check is run as printed (see
// runPrinted), then the doctor must pass that check.
type scenario struct {
	name  string
	setup func(w *world) (id, document string)
	fail  []string
	warn  []string
	// advice are failing checks whose fix is advice rather than a command
	// (on the instance, or not knowable from the APIs).
	advice []string
	// as runs the doctor with other credentials.
	as func(w *world) aws.Config
	// afterFix plays what the sandbox cannot do after the fixes ran.
	afterFix func(w *world, id string)
	// check makes extra assertions on the first report.
	check func(t *testing.T, r doctor.InstanceReport)
}

// scenarios are the broken (and healthy) setups of issue 11 and before.
// Names say "(hand-built …)" where the sandbox cannot express a state;
// those live in checks_test.go.
func scenarios() []scenario {
	var (
		loggingOnce sync.Once
		loggingRole string
	)
	loggingProfile := func(w *world) string {
		// Built once, by the first scenario that needs it.
		loggingOnce.Do(func() {
			loggingRole = w.role("doctor-logging", []string{fleet.CorePolicyARN}, map[string]string{"logging": loggingPolicy})
		})
		return loggingRole
	}
	public := func(w *world) (subnet string, sgs []string) {
		return w.byName("healthy").SubnetID, []string{w.sandboxSG()}
	}
	onPublic := func(w *world, name, profile string) string {
		sub, sgs := public(w)
		id := w.launch(name, sub, true, profile, sgs)
		w.online(id)
		return id
	}
	return []scenario{
		{name: "healthy", setup: func(w *world) (string, string) { return w.byName("healthy").ID, "" }},
		{name: "agent offline", setup: func(w *world) (string, string) { return w.byName("offline").ID, "" },
			fail: []string{"agent.online"}, advice: []string{"agent.online"}},
		{name: "agent too old", setup: func(w *world) (string, string) { return w.agentAt("old", "2.3.50.0"), "" },
			fail: []string{"agent.version"}, warn: []string{"agent.feature.port-forwarding", "agent.feature.multiplexing", "agent.feature.remote-host"},
			afterFix: (*world).updatedAgent},
		{name: "agent 3.0.161.0 forwards ports one connection at a time", setup: func(w *world) (string, string) { return w.agentAt("mux", "3.0.161.0"), "" },
			warn: []string{"agent.feature.multiplexing", "agent.feature.remote-host"},
			check: func(t *testing.T, r doctor.InstanceReport) {
				if c := checkOf(r, "agent.feature.port-forwarding"); c.Status != doctor.Pass {
					t.Errorf("agent.feature.port-forwarding = %s %s", c.Status, c.Summary)
				}
			},
			afterFix: (*world).updatedAgent},
		{name: "no instance profile", setup: func(w *world) (string, string) { return w.byName("norole").ID, "" },
			fail: []string{"agent.online", "identity.profile"}, advice: []string{"agent.online"}},
		{name: "role without the core policy", setup: func(w *world) (string, string) {
			sub, sgs := public(w)
			id := w.launch("nocore", sub, true, w.role("doctor-nocore", nil, nil), sgs)
			w.register(id)
			return id, ""
		}, fail: []string{"agent.online", "identity.core-policy"}, advice: []string{"agent.online"}},
		{name: "role with an equivalent inline policy", setup: func(w *world) (string, string) {
			return onPublic(w, "inline", w.role("doctor-inline", nil, map[string]string{"core": equivalentPolicy})), ""
		}},
		{name: "role with the core policy and an inline Deny on ssmmessages:CreateControlChannel", setup: func(w *world) (string, string) {
			sub, sgs := public(w)
			id := w.launch("inline-deny", sub, true, w.role("doctor-inline-deny", []string{fleet.CorePolicyARN}, map[string]string{"guard": `{"Version":"2012-10-17","Statement":[
				{"Sid":"ReadLogs","Effect":"Allow","Action":"logs:Describe*","Resource":"*"},
				{"Sid":"NoControlChannel","Effect":"Deny","Action":"ssmmessages:CreateControlChannel","Resource":"*"}]}`}), sgs)
			w.register(id)
			return id, ""
		}, fail: []string{"agent.online", "identity.core-policy"}, advice: []string{"agent.online"},
			check: func(t *testing.T, r doctor.InstanceReport) {
				c := checkOf(r, "identity.core-policy")
				if !strings.Contains(c.Summary, "inline policy guard (Sid NoControlChannel)") || len(c.Commands) != 1 ||
					!strings.HasPrefix(c.Commands[0], "aws iam put-role-policy --role-name doctor-inline-deny --policy-name guard ") ||
					strings.Contains(c.Commands[0], "NoControlChannel") || !strings.Contains(c.Commands[0], "ReadLogs") {
					t.Errorf("the fix must rewrite inline policy guard without statement NoControlChannel: %s %q", c.Summary, c.Commands)
				}
			}},
		{name: "role with a customer managed policy that denies ssmmessages", setup: func(w *world) (string, string) {
			pol, err := w.iam.CreatePolicy(w.ctx, &iam.CreatePolicyInput{PolicyName: aws.String("doctor-guard"), PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[
				{"Sid":"ReadLogs","Effect":"Allow","Action":"logs:Describe*","Resource":"*"},
				{"Sid":"NoMessages","Effect":"Deny","Action":"ssmmessages:*","Resource":"*"}]}`)})
			w.must(err, "CreatePolicy")
			sub, sgs := public(w)
			id := w.launch("managed-deny", sub, true, w.role("doctor-managed-deny", []string{fleet.CorePolicyARN, aws.ToString(pol.Policy.Arn)}, nil), sgs)
			w.register(id)
			return id, ""
		}, fail: []string{"agent.online", "identity.core-policy"}, advice: []string{"agent.online"},
			check: func(t *testing.T, r doctor.InstanceReport) {
				c := checkOf(r, "identity.core-policy")
				if !strings.Contains(c.Summary, "policy/doctor-guard (Sid NoMessages)") || len(c.Commands) != 1 ||
					!strings.HasPrefix(c.Commands[0], "aws iam create-policy-version --policy-arn arn:aws:iam::") {
					t.Errorf("the fix must name the managed policy and its statement: %s %q", c.Summary, c.Commands)
				}
			}},
		{name: "private subnet without NAT or endpoints", setup: func(w *world) (string, string) {
			n := w.vpc("10.60.0.0/16", false)
			id := w.launch("isolated", n.subnet, false, w.sandboxProfile(), []string{n.defaultSG})
			w.register(id)
			return id, ""
		}, fail: []string{"agent.online", "network.route"}, advice: []string{"agent.online"}},
		{name: "endpoints without private DNS", setup: func(w *world) (string, string) {
			n, _ := w.isolatedVPC("10.51.0.0/16", false, 443)
			id := w.launch("nodns", n.subnet, false, w.sandboxProfile(), []string{n.defaultSG})
			w.register(id)
			return id, ""
		}, fail: []string{"agent.online", "network.endpoints.private-dns"}, advice: []string{"agent.online"}},
		{name: "endpoint security group without 443", setup: func(w *world) (string, string) {
			n, _ := w.isolatedVPC("10.52.0.0/16", true, 22)
			id := w.launch("no443", n.subnet, false, w.sandboxProfile(), []string{n.defaultSG})
			w.register(id)
			return id, ""
		}, fail: []string{"agent.online", "network.endpoint-sg-443"}, advice: []string{"agent.online"}},
		{name: "interface endpoints in another AZ's subnet of the same VPC", setup: func(w *world) (string, string) {
			n := w.vpc("10.53.0.0/16", false)
			other, _ := w.subnet(n, 2, "b")
			w.endpoints(n, other, w.sg(n, 443, n.cidr), true, "ssm", "ssmmessages", "ec2messages")
			id := w.launch("otheraz", n.subnet, false, w.sandboxProfile(), []string{n.defaultSG})
			w.online(id)
			return id, ""
		}, warn: []string{"network.endpoints"}},
		{name: "endpoint policy allows ssmmessages only to another account's principal", setup: func(w *world) (string, string) {
			n, ids := w.isolatedVPC("10.54.0.0/16", true, 443)
			_, err := w.ec2.ModifyVpcEndpoint(w.ctx, &ec2.ModifyVpcEndpointInput{VpcEndpointId: aws.String(ids["ssmmessages"]),
				PolicyDocument: aws.String(`{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"ssmmessages:*","Resource":"*"}]}`)})
			w.must(err, "ModifyVpcEndpoint")
			id := w.launch("vpce-policy", n.subnet, false, w.sandboxProfile(), []string{n.defaultSG})
			w.register(id)
			return id, ""
		}, fail: []string{"agent.online", "network.endpoint-policy"}, advice: []string{"agent.online"}},
		{name: "NACL denies TCP 443 out before the allow", setup: func(w *world) (string, string) {
			n := w.vpc("10.55.0.0/16", true)
			w.naclEntry(n, 50, true, 443, 443)
			id := w.launch("nacl-out", n.subnet, true, w.sandboxProfile(), []string{n.defaultSG})
			w.register(id)
			return id, ""
		}, fail: []string{"agent.online", "network.nacl"}, advice: []string{"agent.online"},
			check: func(t *testing.T, r doctor.InstanceReport) {
				c := checkOf(r, "network.nacl")
				if len(c.Commands) != 1 || !strings.HasPrefix(c.Commands[0], "aws ec2 delete-network-acl-entry --network-acl-id acl-") ||
					!strings.HasSuffix(c.Commands[0], " --egress --rule-number 50") {
					t.Errorf("the fix must delete outbound rule 50: %q", c.Commands)
				}
			}},
		{name: "NACL denies the return ports", setup: func(w *world) (string, string) {
			n := w.vpc("10.56.0.0/16", true)
			w.naclEntry(n, 50, false, 1024, 65535)
			id := w.launch("nacl-in", n.subnet, true, w.sandboxProfile(), []string{n.defaultSG})
			w.register(id)
			return id, ""
		}, fail: []string{"agent.online", "network.nacl"}, advice: []string{"agent.online"},
			check: func(t *testing.T, r doctor.InstanceReport) {
				if c := checkOf(r, "network.nacl"); len(c.Commands) != 1 || !strings.HasSuffix(c.Commands[0], " --ingress --rule-number 50") {
					t.Errorf("the fix must delete inbound rule 50: %q", c.Commands)
				}
			}},
		{name: "default route to a NAT gateway that was replaced", setup: func(w *world) (string, string) {
			n := w.vpc("10.57.0.0/16", true)
			good := w.nat(n.subnet)
			gone := w.nat(n.subnet)
			_, err := w.ec2.DeleteNatGateway(w.ctx, &ec2.DeleteNatGatewayInput{NatGatewayId: aws.String(gone)})
			w.must(err, "DeleteNatGateway")
			private, table := w.subnet(n, 2, "a")
			w.route(table, "0.0.0.0/0", gone)
			id := w.launch("nat-replaced", private, false, w.sandboxProfile(), []string{n.defaultSG})
			w.register(id)
			w.t.Cleanup(func() { _ = good })
			return id, ""
		}, fail: []string{"agent.online", "network.route"}, advice: []string{"agent.online"},
			check: func(t *testing.T, r doctor.InstanceReport) {
				if c := checkOf(r, "network.route"); len(c.Commands) != 1 || !strings.HasPrefix(c.Commands[0], "aws ec2 replace-route --route-table-id rtb-") {
					t.Errorf("the fix must replace the route: %q", c.Commands)
				}
			}},
		{name: "NAT gateway in a subnet without a route to an internet gateway", setup: func(w *world) (string, string) {
			n := w.vpc("10.58.0.0/16", true)
			natSubnet, _ := w.subnet(n, 3, "a")
			nat := w.nat(natSubnet)
			private, table := w.subnet(n, 2, "a")
			w.route(table, "0.0.0.0/0", nat)
			id := w.launch("nat-no-igw", private, false, w.sandboxProfile(), []string{n.defaultSG})
			w.register(id)
			return id, ""
		}, fail: []string{"agent.online", "network.route"}, advice: []string{"agent.online"}},
		{name: "centralised endpoints in a hub VPC over VPC peering with private hosted zones", setup: func(w *world) (string, string) {
			return w.hubAndSpoke("10.70.0.0/16", "10.71.0.0/16", "pcx"), ""
		}},
		{name: "centralised endpoints in a hub VPC over a transit gateway with private hosted zones", setup: func(w *world) (string, string) {
			return w.hubAndSpoke("10.72.0.0/16", "10.73.0.0/16", "tgw"), ""
		}},
		{name: "encrypted S3 and CloudWatch logging without a KMS endpoint", setup: func(w *world) (string, string) {
			n, _ := w.isolatedVPC("10.59.0.0/16", true, 443)
			_, err := w.ec2.CreateVpcEndpoint(w.ctx, &ec2.CreateVpcEndpointInput{VpcId: aws.String(n.vpc), VpcEndpointType: ec2types.VpcEndpointTypeGateway,
				ServiceName: aws.String("com.amazonaws." + w.sb.Region() + ".s3"), RouteTableIds: []string{n.table}})
			w.must(err, "CreateVpcEndpoint s3")
			w.endpoints(n, n.subnet, w.sg(n, 443, n.cidr), true, "logs")
			s3c := awsapi.NewS3(w.cfg)
			_, err = s3c.CreateBucket(w.ctx, &s3.CreateBucketInput{Bucket: aws.String("ssmkit-doctor-sse-s3")})
			w.must(err, "CreateBucket")
			_, err = s3c.PutBucketEncryption(w.ctx, &s3.PutBucketEncryptionInput{Bucket: aws.String("ssmkit-doctor-sse-s3"),
				ServerSideEncryptionConfiguration: &s3types.ServerSideEncryptionConfiguration{Rules: []s3types.ServerSideEncryptionRule{
					{ApplyServerSideEncryptionByDefault: &s3types.ServerSideEncryptionByDefault{SSEAlgorithm: s3types.ServerSideEncryptionAes256}}}}})
			w.must(err, "PutBucketEncryption")
			key, err := kms.NewFromConfig(w.cfg).CreateKey(w.ctx, &kms.CreateKeyInput{Description: aws.String("log group")})
			w.must(err, "CreateKey")
			_, err = cloudwatchlogs.NewFromConfig(w.cfg).CreateLogGroup(w.ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String("doctor-encrypted"), KmsKeyId: key.KeyMetadata.Arn})
			w.must(err, "CreateLogGroup")
			w.prefsDocument("Doctor-EncryptedLogs", map[string]any{"s3BucketName": "ssmkit-doctor-sse-s3", "s3EncryptionEnabled": true,
				"cloudWatchLogGroupName": "doctor-encrypted", "cloudWatchEncryptionEnabled": true})
			id := w.launch("enc-logs", n.subnet, false, loggingProfile(w), []string{n.defaultSG})
			w.online(id)
			return id, "Doctor-EncryptedLogs"
		}},
		{name: "logging bucket missing", setup: func(w *world) (string, string) {
			w.prefsDocument("Doctor-NoBucket", map[string]any{"s3BucketName": "ssmkit-doctor-missing-bucket", "s3EncryptionEnabled": false})
			return onPublic(w, "nobucket", loggingProfile(w)), "Doctor-NoBucket"
		}, fail: []string{"logging.s3-bucket"}},
		{name: "log group unencrypted while encryption is required", setup: func(w *world) (string, string) {
			_, err := cloudwatchlogs.NewFromConfig(w.cfg).CreateLogGroup(w.ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String("doctor-plain")})
			w.must(err, "CreateLogGroup")
			key, err := kms.NewFromConfig(w.cfg).CreateKey(w.ctx, &kms.CreateKeyInput{Description: aws.String("sessions")})
			w.must(err, "CreateKey")
			w.prefsDocument("Doctor-PlainLogs", map[string]any{"cloudWatchLogGroupName": "doctor-plain", "cloudWatchEncryptionEnabled": true,
				"kmsKeyId": aws.ToString(key.KeyMetadata.Arn)})
			return onPublic(w, "plainlogs", loggingProfile(w)), "Doctor-PlainLogs"
		}, fail: []string{"logging.cw-encryption"}},
		{name: "KMS key disabled", setup: func(w *world) (string, string) {
			kc := kms.NewFromConfig(w.cfg)
			key, err := kc.CreateKey(w.ctx, &kms.CreateKeyInput{Description: aws.String("doctor")})
			w.must(err, "CreateKey")
			_, err = kc.DisableKey(w.ctx, &kms.DisableKeyInput{KeyId: key.KeyMetadata.KeyId})
			w.must(err, "DisableKey")
			w.prefsDocument("Doctor-DisabledKey", map[string]any{"kmsKeyId": aws.ToString(key.KeyMetadata.Arn)})
			return onPublic(w, "disabledkey", loggingProfile(w)), "Doctor-DisabledKey"
		}, fail: []string{"kms.key-enabled"}},
		{name: "KMS key policy that excludes the instance role", setup: func(w *world) (string, string) {
			key, err := kms.NewFromConfig(w.cfg).CreateKey(w.ctx, &kms.CreateKeyInput{Description: aws.String("doctor"),
				Policy: aws.String(fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Sid":"KeyAdmins","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::%s:role/key-admin"},"Action":"kms:*","Resource":"*"}]}`, w.sb.AccountID()))})
			w.must(err, "CreateKey")
			w.prefsDocument("Doctor-KeyPolicy", map[string]any{"kmsKeyId": aws.ToString(key.KeyMetadata.Arn)})
			return onPublic(w, "keypolicy", loggingProfile(w)), "Doctor-KeyPolicy"
		}, fail: []string{"kms.key-policy"},
			check: func(t *testing.T, r doctor.InstanceReport) {
				if c := checkOf(r, "kms.key-policy"); len(c.Commands) != 1 || !strings.HasPrefix(c.Commands[0], "aws kms put-key-policy --key-id ") ||
					!strings.Contains(c.Commands[0], "KeyAdmins") || !strings.Contains(c.Commands[0], ":role/doctor-logging") {
					t.Errorf("the fix must keep the key policy and add the role: %q", c.Commands)
				}
			}},
		{name: "preferences with an idle timeout out of range", setup: func(w *world) (string, string) {
			w.prefsDocument("Doctor-Idle", map[string]any{"idleSessionTimeout": "90"})
			return w.byName("healthy").ID, "Doctor-Idle"
		}, fail: []string{"prefs.idle-timeout"}},
		{name: "hybrid node whose activation role does not trust ssm.amazonaws.com", setup: func(w *world) (string, string) {
			_, err := w.iam.UpdateAssumeRolePolicy(w.ctx, &iam.UpdateAssumeRolePolicyInput{RoleName: aws.String(fleet.HybridRoleName), PolicyDocument: aws.String(ec2Trust)})
			w.must(err, "UpdateAssumeRolePolicy")
			return w.byName("onprem").ID, ""
		}, fail: []string{"identity.role-trust"},
			check: func(t *testing.T, r doctor.InstanceReport) {
				if c := checkOf(r, "agent.feature.default-host-management"); c.Status != doctor.Skip || !strings.Contains(c.Summary, "hybrid") {
					t.Errorf("DHM on a hybrid node: %s %q", c.Status, c.Summary)
				}
				if c := checkOf(r, "identity.profile"); c.Status != doctor.Pass || !strings.Contains(c.Summary, fleet.HybridRoleName) {
					t.Errorf("identity.profile on a hybrid node: %s %q", c.Status, c.Summary)
				}
				if c := checkOf(r, "identity.core-policy"); c.Status != doctor.Pass {
					t.Errorf("the activation role's policies are not checked: %s %q", c.Status, c.Summary)
				}
			}},
		{name: "unknown mi- managed node", setup: func(w *world) (string, string) { return "mi-0123456789abcdef0", "" },
			fail: []string{"agent.online"}, advice: []string{"agent.online"},
			check: func(t *testing.T, r doctor.InstanceReport) {
				c := checkOf(r, "agent.online")
				if !strings.Contains(c.Fix, "create-activation") || strings.Contains(c.Fix, "instance profile") {
					t.Errorf("an unknown mi- needs an activation, not an instance profile: %q", c.Fix)
				}
			}},
		{name: "Name tag that looks like an instance ID (i-am-web)", setup: func(w *world) (string, string) {
			onPublic(w, "i-am-web", w.sandboxProfile())
			return "i-am-web", ""
		}, check: func(t *testing.T, r doctor.InstanceReport) {
			if !strings.HasPrefix(r.ID, "i-") || r.ID == "i-am-web" || r.Name != "i-am-web" {
				t.Errorf("i-am-web resolved to %s (%s)", r.ID, r.Name)
			}
		}},
		{name: "unknown i- instance", setup: func(w *world) (string, string) { return "i-0123456789abcdef0", "" },
			fail: []string{"instance.running"}, advice: []string{"instance.running"},
			check: func(t *testing.T, r doctor.InstanceReport) {
				if c := checkOf(r, "instance.running"); strings.Contains(c.Fix, "tag:Name") || !strings.Contains(c.Fix, "--region") {
					t.Errorf("an unknown instance ID is not a Name tag: %q", c.Fix)
				}
			}},
		{name: "user who may start sessions through a group (the user-access module's policy)", setup: func(w *world) (string, string) {
			w.user("doctor-operator", "doctor-operators", userAccessPolicy)
			sub, sgs := public(w)
			id := w.launch("tagged", sub, true, w.sandboxProfile(), sgs, "SessionAccess", "true")
			w.online(id)
			return id, ""
		}, as: func(w *world) aws.Config { return w.credentialsOf("doctor-operator") },
			check: func(t *testing.T, r doctor.InstanceReport) {
				if c := checkOf(r, "caller.start-session"); c.Status != doctor.Pass || !slices.Contains(c.Evidence, "method: policy evaluation") {
					t.Errorf("caller.start-session = %s %q %v", c.Status, c.Summary, c.Evidence)
				}
			}},
		{name: "user without session rights", setup: func(w *world) (string, string) {
			w.user("doctor-stranger", "", "")
			return w.byName("healthy").ID, ""
		}, as: func(w *world) aws.Config { return w.credentialsOf("doctor-stranger") }, fail: []string{"caller.start-session"}},
	}
}

// agentAt launches an instance in the public subnet whose agent reports
// version v, and remembers how to stop it (see updatedAgent).
func (w *world) agentAt(name, v string) string {
	w.t.Helper()
	id := w.launch(name, w.byName("healthy").SubnetID, true, w.sandboxProfile(), []string{w.sandboxSG()})
	w.agents.Store(id, w.online(id, v))
	return id
}

// updatedAgent plays what AWS-UpdateSSMAgent does on the instance (the
// sandbox's agents do not run Run Command): the agent restarts with the
// new version and reconnects.
func (w *world) updatedAgent(id string) {
	w.t.Helper()
	if stop, ok := w.agents.Load(id); ok {
		stop.(func())()
	}
	w.online(id)
}

// sandboxSG is the security group of the sandbox's healthy instance.
func (w *world) sandboxSG() string {
	w.t.Helper()
	out, err := w.ec2.DescribeInstances(w.ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{w.byName("healthy").ID}})
	w.must(err, "DescribeInstances")
	inst := out.Reservations[0].Instances[0]
	for _, ni := range inst.NetworkInterfaces {
		for _, g := range ni.Groups {
			return aws.ToString(g.GroupId)
		}
	}
	return aws.ToString(inst.SecurityGroups[0].GroupId)
}

// naclEntry adds a deny entry for TCP from–to to the VPC's default ACL.
func (w *world) naclEntry(n network, number int32, egress bool, from, to int32) {
	w.t.Helper()
	acls, err := w.ec2.DescribeNetworkAcls(w.ctx, &ec2.DescribeNetworkAclsInput{Filters: []ec2types.Filter{
		{Name: aws.String("vpc-id"), Values: []string{n.vpc}}, {Name: aws.String("default"), Values: []string{"true"}}}})
	w.must(err, "DescribeNetworkAcls")
	_, err = w.ec2.CreateNetworkAclEntry(w.ctx, &ec2.CreateNetworkAclEntryInput{NetworkAclId: acls.NetworkAcls[0].NetworkAclId, RuleNumber: aws.Int32(number),
		Egress: aws.Bool(egress), Protocol: aws.String("6"), PortRange: &ec2types.PortRange{From: aws.Int32(from), To: aws.Int32(to)},
		CidrBlock: aws.String("0.0.0.0/0"), RuleAction: ec2types.RuleActionDeny})
	w.must(err, "CreateNetworkAclEntry")
}

// hubAndSpoke builds a hub VPC with interface endpoints (private DNS off),
// a spoke VPC reaching it through a peering connection ("pcx") or a
// transit gateway ("tgw"), and private hosted zones for the three service
// names associated with the spoke, aliased to the hub's endpoints: the
// centralised endpoint design AWS documents. It returns an instance in the
// spoke whose agent is online.
func (w *world) hubAndSpoke(hubCIDR, spokeCIDR, via string) string {
	w.t.Helper()
	hub := w.vpc(hubCIDR, false)
	_, dns := w.endpoints(hub, hub.subnet, w.sg(hub, 443, spokeCIDR), false, "ssm", "ssmmessages", "ec2messages")
	spoke := w.vpc(spokeCIDR, false)
	switch via {
	case "pcx":
		pcx, err := w.ec2.CreateVpcPeeringConnection(w.ctx, &ec2.CreateVpcPeeringConnectionInput{VpcId: aws.String(spoke.vpc), PeerVpcId: aws.String(hub.vpc)})
		w.must(err, "CreateVpcPeeringConnection")
		_, err = w.ec2.AcceptVpcPeeringConnection(w.ctx, &ec2.AcceptVpcPeeringConnectionInput{VpcPeeringConnectionId: pcx.VpcPeeringConnection.VpcPeeringConnectionId})
		w.must(err, "AcceptVpcPeeringConnection")
		w.route(spoke.table, hubCIDR, aws.ToString(pcx.VpcPeeringConnection.VpcPeeringConnectionId))
	case "tgw":
		tgw, err := w.ec2.CreateTransitGateway(w.ctx, &ec2.CreateTransitGatewayInput{})
		w.must(err, "CreateTransitGateway")
		w.route(spoke.table, hubCIDR, aws.ToString(tgw.TransitGateway.TransitGatewayId))
	}
	r53 := route53.NewFromConfig(w.cfg)
	for _, svc := range []string{"ssm", "ssmmessages", "ec2messages"} {
		name := svc + "." + w.sb.Region() + ".amazonaws.com"
		z, err := r53.CreateHostedZone(w.ctx, &route53.CreateHostedZoneInput{Name: aws.String(name), CallerReference: aws.String(fmt.Sprintf("%s-%d", name, w.seq.Add(1))),
			HostedZoneConfig: &r53types.HostedZoneConfig{PrivateZone: true},
			VPC:              &r53types.VPC{VPCId: aws.String(spoke.vpc), VPCRegion: r53types.VPCRegion(w.sb.Region())}})
		w.must(err, "CreateHostedZone")
		_, err = r53.ChangeResourceRecordSets(w.ctx, &route53.ChangeResourceRecordSetsInput{HostedZoneId: z.HostedZone.Id, ChangeBatch: &r53types.ChangeBatch{
			Changes: []r53types.Change{{Action: r53types.ChangeActionCreate, ResourceRecordSet: &r53types.ResourceRecordSet{Name: aws.String(name), Type: r53types.RRTypeA,
				AliasTarget: &r53types.AliasTarget{DNSName: aws.String(dns[svc]), HostedZoneId: aws.String("Z7HUB3ENDPOINTS"), EvaluateTargetHealth: false}}}}}})
		w.must(err, "ChangeResourceRecordSets")
	}
	id := w.launch("spoke-"+via, spoke.subnet, false, w.sandboxProfile(), []string{spoke.defaultSG})
	w.online(id)
	return id
}

// user creates an IAM user (in group with the group's policy attached as
// a managed policy, when given) and access keys for it.
func (w *world) user(name, group, groupPolicy string) {
	w.t.Helper()
	_, err := w.iam.CreateUser(w.ctx, &iam.CreateUserInput{UserName: aws.String(name)})
	w.must(err, "CreateUser")
	if group != "" {
		_, err = w.iam.CreateGroup(w.ctx, &iam.CreateGroupInput{GroupName: aws.String(group)})
		w.must(err, "CreateGroup")
		pol, err := w.iam.CreatePolicy(w.ctx, &iam.CreatePolicyInput{PolicyName: aws.String(group + "-sessions"), PolicyDocument: aws.String(groupPolicy)})
		w.must(err, "CreatePolicy")
		_, err = w.iam.AttachGroupPolicy(w.ctx, &iam.AttachGroupPolicyInput{GroupName: aws.String(group), PolicyArn: pol.Policy.Arn})
		w.must(err, "AttachGroupPolicy")
		_, err = w.iam.AddUserToGroup(w.ctx, &iam.AddUserToGroupInput{GroupName: aws.String(group), UserName: aws.String(name)})
		w.must(err, "AddUserToGroup")
	}
}

// credentialsOf is the sandbox configuration signed with a new access key
// of user name (moto identifies the caller by it).
func (w *world) credentialsOf(name string) aws.Config {
	w.t.Helper()
	key, err := w.iam.CreateAccessKey(w.ctx, &iam.CreateAccessKeyInput{UserName: aws.String(name)})
	w.must(err, "CreateAccessKey")
	cfg := w.cfg.Copy()
	cfg.Credentials = credentials.NewStaticCredentialsProvider(aws.ToString(key.AccessKey.AccessKeyId), aws.ToString(key.AccessKey.SecretAccessKey), "")
	return cfg
}

func TestSandboxScenarios(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a sandbox")
	}
	w := newWorld(t, []sandbox.InstanceSpec{
		{Name: "healthy"},
		{Name: "offline", Offline: true},
		{Name: "norole", NoRole: true},
		{Name: "onprem", Hybrid: true},
	})
	// Before the scenarios, which run in parallel once this returns.
	t.Run("fleet scale", func(t *testing.T) { fleetScale(t, w.with(t)) })
	for _, sc := range scenarios() {
		t.Run(sc.name, func(t *testing.T) {
			// Each scenario builds its own network and names; moto serves
			// them side by side.
			t.Parallel()
			w := w.with(t)
			id, doc := sc.setup(w)
			cfg := w.cfg
			if sc.as != nil {
				cfg = sc.as(w)
			}
			rep, cc := w.doctorWith(cfg, id, doc)
			t.Logf("%d API calls", cc.Total())
			if got, want := withStatus(rep, doctor.Fail), slices.Sorted(slices.Values(sc.fail)); !slices.Equal(got, want) {
				t.Errorf("failing checks = %v, want %v", got, want)
				logReport(t, rep)
			}
			warns := withStatus(rep, doctor.Warn)
			for _, id := range sc.warn {
				if !slices.Contains(warns, id) {
					t.Errorf("%s should warn; warnings: %v", id, warns)
					logReport(t, rep)
				}
			}
			if len(rep.Checks) != len(doctor.CheckIDs) {
				t.Errorf("%d checks, want %d", len(rep.Checks), len(doctor.CheckIDs))
			}
			if sc.check != nil {
				sc.check(t, rep)
			}
			// Every fix: commands with real names, run as printed.
			var fixed []string
			for _, c := range rep.Checks {
				if c.Status == doctor.Skip && c.Summary == "" {
					t.Errorf("%s skipped without a reason", c.ID)
				}
				if c.Status != doctor.Fail && c.Status != doctor.Warn {
					continue
				}
				if c.Fix == "" {
					t.Errorf("%s %s without a fix", c.ID, c.Status)
				}
				if len(c.Commands) == 0 {
					if c.Status == doctor.Fail && !slices.Contains(sc.advice, c.ID) {
						t.Errorf("%s fails with advice but no command: %q", c.ID, c.Fix)
					}
					continue
				}
				if slices.Contains(sc.advice, c.ID) {
					t.Errorf("%s has commands but the scenario calls it advice", c.ID)
				}
				for _, line := range c.Commands {
					if strings.ContainsAny(line, "<>") {
						t.Errorf("%s: a placeholder in %s", c.ID, line)
					}
					t.Logf("fix %s: %s", c.ID, line)
					w.runPrinted(line)
				}
				fixed = append(fixed, c.ID)
			}
			if len(fixed) == 0 {
				return
			}
			if sc.afterFix != nil {
				sc.afterFix(w, id)
			}
			after, _ := w.doctorWith(cfg, id, doc)
			for _, fid := range fixed {
				if c := checkOf(after, fid); c.Status != doctor.Pass {
					t.Errorf("after its fix %s is %s: %s %v", fid, c.Status, c.Summary, c.Evidence)
				}
			}
		})
	}
}
