# A PostgreSQL server for the example's backend integration tests, built from the local base
# image with Debian's packages (no registry is needed). Throw-away data, trust auth, loopback.
ARG BASE_IMAGE=testdock-local/python:3.11-bookworm
FROM ${BASE_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-15 \
    && rm -rf /var/lib/apt/lists/*
COPY postgres-start.sh /usr/local/bin/postgres-start
RUN chmod 0755 /usr/local/bin/postgres-start
USER postgres
ENV PGPORT=5432
CMD ["postgres-start"]
