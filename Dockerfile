# One image for every SplitRec process: party servers and the coordinator.
#
#   make wheelhouse          # wheels/ of every package SplitRec needs, on the host
#   docker build -t splitrec .   (make compose-up builds it for you)
#
# The build needs no network: Python packages come from the wheelhouse in the
# build context, which is also how an air-gapped site builds it. The image holds
# code and configs only: no data, no keys, no certificates (compose mounts each
# party's own).

# --- stage 1: the packages SplitRec needs, installed into a virtual environment
# (rebuilt only when the wheelhouse changes)
FROM python:3.11-slim AS packages

COPY wheels /tmp/wheels
RUN python -m venv /opt/venv \
    && /opt/venv/bin/python -m pip install --no-cache-dir --no-index /tmp/wheels/*.whl

# --- stage 2: the image: the environment, SplitRec, the configs and deploy ----
FROM python:3.11-slim

# gRPC resolves party names (alice, bob) with the C library, as every other
# program in the container does: its own c-ares resolver can keep failing for
# tens of seconds against a container network's DNS after a party restarts.
ENV PATH=/opt/venv/bin:$PATH \
    GRPC_DNS_RESOLVER=native \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    MPLCONFIGDIR=/tmp/matplotlib \
    HOME=/tmp

COPY --from=packages /opt/venv /opt/venv

# SplitRec itself, built from its source with the build backend the wheelhouse
# brought (setuptools): a change of code rebuilds only these layers.
COPY pyproject.toml README.md /tmp/src/
COPY splitrec /tmp/src/splitrec
COPY proto /tmp/src/proto
COPY common /tmp/src/common
COPY party_server /tmp/src/party_server
COPY coordinator /tmp/src/coordinator
COPY baseline /tmp/src/baseline
COPY bench /tmp/src/bench
COPY configs /tmp/src/configs
COPY examples /tmp/src/examples
RUN python -m pip install --no-cache-dir --no-index --no-deps --no-build-isolation \
        /tmp/src \
    && rm -rf /tmp/src

WORKDIR /app
COPY configs ./configs
COPY deploy ./deploy

# The processes run as this unprivileged user; compose may map them to the host
# user that owns the mounted data, certificates and runs/ folders.
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin splitrec \
    && mkdir -p /app/runs && chown splitrec /app/runs
USER splitrec

EXPOSE 50051
CMD ["python", "-m", "splitrec.party_server", "--help"]
