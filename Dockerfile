# The appliance as a container: `ems run -c /config`, data in /data, dashboard on port 8080.
# Its install steps are the README's "Install by hand" steps (tests/test_packaging.py checks).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 EMS_DATA_DIR=/data
WORKDIR /src
COPY pyproject.toml README.md ./
COPY ems ./ems
COPY integrations ./integrations
COPY rules ./rules
COPY web ./web
COPY config ./config

RUN python -m venv /opt/ems
RUN /opt/ems/bin/pip install --no-cache-dir .
# Bytecode for everything installed, written now: the appliance runs with PYTHONDONTWRITEBYTECODE
# (nothing written at run time) and must not recompile its sources at every start.
RUN /opt/ems/bin/python -m compileall -q /opt/ems/lib

RUN useradd --system --uid 1000 --home-dir /data ems \
    && mkdir -p /config /data \
    && cp -r config/. /config/ \
    && chown -R ems:ems /config /data
USER ems
ENV PATH=/opt/ems/bin:$PATH
VOLUME ["/config", "/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/api/v1/health', timeout=4)"]
CMD ["ems", "run", "-c", "/config", "--data-dir", "/data", "--host", "0.0.0.0"]
