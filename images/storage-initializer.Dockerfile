# The storage initializer image: `python -m kubetune.storage_initializer --spec ... --workspace ...`
# fetches a job's model and dataset into its workspace volume.
# Build from the repository root:
#   docker build -f images/storage-initializer.Dockerfile -t REGISTRY/storage-initializer:VERSION .
FROM python:3.11.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/kubetune
COPY pyproject.toml README.md constraints.txt ./
COPY kubetune ./kubetune
# kubetune depends on torch; the initializer never runs it, so the small CPU build is enough.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0 \
 && pip install -c constraints.txt . \
 && python -c "import kubetune.storage_initializer.initialize"

WORKDIR /workspace
ENTRYPOINT ["python", "-m", "kubetune.storage_initializer"]
