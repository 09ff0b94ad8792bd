"""The local AWS emulator: moto's server, with DynamoDB requests applied one at a time.

Usage: python packages/local-stack/bin/emulator.py [-H HOST] [-p PORT]   (the same options as moto_server)

DynamoDB applies each conditional write and each transaction atomically. moto's threaded server
does not: two concurrent conditional updates of one item can both pass their condition, and a
transaction restores a copy of the whole table when it fails, undoing writes made meanwhile. The
product relies on those guarantees for every race it handles (token rotation, login throttling,
quotas), so DynamoDB requests (and only those) are serialised here; S3, SQS, KMS and SSM keep
being served in parallel.

S3 verifies the checksum a PUT carries (`x-amz-checksum-crc32`, `-sha1`, `-sha256`, and
Content-MD5) against the body it received and refuses a mismatch with 400 BadDigest; moto only
echoes it. The same check is made here for bodies sent whole (not aws-chunked), so a part or an
object whose bytes changed on the way is refused as on AWS.

S3 ListObjectVersions: moto copies every version of every key in the bucket, bytes included,
before it applies the prefix, so each call costs as much disk and time as the whole bucket holds
(the sensitive mover and the tests list the versions of one key). Here only the keys under the
prefix are handed to moto's listing; its answer is the same.

S3 Object Lock: a PUT of a body into a bucket with a default retention must carry Content-MD5 or
x-amz-sdk-checksum-algorithm, on AWS and in moto alike; moto asks the same of CopyObject and
UploadPartCopy, which carry no body (S3 copies under the bucket's default retention without it).
Such copies are given the checksum algorithm header here (the one they ask for, else CRC32).

DynamoDB TransactWriteItems with a ClientRequestToken is idempotent for 10 minutes: a repeat of a
request that succeeded (the SDK's retry after a lost answer, a service's own retry) succeeds
again without applying anything, and a different request under the same token is refused with
IdempotentParameterMismatchException. moto applies every repeat, so the same is done here.

S3 checksums of objects uploaded in parts (what a copy of such an object is verified with):
- HeadObject with x-amz-checksum-mode reports a composite checksum as S3 does, `<base64>-<parts>`
  with x-amz-checksum-type COMPOSITE (moto leaves out both; its GetObject has them).
- GetObjectAttributes answers ObjectParts (TotalPartsCount and, for an upload made with a checksum
  algorithm, each part's size and checksum, paged by x-amz-max-parts and x-amz-part-number-marker)
  and sends Last-Modified as an HTTP date (moto has no ObjectParts and sends an ISO 8601 date the
  SDK cannot read).
- UploadPartCopy into a multipart upload created with a checksum algorithm returns the checksum S3
  computes over the copied bytes in CopyPartResult (moto returns none).
"""

import argparse
import base64
import binascii
import hashlib
import io
import json
import signal
import sys
import threading
import time

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.core.responses import ActionResult
from moto.s3.models import FakeMultipart, S3Backend
from moto.s3.responses import S3Response
from moto.s3.utils import compute_checksum
from werkzeug.serving import run_simple


TRANSACT_WRITE = "DynamoDB_20120810.TransactWriteItems"
# DynamoDB remembers a TransactWriteItems ClientRequestToken for 10 minutes.
IDEMPOTENCY_SECONDS = 600


def serialise_dynamodb(app):
    lock = threading.Lock()
    # ClientRequestToken -> (when, digest of the request body, status, headers, response body)
    done = {}

    def wrapped(environ, start_response):
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if not target.startswith("DynamoDB_"):
            return app(environ, start_response)
        with lock:
            if target != TRANSACT_WRITE:
                # The whole response is produced inside the lock.
                return list(app(environ, start_response))
            return idempotent_transaction(environ, start_response)

    def idempotent_transaction(environ, start_response):
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        try:
            token = json.loads(body).get("ClientRequestToken")
        except ValueError:
            token = None
        if not token:
            return list(app(environ, start_response))
        now = time.monotonic()
        for old in [t for t, entry in done.items() if now - entry[0] > IDEMPOTENCY_SECONDS]:
            del done[old]
        digest = hashlib.sha256(body).digest()
        if token in done:
            _, seen, status, headers, answer = done[token]
            if seen != digest:
                return dynamodb_error(start_response, "IdempotentParameterMismatchException",
                                      "The request uses the same client token as a previous, but non-identical request.")
            start_response(status, headers)
            return answer
        captured = {}

        def capture(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, headers
            return start_response(status, headers, exc_info)

        answer = list(app(environ, capture))
        if captured.get("status", "").startswith("200"):
            done[token] = (now, digest, captured["status"], captured["headers"], answer)
        return answer

    return wrapped


def dynamodb_error(start_response, code, message):
    body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message}).encode()
    start_response("400 Bad Request", [("Content-Type", "application/x-amz-json-1.0"), ("Content-Length", str(len(body)))])
    return [body]


CHECKSUMS = {
    "HTTP_X_AMZ_CHECKSUM_CRC32": ("CRC32", lambda body: binascii.crc32(body).to_bytes(4, "big")),
    "HTTP_X_AMZ_CHECKSUM_SHA1": ("SHA1", lambda body: hashlib.sha1(body).digest()),
    "HTTP_X_AMZ_CHECKSUM_SHA256": ("SHA256", lambda body: hashlib.sha256(body).digest()),
    "HTTP_CONTENT_MD5": ("Content-MD5", lambda body: hashlib.md5(body).digest()),
}


def bad_digest(start_response, name):
    message = f"The {name} you specified did not match the calculated checksum."
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>BadDigest</Code><Message>{message}</Message></Error>"
    ).encode()
    start_response("400 Bad Request", [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
    return [body]


def verify_checksums(app):
    def wrapped(environ, start_response):
        claimed = [key for key in CHECKSUMS if key in environ]
        length = environ.get("CONTENT_LENGTH")
        if (
            environ.get("REQUEST_METHOD") != "PUT"
            or not claimed
            or not length
            or environ.get("HTTP_X_AMZ_CONTENT_SHA256", "").startswith("STREAMING-")
        ):
            return app(environ, start_response)
        body = environ["wsgi.input"].read(int(length))
        for key in claimed:
            name, digest = CHECKSUMS[key]
            if base64.b64encode(digest(body)).decode() != environ[key].strip():
                return bad_digest(start_response, name)
        environ["wsgi.input"] = io.BytesIO(body)
        return app(environ, start_response)

    return wrapped


def copies_into_locked_buckets(app):
    def wrapped(environ, start_response):
        if (
            environ.get("REQUEST_METHOD") == "PUT"
            and "HTTP_X_AMZ_COPY_SOURCE" in environ
            and "HTTP_CONTENT_MD5" not in environ
            and "HTTP_X_AMZ_SDK_CHECKSUM_ALGORITHM" not in environ
        ):
            environ["HTTP_X_AMZ_SDK_CHECKSUM_ALGORITHM"] = environ.get("HTTP_X_AMZ_CHECKSUM_ALGORITHM", "CRC32")
        return app(environ, start_response)

    return wrapped


def list_versions_under_prefix_only(backend_class):
    original = backend_class.list_object_versions

    def list_object_versions(self, bucket_name, delimiter=None, key_marker=None, max_keys=1000, prefix="", version_id_marker=None):
        bucket = self.get_bucket(bucket_name)
        wanted = prefix or ""

        class Keys:
            def iterlists(self):
                return ((name, versions) for name, versions in bucket.keys.iterlists() if name.startswith(wanted))

        class Bucket:
            keys = Keys()

        class Backend:
            def get_bucket(self, _name):
                return Bucket()

        return original(Backend(), bucket_name, delimiter, key_marker, max_keys, prefix, version_id_marker)

    backend_class.list_object_versions = list_object_versions


def composite_checksum(key):
    """`(algorithm, "<base64>-<parts>")` for an object completed from parts with a composite checksum, else None."""
    if getattr(key, "checksum_type", None) != "COMPOSITE" or not key.checksum_algorithm or not key.checksum_value:
        return None
    return key.checksum_algorithm, f"{key.checksum_value}-{key.checksum_parts}"


def part_checksums_as_on_aws(response_class, multipart_class):
    original_complete = multipart_class.complete

    def complete(self, body):
        # Each part's size and checksum, noted while its bytes are still at hand (moto drops them later).
        chosen = list(body)
        algorithm = self.metadata.get("x-amz-checksum-algorithm")
        self.completed_parts = [
            {
                "PartNumber": number,
                "Size": self.parts[number].size,
                **({f"Checksum{algorithm}": compute_checksum(self.parts[number].value, algorithm).decode()} if algorithm else {}),
            }
            for number, _ in chosen
            if number in self.parts
        ]
        return original_complete(self, iter(chosen))

    original_head = response_class.head_object
    original_part_copy = response_class.upload_part_copy

    def head_object(self, bucket_name, query, key_name, headers):
        status, response_headers, body = original_head(self, bucket_name, query, key_name, headers)
        if status != 200 or headers.get("x-amz-checksum-mode") != "ENABLED" or query.get("partNumber"):
            return status, response_headers, body
        key = self.backend.get_object(bucket_name, key_name, version_id=query.get("versionId", [None])[0])
        composite = composite_checksum(key) if key else None
        if composite:
            algorithm, value = composite
            response_headers[f"x-amz-checksum-{algorithm.lower()}"] = value
            response_headers["x-amz-checksum-type"] = "COMPOSITE"
        return status, response_headers, body

    def get_object_attributes(self):
        key, not_modified = self._get_key(validate_storage_class=False)
        response_headers = self._get_cors_headers_other()
        if not_modified:
            return 304, response_headers, "Not Modified"
        if key.version_id != "null":
            response_headers["x-amz-version-id"] = key.version_id
        wanted = [a.strip() for a in self.headers.get("x-amz-object-attributes", "").split(",")]
        result = {}
        if "ETag" in wanted:
            result["ETag"] = key.etag.replace('"', "")
        if "Checksum" in wanted and key.checksum_value is not None:
            result["Checksum"] = {f"Checksum{key.checksum_algorithm}": key.checksum_value}
            if key.checksum_type:
                result["Checksum"]["ChecksumType"] = key.checksum_type
        if "ObjectSize" in wanted:
            result["ObjectSize"] = key.size
        if "StorageClass" in wanted:
            result["StorageClass"] = key.storage_class
        completed = getattr(key.multipart, "completed_parts", None) if key.multipart else None
        if "ObjectParts" in wanted and completed:
            marker = int(self.headers.get("x-amz-part-number-marker") or 0)
            limit = int(self.headers.get("x-amz-max-parts") or 1000)
            after = [p for p in completed if p["PartNumber"] > marker]
            page = after[:limit]
            result["ObjectParts"] = {
                "TotalPartsCount": len(completed),
                "PartNumberMarker": marker,
                "NextPartNumberMarker": page[-1]["PartNumber"] if page else marker,
                "MaxParts": limit,
                "IsTruncated": len(after) > limit,
                "Parts": page if key.checksum_algorithm else [],
            }
        self.data["Action"] = "GetObjectAttributes"
        status, headers, body = self.serialized(ActionResult(result))
        headers.update(response_headers)
        headers["Last-Modified"] = key.last_modified_RFC1123
        return status, headers, body

    def upload_part_copy(self):
        status, headers, body = original_part_copy(self)
        if status != 200:
            return status, headers, body
        multipart = self.backend.get_bucket(self.bucket_name).multiparts.get(self._get_param("uploadId"))
        algorithm = multipart.metadata.get("x-amz-checksum-algorithm") if multipart else None
        part = multipart.parts.get(self._get_int_param("partNumber")) if multipart else None
        if not algorithm or part is None:
            return status, headers, body
        checksum = compute_checksum(part.value, algorithm).decode()
        text = body.decode() if isinstance(body, bytes) else body
        text = text.replace("</CopyPartResult>", f"<Checksum{algorithm}>{checksum}</Checksum{algorithm}></CopyPartResult>", 1)
        headers["content-length"] = str(len(text.encode()))
        return status, headers, text

    multipart_class.complete = complete
    response_class.head_object = head_object
    response_class.get_object_attributes = get_object_attributes
    response_class.upload_part_copy = upload_part_copy


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=4566)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    list_versions_under_prefix_only(S3Backend)
    part_checksums_as_on_aws(S3Response, FakeMultipart)
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, copies_into_locked_buckets(verify_checksums(serialise_dynamodb(app))), threaded=True)


if __name__ == "__main__":
    main()
