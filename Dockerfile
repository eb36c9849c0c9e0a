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
# /healthz on the port the gateway serves (LIVE_GATEWAY_PORT); the simulators' service sets its own check.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["live-gateway", "healthcheck"]
CMD ["live-gateway", "serve"]
