# Omnistream image: one image for every role (topics, flows, API, simulator).
#
#   docker build -t omnistream:local .
#   docker run --rm omnistream:local                      # omnistream --help
#   docker run --rm omnistream:local omnistream serve     # any subcommand
#
# Configuration is only `OMNISTREAM_*` environment variables (omnistream/settings.py);
# docker-compose.yml sets the ones that differ inside a container network.

# ---- build stage: a virtualenv with the project and its pinned dependencies ----
FROM python:3.11-slim AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src

# Dependencies first, from pyproject.toml alone, so that editing the code does not
# reinstall them. Every pinned dependency ships manylinux wheels for CPython 3.11
# (x86_64 and aarch64), so no compiler is installed here; if one ever lacks a wheel,
# add `apt-get install build-essential` to this stage only.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt

# Then the project itself (.dockerignore keeps tests, benchmarks, docs and caches out).
COPY . .
RUN pip install . \
    && omnistream --help > /dev/null

# ---- runtime stage: the virtualenv, a non-root user, nothing else ----
FROM python:3.11-slim

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

# Fixed uid/gid so Kubernetes `runAsNonRoot` / `runAsUser: 10001` match the image.
# The recovery directory exists (owned by that user) so a named volume mounted
# there inherits the ownership and Bytewax can write its SQLite partitions.
RUN groupadd --system --gid 10001 omnistream \
    && useradd --system --uid 10001 --gid omnistream --create-home \
        --home-dir /home/omnistream --shell /usr/sbin/nologin omnistream \
    && mkdir -p /var/lib/omnistream/recovery \
    && chown -R omnistream:omnistream /var/lib/omnistream

COPY --from=build /opt/venv /opt/venv
# The fraud flow's rules file (reloaded live when it changes: mount a newer one over it).
COPY deploy/fraud/rules.toml /etc/omnistream/fraud/rules.toml
# The loyalty flow's earn rules (read when the flow starts).
COPY deploy/loyalty/rules.toml /etc/omnistream/loyalty/rules.toml

ENV OMNISTREAM_RECOVERY_DIR=/var/lib/omnistream/recovery \
    OMNISTREAM_FRAUD_RULES_PATH=/etc/omnistream/fraud/rules.toml \
    OMNISTREAM_LOYALTY_RULES_PATH=/etc/omnistream/loyalty/rules.toml

WORKDIR /home/omnistream
USER 10001:10001

# 8000: API (`omnistream serve`, /metrics on the same port); flow metrics: 9108 inventory, 9124 recommend,
# 9140 fraud, 9156 merchandising, 9172 customers, 9188 loyalty, 9204 attribution, 9220 demand (base + 16 x the flow's position + the process index).
EXPOSE 8000 9108 9124 9140 9156 9172 9188 9204 9220

CMD ["omnistream", "--help"]
