"""Starts moto's server with DynamoDB's writes made atomic, as DynamoDB's are.

moto evaluates a write's condition and applies the write in Python, and its server answers
requests on several threads, so two concurrent conditional writes to one item can both see
the old value: `failedAttempts < 5` then holds for a sixth guess, which DynamoDB itself never
lets through. The conformance suite checks exactly that bound (S7 under concurrency), so the
stand-in must keep it. One lock around every DynamoDB write and read makes each request see and
change items as one step; the server stays threaded for everything else.

Usage: python scripts/moto_server.py -H HOST -p PORT (moto_server's own options).
"""
import functools
import threading

from moto.dynamodb.models import DynamoDBBackend
from moto.server import main

_lock = threading.RLock()


def _atomic(method):
    @functools.wraps(method)
    def locked(*args, **kwargs):
        with _lock:
            return method(*args, **kwargs)

    return locked


for _name in (
    "put_item",
    "update_item",
    "delete_item",
    "transact_write_items",
    "get_item",
    "query",
    "scan",
    "transact_get_items",
    "batch_get_item",
    "batch_write_item",
):
    if hasattr(DynamoDBBackend, _name):
        setattr(DynamoDBBackend, _name, _atomic(getattr(DynamoDBBackend, _name)))

if __name__ == "__main__":
    main()
