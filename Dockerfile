# One image for every SplitRec process: party servers and the coordinator.
# Build: docker build -t splitrec .   (docker-compose.yml builds it for you)
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app:/app/proto \
    TF_CPP_MIN_LOG_LEVEL=2 \
    MPLCONFIGDIR=/tmp/matplotlib \
    HOME=/tmp

WORKDIR /app

COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt

COPY proto ./proto
COPY common ./common
COPY party_server ./party_server
COPY coordinator ./coordinator
COPY configs ./configs
COPY deploy ./deploy

# The processes run as this unprivileged user unless compose maps them to the
# host user that owns the mounted data, certificates and runs/ folder.
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin splitrec \
    && mkdir -p /app/runs && chown splitrec /app/runs
USER splitrec

EXPOSE 50051
CMD ["python", "-m", "party_server", "--help"]
