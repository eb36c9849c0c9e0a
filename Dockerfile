FROM python:3.12-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY gateway ./gateway
RUN pip install --no-cache-dir .
# The gateway needs no privileges: it runs as a user of its own (numeric, so a runtime can check it is not root).
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin gateway
USER 10001:10001
ENV LIVE_GATEWAY_HOST=0.0.0.0
EXPOSE 8080
CMD ["live-gateway", "serve"]
