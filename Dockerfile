# The pipeline image: watcher, worker, migrations and Flower all run from it.
# GPU workers: build with --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu124
FROM python:3.11-slim
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 PIPELINE_DATA_DIR=/data HF_HOME=/models
RUN apt-get update && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY pipeline ./pipeline
COPY workers ./workers
COPY migrations ./migrations
RUN pip install --index-url "$TORCH_INDEX" torch && pip install ".[plvm,web]"
USER 1000:1000
CMD ["pipeline", "--help"]
