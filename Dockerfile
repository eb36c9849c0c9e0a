FROM python:3.12-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY gateway ./gateway
RUN pip install --no-cache-dir .
ENV LIVE_GATEWAY_HOST=0.0.0.0
EXPOSE 8080
CMD ["live-gateway", "serve"]
