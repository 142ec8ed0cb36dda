mock_provider "aws" {
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
}

run "defaults_shell_and_port_forwarding_on_tagged_instances" {
  command = plan

  assert {
    condition     = length(aws_iam_policy.this) == 1 && length(aws_iam_role_policy_attachment.this) == 0 && length(aws_iam_group_policy_attachment.this) == 0
    error_message = "Expected the policy and no attachments."
  }
  assert {
    condition = [for s in jsondecode(output.policy_json).Statement : s.Resource if s.Sid == "StartSessionWithAllowedDocuments"] == [[
      "arn:aws:ssm:*:*:document/SSM-SessionManagerRunShell",
      "arn:aws:ssm:*::document/AWS-StartPortForwardingSession",
    ]]
    error_message = "Defaults must allow the shell document and local port forwarding only."
  }
  assert {
    condition     = [for s in jsondecode(output.policy_json).Statement : s.Condition.StringLike["ssm:resourceTag/ssmkit:access"] if s.Sid == "StartSessionOnTaggedInstances"] == [["true"]]
    error_message = "Instances must be selected by the ssmkit:access tag."
  }
  assert {
    condition     = [for s in jsondecode(output.policy_json).Statement : s.Resource if s.Sid == "ManageOwnSessions"] == ["arn:aws:ssm:*:*:session/$${aws:userid}-*"]
    error_message = "Terminate/Resume must be limited to the caller's own sessions."
  }
  assert {
    condition     = length([for s in jsondecode(output.policy_json).Statement : s if s.Sid == "EncryptSessions"]) == 0
    error_message = "No KMS statement without a key."
  }
}

run "every_document_toggle_and_kms" {
  command = plan

  variables {
    target_tag_key                       = "team"
    target_tag_values                    = ["ops", "sre"]
    allow_shell                          = false
    allow_port_forwarding                = false
    allow_port_forwarding_to_remote_host = true
    allow_ssh                            = true
    allow_interactive_commands           = true
    kms_key_arns                         = ["arn:aws:kms:eu-west-1:111122223333:key/k"]
    role_names                           = ["ops", "sre"]
    group_names                          = ["operators"]
  }

  assert {
    condition = [for s in jsondecode(output.policy_json).Statement : s.Resource if s.Sid == "StartSessionWithAllowedDocuments"] == [[
      "arn:aws:ssm:*::document/AWS-StartPortForwardingSessionToRemoteHost",
      "arn:aws:ssm:*::document/AWS-StartSSHSession",
      "arn:aws:ssm:*::document/AWS-StartInteractiveCommand",
      "arn:aws:ssm:*::document/AWS-StartNonInteractiveCommand",
    ]]
    error_message = "Document toggles must select exactly their documents."
  }
  assert {
    condition     = [for s in jsondecode(output.policy_json).Statement : s.Condition.StringLike["ssm:resourceTag/team"] if s.Sid == "StartSessionOnTaggedInstances"] == [["ops", "sre"]]
    error_message = "The tag condition must use target_tag_key and target_tag_values."
  }
  assert {
    condition     = [for s in jsondecode(output.policy_json).Statement : s.Resource if s.Sid == "EncryptSessions"] == [["arn:aws:kms:eu-west-1:111122223333:key/k"]]
    error_message = "kms:GenerateDataKey must be granted on the given key."
  }
  assert {
    condition     = length(aws_iam_role_policy_attachment.this) == 2 && length(aws_iam_group_policy_attachment.this) == 1
    error_message = "The policy must be attached to every given role and group."
  }
}

run "create_false_creates_nothing" {
  command = plan

  variables {
    create     = false
    role_names = ["ops"]
  }

  assert {
    condition     = length(aws_iam_policy.this) == 0 && length(aws_iam_role_policy_attachment.this) == 0
    error_message = "create = false must create nothing."
  }
}

run "precondition_needs_a_document" {
  command = plan

  variables {
    allow_shell           = false
    allow_port_forwarding = false
  }

  expect_failures = [aws_iam_policy.this]
}

run "rejects_empty_tag_values" {
  command = plan
  variables {
    target_tag_values = []
  }
  expect_failures = [var.target_tag_values]
}

run "rejects_aws_tag_key" {
  command = plan
  variables {
    target_tag_key = "aws:cloudformation:stack-name"
  }
  expect_failures = [var.target_tag_key]
}

run "rejects_non_arn_kms_key" {
  command = plan
  variables {
    kms_key_arns = ["alias/sessions"]
  }
  expect_failures = [var.kms_key_arns]
}

run "rejects_bad_policy_name" {
  command = plan
  variables {
    name = "bad name"
  }
  expect_failures = [var.name]
}
