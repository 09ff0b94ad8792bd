# syntax=docker/dockerfile:1
#
# The local AWS emulator (moto) for docker-compose.yml. Needs PyPI at build time; on machines
# without it, `npm start` runs the emulator from .venv/ (or an installed moto) instead.
#
#   docker build -f docker/emulator.Dockerfile -t scs/emulator .
#   docker run --rm --init -p 127.0.0.1:4566:4566 scs/emulator

ARG PYTHON_IMAGE=python:3.12-slim
FROM ${PYTHON_IMAGE}

# Same major as the moto the test suite runs against (5.x).
ARG MOTO_SPEC="moto[server]>=5.1,<6"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN pip install "${MOTO_SPEC}" \
 && useradd --uid 1000 --user-group --no-create-home --shell /usr/sbin/nologin moto

USER moto
EXPOSE 4566
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=10 \
  CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:4566/moto-api/', timeout=2).status == 200 else 1)"]
CMD ["moto_server", "-H", "0.0.0.0", "-p", "4566"]
