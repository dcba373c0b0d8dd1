# The platform's image: the `olist-bi` command (ETL, scheduler, provisioning) on Python 3.11.
# Used by the init, provision and scheduler services of docker-compose.yml.
FROM python:3.11.15-slim-bookworm

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

# The mount points exist, owned by the platform's user, so new named volumes start writable.
RUN useradd --create-home --uid 1000 olist \
    && mkdir -p /data/olist /warehouse /inbox /drop \
    && chown olist:olist /data/olist /warehouse /inbox
WORKDIR /app

# Dependencies first (pinned in pyproject.toml), so a code change does not reinstall them.
COPY pyproject.toml setup.py README.md ./
COPY platform ./platform
COPY docker/platform/init.sh /usr/local/bin/olist-init
# A regular install: everything the code reads at run time (the notebook, Metabase's assets,
# the models) is package data.
RUN pip install --no-cache-dir pip==25.3 && pip install --no-cache-dir '.[clickhouse]' && chmod 0755 /usr/local/bin/olist-init

USER olist
ENTRYPOINT ["olist-bi"]
CMD ["--help"]
