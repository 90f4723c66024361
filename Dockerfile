# mockcore: an emulated MetaDefender Core fleet (licence and hot-backup API) and its activation server, and
# mockcore-contracts, the suites that check a server or a client against the licence rules.
#
#   docker build -t mockcore .
#   docker run -p 8008:8008 -p 8009:8009 mockcore
#   docker run -p 8008:8008 -p 8010:8010 -p 8009:8009 mockcore serve --host 0.0.0.0 --instance prod=8008 --instance backup=8010
#   docker run --network host --entrypoint mockcore-contracts mockcore server --core-url http://127.0.0.1:8008
#
# BASE is any image with Python >= 3.11 as `python3`, `venv` and `pip`: the default is the official slim image;
# tests/test_container.py builds on a Debian bookworm rootfs made with debootstrap (see docs/guides/test-double.md, Container).
ARG BASE=python:3.11-slim

FROM ${BASE} AS build
COPY pyproject.toml README.md /src/
COPY mockcore /src/mockcore
# The contract suites too: `mockcore-contracts` checks a server or a client from the image (and `GET /openapi.json`
# serves contracts/openapi.yaml).
COPY contracts /src/contracts
# A virtual environment: works on the official image and on Debian's externally-managed python3 alike. pip, its
# cache and the build tools stay out of the final image.
RUN python3 -m venv /opt/mockcore \
 && /opt/mockcore/bin/python -m pip install --no-cache-dir --disable-pip-version-check /src \
 && /opt/mockcore/bin/python -m pip uninstall --yes --disable-pip-version-check pip setuptools

FROM ${BASE}
COPY --from=build /opt/mockcore /opt/mockcore
RUN useradd --uid 10001 --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin mockcore
ENV PATH=/opt/mockcore/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MOCKCORE_HEALTH_PORT=8008
USER 10001:10001
# 8008: the first Core instance; 8009: the activation server. Further instances take 8010, 8011, ... (publish them).
EXPOSE 8008 8009
# Python, not curl (slim images have none). Serving on another port? Set MOCKCORE_HEALTH_PORT to it.
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 \
    CMD ["/opt/mockcore/bin/python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('MOCKCORE_HEALTH_PORT', '8008') + '/_mock/health', timeout=4)"]
ENTRYPOINT ["mockcore"]
CMD ["serve", "--host", "0.0.0.0"]
