# The livesegments worker image (used by docker-compose.yml).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY segment_rules ./segment_rules
COPY state ./state
COPY streams ./streams
RUN pip install --no-cache-dir .
EXPOSE 6066
CMD ["livesegments", "worker"]
