# railwatch image: slim Python 3.11, non-root, railwatch installed with the exact tested versions
# (constraints.txt). One image for the Prefect worker (default command, with a health endpoint),
# flow-run jobs, and Dask scheduler/workers (override the command: `dask scheduler` etc.).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PREFECT_SERVER_ANALYTICS_ENABLED=false DO_NOT_TRACK=1 \
    RAILWATCH_HOME=/data RAILWATCH_AOI_DIR=/app/aois RAILWATCH_CHECKOUT=/app \
    NUMBA_CACHE_DIR=/home/railwatch/.cache/numba
WORKDIR /app
# dependencies first (a layer that changes only with the pins), then the code
COPY constraints.txt pyproject.toml README.md ./
RUN mkdir -p railwatch flows tasks && touch railwatch/__init__.py flows/__init__.py tasks/__init__.py \
    && pip install -c constraints.txt . && pip uninstall -y railwatch
COPY railwatch ./railwatch
COPY flows ./flows
COPY tasks ./tasks
COPY aois ./aois
COPY prefect.yaml ./
RUN pip install --no-deps -c constraints.txt . \
    && useradd --create-home --uid 10001 railwatch && mkdir /data && chown railwatch /data
USER 10001
VOLUME ["/data"]
EXPOSE 8080
# the worker's health server (--with-healthcheck) answers /health while it polls the API
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=4)" || exit 1
CMD ["prefect", "worker", "start", "--pool", "railwatch", "--type", "process", "--with-healthcheck"]
