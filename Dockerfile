# kpr-exporter container image. The Helm chart's default image (image.repository, tag =
# the chart's appVersion) is built from this file:
#   docker build --build-arg REVISION=$(git rev-parse --short HEAD) -t <registry>/kpr-exporter:0.1.0 .
# REVISION becomes the revision label of kpr_exporter_build_info.
# Two stages: the wheel is built with the build tools, the runtime stage installs only it.

FROM python:3.11-slim AS build
WORKDIR /src
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY pyproject.toml README.md ./
COPY exporter ./exporter
RUN pip wheel --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
ARG REVISION=unknown
ENV KPR_BUILD_REVISION=$REVISION \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
COPY --from=build /wheels /wheels
RUN pip install /wheels/*.whl && rm -rf /wheels \
 && groupadd --system --gid 65532 kpr \
 && useradd --system --uid 65532 --gid kpr --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin kpr
# Numeric user, so Kubernetes can verify runAsNonRoot.
USER 65532:65532
EXPOSE 9977
ENTRYPOINT ["kpr-exporter"]
CMD ["run"]
