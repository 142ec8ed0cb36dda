package fleet

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/ssmkit/ssmkit/internal/testutil/motoserver"
	"github.com/ssmkit/ssmkit/pkg/awsapi"
)

// motoConfig skips under -short and otherwise returns a config for a
// private moto of the test's own.
func motoConfig(t *testing.T) aws.Config {
	t.Helper()
	if testing.Short() {
		t.Skip("needs moto")
	}
	url := motoserver.Private(t)
	return aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""), BaseEndpoint: aws.String(url), HTTPClient: awsapi.HTTPClient(nil)}
}

func TestFleetInMoto(t *testing.T) {
	cfg := motoConfig(t)
	ec2c, iamc := ec2.NewFromConfig(cfg), iam.NewFromConfig(cfg)
	ctx := context.Background()

	n, err := EnsureNetwork(ctx, ec2c, "us-east-1")
	if err != nil {
		t.Fatal(err)
	}
	again, err := EnsureNetwork(ctx, ec2c, "us-east-1")
	if err != nil || again.VpcID != n.VpcID || again.PublicSubnetID != n.PublicSubnetID || again.PrivateSubnetID != n.PrivateSubnetID {
		t.Fatalf("second EnsureNetwork: %+v %v (first %+v)", again, err, n)
	}
	prof, err := EnsureInstanceProfile(ctx, iamc)
	if err != nil {
		t.Fatal(err)
	}
	if p2, err := EnsureInstanceProfile(ctx, iamc); err != nil || p2 != prof {
		t.Fatalf("second EnsureInstanceProfile: %s %v", p2, err)
	}
	pol, err := iamc.ListAttachedRolePolicies(ctx, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String(RoleName)})
	if err != nil || len(pol.AttachedPolicies) != 1 || aws.ToString(pol.AttachedPolicies[0].PolicyArn) != CorePolicyARN {
		t.Fatalf("role policies %+v %v", pol, err)
	}
	insts, err := Launch(ctx, ec2c, n, prof, []Spec{{Name: "web-1", Tags: map[string]string{"env": "dev"}}, {Name: "norole", NoRole: true}, {Name: "isolated", Isolated: true}})
	if err != nil {
		t.Fatal(err)
	}
	if len(insts) != 3 || insts[2].SubnetID != n.PrivateSubnetID || insts[0].SubnetID != n.PublicSubnetID {
		t.Fatalf("instances %+v", insts)
	}
	out, err := ec2c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{insts[0].ID, insts[1].ID}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range out.Reservations {
		for _, i := range r.Instances {
			hasProfile := i.IamInstanceProfile != nil
			if (aws.ToString(i.InstanceId) == insts[0].ID) != hasProfile {
				t.Fatalf("instance %s profile %v", aws.ToString(i.InstanceId), hasProfile)
			}
		}
	}
	rts, err := ec2c.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{Filters: []ec2types.Filter{{Name: aws.String("association.subnet-id"), Values: []string{n.PrivateSubnetID}}}})
	if err != nil || len(rts.RouteTables) != 1 {
		t.Fatalf("isolated route table %v", err)
	}
	for _, r := range rts.RouteTables[0].Routes {
		if aws.ToString(r.DestinationCidrBlock) == "0.0.0.0/0" {
			t.Fatal("isolated subnet has a default route")
		}
	}
}

// lostAttachAnswer is an EC2 API whose AttachInternetGateway is carried out but answered as an
// SDK retry after a lost answer is: the second attempt gets Resource.AlreadyAssociated.
type lostAttachAnswer struct {
	*ec2.Client
}

func (l lostAttachAnswer) AttachInternetGateway(ctx context.Context, in *ec2.AttachInternetGatewayInput, opts ...func(*ec2.Options)) (*ec2.AttachInternetGatewayOutput, error) {
	if _, err := l.Client.AttachInternetGateway(ctx, in, opts...); err != nil {
		return nil, err
	}
	return l.Client.AttachInternetGateway(ctx, in, opts...)
}

// TestEnsureNetworkAfterLostAttachAnswer: a gateway already attached to the new VPC is what was
// asked for; the network is set up with it.
func TestEnsureNetworkAfterLostAttachAnswer(t *testing.T) {
	cfg := motoConfig(t)
	ec2c := ec2.NewFromConfig(cfg)
	ctx := context.Background()
	n, err := EnsureNetwork(ctx, lostAttachAnswer{ec2c}, "us-east-1")
	if err != nil {
		t.Fatal(err)
	}
	igws, err := ec2c.DescribeInternetGateways(ctx, &ec2.DescribeInternetGatewaysInput{InternetGatewayIds: []string{n.InternetGateway}})
	if err != nil || len(igws.InternetGateways) != 1 || len(igws.InternetGateways[0].Attachments) != 1 ||
		aws.ToString(igws.InternetGateways[0].Attachments[0].VpcId) != n.VpcID {
		t.Fatalf("gateway %s: %+v %v", n.InternetGateway, igws, err)
	}
	// Attached elsewhere is still an error.
	other, err := ec2c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.99.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = ec2c.AttachInternetGateway(ctx, &ec2.AttachInternetGatewayInput{InternetGatewayId: aws.String(n.InternetGateway), VpcId: other.Vpc.VpcId})
	if err == nil || attachedTo(ctx, ec2c, err, n.InternetGateway, aws.ToString(other.Vpc.VpcId)) {
		t.Fatalf("gateway attached to %s taken as attached to %s: %v", n.VpcID, aws.ToString(other.Vpc.VpcId), err)
	}
}

// lostIAMAnswers carries out each create but answers as an SDK retry after a lost answer does:
// the second attempt gets EntityAlreadyExists / LimitExceeded.
type lostIAMAnswers struct {
	*iam.Client
}

func (l lostIAMAnswers) CreateRole(ctx context.Context, in *iam.CreateRoleInput, opts ...func(*iam.Options)) (*iam.CreateRoleOutput, error) {
	if _, err := l.Client.CreateRole(ctx, in, opts...); err != nil {
		return nil, err
	}
	return l.Client.CreateRole(ctx, in, opts...)
}

func (l lostIAMAnswers) CreateInstanceProfile(ctx context.Context, in *iam.CreateInstanceProfileInput, opts ...func(*iam.Options)) (*iam.CreateInstanceProfileOutput, error) {
	if _, err := l.Client.CreateInstanceProfile(ctx, in, opts...); err != nil {
		return nil, err
	}
	return l.Client.CreateInstanceProfile(ctx, in, opts...)
}

func (l lostIAMAnswers) AddRoleToInstanceProfile(ctx context.Context, in *iam.AddRoleToInstanceProfileInput, opts ...func(*iam.Options)) (*iam.AddRoleToInstanceProfileOutput, error) {
	if _, err := l.Client.AddRoleToInstanceProfile(ctx, in, opts...); err != nil {
		return nil, err
	}
	return l.Client.AddRoleToInstanceProfile(ctx, in, opts...)
}

// TestEnsureInstanceProfileAfterLostAnswers: the profile is set up, holding its role with the
// core policy, when every create was retried after a lost answer.
func TestEnsureInstanceProfileAfterLostAnswers(t *testing.T) {
	cfg := motoConfig(t)
	iamc := iam.NewFromConfig(cfg)
	ctx := context.Background()
	arn, err := EnsureInstanceProfile(ctx, lostIAMAnswers{iamc})
	if err != nil {
		t.Fatal(err)
	}
	prof, err := iamc.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String(ProfileName)})
	if err != nil || aws.ToString(prof.InstanceProfile.Arn) != arn || len(prof.InstanceProfile.Roles) != 1 {
		t.Fatalf("profile %+v %v (returned %s)", prof, err, arn)
	}
	pol, err := iamc.ListAttachedRolePolicies(ctx, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String(RoleName)})
	if err != nil || len(pol.AttachedPolicies) != 1 || aws.ToString(pol.AttachedPolicies[0].PolicyArn) != CorePolicyARN {
		t.Fatalf("role policies %+v %v", pol, err)
	}
}
