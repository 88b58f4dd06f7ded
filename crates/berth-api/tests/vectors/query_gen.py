#!/usr/bin/env python3
"""Writes query_vectors.json: Query (ELBv2, IAM, STS) and EC2 requests serialized by botocore's own
serializers, with the parameters they came from, and outputs the Rust encoder must write so that botocore's
own parsers read them back unchanged. `tests/query_vectors.rs` decodes every request and encodes every
output; `query_check.py` parses the encoded outputs with botocore.

Values are JSON-shaped as berth's generated types are: members by name, timestamps as epoch seconds
(floats), blobs as base64 text.

Run with a Python that has botocore:  /tmp/venv/bin/python query_gen.py > query_vectors.json
"""

import datetime
import json
import sys

import botocore
import botocore.serialize
import botocore.session
from botocore.awsrequest import AWSRequest

UTC = datetime.timezone.utc
T1 = datetime.datetime(2023, 10, 10, 0, 30, 0, tzinfo=UTC)
T2 = datetime.datetime(2024, 2, 29, 23, 59, 58, 250000, tzinfo=UTC)
ACCOUNT = "123456789012"
LB_ARN = "arn:aws:elasticloadbalancing:us-east-1:%s:loadbalancer/app/ecs-express-gateway-alb-1a2b3c/50dc6c495c0c9188" % ACCOUNT
LISTENER_ARN = LB_ARN.replace(":loadbalancer/", ":listener/") + "/f2f7dc8efc522ab2"
RULE_ARN = LISTENER_ARN.replace(":listener/", ":listener-rule/") + "/9683b2d02a6cabee"
TG_ARN = "arn:aws:elasticloadbalancing:us-east-1:%s:targetgroup/ecs-gateway-tg-a/73e2d6bc24d8a067" % ACCOUNT
TG2_ARN = TG_ARN.replace("-tg-a/", "-tg-b/")
POLICY = '{"Version":"2012-10-17","Statement":[{"Sid":"a & <b> \'q\' é+","Effect":"Allow",' \
         '"Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole",' \
         '"Condition":{"StringLike":{"aws:SourceArn":"arn:aws:ecs:*:1:*"}}}]}'

# IAM answers policy documents percent-encoded; the generated types hold them plain.
POLICY_JSON = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:Get*","Resource":"arn:aws:s3:::b/a b"}]}'

CASES = [
    # (service, operation, input params, output)
    ("elbv2", "DescribeLoadBalancers",
     {"LoadBalancerArns": [LB_ARN, LB_ARN + "x"], "PageSize": 10, "Marker": "m+1/="},
     {"LoadBalancers": [{
         "LoadBalancerArn": LB_ARN, "DNSName": "ecs-express-gateway-alb-1a2b3c-1.us-east-1.elb.amazonaws.com",
         "CanonicalHostedZoneId": "Z35SXDOTRQ7X7K", "CreatedTime": T2, "LoadBalancerName": "ecs-express-gateway-alb-1a2b3c",
         "Scheme": "internet-facing", "VpcId": "vpc-0abc", "State": {"Code": "active"}, "Type": "application",
         "AvailabilityZones": [{"ZoneName": "us-east-1a", "SubnetId": "subnet-1", "LoadBalancerAddresses": []},
                               {"ZoneName": "us-east-1b", "SubnetId": "subnet-2"}],
         "SecurityGroups": ["sg-1", "sg-2"], "IpAddressType": "ipv4"}],
      "NextMarker": "next<&>"}),
    ("elbv2", "DescribeLoadBalancers", {"Names": []}, {"LoadBalancers": []}),
    ("elbv2", "CreateRule",
     {"ListenerArn": LISTENER_ARN, "Priority": 5,
      "Conditions": [
          {"Field": "host-header", "HostHeaderConfig": {"Values": ["api.example.com", "*.example.com"]}},
          {"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "X-Env", "Values": ["blue"]}},
          {"Field": "source-ip", "SourceIpConfig": {"Values": ["10.0.0.0/8", "::1/128"]}},
          {"Field": "query-string", "QueryStringConfig": {"Values": [{"Key": "v", "Value": "2"}, {"Value": "x y"}]}}],
      "Actions": [
          {"Type": "authenticate-oidc", "Order": 1, "AuthenticateOidcConfig": {
              "Issuer": "https://idp", "AuthorizationEndpoint": "https://idp/a", "TokenEndpoint": "https://idp/t",
              "UserInfoEndpoint": "https://idp/u", "ClientId": "c",
              "AuthenticationRequestExtraParams": {"prompt": "login", "display": "page"}}},
          {"Type": "forward", "Order": 2, "ForwardConfig": {
              "TargetGroups": [{"TargetGroupArn": TG_ARN, "Weight": 90}, {"TargetGroupArn": TG2_ARN, "Weight": 10}],
              "TargetGroupStickinessConfig": {"Enabled": True, "DurationSeconds": 300}}}],
      "Tags": [{"Key": "AmazonECSManaged", "Value": "true"}]},
     {"Rules": [{
         "RuleArn": RULE_ARN, "Priority": "5", "IsDefault": False,
         "Conditions": [{"Field": "path-pattern", "Values": ["/api/*"], "PathPatternConfig": {"Values": ["/api/*"]}}],
         "Actions": [
             {"Type": "authenticate-oidc", "Order": 1, "AuthenticateOidcConfig": {
                 "Issuer": "https://idp", "AuthorizationEndpoint": "https://idp/a", "TokenEndpoint": "https://idp/t",
                 "UserInfoEndpoint": "https://idp/u", "ClientId": "c",
                 "AuthenticationRequestExtraParams": {"prompt": "login"}}},
             {"Type": "fixed-response", "Order": 2, "FixedResponseConfig": {
                 "MessageBody": "<h1>Not found</h1>", "StatusCode": "404", "ContentType": "text/html"}}]}]}),
    ("elbv2", "SetRulePriorities",
     {"RulePriorities": [{"RuleArn": RULE_ARN, "Priority": 1}, {"RuleArn": RULE_ARN + "2", "Priority": 50000}]},
     {"Rules": [{"RuleArn": RULE_ARN, "Priority": "1"}]}),
    ("elbv2", "ModifyTargetGroup",
     {"TargetGroupArn": TG_ARN, "HealthCheckPath": "/healthz", "HealthCheckIntervalSeconds": 5,
      "HealthCheckEnabled": False, "Matcher": {"HttpCode": "200-299"}},
     {"TargetGroups": [{
         "TargetGroupArn": TG_ARN, "TargetGroupName": "ecs-gateway-tg-a", "Protocol": "HTTP", "Port": 8080,
         "VpcId": "vpc-0abc", "HealthCheckProtocol": "HTTP", "HealthCheckPort": "traffic-port",
         "HealthCheckEnabled": True, "HealthCheckIntervalSeconds": 30, "HealthCheckTimeoutSeconds": 5,
         "HealthyThresholdCount": 5, "UnhealthyThresholdCount": 2, "HealthCheckPath": "/ping",
         "Matcher": {"HttpCode": "200"}, "LoadBalancerArns": [LB_ARN], "TargetType": "ip",
         "ProtocolVersion": "HTTP1", "IpAddressType": "ipv4"}]}),
    ("elbv2", "ModifyTargetGroupAttributes",
     {"TargetGroupArn": TG_ARN, "Attributes": [
         {"Key": "deregistration_delay.timeout_seconds", "Value": "30"},
         {"Key": "load_balancing.algorithm.type", "Value": "least_outstanding_requests"}]},
     {"Attributes": [{"Key": "deregistration_delay.timeout_seconds", "Value": "30"},
                     {"Key": "slow_start.duration_seconds", "Value": "0"}]}),
    ("elbv2", "DescribeTargetHealth",
     {"TargetGroupArn": TG_ARN, "Targets": [{"Id": "10.0.0.5", "Port": 8080, "AvailabilityZone": "all"}],
      "Include": ["AnomalyDetection", "All"]},
     {"TargetHealthDescriptions": [
         {"Target": {"Id": "10.0.0.5", "Port": 8080}, "HealthCheckPort": "8080",
          "TargetHealth": {"State": "unhealthy", "Reason": "Target.ResponseCodeMismatch",
                           "Description": "Health checks failed with these codes: [502]"}},
         {"Target": {"Id": "10.0.0.6", "Port": 8080}, "TargetHealth": {"State": "healthy"}}]}),
    ("elbv2", "RegisterTargets", {"TargetGroupArn": TG_ARN, "Targets": [{"Id": "10.0.0.7", "Port": 80}]}, {}),
    ("elbv2", "DescribeTags", {"ResourceArns": [LB_ARN, TG_ARN]},
     {"TagDescriptions": [{"ResourceArn": LB_ARN, "Tags": [{"Key": "AmazonECSManaged", "Value": "true"}]},
                          {"ResourceArn": TG_ARN, "Tags": []}]}),
    ("elbv2", "RemoveTags", {"ResourceArns": [LB_ARN], "TagKeys": ["a", "b"]}, {}),
    ("iam", "CreateRole",
     {"RoleName": "ecsTaskExecutionRole", "Path": "/service-role/", "AssumeRolePolicyDocument": POLICY,
      "Description": "Tâche & <exécution>", "MaxSessionDuration": 3600,
      "Tags": [{"Key": "team", "Value": "platform"}]},
     {"Role": {"Path": "/service-role/", "RoleName": "ecsTaskExecutionRole", "RoleId": "AROAEXAMPLEID",
               "Arn": "arn:aws:iam::%s:role/service-role/ecsTaskExecutionRole" % ACCOUNT, "CreateDate": T1,
               "AssumeRolePolicyDocument": POLICY_JSON, "MaxSessionDuration": 3600,
               "Tags": [{"Key": "team", "Value": "platform"}],
               "RoleLastUsed": {"LastUsedDate": T2, "Region": "us-east-1"}}}),
    ("iam", "ListRoles", {"PathPrefix": "/", "MaxItems": 100, "Marker": "abc"},
     {"Roles": [{"Path": "/", "RoleName": "a", "RoleId": "AROA1", "Arn": "arn:aws:iam::%s:role/a" % ACCOUNT,
                 "CreateDate": T1},
                {"Path": "/", "RoleName": "b", "RoleId": "AROA2", "Arn": "arn:aws:iam::%s:role/b" % ACCOUNT,
                 "CreateDate": T2, "Description": ""}],
      "IsTruncated": True, "Marker": "next"}),
    ("iam", "ListRoles", {}, {"Roles": [], "IsTruncated": False}),
    ("iam", "CreateAccessKey", {"UserName": "deployer"},
     {"AccessKey": {"UserName": "deployer", "AccessKeyId": "AKIAEXAMPLE", "Status": "Active",
                    "SecretAccessKey": "wJalr/K7MDENG+bPxRfiCYEXAMPLEKEY", "CreateDate": T2}}),
    ("iam", "ListAttachedRolePolicies", {"RoleName": "r", "PathPrefix": "/"},
     {"AttachedPolicies": [{"PolicyName": "AmazonECSTaskExecutionRolePolicy",
                            "PolicyArn": "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"}],
      "IsTruncated": False}),
    ("iam", "GetPolicyVersion", {"PolicyArn": "arn:aws:iam::aws:policy/p", "VersionId": "v1"},
     {"PolicyVersion": {"Document": '{"Version":"2012-10-17","Statement":[]}', "VersionId": "v1",
                        "IsDefaultVersion": True, "CreateDate": T1}}),
    ("iam", "GetRolePolicy", {"RoleName": "r", "PolicyName": "inline"},
     {"RoleName": "r", "PolicyName": "inline", "PolicyDocument": POLICY}),
    ("iam", "PutRolePolicy", {"RoleName": "r", "PolicyName": "inline", "PolicyDocument": POLICY}, None),
    ("iam", "TagRole", {"RoleName": "r", "Tags": [{"Key": "k1", "Value": "v1"}, {"Key": "k2", "Value": ""}]}, None),
    ("iam", "ListRoleTags", {"RoleName": "r"},
     {"Tags": [{"Key": "k1", "Value": "v1"}, {"Key": "k2", "Value": ""}], "IsTruncated": False}),
    ("sts", "GetCallerIdentity", {},
     {"UserId": "AIDAEXAMPLE", "Account": ACCOUNT, "Arn": "arn:aws:iam::%s:user/deployer" % ACCOUNT}),
    ("sts", "AssumeRole",
     {"RoleArn": "arn:aws:iam::%s:role/infra" % ACCOUNT, "RoleSessionName": "ECSGateway", "DurationSeconds": 900,
      "PolicyArns": [{"arn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}],
      "Tags": [{"Key": "Project", "Value": "berth"}], "TransitiveTagKeys": ["Project"], "ExternalId": "x=y&z"},
     {"Credentials": {"AccessKeyId": "ASIAEXAMPLE", "SecretAccessKey": "secret/+=", "SessionToken": "tok==",
                      "Expiration": T2},
      "AssumedRoleUser": {"AssumedRoleId": "AROAEXAMPLE:ECSGateway",
                          "Arn": "arn:aws:sts::%s:assumed-role/infra/ECSGateway" % ACCOUNT},
      "PackedPolicySize": 6, "SourceIdentity": "me"}),
    ("ec2", "DescribeVpcs",
     {"Filters": [{"Name": "is-default", "Values": ["true"]}, {"Name": "tag:Name", "Values": ["a b", "c"]}],
      "VpcIds": ["vpc-1", "vpc-2"], "DryRun": False, "MaxResults": 5},
     {"Vpcs": [{"CidrBlock": "172.31.0.0/16", "DhcpOptionsId": "dopt-1", "State": "available", "VpcId": "vpc-1",
                "OwnerId": ACCOUNT, "InstanceTenancy": "default", "IsDefault": True,
                "CidrBlockAssociationSet": [{"AssociationId": "vpc-cidr-assoc-1", "CidrBlock": "172.31.0.0/16",
                                             "CidrBlockState": {"State": "associated"}}],
                "Ipv6CidrBlockAssociationSet": [],
                "Tags": [{"Key": "Name", "Value": "default"}]}],
      "NextToken": "t"}),
    ("ec2", "DescribeSubnets", {"SubnetIds": ["subnet-1"]},
     {"Subnets": [{"AvailabilityZone": "us-east-1a", "AvailabilityZoneId": "use1-az1", "AvailableIpAddressCount": 4091,
                   "CidrBlock": "172.31.0.0/20", "DefaultForAz": True, "MapPublicIpOnLaunch": False,
                   "State": "available", "SubnetId": "subnet-1", "VpcId": "vpc-1", "OwnerId": ACCOUNT,
                   "SubnetArn": "arn:aws:ec2:us-east-1:%s:subnet/subnet-1" % ACCOUNT,
                   "Ipv6CidrBlockAssociationSet": [], "AssignIpv6AddressOnCreation": False}]}),
    ("ec2", "CreateSecurityGroup",
     {"Description": "ALB & co", "GroupName": "ecs-express-lb", "VpcId": "vpc-1",
      "TagSpecifications": [{"ResourceType": "security-group", "Tags": [{"Key": "AmazonECSManaged", "Value": "true"}]}]},
     {"GroupId": "sg-0123", "Tags": [{"Key": "AmazonECSManaged", "Value": "true"}],
      "SecurityGroupArn": "arn:aws:ec2:us-east-1:%s:security-group/sg-0123" % ACCOUNT}),
    ("ec2", "AuthorizeSecurityGroupIngress",
     {"GroupId": "sg-0123", "IpPermissions": [
         {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
          "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "https"}], "Ipv6Ranges": [{"CidrIpv6": "::/0"}]},
         {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": "sg-lb", "UserId": ACCOUNT}],
          "PrefixListIds": [{"PrefixListId": "pl-1"}]}]},
     {"Return": True, "SecurityGroupRules": [
         {"SecurityGroupRuleId": "sgr-1", "GroupId": "sg-0123", "GroupOwnerId": ACCOUNT, "IsEgress": False,
          "IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIpv4": "0.0.0.0/0", "Description": "https",
          "Tags": []},
         {"SecurityGroupRuleId": "sgr-2", "GroupId": "sg-0123", "IsEgress": False, "IpProtocol": "-1",
          "FromPort": -1, "ToPort": -1, "ReferencedGroupInfo": {"GroupId": "sg-lb", "UserId": ACCOUNT}}]}),
    ("ec2", "DescribeSecurityGroups", {"GroupIds": ["sg-0123"], "Filters": [{"Name": "vpc-id", "Values": ["vpc-1"]}]},
     {"SecurityGroups": [{
         "GroupId": "sg-0123", "GroupName": "ecs-express-lb", "Description": "ALB", "OwnerId": ACCOUNT,
         "VpcId": "vpc-1", "IpPermissions": [
             {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
              "Ipv6Ranges": [], "PrefixListIds": [], "UserIdGroupPairs": []}],
         "IpPermissionsEgress": [
             {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}], "UserIdGroupPairs": []}],
         "Tags": [{"Key": "Name", "Value": "lb"}]}]}),
    ("ec2", "DescribeSecurityGroupRules", {"SecurityGroupRuleIds": ["sgr-1"], "MaxResults": 10},
     {"SecurityGroupRules": [{"SecurityGroupRuleId": "sgr-1", "GroupId": "sg-0123", "IsEgress": True,
                              "IpProtocol": "-1", "FromPort": -1, "ToPort": -1, "CidrIpv6": "::/0"}]}),
    ("ec2", "RevokeSecurityGroupEgress",
     {"GroupId": "sg-0123", "SecurityGroupRuleIds": ["sgr-1", "sgr-2"], "DryRun": True},
     {"Return": True, "RevokedSecurityGroupRules": [{"SecurityGroupRuleId": "sgr-1", "GroupId": "sg-0123",
                                                    "IsEgress": True, "IpProtocol": "-1"}]}),
    ("ec2", "CreateTags", {"Resources": ["sg-0123", "vpc-1"], "Tags": [{"Key": "a", "Value": "1"}, {"Key": "b"}]},
     None),
    ("ec2", "DeleteSecurityGroup", {"GroupId": "sg-0123"}, {"Return": True, "GroupId": "sg-0123"}),
    ("ec2", "DescribeTags", {"Filters": [{"Name": "resource-id", "Values": ["sg-0123"]}]},
     {"Tags": [{"Key": "a", "ResourceId": "sg-0123", "ResourceType": "security-group", "Value": "1"}]}),
]


def jsonable(v):
    """Parameters as berth's generated types hold them."""
    if isinstance(v, datetime.datetime):
        return v.timestamp()
    if isinstance(v, dict):
        return {k: jsonable(x) for k, x in v.items()}
    if isinstance(v, list):
        return [jsonable(x) for x in v]
    return v


def main():
    session = botocore.session.get_session()
    vectors = []
    for service, operation, params, output in CASES:
        model = session.get_service_model(service)
        op = model.operation_model(operation)
        serializer = botocore.serialize.create_serializer(model.metadata["protocol"], include_validation=True)
        serialized = serializer.serialize_to_request(params, op)
        req = AWSRequest(method=serialized["method"], url="https://example.com/", data=serialized["body"],
                         headers=serialized["headers"])
        body = req.prepare().body
        if isinstance(body, bytes):
            body = body.decode()
        vectors.append({
            "service": service,
            "protocol": model.metadata["protocol"],
            "operation": operation,
            "body": body,
            "input": jsonable(params),
            "output": jsonable(output),
        })
    json.dump({"botocore": botocore.__version__, "vectors": vectors}, sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
