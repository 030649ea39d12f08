"""Connecting an AWS account: least-privilege IAM generated from what the code declares, the
bootstrap CloudFormation stack, the two connections (reader / executor) and the preflight check.

See docs/connect-account.md.
"""
