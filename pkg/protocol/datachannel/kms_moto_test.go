package datachannel

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/ssmkit/ssmkit/internal/testutil/motoserver"
	"github.com/ssmkit/ssmkit/pkg/awsapi"
	"github.com/ssmkit/ssmkit/pkg/protocol/encryption"
	"github.com/ssmkit/ssmkit/pkg/ssmdoc"
)

// TestKMSWithMoto runs an encrypted shell session whose data key comes
// from a real KMS API (moto's), with the encryption context both roles
// must agree on, through the same KeyService a real account uses.
func TestKMSWithMoto(t *testing.T) {
	if testing.Short() {
		t.Skip("needs moto")
	}
	url := motoserver.URL(t)
	client := kms.NewFromConfig(aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint: aws.String(url),
		HTTPClient:   awsapi.HTTPClient(nil), // a fast answer must not be retried (CreateKey twice)
	})
	key, err := client.CreateKey(context.Background(), &kms.CreateKeyInput{Description: aws.String("ssmkit session key")})
	if err != nil {
		t.Fatal(err)
	}
	ks := encryption.NewKMSKeyService(client)
	keyID := aws.ToString(key.KeyMetadata.Arn)
	c, a := newPair(t, pairOptions{link: linkWebsocket, kms: true,
		client: func(cfg *Config) { cfg.KeyService = ks },
		agent: func(cfg *Config) {
			cfg.KeyService = ks
			cfg.Agent.KMSKeyID = keyID
			cfg.Agent.RequireChallenge = true
		}})
	if info := c.Info(); !info.Encrypted || info.SessionType != ssmdoc.SessionTypeStandardStream {
		t.Fatalf("info %+v", info)
	}
	if err := transfer(t, c, a, 1<<20, 4096); err != nil {
		t.Fatal(err)
	}
	if err := transfer(t, a, c, 1<<20, 4096); err != nil {
		t.Fatal(err)
	}
}
