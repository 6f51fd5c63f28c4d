# One build target per image, all from the one recipe (deploy/docker/Dockerfile), so the six
# images cannot drift apart. From the repository root:
#
#   docker buildx bake -f deploy/docker/docker-bake.hcl            # all six
#   docker buildx bake -f deploy/docker/docker-bake.hcl members    # one
#   REGISTRY=registry.example.com/hearth TAG=0.1.0 docker buildx bake -f deploy/docker/docker-bake.hcl --push

variable "REGISTRY" {
  default = "hearth"
}

variable "TAG" {
  default = "dev"
}

variable "PYTHON_IMAGE" {
  # Pin by digest in CI (python:3.11-slim-bookworm@sha256:...) for bit-for-bit bases.
  default = "python:3.11-slim-bookworm"
}

group "default" {
  targets = ["gateway", "members", "content", "events", "moderation", "metrics"]
}

target "_common" {
  context    = "."
  dockerfile = "deploy/docker/Dockerfile"
  args = {
    PYTHON_IMAGE = PYTHON_IMAGE
  }
  labels = {
    "org.opencontainers.image.version" = TAG
  }
}

target "gateway" {
  inherits = ["_common"]
  args     = { SERVICE = "gateway" }
  tags     = ["${REGISTRY}/gateway:${TAG}"]
}

target "members" {
  inherits = ["_common"]
  args     = { SERVICE = "members" }
  tags     = ["${REGISTRY}/members:${TAG}"]
}

target "content" {
  inherits = ["_common"]
  args     = { SERVICE = "content" }
  tags     = ["${REGISTRY}/content:${TAG}"]
}

target "events" {
  inherits = ["_common"]
  args     = { SERVICE = "events" }
  tags     = ["${REGISTRY}/events:${TAG}"]
}

target "moderation" {
  inherits = ["_common"]
  args     = { SERVICE = "moderation" }
  tags     = ["${REGISTRY}/moderation:${TAG}"]
}

target "metrics" {
  inherits = ["_common"]
  args     = { SERVICE = "metrics" }
  tags     = ["${REGISTRY}/metrics:${TAG}"]
}
