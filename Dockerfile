# The livesegments worker image (used by docker-compose.yml). It runs the pure modules: the
# compiled build (scripts/build_compiled.py) needs a C compiler the slim image lacks.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md livesegments_error.py livesegments_compiled.py ./
COPY segment_rules ./segment_rules
COPY state ./state
COPY streams ./streams
RUN pip install --no-cache-dir .
EXPOSE 6066
CMD ["livesegments", "worker"]
