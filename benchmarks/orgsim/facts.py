"""What the organization-scale simulation takes from AWS's documentation, and what it has to assume.

Every documented number carries its source and the day it was read; `ASSUMPTIONS` holds the rest, each
with why it is what it is. docs/org-scale.md prints both tables from here, so the doc cannot drift from
the model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

READ_ON = "2026-12-06"


@dataclass(frozen=True)
class Source:
    fact: str
    url: str
    read_on: str = READ_ON


@dataclass(frozen=True)
class Bucket:
    """A request token bucket: `capacity` tokens, `refill` tokens per second (per account, region and API)."""

    capacity: float
    refill: float


# -------------------------------------------------------------------------------- EC2 request throttling
EC2_THROTTLING = Source(
    "EC2 throttles each API per account and Region with a token bucket (request rate limiting); a request "
    "takes one token; non-mutating actions: bucket 100, refill 20/s; mutating actions: bucket 50, refill 5/s; "
    "over the limit: RequestLimitExceeded",
    "https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html")
EC2_BUCKETS = {"non_mutating": Bucket(capacity=100, refill=20.0), "mutating": Bucket(capacity=50, refill=5.0)}
EC2_MUTATING = frozenset({"ModifyVpcEndpoint", "ModifyVpcAttribute", "CreateVpcEndpoint", "CreateTags",
                          "AuthorizeSecurityGroupIngress", "ModifyVpcEndpointServicePermissions"})


def ec2_bucket(operation: str) -> Bucket:
    return EC2_BUCKETS["mutating" if operation in EC2_MUTATING else "non_mutating"]


# -------------------------------------------------------------------------------- Lambda and SQS
SQS_SCALING = Source(
    "SQS event source (standard queue): starts with 5 concurrent batches, adds up to 300 instances per minute "
    "while messages remain, at most 1,000 concurrent batches per event source mapping",
    "https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html")
SQS_START_CONCURRENCY = 5
SQS_ADDED_PER_SECOND = 300 / 60
SQS_MAX_CONCURRENCY = 1000
MAXIMUM_CONCURRENCY = Source(
    "ScalingConfig.MaximumConcurrency of an SQS event source: 2 to 1,000",
    "https://docs.aws.amazon.com/lambda/latest/dg/API_ScalingConfig.html")
LAMBDA_CPU = Source(
    "Lambda allocates CPU in proportion to memory; at 1,769 MB a function has the equivalent of one vCPU",
    "https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html")
FULL_VCPU_MB = 1769
INIT_BILLED = Source(
    "Since 1 August 2025 the INIT phase of on-demand functions on managed runtimes is billed as duration",
    "https://aws.amazon.com/blogs/compute/aws-lambda-standardizes-billing-for-init-phase/")

# -------------------------------------------------------------------------------- DynamoDB
DYNAMODB_ON_DEMAND = Source(
    "On-demand tables: a new table sustains up to 4,000 writes/s and 12,000 reads/s at once, double its "
    "previous peak within 30 minutes; a partition serves up to 1,000 WRU or 3,000 RRU per second; latency "
    "single-digit milliseconds",
    "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/on-demand-capacity-mode.html")
DYNAMODB_NEW_TABLE_WRU = 4000
DYNAMODB_NEW_TABLE_RRU = 12000
DYNAMODB_PARTITION_WRU = 1000
TRANSACTION_CONFLICTS = Source(
    "A TransactWriteItems request is cancelled (TransactionCanceledException, TransactionConflict) when an "
    "ongoing TransactWriteItems request touches the same item",
    "https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html")

# -------------------------------------------------------------------------------- Security Hub
SECURITY_HUB_IMPORT = Source(
    "BatchImportFindings: up to 100 findings per request; throttle rate 10 TPS per account per Region, "
    "burst 30 TPS",
    "https://docs.aws.amazon.com/securityhub/latest/partnerguide/guidelines-batchimportfindings.html")
SECURITY_HUB_BUCKET = Bucket(capacity=30, refill=10.0)
SECURITY_HUB_BATCH = 100

# -------------------------------------------------------------------------------- botocore retries
RETRIES = Source(
    "botocore standard/adaptive retries: `max_attempts` N in the retries config means N+1 attempts; the "
    "delay before retry i of a throttled call is rand(0, 1) x min(2^(i-1), 20) s; adaptive mode also "
    "paces the client with a CUBIC-adjusted token bucket after the first throttle "
    "(tests/unit/test_orgsim.py checks both against the installed botocore)",
    "https://boto3.amazonaws.com/v1/documentation/api/latest/guide/retries.html")
MAX_ATTEMPTS = 9  # aws.RETRY_CONFIG: {"mode": "adaptive", "max_attempts": 8}
THROTTLE_BASE_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 20.0


def backoff_bound(retry: int) -> float:
    """The longest wait before retry `retry` (1-based) of a throttled call."""
    return min(THROTTLE_BASE_SECONDS * 2 ** (retry - 1), MAX_BACKOFF_SECONDS)


# -------------------------------------------------------------------------------- prices (us-east-1)
@dataclass(frozen=True)
class Price:
    usd: float
    unit: str
    source: Source


PRICES = {
    "lambda_gb_second_arm64": Price(0.0000133334, "per GB-second (arm64, first 7.5 billion GB-s a month)", Source(
        "AWS Lambda pricing, US East (N. Virginia), Arm", "https://aws.amazon.com/lambda/pricing/")),
    "lambda_request": Price(0.20 / 1e6, "per request", Source(
        "AWS Lambda pricing: $0.20 per 1M requests", "https://aws.amazon.com/lambda/pricing/")),
    "sqs_request": Price(0.40 / 1e6, "per request (standard queue, after the first 1M a month)", Source(
        "Amazon SQS pricing: $0.40 per million standard requests", "https://aws.amazon.com/sqs/pricing/")),
    "dynamodb_wru": Price(0.625 / 1e6, "per write request unit (on-demand)", Source(
        "Amazon DynamoDB on-demand pricing since 1 November 2024: $0.625 per million write request units",
        "https://aws.amazon.com/dynamodb/pricing/on-demand/")),
    "dynamodb_rru": Price(0.125 / 1e6, "per read request unit (on-demand)", Source(
        "Amazon DynamoDB on-demand pricing since 1 November 2024: $0.125 per million read request units",
        "https://aws.amazon.com/dynamodb/pricing/on-demand/")),
    "securityhub_finding": Price(0.00003, "per finding ingestion event (after 10,000 a month per account-region)",
                                 Source("AWS Security Hub pricing: finding ingestion events",
                                        "https://aws.amazon.com/security-hub/pricing/")),
}
EC2_STS_API_CALLS_ARE_FREE = Source("EC2 Describe*/Modify* and STS AssumeRole calls carry no charge",
                                    "https://aws.amazon.com/ec2/pricing/on-demand/")


# -------------------------------------------------------------------------------- assumptions
@dataclass(frozen=True)
class Latency:
    """A log-normal latency: median and 99th percentile, seconds; plus seconds per KB of response."""

    median: float
    p99: float
    per_kb: float = 0.0

    @property
    def sigma(self) -> float:
        return math.log(self.p99 / self.median) / 2.326


#: Per-call latency from a Lambda function in the same Region. AWS publishes no latency figures for these
#: APIs (DynamoDB documents "single-digit milliseconds"); these are deliberately on the slow side of what
#: SDK users report, and the table's sensitivity row doubles the EC2 ones.
LATENCY = {
    "ec2:read": Latency(0.090, 0.400, per_kb=0.0005),
    "ec2:write": Latency(0.150, 0.800),
    "dynamodb:item": Latency(0.006, 0.030),
    "dynamodb:batch": Latency(0.012, 0.060, per_kb=0.0001),
    "dynamodb:transact": Latency(0.020, 0.080),
    "sts": Latency(0.060, 0.300),
    "sqs": Latency(0.015, 0.080),
    "organizations": Latency(0.150, 0.600),
    "ssm": Latency(0.020, 0.100),
    "other": Latency(0.050, 0.300),
}


def latency_family(service: str, operation: str) -> str:
    if service == "ec2":
        return "ec2:write" if operation in EC2_MUTATING or not operation.startswith("Describe") else "ec2:read"
    if service == "dynamodb":
        if operation.startswith("Transact"):
            return "dynamodb:transact"
        return "dynamodb:batch" if operation.startswith("Batch") or operation == "Query" else "dynamodb:item"
    return service if service in LATENCY else "other"


@dataclass(frozen=True)
class Assumption:
    name: str
    value: str
    why: str


ASSUMPTIONS = (
    Assumption("EC2 buckets left to vpce-guard", "half of each bucket and of its refill",
               "the account's other tools (Terraform, consoles, other scanners) draw on the same per-API buckets; "
               "the simulation lets them use the other half all the time"),
    Assumption("a core of the calibrating machine = one Lambda vCPU", "calibrated CPU seconds x 1,769 / memory (MB)",
               "Lambda gives a 512 MB function 29% of a vCPU; Graviton2 and the calibrating x86 core are taken "
               "as equal"),
    Assumption("latencies", "log-normal per API family (table above)",
               "AWS publishes none for these APIs; the sensitivity row doubles EC2's"),
    Assumption("unit mix per account (17 Regions)",
               "80%: 1 small Region + 16 empty; 15%: 1 medium + 2 small + 14 empty; "
               "5%: 1 large + 1 medium + 2 small + 13 empty",
               "most accounts run workloads in one or two Regions; the other Regions hold only the default VPC"),
    Assumption("a daily sweep", "repeat sweep: nothing changed since the day before (the digest vouches)",
               "a day on which every account-region changed (state items read back) and the first sweep after "
               "deploying (every state item written) are reported separately"),
    Assumption("summary transaction holds its item", "for its latency (dynamodb:transact)",
               "DynamoDB does not document how long a transaction blocks others on the same item"),
    Assumption("events a month", "1,000 a day, each 0.35 s at 512 MB and 10 DynamoDB writes",
               "the on-change function's warm event measured by `make bench`, rounded up"),
)
