# syntax=docker/dockerfile:1
#
# The local AWS emulator (moto) for machines that cannot reach PyPI (docker/emulator.Dockerfile,
# the default, pip-installs moto) nor an image registry: this machine's own Python installation,
# the one that has moto, copied onto the local Debian base image (scripts/bin/build-base-image.sh).
# The build context is that installation's prefix, found at run time, never a fixed path:
#
#   podman build -f "$PWD/docker/emulator-host-python.Dockerfile" \
#     --build-arg BASE_IMAGE=localhost/scs-node-base:<node version> \
#     --build-arg PYTHON_PREFIX="$(python3 -c 'import sys; print(sys.prefix)')" -t scs/emulator:local \
#     "$(python3 -c 'import sys; print(sys.prefix)')"
#
# docker-compose.host-python.yml selects it for `podman-compose up` (docs/OPERATIONS.md); the
# deploy rehearsal (npm run test:deploy) builds it that way. Needs a self-contained prefix (a
# pyenv or /opt build, a venv's base with moto installed: not Debian's /usr, whose packages live
# beside the rest of the system).
ARG BASE_IMAGE
FROM ${BASE_IMAGE}

# The prefix keeps its place inside the image (PYTHON_PREFIX: the build context's own path, which
# docker-compose.host-python.yml passes): the interpreter finds its standard library next to itself,
# and its shared library through its RUNPATH (and LD_LIBRARY_PATH).
ARG PYTHON_PREFIX
RUN case "${PYTHON_PREFIX}" in /?*) ;; *) echo "PYTHON_PREFIX must be the absolute path of the Python prefix (the build context)" >&2; exit 1 ;; esac
COPY . ${PYTHON_PREFIX}/
ENV PATH=${PYTHON_PREFIX}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LD_LIBRARY_PATH=${PYTHON_PREFIX}/lib \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

# The user that runs moto may pass through the folders above the prefix (e.g. a home folder's 0700).
RUN test -x "${PYTHON_PREFIX}/bin/python3" || { echo "the build context is not a Python prefix (no bin/python3)" >&2; exit 1; } \
 && dir="${PYTHON_PREFIX}" && while [ "$dir" != / ]; do dir="$(dirname "$dir")"; chmod o+x "$dir"; done \
 && { [ -e "${PYTHON_PREFIX}/bin/python" ] || ln -s python3 "${PYTHON_PREFIX}/bin/python"; } \
 && python -c 'import moto.server, flask, boto3; print("moto", __import__("moto").__version__)' \
 && useradd --uid 1001 --user-group --no-create-home --shell /usr/sbin/nologin moto

USER moto
EXPOSE 4566
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=10 \
  CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:4566/moto-api/', timeout=2).status == 200 else 1)"]
# The interpreter runs moto's server module: the prefix's console scripts name the host's path.
CMD ["python", "-m", "moto.server", "-H", "0.0.0.0", "-p", "4566"]
