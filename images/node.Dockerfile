# The reference node image: the bundled channel server (server_under_test and the protocol
# package it shares with the harness) on the debootstrap base, with Toxiproxy and Redis so the
# top-level docker-compose.yml can run the whole reference cluster from this one image.
# Built by `make image` (images/build-image.sh): no registry, no index, wheels from the host.
ARG BASE=chaos-harness/base:bookworm
FROM ${BASE}
COPY build/image/wheels /wheels
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --quiet --no-index --find-links /wheels -r /wheels/requirements.txt \
 && rm -rf /wheels
COPY build/image/bin/toxiproxy-server /usr/local/bin/toxiproxy-server
COPY harness/__init__.py /app/harness/__init__.py
COPY harness/phoenix /app/harness/phoenix
COPY server_under_test /app/server_under_test
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
STOPSIGNAL SIGTERM
CMD ["python3", "-m", "server_under_test", "--help"]
