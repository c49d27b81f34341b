// Package aws assumes an AWS IAM role with a countersign-minted OIDC token
// (STS AssumeRoleWithWebIdentity, through the AWS SDK). The call needs no
// AWS credentials: the web identity token is the credential.
package aws

import (
	"context"
	"fmt"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// Credentials are temporary AWS credentials.
type Credentials struct {
	AccessKeyID, SecretAccessKey, SessionToken string
	Expiration                                 time.Time
}

// STS calls AssumeRoleWithWebIdentity. Endpoint overrides the regional
// endpoint (tests, VPC endpoints); empty uses AWS's.
type STS struct {
	Region   string
	Endpoint string
}

// AssumeRole exchanges a web identity token for role credentials.
func (s STS) AssumeRole(ctx context.Context, roleARN, sessionName, webIdentityToken string) (*Credentials, error) {
	region := s.Region
	if region == "" {
		region = "us-east-1"
	}
	opts := sts.Options{Region: region, Credentials: awssdk.AnonymousCredentials{}}
	if s.Endpoint != "" {
		opts.BaseEndpoint = awssdk.String(s.Endpoint)
	}
	out, err := sts.New(opts).AssumeRoleWithWebIdentity(ctx, &sts.AssumeRoleWithWebIdentityInput{
		RoleArn: awssdk.String(roleARN), RoleSessionName: awssdk.String(sessionName), WebIdentityToken: awssdk.String(webIdentityToken),
	})
	if err != nil {
		return nil, fmt.Errorf("AssumeRoleWithWebIdentity: %w", err)
	}
	c := out.Credentials
	if c == nil || c.AccessKeyId == nil || c.SecretAccessKey == nil || c.SessionToken == nil || c.Expiration == nil {
		return nil, fmt.Errorf("AssumeRoleWithWebIdentity returned no credentials")
	}
	return &Credentials{AccessKeyID: *c.AccessKeyId, SecretAccessKey: *c.SecretAccessKey, SessionToken: *c.SessionToken, Expiration: *c.Expiration}, nil
}
