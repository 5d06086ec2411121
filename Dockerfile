# Cardiowatch worker / simulator image (production: see docker-compose.yml).
FROM python:3.11.11-slim-bookworm
WORKDIR /app
RUN useradd --create-home --uid 10001 cardiowatch
COPY pyproject.toml README.md ./
COPY cardiowatch ./cardiowatch
COPY models ./models
COPY simulators ./simulators
COPY streams ./streams
# Pass the PyTorch CPU wheel index as TORCH_INDEX_URL for a CPU-only image (no CUDA packages).
ARG TORCH_INDEX_URL=""
RUN pip install --no-cache-dir torch==2.13.0 ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} \
 && pip install --no-cache-dir .
USER cardiowatch
ENTRYPOINT ["cardiowatch"]
