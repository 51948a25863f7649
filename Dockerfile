# The local ImageNet server (`barapi mock serve`) in a container.
FROM python:3.11-slim
WORKDIR /app
COPY . .
# CPU-only torch (used once, to export the weights to ONNX).
RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu torch==2.13.0 \
 && pip install --no-cache-dir '.[mock]'
ENV BARAPI_HOME=/data
VOLUME /data
EXPOSE 8080
HEALTHCHECK CMD python -c "import httpx,sys; sys.exit(httpx.get('http://127.0.0.1:8080/ping').status_code != 200)"
ENTRYPOINT ["barapi", "mock", "serve", "--host", "0.0.0.0", "--port", "8080"]
