#!/usr/bin/env python3
"""Writes cloudwatch_vectors.json: CloudWatch requests serialized by botocore's own serializers in each of the
three protocols its model lists (`json` = AWS JSON 1.0, `smithy-rpc-v2-cbor`, `query`), with the parameters
they came from, and outputs the Rust encoders must write so that botocore's own parsers read them back
unchanged in every protocol. `tests/cloudwatch_protocols.rs` decodes every request (all three must become the
same typed operation) and encodes every output in every protocol; `cloudwatch_check.py` parses the encoded
outputs and errors with botocore.

Values are JSON-shaped as berth's generated types are: members by name, timestamps as epoch seconds (floats;
millisecond fractions survive every protocol), doubles as floats.

Run with a Python that has botocore (the repository's venv does):
  /work/main/.venv/bin/python cloudwatch_gen.py > cloudwatch_vectors.json
"""

import base64
import datetime
import json
import sys

import botocore
import botocore.serialize
import botocore.session
from botocore.awsrequest import AWSRequest

from query_gen import jsonable  # datetimes as epoch seconds, the rest as it is

UTC = datetime.timezone.utc
T1 = datetime.datetime(2023, 10, 10, 0, 30, 0, tzinfo=UTC)
T2 = datetime.datetime(2023, 10, 10, 0, 31, 0, 250000, tzinfo=UTC)
T3 = datetime.datetime(2023, 10, 10, 1, 30, 0, tzinfo=UTC)
PROTOCOLS = ["json", "smithy-rpc-v2-cbor", "query"]
ALARM_ARN = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:web-high-cpu"
SVC_DIMS = [{"Name": "ClusterName", "Value": "default"}, {"Name": "ServiceName", "Value": "web & <api>"}]

CASES = [
    (
        "PutMetricData",
        {
            "Namespace": "App/Orders",
            "MetricData": [
                {
                    "MetricName": "Latency",
                    "Dimensions": SVC_DIMS,
                    "Timestamp": T2,
                    "Value": 12.5,
                    "Unit": "Milliseconds",
                    "StorageResolution": 1,
                },
                {
                    "MetricName": "Latency",
                    "Timestamp": T1,
                    "StatisticValues": {"SampleCount": 4.0, "Sum": 10.0, "Minimum": 0.5, "Maximum": 7.25},
                    "Unit": "Milliseconds",
                },
                {
                    "MetricName": "Requests",
                    "Dimensions": [{"Name": "Route", "Value": "/checkout"}],
                    "Values": [1.0, 2.5, -3.75, 1e-3],
                    "Counts": [10.0, 1.0, 2.0, 1.0],
                    "StorageResolution": 60,
                },
                {"MetricName": "Zero", "Value": 0.0},
            ],
        },
        None,
    ),
    (
        "GetMetricData",
        {
            "MetricDataQueries": [
                {
                    "Id": "m1",
                    "MetricStat": {
                        "Metric": {"Namespace": "AWS/ECS", "MetricName": "CPUUtilization", "Dimensions": SVC_DIMS},
                        "Period": 60,
                        "Stat": "p99",
                        "Unit": "Percent",
                    },
                    "ReturnData": False,
                },
                {"Id": "e1", "Expression": "m1 * 2", "Label": "double", "Period": 10},
            ],
            "StartTime": T1,
            "EndTime": T3,
            "NextToken": "tok+/=",
            "ScanBy": "TimestampAscending",
            "MaxDatapoints": 1000,
            "LabelOptions": {"Timezone": "+0130"},
        },
        {
            "MetricDataResults": [
                {
                    "Id": "e1",
                    "Label": "double",
                    "Timestamps": [1696897800.0, 1696897860.25, 1696901400.0],
                    "Values": [1.5, 0.0, -2.25],
                    "StatusCode": "Complete",
                },
                {"Id": "m2", "Label": "empty", "StatusCode": "PartialData",
                 "Messages": [{"Code": "MaxDatapointsExceeded", "Value": "more <&> data"}]},
            ],
            "NextToken": "next/1",
            "Messages": [{"Code": "Info", "Value": "x"}],
        },
    ),
    (
        "GetMetricStatistics",
        {
            "Namespace": "AWS/ApplicationELB",
            "MetricName": "TargetResponseTime",
            "Dimensions": [{"Name": "LoadBalancer", "Value": "app/web/50dc6c495c0c9188"}],
            "StartTime": T1,
            "EndTime": T3,
            "Period": 60,
            "Statistics": ["Average", "SampleCount", "Sum", "Minimum", "Maximum"],
            "ExtendedStatistics": ["p99", "p50"],
            "Unit": "Seconds",
        },
        {
            "Label": "TargetResponseTime",
            "Datapoints": [
                {
                    "Timestamp": 1696897800.0,
                    "SampleCount": 3.0,
                    "Average": 0.125,
                    "Sum": 0.375,
                    "Minimum": 0.0625,
                    "Maximum": 0.25,
                    "Unit": "Seconds",
                    "ExtendedStatistics": {"p99": 0.25, "p50": 0.0625},
                },
                {"Timestamp": 1696897860.25, "SampleCount": 1.0, "Unit": "Seconds"},
            ],
        },
    ),
    (
        "ListMetrics",
        {
            "Namespace": "AWS/ECS",
            "MetricName": "CPUUtilization",
            "Dimensions": [{"Name": "ClusterName", "Value": "default"}, {"Name": "ServiceName"}],
            "RecentlyActive": "PT3H",
            "IncludeLinkedAccounts": True,
        },
        {
            "Metrics": [
                {"Namespace": "AWS/ECS", "MetricName": "CPUUtilization", "Dimensions": SVC_DIMS},
                {"Namespace": "AWS/ECS", "MetricName": "CPUUtilization",
                 "Dimensions": [{"Name": "ClusterName", "Value": "default"}]},
            ],
            "NextToken": "n",
        },
    ),
    (
        "DescribeAlarms",
        {"AlarmNames": ["web-high-cpu", "web-low-cpu"], "StateValue": "ALARM", "MaxRecords": 50},
        {
            "MetricAlarms": [
                {
                    "AlarmName": "web-high-cpu",
                    "AlarmArn": ALARM_ARN,
                    "AlarmDescription": "DO NOT EDIT OR DELETE. For TargetTrackingScaling policy",
                    "AlarmConfigurationUpdatedTimestamp": 1696897800.5,
                    "ActionsEnabled": True,
                    "OKActions": [],
                    "AlarmActions": ["arn:aws:autoscaling:us-east-1:123456789012:scalingPolicy:x"],
                    "StateValue": "ALARM",
                    "StateReason": "Threshold Crossed: 3 out of the last 3 datapoints [75.0 (10/10/23 00:30:00)]",
                    "StateReasonData": "{\"version\":\"1.0\",\"queryDate\":\"2023-10-10T00:31:00.000+0000\"}",
                    "StateUpdatedTimestamp": 1696897860.25,
                    "StateTransitionedTimestamp": 1696897860.0,
                    "MetricName": "CPUUtilization",
                    "Namespace": "AWS/ECS",
                    "Statistic": "Average",
                    "Dimensions": SVC_DIMS,
                    "Period": 60,
                    "Unit": "Percent",
                    "EvaluationPeriods": 3,
                    "DatapointsToAlarm": 2,
                    "Threshold": 60.0,
                    "ComparisonOperator": "GreaterThanThreshold",
                    "TreatMissingData": "missing",
                },
                {
                    "AlarmName": "math",
                    "StateValue": "INSUFFICIENT_DATA",
                    "ActionsEnabled": False,
                    "EvaluationPeriods": 1,
                    "Threshold": 1.5,
                    "ComparisonOperator": "LessThanOrEqualToThreshold",
                    "Metrics": [
                        {"Id": "m1", "ReturnData": False, "MetricStat": {
                            "Metric": {"Namespace": "App", "MetricName": "Errors"}, "Period": 10, "Stat": "Sum"}},
                        {"Id": "e1", "Expression": "RATE(m1)", "Label": "rate", "ReturnData": True},
                    ],
                },
            ],
            "NextToken": "page2",
        },
    ),
    (
        "PutMetricAlarm",
        {
            "AlarmName": "math",
            "ActionsEnabled": True,
            "AlarmActions": ["arn:aws:autoscaling:us-east-1:123456789012:scalingPolicy:y"],
            "EvaluationPeriods": 5,
            "DatapointsToAlarm": 3,
            "Threshold": 0.5,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "TreatMissingData": "notBreaching",
            "Metrics": [
                {"Id": "m1", "ReturnData": False, "MetricStat": {
                    "Metric": {"Namespace": "App", "MetricName": "Errors", "Dimensions": SVC_DIMS},
                    "Period": 10, "Stat": "Sum"}},
                {"Id": "e1", "Expression": "IF(m1 > 0, m1, 0)", "ReturnData": True},
            ],
            "Tags": [{"Key": "team", "Value": "web"}],
        },
        None,
    ),
    (
        "SetAlarmState",
        {"AlarmName": "web-high-cpu", "StateValue": "OK", "StateReason": "test",
         "StateReasonData": "{\"a\":1}"},
        None,
    ),
    ("TagResource", {"ResourceARN": ALARM_ARN, "Tags": [{"Key": "k", "Value": "v"}]}, {}),
    ("DescribeAlarmHistory", {"AlarmName": "web-high-cpu", "StartDate": T1, "EndDate": T3,
                              "HistoryItemType": "StateUpdate"},
     {"AlarmHistoryItems": [{"AlarmName": "web-high-cpu", "Timestamp": 1696897860.25,
                             "HistoryItemType": "StateUpdate", "HistorySummary": "Alarm updated from OK to ALARM",
                             "HistoryData": "{}"}]}),
]


def serialize(model, protocol, operation, params):
    op = model.operation_model(operation)
    serializer = botocore.serialize.create_serializer(protocol, include_validation=True)
    serialized = serializer.serialize_to_request(params, op)
    req = AWSRequest(method=serialized["method"], url="https://monitoring.us-east-1.amazonaws.com"
                     + serialized["url_path"], data=serialized["body"], headers=serialized["headers"])
    prepared = req.prepare()
    body = prepared.body or b""
    if isinstance(body, str):
        body = body.encode()
    headers = {k.lower(): v for k, v in prepared.headers.items() if k.lower() != "content-length"}
    return {"path": serialized["url_path"], "headers": headers, "body_base64": base64.b64encode(body).decode()}


def main():
    session = botocore.session.get_session()
    model = session.get_service_model("cloudwatch")
    vectors = []
    for operation, params, output in CASES:
        vectors.append({
            "operation": operation,
            "requests": {p: serialize(model, p, operation, params) for p in PROTOCOLS},
            "input": jsonable(params),
            "output": output,
        })
    json.dump({"botocore": botocore.__version__, "vectors": vectors}, sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
