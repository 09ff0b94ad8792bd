"""The local AWS emulator: moto's server, with DynamoDB requests applied one at a time.

Usage: python scripts/bin/emulator.py [-H HOST] [-p PORT]   (the same options as moto_server)

DynamoDB applies each conditional write and each transaction atomically. moto's threaded server
does not: two concurrent conditional updates of one item can both pass their condition, and a
transaction restores a copy of the whole table when it fails, undoing writes made meanwhile. The
product relies on those guarantees for every race it handles (token rotation, login throttling,
quotas), so DynamoDB requests (and only those) are serialised here; S3, SQS, KMS and SSM keep
being served in parallel.
"""

import argparse
import signal
import sys
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple


def serialise_dynamodb(app):
    lock = threading.Lock()

    def wrapped(environ, start_response):
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            return app(environ, start_response)
        with lock:
            # The whole response is produced inside the lock.
            return list(app(environ, start_response))

    return wrapped


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=4566)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, serialise_dynamodb(app), threaded=True)


if __name__ == "__main__":
    main()
