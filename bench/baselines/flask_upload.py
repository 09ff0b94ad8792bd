"""Baseline "Flask + boto3": an upload service written as tutorials show it.

Flask receives the multipart form (Werkzeug spools the file part to a temporary file), and boto3's
`upload_fileobj` sends it to S3 (multipart uploads of 8 MiB parts on its own threads, with boto3's
default checksums). Run by the benchmark on the Werkzeug server (`app.run`, threaded), as the
tutorials do.

POST /upload, multipart/form-data with a "file" part -> 201 {"size", "key"}.
Settings (environment): PORT, HOST (127.0.0.1), BUCKET, KEY_PREFIX (bench-flask/), and boto3's
standard settings (AWS_ENDPOINT_URL, AWS_REGION / AWS_DEFAULT_REGION, credentials).
"""

import os
import uuid

import boto3
from botocore.config import Config
from flask import Flask, jsonify, request

app = Flask(__name__)
s3 = boto3.client("s3", config=Config(s3={"addressing_style": "path"}))
BUCKET = os.environ["BUCKET"]
KEY_PREFIX = os.environ.get("KEY_PREFIX", "bench-flask/")


@app.get("/health")
def health():
    return jsonify(ok=True)


@app.post("/upload")
def upload():
    file = request.files.get("file")
    if file is None:
        return jsonify(error="no file"), 400
    size = file.seek(0, os.SEEK_END)
    file.seek(0)
    key = f"{KEY_PREFIX}{uuid.uuid4()}"
    s3.upload_fileobj(file, BUCKET, key)
    return jsonify(key=key, size=size), 201


if __name__ == "__main__":
    app.run(host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "5000")), threaded=True)
