"""A child of the cache bench's cold path, in a fresh interpreter: a shared tier's first call, client
import included, on top of a preload.

    python -m scripts.bench_cache.child_first_call PRELOAD CLIENT URL

CLIENT is one of CLIENTS (this package's own DynamoDB and Redis clients, boto3, redis-py); prints the
milliseconds as JSON.
"""

import json
import sys
import time


def dynamodb_ours(url: str) -> None:
    from functions.cache.dynamodb import DynamoTier

    tier = DynamoTier(
        "preheat-cache",
        region="us-east-1",
        endpoint_url=url,
        env={"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"},
    )
    tier.prepare(10)  # credentials, connect, one BatchGetItem


def dynamodb_boto3(url: str) -> None:
    import boto3

    client = boto3.client(
        "dynamodb",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.batch_get_item(RequestItems={"preheat-cache": {"Keys": [{"key": {"S": "k"}}]}})


def redis_ours(url: str) -> None:
    from functions.cache.redis import RedisTier

    tier = RedisTier(url)
    tier.prepare(10)
    tier.get_many(["k"], time.monotonic() + 10)


def redis_py(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    client.ping()
    client.get("k")


CLIENTS = {
    "dynamodb-ours": dynamodb_ours,
    "dynamodb-boto3": dynamodb_boto3,
    "redis-ours": redis_ours,
    "redis-py": redis_py,
}


def main(preload: str, client: str, url: str) -> None:
    exec(preload)
    call = CLIENTS[client]
    started = time.perf_counter()
    call(url)
    print(json.dumps((time.perf_counter() - started) * 1000))


if __name__ == "__main__":
    main(*sys.argv[1:])
