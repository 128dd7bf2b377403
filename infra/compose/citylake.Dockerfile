# The citylake image: the CLI and the data-product API (serving/: FastAPI under uvicorn).
FROM python:3.11.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends openjdk-17-jre-headless curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 citylake
WORKDIR /opt/citylake
COPY requirements.lock .
RUN pip install --no-cache-dir -r requirements.lock
COPY . .
RUN pip install --no-cache-dir --no-deps .
USER citylake
EXPOSE 8000
CMD ["citylake", "api", "serve"]
