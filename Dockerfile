# railwatch worker image: slim Python 3.11, non-root, railwatch installed from this checkout.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    PREFECT_SERVER_ANALYTICS_ENABLED=false DO_NOT_TRACK=1 \
    RAILWATCH_HOME=/data RAILWATCH_AOI_DIR=/app/aois
WORKDIR /app
COPY pyproject.toml README.md ./
COPY railwatch ./railwatch
COPY flows ./flows
COPY tasks ./tasks
COPY aois ./aois
COPY prefect.yaml ./
RUN pip install . && useradd --create-home --uid 10001 railwatch && mkdir /data && chown railwatch /data
USER railwatch
VOLUME ["/data"]
HEALTHCHECK CMD python -c "import railwatch, flows.backfill" || exit 1
# A Prefect worker for a process work pool; override for `railwatch demo` etc.
CMD ["prefect", "worker", "start", "--pool", "railwatch", "--type", "process"]
