// Package doctor says why a managed node cannot be reached over Session
// Manager, and how to fix it. It works in two steps:
//
//  1. A Gatherer collects Facts with few, batched AWS calls: DescribeInstances
//     for all targets (1,000 a page), DescribeInstanceInformation 50 IDs a
//     call, one call per EC2 resource type for all VPCs together plus the two
//     DNS attributes per VPC, each instance profile and role once, each
//     managed policy once, and the preferences document, bucket, log group
//     and key once; per VPC its NAT and internet gateways and the Route 53
//     private hosted zones that cover service names, whose records lead to
//     hub endpoints. Calls grow with VPCs, roles and pages, not instances.
//  2. Run applies pure checks to the Facts. Tests build Facts by hand.
//
// A fact that could not be gathered makes the checks that need it "skip"
// with the reason; nothing panics or aborts the run except failing to list
// the targets themselves.
//
// # JSON schema (`ssmkit doctor --json`), stable
//
//	{
//	  "instances": [                      // sorted by id
//	    {
//	      "id":   "i-0123456789abcdef0",   // or the target as given when not found
//	      "name": "web-1",                 // Name tag; omitted when none
//	      "account": "111111111111",       // with --regions/--role-arn: where it is
//	      "region": "eu-west-1",
//	      "checks": [                      // always every ID of CheckIDs, in that order
//	        {
//	          "id":       "network.route",  // stable check ID
//	          "status":   "fail",           // pass | warn | fail | skip
//	          "summary":  "…",              // one sentence; for skip: why
//	          "evidence": ["…"],            // optional: the facts behind the decision
//	          "fix":      "aws ec2 … — or Terraform: …", // optional: what to do, one line
//	          "fix_commands": ["aws ec2 …"]    // optional: the commands of fix, one
//	                                           // line each for a POSIX shell, with real
//	                                           // IDs; `doctor --fix` runs them
//	        }
//	      ]
//	    }
//	  ],
//	  "summary": {"instances": 2, "failing": 1, "pass": 50, "warn": 1, "fail": 2, "skip": 13},
//	  "api_calls": {"EC2.DescribeInstances": 1},  // only with --stats
//	  "accounts": [                        // with --regions/--role-arn: per-account totals
//	    {"account": "111111111111", "regions": ["eu-west-1"], "instances": 1000,
//	     "failing": 3, "fail": 4, "warn": 9, "errors": ["us-east-1: …"]}
//	  ]
//	}
//
// New checks may be added (consumers should ignore unknown IDs); an ID is
// never renamed or reused. `ssmkit doctor --local` prints the same shape
// with one instance (its ID from IMDS, or "local") and the IDs of
// local.CheckIDs.
//
// # Check IDs
//
// Outside-in (CheckIDs): instance.running, agent.online, agent.version,
// agent.feature.{kms-encryption, shell-profile, port-forwarding,
// multiplexing, cloudwatch-streaming, remote-host, default-host-management},
// identity.{profile, role-trust, core-policy}, network.{route, vpc-dns,
// endpoints, endpoints.private-dns, endpoint-sg-443, endpoint-policy,
// instance-sg-egress-443, nacl, logging-path}, prefs.{document,
// idle-timeout, max-duration}, logging.{s3-bucket, s3-encryption,
// cw-log-group, cw-encryption, role-access}, kms.{key-enabled, key-policy},
// caller.{identity, start-session}.
//
// Feature gates fail only when this configuration uses the feature (KMS,
// shell profile, CloudWatch streaming from the preferences; default host
// management when the instance has no profile); port forwarding,
// multiplexing and remote-host forwarding warn, since any user may ask for
// them. The versions are version.Features, the one table ssmkit keeps.
//
// caller.start-session uses iam:SimulatePrincipalPolicy when allowed and
// implemented, else evaluates the caller's own identity policies with
// package iampolicy; its evidence says which. Neither covers permissions
// boundaries, SCPs or session policies.
package doctor
